"""The one training loop: seeds stacked side by side; resume, step, log, checkpoint, stop on a
plateau or on divergence, per seed."""

import dataclasses
import json
import math
import operator
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import tqdm
from absl import logging
from jax.experimental import multihost_utils

from gpj.engine.parallel import (
    local_value,
    replicated,
    seeds_sharding,
    shard_seeds_batch,
)
from gpj.errors import BudgetReached, CheckpointError, TrainingDiverged


@dataclasses.dataclass
class Lane:
    """One seed of a stacked run: its initial state (replicated, one seed), its batches (step ->
    this process's numpy batch of that global step), its folder and the settings that identify it
    (a folder written with other settings is refused instead of being resumed or overwritten)."""

    state: Any
    batch_fn: Callable[[int], dict]
    run_dir: str
    fingerprint: dict


def fit(
    lanes: list,
    train_step,
    *,
    seeds: int,
    num_steps: int,
    mesh,
    seed_mesh,
    log_every: int,
    checkpoint_every: int,
    keep_checkpoints: int,
    desc: str = "train",
    evaluate: Callable | None = None,
    eval_every: int = 0,
    stop: Callable[[list], bool] | None = None,
    deadline: float | None = None,
) -> list:
    """Trains the seeds of `lanes` side by side, stacked in one program, each to `num_steps` (or
    until its `stop`), each resuming from its own `run_dir` when that holds a checkpoint.

    A lane's resume order: check its fingerprint, restore its latest checkpoint, drop logged
    metrics past it. Batches and rngs are functions of (seed, step), and a lane trains only at
    the steps it has not done yet, so every seed equals an uninterrupted run of its own, whatever
    other seeds share the program and wherever each was interrupted.

    Args:
      lanes: `Lane`s, at most `seeds` of them; the program's other seeds are idle copies.
      train_step: `steps.compile_seeds_train_step` for `seeds` seeds on `seed_mesh` (one seed
        too: with a seed axis of one it ran as fast as the plain step, `gpj.bench`'s `seeds`).
      seeds: the seed count the program was compiled for.
      num_steps: total number of steps of every run.
      mesh: the one-axis mesh of the lanes' replicated states (what `evaluate` gets).
      seed_mesh: the (`seeds`, `data`) mesh of the stacked program (`parallel.seed_mesh`).
      log_every, checkpoint_every, keep_checkpoints: cadences and retention, per lane.
      desc: label for the progress bar.
      evaluate: one seed's state -> {name: value} of curves on held-out data (e.g.
        `val_accuracy`, `test_accuracy`), logged every `eval_every` steps and at the last step.
      eval_every: cadence of `evaluate` and `stop`, in steps (0: neither).
      stop: history -> whether to stop early (e.g. `plateaued`), asked at each evaluation; that
        seed is then checkpointed and ends there while the others go on. A function of the
        history only, so a resumed run stops where the uninterrupted one did.
      deadline: a `time.time()` after which the seeds are checkpointed at the next log step and
        `BudgetReached` is raised (None: no deadline); a resumed run then equals one that never
        stopped.

    Returns:
      One (final replicated state, logged history) per lane.
    """
    if not 0 < len(lanes) <= seeds:
        raise ValueError(f"{len(lanes)} lanes for a program of {seeds} seeds")
    is_main = jax.process_index() == 0
    runs, bar = [], None
    try:
        for lane in lanes:
            runs.append(_Run(lane, keep_checkpoints, is_main))
        for run in runs:
            run.stopped = stop is not None and eval_every > 0 and stop(run.history)
        waiting = [run.start for run in runs if not run.stopped and run.start < num_steps]
        first = min(waiting, default=num_steps)
        program = _Stacked(runs, train_step, seeds, mesh, seed_mesh)
        bar = tqdm.tqdm(
            total=num_steps,
            initial=first,
            desc=desc,
            disable=not is_main or first >= num_steps,
            dynamic_ncols=True,
            leave=False,
        )
        pending = []
        for step in range(first, num_steps):
            active = [not run.stopped and run.start <= step for run in runs]
            if not any(active):
                break
            pending.append((program.step(step, active), active))
            done = step + 1
            bar.update(1)
            check = eval_every > 0 and (done % eval_every == 0 or done == num_steps)
            late = done % log_every == 0 and done < num_steps and _past(deadline)
            save = done % checkpoint_every == 0 or done == num_steps or late
            if not (save or check or done % log_every == 0):
                continue
            values = [(program.host(m), on) for m, on in pending]
            pending = []
            host = program.host(program.state.checkpoint_items()) if save or check else None
            for k, run in enumerate(runs):
                if not active[k]:
                    continue
                record = _summarise([m for m, on in values if on[k]], k, done, run.manager)
                if check and evaluate is not None:
                    curves = evaluate(program.seed_state(k, host))
                    record.update({key: float(v) for key, v in curves.items()})
                run.stopped = check and stop is not None and stop([*run.history, record])
                run.log(record, bar)
                if save or run.stopped:
                    run.save(done, jax.tree.map(operator.itemgetter(k), host), alone=len(runs) == 1)
            if late:
                raise BudgetReached(f"the time budget ran out at step {done} of {num_steps}")
        if first < num_steps:  # the trained seeds' final states, unstacked
            trained = [k for k, run in enumerate(runs) if run.start < num_steps]
            for k, state in zip(trained, program.seed_states(trained)):
                runs[k].state = state
    finally:
        if bar is not None:
            bar.close()
        for run in runs:
            run.close()
    return [(run.state, run.history) for run in runs]


