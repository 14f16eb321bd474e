"""The one run driver: every experiment's run kinds x seeds, trained and evaluated the same way.

An experiment declares *kinds* of run (`gpj.kinds.Kind`: data, task, model, config, evaluators). The driver
checks them all before any compute, then for each kind builds the optimizer and compiles the init
and train programs and the evaluators' programs **once**, and runs every seed through them.

Where a run's weights come from, in this order (recorded per run as `weights`):
  1. its own checkpoint in `<workdir>/<folder>/seed<seed>` (resume, or a finished run re-evaluated);
  2. a finished earlier workdir named in the config (`Kind.earlier`): loaded, not trained;
  3. converted weights (`model.init_from`, see `gpj.convert`), then trained;
  4. random initialisation, then trained.
"""

import functools
import json
import math
import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gpj import engine, evaluators, models
from gpj.convert import store
from gpj.data import batches, sources
from gpj.errors import ConfigError
from gpj.provenance import environment
from gpj.validation import check_choice, check_positive, check_range

PLATEAU_ON = ("train_loss", "val_accuracy")  # what `train.stop_on_plateau` watches


def check_common(config) -> None:
    """Checks the data, model, optim, train and eval fields that every experiment has, and that
    `model.init_from` names converted weights that fit."""
    check_choice(config, "data.name", sources.DATASETS)
    check_choice(config, "data.channels", (1, 3))
    check_choice(config, "model.name", models.MODEL_NAMES)
    check_choice(config, "model.stem", models.STEMS)
    check_choice(config, "model.padding", models.PADDINGS)
    check_choice(config, "model.param_init", models.INITS)
    check_choice(config, "optim.name", engine.OPTIMIZERS)
    check_choice(config, "optim.schedule", engine.SCHEDULES)
    for path in (
        "num_seeds",
        "data.image_size",
        "model.width",
        "model.bn_momentum",
        "optim.learning_rate",
        "train.batch_size",
        "train.log_every",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "eval.batch_size",
    ):
        check_positive(config, path)
    check_range(config, "model.bn_momentum", 0.0, 0.999999)
    check_range(config, "data.test_fraction", 0.01, 0.99)
    check_range(config, "train.eval_every_epochs", 0, 10**6)
    check_positive(config, "train.curve_images")
    check_positive(config, "train.seeds_per_program")
    check_positive(config, "train.plateau_patience")
    check_range(config, "train.plateau_min_delta", 0.0, 1e9)
    check_range(config, "train.plateau_gain_se", 0.0, 1e9)
    check_range(config, "data.val_fraction", 0.0, 0.9)
    if config.train.plateau_on == "test_accuracy":
        raise ConfigError(
            "train.plateau_on='test_accuracy' is refused: a run's length must not be chosen on "
            "test data; use 'val_accuracy' (with data.val_fraction > 0) or 'train_loss'"
        )
    check_choice(config, "train.plateau_on", PLATEAU_ON)
    if config.train.stop_on_plateau and not config.train.eval_every_epochs:
        raise ConfigError(
            "train.stop_on_plateau=True needs train.eval_every_epochs >= 1 (the plateau windows)"
        )
    on_val = config.train.stop_on_plateau and config.train.plateau_on == "val_accuracy"
    if on_val and not config.data.val_fraction:
        raise ConfigError(
            "train.plateau_on='val_accuracy' needs a validation split: set data.val_fraction, "
            "e.g. 0.2"
        )
    evaluators.check_names(config.evals)
    store.check_config(config)


def require_evals(config, names) -> None:
    """`config.evals` must hold the evaluators whose results the experiment's report shows."""
    missing = [name for name in names if name not in config.evals]
    if missing:
        raise ConfigError(
            f"evals={tuple(config.evals)!r} lacks {', '.join(map(repr, missing))}, which the "
            f"{config.experiment} report needs; add to the defaults, e.g. "
            f"evals={(*names, *(e for e in config.evals if e not in names))!r}"
        )


def finished_config(path: str, field: str, experiment: str):
    """The config of a finished earlier `experiment` workdir named by the config field `field`.

    Raises:
      ConfigError: `path` holds no finished run of that experiment.
    """
    results_path = os.path.join(os.path.expanduser(path), "results.json")
    try:
        with open(results_path) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"{field}={path!r} is not a finished {experiment} workdir: cannot read "
            f"{results_path} ({e})"
        ) from e
    if results.get("experiment") != experiment:
        raise ConfigError(
            f"{field}={path!r} holds a {results.get('experiment')!r} run, not a {experiment} run"
        )
    return ml_collections.ConfigDict(results["config"])


