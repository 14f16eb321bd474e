"""Host-side batching: deterministic training indices and padded, masked evaluation batches.

Each process handles a contiguous share of every global batch, so in multi-host runs all
processes agree on the global batch without communicating.
"""

from collections.abc import Iterator

import jax
import numpy as np


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
    """Number of full global batches in one epoch (the remainder is dropped).

    Raises:
      ValueError: if the batch size is not positive or larger than the dataset.
    """
    if global_batch_size < 1:
        raise ValueError(f"global batch size must be positive, got {global_batch_size}")
    steps = num_examples // global_batch_size
    if steps == 0:
        raise ValueError(
            f"global batch size {global_batch_size} exceeds the {num_examples} examples"
        )
    return steps


def train_batch_indices(
    num_examples: int,
    global_batch_size: int,
    seed: int,
    step: int,
    process_index: int = 0,
    process_count: int = 1,
) -> np.ndarray:
    """Indices of this process's share of the global training batch at `step`.

    The order depends only on (seed, step): every epoch draws its own permutation from
    `np.random.default_rng([seed, epoch])`, so a resumed run replays exactly the same batches.

    Args:
      num_examples: size of the training set.
      global_batch_size: examples per step over all processes; a multiple of `process_count`.
      seed: data-order seed.
      step: global training step, counted from 0 over all epochs.
      process_index: this process's index, in [0, process_count).
      process_count: number of processes sharing each global batch.

    Returns:
      (global_batch_size // process_count,) int64 indices into the training set.
    """
    share = _process_share(global_batch_size, process_index, process_count)
    spe = steps_per_epoch(num_examples, global_batch_size)
    epoch, step_in_epoch = divmod(step, spe)
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    start = step_in_epoch * global_batch_size + process_index * share
    return order[start : start + share]


def eval_batches(
    arrays: dict[str, np.ndarray],
    batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict]:
    """Yields this process's share of every global evaluation batch, in order.

    All examples are covered exactly once over all processes. Batches keep a static shape: rows
    past the end of the data are zero with `mask` False, so metrics must be weighted by `mask`.

    Args:
      arrays: per-example arrays with equal first dimensions, e.g. {"image": ..., "label": ...}.
      batch_size: global batch size; a multiple of `process_count`.
      process_index: this process's index, in [0, process_count).
      process_count: number of processes sharing each global batch.

    Yields:
      The same keys, each (b, ...) with b = batch_size // process_count, plus "mask": (b,) bool;
      every process yields the same number of batches.
    """
    share = _process_share(batch_size, process_index, process_count)
    num_examples = len(next(iter(arrays.values())))
    for global_start in range(0, num_examples, batch_size):
        start = min(global_start + process_index * share, num_examples)
        count = min(share, num_examples - start)
        batch = {}
        for key, values in arrays.items():
            batch[key] = np.zeros((share, *values.shape[1:]), values.dtype)
            batch[key][:count] = values[start : start + count]
        batch["mask"] = np.arange(share) < count
        yield batch


def _process_share(batch_size: int, process_index: int, process_count: int) -> int:
    """Rows of a global batch that each process handles."""
    if not 0 <= process_index < process_count:
        raise ValueError(f"process index {process_index} not in [0, {process_count})")
    if batch_size < 1 or batch_size % process_count:
        raise ValueError(
            f"batch size {batch_size} must be a positive multiple of {process_count} processes"
        )
    return batch_size // process_count


def this_process_batches(arrays: dict[str, np.ndarray], batch_size: int) -> Iterator[dict]:
    """`eval_batches` for this process of the running job (`jax.process_index()`)."""
    return eval_batches(arrays, batch_size, jax.process_index(), jax.process_count())