class _Run:
    """A lane's checkpoints, history and TensorBoard writer, opened (and restored) for `fit`."""

    def __init__(self, lane, keep_checkpoints, is_main):
        self.lane, self.writer, self.stopped = lane, None, False
        _check_fingerprint(lane.run_dir, lane.fingerprint, is_main)
        self.manager = ocp.CheckpointManager(
            os.path.abspath(os.path.join(lane.run_dir, "checkpoints")),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep_checkpoints, create=True),
        )
        self.state = _restore_latest(self.manager, lane.state)
        self.start = int(self.state.step)
        self.history = _load_history(lane.run_dir, self.start)
        if is_main:
            self.writer = _summary_writer(os.path.join(lane.run_dir, "tensorboard"))

    def log(self, record, bar):
        """Appends `record` to the history and, on process 0, to metrics.jsonl, TensorBoard, the
        progress bar and the log."""
        self.history.append(record)
        if self.writer is not None:
            _log(record, self.lane.run_dir, self.writer, bar)

    def save(self, step, items, alone):
        """Checkpoints `items` (host arrays) as `step`."""
        self.manager.save(step, args=ocp.args.StandardSave(items))
        if not alone:
            # One seed's save at a time: with several processes, two managers' saves in
            # flight at once can wait on each other's barriers for ever.
            self.manager.wait_until_finished()

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()
        if self.writer is not None:
            self.writer.close()


class _Stacked:
    """The program of `seeds` seeds stacked on a leading axis split on `seed_mesh`'s `seeds`,
    the lanes first and idle copies of the first lane after them."""

    def __init__(self, runs, train_step, seeds, mesh, seed_mesh):
        self.runs, self.train_step, self.seeds = runs, train_step, seeds
        self.mesh, self.seed_mesh, self.template = mesh, seed_mesh, runs[0].state
        self.state = stack_states([run.state for run in runs], seeds, seed_mesh)

    def step(self, step, active):
        """Trains the `active` lanes at `step`, the others keeping their states; the metrics of
        every seed on the device."""
        batch = _stacked_batch(
            [run.lane.batch_fn(step) for run, on in zip(self.runs, active) if on],
            self.seeds,
            active,
        )
        mask = np.asarray(active + [False] * (self.seeds - len(self.runs)))
        self.state, metrics = self.train_step(
            self.state,
            shard_seeds_batch(batch, self.seed_mesh),
            jax.make_array_from_callback(
                mask.shape, seeds_sharding(self.seed_mesh), mask.__getitem__
            ),
        )
        return metrics

    @staticmethod
    def host(tree):
        """A tree of the program's device values as numpy, seed axis first."""
        return jax.tree.map(local_value, tree)

    def seed_state(self, k, host):
        """Seed `k` of `host` (the host copy of `state.checkpoint_items()`), replicated."""
        return _unstack(self.template, host, k, self.mesh)

    def seed_states(self, ks):
        """Seeds `ks`' replicated one-seed states, from one host copy of the stacked state."""
        host = self.host(self.state.checkpoint_items())
        return [self.seed_state(k, host) for k in ks]


