"""One XLA CPU device per core: on CPU, data parallelism over the cores beats XLA's threads.

Measured on 2 cores (GAPNet ResNet-18 train step, batch 48): one device with XLA's intra-op
threads ~19 images/s, two devices with half the batch each ~26. Must run before JAX starts its
backends; an `XLA_FLAGS` device count set by the user wins.
"""

import math
import os

import jax

from gpj.errors import ConfigError


def cpu_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def split_cpu(batch_sizes: tuple[int, ...], requested: int = 0) -> int | None:
    """Makes the CPU backend show `requested` devices, or with 0 as many as there are cores.

    With 0, the count is the largest one up to the core count that divides every batch size,
    so batches split evenly. Does nothing where `XLA_FLAGS` already sets a device count.

    Returns:
      The device count set, or None where the user's `XLA_FLAGS` decide.

    Raises:
      ConfigError: `requested` is negative.
    """
    if requested < 0:
        raise ConfigError(f"--cpu_devices={requested} must be 0 (one per core) or positive")
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    count = requested or devices_for(batch_sizes, cpu_cores())
    jax.config.update("jax_num_cpu_devices", count)
    return count


def devices_for(batch_sizes: tuple[int, ...], cores: int) -> int:
    """The largest device count up to `cores` that divides every batch size."""
    common = math.gcd(*batch_sizes) if batch_sizes else 1
    return max(n for n in range(1, cores + 1) if common % n == 0)
