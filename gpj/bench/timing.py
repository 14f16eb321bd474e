"""Side-by-side timing: every side warmed up, then timed in interleaved rounds."""

import contextlib
import math
import time
from collections.abc import Callable

import jax
import numpy as np

from gpj.engine import cpu_devices


def interleaved_rates(
    sides: dict[str, tuple[Callable, int]], repeats: int, min_round_s: float = 0.0
) -> dict[str, float]:
    """Items per second of each side, the median of `repeats` interleaved rounds.

    Args:
      sides: name -> (function of no arguments, items it processes per call). Each call's result
        is waited for with `jax.block_until_ready`, so asynchronous dispatch is timed in full.
      repeats: timed rounds; in each round every side runs once, so all sides see the same
        machine state. One untimed call per side first (compilation, caches).
      min_round_s: each side's turn in a round lasts at least about this long: short calls are
        repeated back to back (as a training loop runs them), so a side is timed in its steady
        state, not in the first call after another side's (cold caches, idle threads).
    """
    calls = dict.fromkeys(sides, 1)
    for name, (fn, _) in sides.items():
        jax.block_until_ready(fn())
        if min_round_s > 0:  # a second untimed call, timed to size the turns
            started = time.perf_counter()
            jax.block_until_ready(fn())
            calls[name] = math.ceil(min_round_s / (time.perf_counter() - started))
    times = {name: [] for name in sides}
    for _ in range(repeats):
        for name, (fn, _) in sides.items():
            started = time.perf_counter()
            for _ in range(calls[name]):
                jax.block_until_ready(fn())
            times[name].append((time.perf_counter() - started) / calls[name])
    return {name: n / float(np.median(times[name])) for name, (_, n) in sides.items()}


@contextlib.contextmanager
def torch_on_every_core(torch):
    """Gives torch (if not None) one thread per core, as JAX's CPU devices; restores it after."""
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(cpu_devices.cpu_cores())
    try:
        yield
    finally:
        torch.set_num_threads(threads)