def stack_states(states, seeds, seed_mesh):
    """The states stacked on a leading seed axis of `seeds` (the first state again in the idle
    slots), split on the seed mesh's `seeds` axis."""
    items = [jax.tree.map(local_value, s.checkpoint_items()) for s in states]
    items += [items[0]] * (seeds - len(items))
    sharding = seeds_sharding(seed_mesh)

    def put(*xs):
        stacked = np.stack(xs)
        return jax.make_array_from_callback(stacked.shape, sharding, stacked.__getitem__)

    return states[0].from_checkpoint_items(jax.tree.map(put, *items))


def _stacked_batch(batches: list, seeds: int, active: list) -> dict:
    """The active lanes' numpy batches stacked on a leading seed axis, in lane order; inactive
    lanes and idle slots get the first active lane's batch (their results are discarded)."""
    given = iter(batches)
    order = [next(given) if on else None for on in active] + [None] * (seeds - len(active))
    order = [b if b is not None else batches[0] for b in order]
    return {key: np.stack([b[key] for b in order]) for key in batches[0]}


def _unstack(template, host, k, mesh):
    """Seed `k` of the host copy `host` of a stacked state, as a replicated one-seed state."""
    sharding = replicated(mesh)
    return template.from_checkpoint_items(
        jax.tree.map(
            lambda x: jax.make_array_from_callback(x.shape[1:], sharding, x[k].__getitem__), host
        )
    )


def _past(deadline: float | None) -> bool:
    """Whether `deadline` has passed; decided on process 0, so every process stops together."""
    if deadline is None:
        return False
    past = time.time() >= deadline
    if jax.process_count() > 1:
        past = bool(multihost_utils.broadcast_one_to_all(np.array(past)))
    return past


def plateaued(history: list, *, window: int, patience: int, min_delta: float) -> bool:
    """Whether the training loss has plateaued: the mean loss of each of the last `patience`
    windows of `window` steps (ending at multiples of `window`) is no more than `min_delta`
    below the best mean loss of the windows before them.

    Each record's loss is the mean over the steps since the record before it, so a window's
    mean weighs records by the steps they cover.
    """
    sums, previous = {}, 0
    for record in history:
        window_index = (record["step"] - 1) // window
        total, count = sums.get(window_index, (0.0, 0))
        steps = record["step"] - previous
        sums[window_index] = (total + record["loss"] * steps, count + steps)
        previous = record["step"]
    means = [total / count for i, (total, count) in sorted(sums.items()) if count == window]
    if len(means) <= patience:
        return False
    best_before = min(means[:-patience])
    return all(m > best_before - min_delta for m in means[-patience:])


def val_plateaued(history: list, *, key: str, count: int, gain_se: float) -> bool:
    """Whether the validation curve `key` (an accuracy on `count` images) has stopped rising:
    its best point in the later half of the steps taken is less than `gain_se` standard errors
    above its best point in the earlier half (the window doubles with the steps taken, so a
    slow learner must gain as much per doubling as a fast one). The standard error is the
    binomial one of the earlier best, sqrt(p(1 − p) / count), at least 1 / count (one image); it
    bounds that of an accuracy averaged over several placements of each image. Needs two points
    in each half.
    """
    points = [(record["step"], record[key]) for record in history if key in record]
    if not points:
        return False
    half = points[-1][0] / 2
    earlier = [p for step, p in points if step <= half]
    later = [p for step, p in points if step > half]
    if min(len(earlier), len(later)) < 2:
        return False
    best = max(earlier)
    se = max(np.sqrt(best * (1 - best) / count), 1 / count)
    return max(later) - best < gain_se * se


