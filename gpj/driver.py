"""The one run driver: every experiment's run kinds x seeds, trained and evaluated the same way.

An experiment declares *kinds* of run (`gpj.kinds.Kind`: data, task, model, config, evaluators). The driver
checks them all before any compute (`gpj.checks.check_kinds`), then for each kind builds the optimizer and compiles the init
and train programs and the evaluators' programs **once**, and runs every seed through them.

Where a run's weights come from, in this order (recorded per run as `weights`):
  1. its own checkpoint in `<workdir>/<folder>/seed<seed>` (resume, or a finished run re-evaluated);
  2. a finished earlier workdir named in the config (`Kind.earlier`): loaded, not trained;
  3. converted weights (`model.init_from`, see `gpj.convert`), then trained;
  4. random initialisation, then trained.
"""

import functools
import math
import os
import time
from typing import NamedTuple

import jax
import numpy as np

from gpj import checks, engine, models
from gpj.convert import store
from gpj.data import batches


def run(kinds, workdir: str, mesh, deadline: float | None = None) -> list:
    """Trains (or loads) and evaluates every seed of every kind; one result row per run.

    The seeds a kind trains share one compiled program, `train.seeds_per_program` at a time,
    stacked on a leading seed axis (`engine.fit`); the evaluators then measure each seed alone.
    Past `deadline` (a `time.time()`), the training seeds are checkpointed and `BudgetReached`
    is raised; the same call resumes."""
    built = checks.check_kinds(kinds, mesh)
    rows = []
    for kind in kinds:
        plugins, curve = built[kind.name]
        program = _Program(kind, mesh, curve)
        runs = [_start(kind, program, seed, workdir) for seed in kind.seeds]
        to_train = [r for r in runs if r["weights"]["source"] != "earlier_workdir"]
        for group in _groups(to_train, kind.config.train.seeds_per_program):
            _fit(kind, program, group, workdir, mesh, deadline)
        for r in runs:
            state = r.pop("state")
            started = time.time()
            for evaluator in plugins:
                r.update(evaluator.run(state, kind.data, seed=r["seed"]))
            rows.append({**r, "steps": int(state.step), "eval_time_s": time.time() - started})
    return rows