def check(kinds, mesh) -> dict:
    """Checks every kind before any compute; returns {kind name: (its evaluators, its test-curve
    metric or None)}.

    Batch sizes must split over the devices, the model must fit its input (shapes only, through
    `jax.eval_shape`), earlier runs must exist, and every evaluator checks its settings against
    the model's output shapes.

    Raises:
      ConfigError: one line naming the field and what would be valid.
    """
    built = {}
    for kind in kinds:
        c = kind.config
        engine.check_batch_size(c.train.batch_size, mesh, "train.batch_size")
        engine.check_batch_size(c.eval.batch_size, mesh, "eval.batch_size")
        if len(kind.data.train_labels) < c.train.batch_size:
            raise ConfigError(
                f"train.batch_size={c.train.batch_size} exceeds the "
                f"{len(kind.data.train_labels)} training images of {kind.data.name}"
            )
        shapes = output_shapes(kind)
        if kind.earlier:
            for seed in kind.seeds:
                run_dir = kind.earlier_run_dir(seed)
                if not os.path.isdir(os.path.join(run_dir, "checkpoints")):
                    raise ConfigError(
                        f"{kind.earlier_field}={kind.earlier!r} has no trained run of seed {seed} "
                        f"(no {run_dir}/checkpoints); give an earlier workdir or a run folder "
                        "holding checkpoints/"
                    )
        plugins = evaluators.build(kind, shapes, mesh)
        curve = evaluators.curve_metric(kind, plugins, shapes, mesh)
        train = kind.config.train
        on_curve = train.stop_on_plateau and train.plateau_on == "val_accuracy"
        if on_curve and not isinstance(curve, evaluators.EveryCell):
            raise ConfigError(
                f"train.plateau_on='val_accuracy' needs a curve of accuracy, but the "
                f"{kind.name} runs' curve is not; use train.plateau_on='train_loss'"
            )
        built[kind.name] = (plugins, curve)
    return built


def output_shapes(kind) -> dict:
    """The shapes of the model's named outputs (`out`), or a ConfigError if the input is too
    small for it."""
    keys = {"params": jax.random.PRNGKey(0), "permute": jax.random.PRNGKey(0)}
    shape = kind.task.input_shape(kind.data)
    try:
        (_, out), _ = jax.eval_shape(
            lambda x: kind.model.init_with_output(keys, x, train=False),
            jax.ShapeDtypeStruct(shape, jnp.float32),
        )
        ok = all(d > 0 for d in out["features"].shape)
    except (ValueError, TypeError, ZeroDivisionError):
        ok = False
    if not ok:
        m = kind.config.model
        what, remedy = kind.task.too_small(shape, kind.config)
        raise ConfigError(
            f"{what} is too small for model.name={m.name!r} with model.padding={m.padding!r} "
            f"and model.stem={m.stem!r}; {remedy}"
        )
    return jax.tree.map(lambda s: tuple(s.shape), out)


def run(kinds, workdir: str, mesh, deadline: float | None = None) -> list:
    """Trains (or loads) and evaluates every seed of every kind; one result row per run.

    The seeds a kind trains share one compiled program, `train.seeds_per_program` at a time,
    stacked on a leading seed axis (`engine.fit`); the evaluators then measure each seed alone.
    Past `deadline` (a `time.time()`), the training seeds are checkpointed and `BudgetReached`
    is raised; the same call resumes."""
    built = check(kinds, mesh)
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
        many of each process's devices as divide their count, each seed's batch over the rest;
        for one seed the plain train step (and no seed mesh)."""
        if seeds in self._train_steps:
            return self._train_steps[seeds]
        if seeds == 1:  # no seed axis to stack or split
            program = (engine.compile_train_step(self.objective, self.mesh), None)
        else:
            seed_mesh = engine.seed_mesh(self.mesh, math.gcd(seeds, jax.local_device_count()))
            program = (engine.compile_seeds_train_step(self.objective, seed_mesh), seed_mesh)
        self._train_steps[seeds] = program
        return program


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
    head = slice(t.curve_images)
    curves = {"test": _Head(data.test_images[head], data.test_labels[head])}
    if getattr(data, "val_images", None) is not None:  # canvas data with a validation split
        curves["val"] = _Head(data.val_images, data.val_labels)
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
        for split, head in curves.items()
        for key, value in metric.measure(state, head, None).items()
    }


def _batch(data, batch_size, seed, step) -> dict:
    """This process's share of the training batch of `seed` at `step`."""
    n = len(data.train_labels)
    pid, pcount = jax.process_index(), jax.process_count()
    idx = batches.train_batch_indices(n, batch_size, seed, step, pid, pcount)
    return {"image": data.train_images[idx], "label": data.train_labels[idx]}


class _Head(NamedTuple):
    """Held-out images a curve is measured on (the metric reads them as `test_*`)."""

    test_images: np.ndarray
    test_labels: np.ndarray


def dataset_summary(dataset, **extra) -> dict:
    return {
        "name": dataset.name,
        "num_train": len(dataset.train_labels),
        "num_test": len(dataset.test_labels),
        "num_classes": dataset.num_classes,
        **extra,
    }


def results(config, experiment: str, *, runs, summary, started, **fields) -> dict:
    """The results.json content every experiment writes (its own fields in between)."""
    return {
        "experiment": experiment,
        "config": config.to_dict(),
        "environment": environment(),
        **fields,
        "seeds": [config.seed + i for i in range(config.num_seeds)],
        "runs": runs,
        "summary": summary,
        "wall_time_s": time.time() - started,
    }