def restore(state, run_dir: str):
    """`state` with the latest checkpoint of an earlier run in `run_dir` (read only).

    Raises:
      CheckpointError: `run_dir` holds no checkpoint, or one that does not fit `state`.
    """
    directory = os.path.abspath(os.path.join(run_dir, "checkpoints"))
    if not os.path.isdir(directory):
        raise CheckpointError(f"{run_dir} holds no checkpoints/ folder of a trained run")
    options = ocp.CheckpointManagerOptions(create=False)  # nothing is saved through it
    with ocp.CheckpointManager(directory, options=options) as manager:
        if manager.latest_step() is None:
            raise CheckpointError(f"{directory} holds no finished checkpoint")
        return _restore_latest(manager, state)


def _summary_writer(logdir: str):
    """A TensorBoard writer. tensorboardX is imported here, as it imports torch (a second), which
    a command that stops at a config error never needs."""
    from tensorboardX import SummaryWriter

    return SummaryWriter(logdir)


def _summarise(values, k, step, manager) -> dict:
    """Seed `k`'s metric means since its last record; stops the run on a non-finite loss."""
    record = {"step": step}
    for key in values[0]:
        record[key] = float(np.mean([v[key][k] for v in values]))
    if not all(math.isfinite(float(v["loss"][k])) for v in values):
        last = manager.latest_step()
        kept = (
            f"the last good checkpoint (step {last}) is kept in {manager.directory}"
            if last is not None
            else "no checkpoint had been written yet"
        )
        raise TrainingDiverged(
            f"training diverged: the loss became non-finite before step {step}; {kept}. "
            "Lower optim.learning_rate or check the data."
        )
    return record


def _log(record, run_dir, writer, bar):
    with open(os.path.join(run_dir, "metrics.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
    for key, value in record.items():
        if key != "step":
            writer.add_scalar(f"train/{key}", value, record["step"])
    writer.flush()
    values = {k: f"{v:.4g}" for k, v in record.items() if k != "step"}
    bar.set_postfix(values)
    logging.info(
        "%s step %d: %s", run_dir, record["step"], ", ".join(f"{k}={v}" for k, v in values.items())
    )


def _restore_latest(manager, state):
    step = manager.latest_step()
    if step is None:
        return state
    target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
        state.checkpoint_items(),
    )
    try:
        items = manager.restore(step, args=ocp.args.StandardRestore(target))
    except Exception as e:  # orbax raises many types; all mean the same to the user
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"cannot restore the checkpoint of step {step} in {manager.directory}: {reason}. "
            "It is corrupt or was written by an incompatible model; it was left untouched. "
            "Move it away to start afresh, or use another --workdir."
        ) from e
    logging.info("resumed from step %d in %s", step, manager.directory)
    return state.from_checkpoint_items(items)


def _check_fingerprint(run_dir, fingerprint, is_main):
    path = os.path.join(run_dir, "run_config.json")
    fingerprint = json.loads(json.dumps(fingerprint))
    if os.path.exists(path):
        with open(path) as f:
            try:
                saved = json.load(f)
            except json.JSONDecodeError as e:
                raise CheckpointError(
                    f"{path} is not valid JSON ({e}); it was left untouched."
                ) from e
        if saved != fingerprint:
            keys = sorted(
                k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k)
            )
            raise CheckpointError(
                f"{run_dir} holds a run with other settings (differing: {', '.join(keys)}); "
                "it was left untouched. Use another --workdir to train with these settings."
            )
    elif is_main:
        os.makedirs(run_dir, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(fingerprint, f, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)


def _load_history(run_dir, upto: int) -> list:
    """Logged records up to the restored step (later ones will be logged again)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    kept = [r for r in records if r["step"] <= upto]
    if len(kept) != len(records) and jax.process_index() == 0:
        with open(path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
    return kept