def _groups(runs: list, per_program: int) -> list:
    """`runs` in consecutive groups of at most `per_program`, as even as the count allows."""
    if not runs:
        return []
    count = -(-len(runs) // per_program)
    size = -(-len(runs) // count)
    return [runs[i : i + size] for i in range(0, len(runs), size)]


class _Program:
    """A kind's optimizer, compiled init program, train programs (one per number of stacked
    seeds) and test-curve metric, shared by all its seeds."""

    def __init__(self, kind, mesh, curve):
        self.num_steps = kind.num_steps
        self.curve = curve
        self.objective = kind.task.objective
        self.mesh = mesh
        self.tx = engine.make_optimizer(kind.config.optim, self.num_steps)
        self.init = engine.compile_init(
            kind.model,
            self.tx,
            kind.task.input_shape(kind.data),
            mesh,
            params_init=models.PARAMS_INIT[kind.config.model.get("param_init", "kaiming")],
        )
        self._train_steps = {}

    def train_step(self, seeds: int):
        """(the train program for `seeds` stacked seeds, its seed mesh): the seeds split over as
        many of each process's devices as divide their count, each seed's batch over the rest."""
        if seeds not in self._train_steps:
            seed_mesh = engine.seed_mesh(self.mesh, math.gcd(seeds, jax.local_device_count()))
            program = (engine.compile_seeds_train_step(self.objective, seed_mesh), seed_mesh)
            self._train_steps[seeds] = program
        return self._train_steps[seeds]


def _start(kind, program, seed, workdir) -> dict:
    """A run's result row, begun: its initial state (`state`, from the first weight source that
    has it), its folder and weight source."""
    run_dir = kind.run_dir(workdir, seed)
    state = program.init(seed)
    if _has_checkpoint(run_dir):
        weights = {"source": "checkpoint", "path": os.path.abspath(run_dir)}
    elif kind.earlier:
        run_dir = kind.earlier_run_dir(seed)
        weights = {"source": "earlier_workdir", "path": os.path.abspath(run_dir)}
        state = engine.restore(state, run_dir)
    elif kind.config.model.init_from:
        weights = {"source": "converted", "path": os.path.abspath(kind.config.model.init_from)}
        state = store.start_from(state, kind.config, run_dir, train=program.num_steps > 0)
    else:
        weights = {"source": "init", "path": None}
    inside = os.path.abspath(run_dir).startswith(os.path.abspath(workdir) + os.sep)
    return {
        **kind.labels,
        "seed": seed,
        "run_dir": os.path.relpath(run_dir, workdir) if inside else os.path.abspath(run_dir),
        "weights": weights,
        "state": state,
        "budget_steps": program.num_steps,
        "history": [],
        "train_time_s": 0.0,
        "program_seeds": [],
    }


def _has_checkpoint(run_dir: str) -> bool:
    folder = os.path.join(run_dir, "checkpoints")
    return os.path.isdir(folder) and any(name.isdigit() for name in os.listdir(folder))


def _fit(kind, program, group, workdir, mesh, deadline):
    """Trains (or resumes) a group of seeds in one program; the host yields raw images and labels
    in an order fixed by (seed, step), and the task's objective builds its inputs on the device.
    Fills in each run's final state, history, train time and program seeds."""
    c, data = kind.config, kind.data
    t = c.train
    eval_every = t.eval_every_epochs * kind.steps_per_epoch
    first = slice(t.curve_images)
    curves = {"test": _CurveImages(data.test_images[first], data.test_labels[first])}
    if getattr(data, "val_images", None) is not None:  # canvas data with a validation split
        curves["val"] = _CurveImages(data.val_images, data.val_labels)
    plateau, stop = None, None
    if t.stop_on_plateau:
        if t.plateau_on == "train_loss":
            plateau = {"window": eval_every, "patience": t.plateau_patience}
            plateau["min_delta"] = t.plateau_min_delta
            stop = functools.partial(engine.plateaued, **plateau)
        else:
            plateau = {"key": "val_accuracy", "count": len(data.val_labels)}
            plateau["gain_se"] = t.plateau_gain_se
            stop = functools.partial(engine.val_plateaued, **plateau)
    fingerprint = {
        **kind.fingerprint,
        "num_steps": program.num_steps,
        "batch_size": t.batch_size,
        "model": c.model.to_dict(),
        # Where the data lives does not change the run; what it is does.
        "data": {k: v for k, v in c.data.to_dict().items() if k != "data_dir"},
        "optim": c.optim.to_dict(),
        **({"plateau_stop": plateau} if plateau else {}),
    }
    lanes = [
        engine.Lane(
            state=r["state"],
            batch_fn=functools.partial(_batch, data, t.batch_size, r["seed"]),
            run_dir=os.path.join(workdir, r["run_dir"]),
            fingerprint={**fingerprint, "seed": r["seed"]},
        )
        for r in group
    ]
    seeds = [r["seed"] for r in group]
    train_step, seed_mesh = program.train_step(len(group))
    started = time.time()
    finished = engine.fit(
        lanes,
        train_step,
        seeds=len(group),
        num_steps=program.num_steps,
        mesh=mesh,
        seed_mesh=seed_mesh,
        log_every=t.log_every,
        checkpoint_every=t.checkpoint_every,
        keep_checkpoints=t.keep_checkpoints,
        desc=f"{kind.name} seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}",
        evaluate=program.curve and functools.partial(_curves, program.curve, curves),
        eval_every=eval_every,
        stop=stop,
        deadline=deadline,
    )
    elapsed = time.time() - started  # the group's: its seeds share every step
    for r, (state, history) in zip(group, finished):
        r.update(state=state, history=history, program_seeds=seeds, train_time_s=elapsed)


def _curves(metric, curves: dict, state) -> dict:
    """The curve metric on each held-out split: {"<split>_<metric>": value}."""
    return {
        f"{split}_{key}": value
        for split, images in curves.items()
        for key, value in metric.measure(state, images, None).items()
    }


def _batch(data, batch_size, seed, step) -> dict:
    """This process's share of the training batch of `seed` at `step`."""
    n = len(data.train_labels)
    pid, pcount = jax.process_index(), jax.process_count()
    idx = batches.train_batch_indices(n, batch_size, seed, step, pid, pcount)
    return {"image": data.train_images[idx], "label": data.train_labels[idx]}


class _CurveImages(NamedTuple):
    """Held-out images a curve is measured on (the metric reads them as `test_*`)."""

    test_images: np.ndarray
    test_labels: np.ndarray
