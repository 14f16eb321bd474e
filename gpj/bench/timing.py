"""Side-by-side timing: every side warmed up, then timed in interleaved rounds."""

import contextlib
import time
from collections.abc import Callable

import jax
import numpy as np

from gpj.engine import cpu_devices


def interleaved_rates(sides: dict[str, tuple[Callable, int]], repeats: int) -> dict[str, float]:
    """Items per second of each side, the median of `repeats` interleaved rounds.

    Args:
      sides: name -> (function of no arguments, items it processes per call). Each call's result
        is waited for with `jax.block_until_ready`, so asynchronous dispatch is timed in full.
      repeats: timed rounds; in each round every side runs once, so all sides see the same
        machine state. One untimed call per side first (compilation, caches).
    """
    for fn, _ in sides.values():
        jax.block_until_ready(fn())
    times = {name: [] for name in sides}
    for _ in range(repeats):
        for name, (fn, _) in sides.items():
            started = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - started)
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
