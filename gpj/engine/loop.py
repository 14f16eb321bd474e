"""The one training loop: resume, step, log, checkpoint, stop on divergence."""

import json
import math
import os
from collections.abc import Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
import tqdm
from absl import logging

from gpj.engine.parallel import host_copy, shard_batch
from gpj.errors import CheckpointError, TrainingDiverged


def fit(
    state,
    train_step,
    batch_fn: Callable[[int], dict],
    *,
    num_steps: int,
    mesh,
    run_dir: str,
    log_every: int,
    checkpoint_every: int,
    keep_checkpoints: int,
    fingerprint: dict,
    desc: str = "train",
    evaluate: Callable | None = None,
    eval_every: int = 0,
    stop: Callable[[list], bool] | None = None,
):
    """Trains `state` to `num_steps` (or until `stop`), resuming from `run_dir` when it holds a
    checkpoint.

    Resume order: check the run's fingerprint, restore the latest checkpoint, drop
    logged metrics past it, then continue from `state.step`. Batches and rngs are
    functions of the step, so the result equals an uninterrupted run.

    Args:
      state: a freshly initialised TrainState (its arrays give the restore target).
      train_step: compiled `(state, batch) -> (state, metrics)`.
      batch_fn: step -> this process's numpy batch for that global step.
      num_steps: total number of steps of the run.
      mesh: the device mesh batches are sharded over.
      run_dir: folder for checkpoints, `metrics.jsonl` and TensorBoard events.
      log_every, checkpoint_every, keep_checkpoints: cadences and retention.
      fingerprint: JSON-able settings that determine the run; a workdir written
        with other settings is refused instead of being resumed or overwritten.
      desc: label for the progress bar.
      evaluate: state -> {metric: value} on held-out data, logged as `test_<metric>` every
        `eval_every` steps and at the last step (the test curve).
      eval_every: cadence of `evaluate` and `stop`, in steps (0: neither).
      stop: history -> whether to stop early (e.g. `plateaued`), asked at each evaluation; the
        run is then checkpointed and ends there. A function of the history only, so a resumed
        run stops where the uninterrupted one did.

    Returns:
      The final state and the logged history (a list of {"step", metric: value}).
    """
    is_main = jax.process_index() == 0
    _check_fingerprint(run_dir, fingerprint, is_main)
    manager = ocp.CheckpointManager(
        os.path.abspath(os.path.join(run_dir, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep_checkpoints, create=True),
    )
    state = _restore_latest(manager, state)
    start = int(state.step)
    history = _load_history(run_dir, start)
    writer = _summary_writer(os.path.join(run_dir, "tensorboard")) if is_main else None
    bar = tqdm.tqdm(
        total=num_steps,
        initial=start,
        desc=desc,
        disable=not is_main or start >= num_steps,
        dynamic_ncols=True,
        leave=False,
    )
    pending = []
    stopped = stop is not None and eval_every > 0 and stop(history)
    try:
        for step in range(start, num_steps if not stopped else start):
            state, metrics = train_step(state, shard_batch(batch_fn(step), mesh))
            pending.append(metrics)
            done = step + 1
            bar.update(1)
            check = eval_every > 0 and (done % eval_every == 0 or done == num_steps)
            save = done % checkpoint_every == 0 or done == num_steps
            if save or check or done % log_every == 0:
                record = _summarise(pending, done, manager)
                pending = []
                if check and evaluate is not None:
                    record.update({f"test_{k}": float(v) for k, v in evaluate(state).items()})
                stopped = check and stop is not None and stop([*history, record])
                save = save or stopped
                history.append(record)
                if is_main:
                    _log(record, run_dir, writer, bar)
                if save:
                    manager.save(
                        done, args=ocp.args.StandardSave(host_copy(state.checkpoint_items()))
                    )
                if stopped:
                    break
    finally:
        bar.close()
        manager.wait_until_finished()
        manager.close()
        if writer is not None:
            writer.close()
    return state, history


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


def _summarise(pending, step, manager) -> dict:
    """Means of the metrics since the last record; stops the run on a non-finite loss."""
    values = jax.device_get(pending)
    record = {"step": step}
    for key in values[0]:
        record[key] = float(np.mean([v[key] for v in values]))
    if not all(math.isfinite(float(v["loss"])) for v in values):
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
