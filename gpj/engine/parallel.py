"""Data parallelism with a device mesh: batches split on `data`, state replicated."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gpj.errors import ConfigError


def make_mesh(devices=None) -> Mesh:
    """A one-axis mesh named `data` over `devices` (default: every device of every host)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def check_batch_size(batch_size: int, mesh: Mesh, field: str) -> None:
    """Fails early when a global batch cannot be split evenly over the devices."""
    n = mesh.devices.size
    if batch_size % n:
        raise ConfigError(
            f"{field}={batch_size} is not divisible by the number of devices ({n}); "
            f"use a multiple of {n}, e.g. {max(n, batch_size // n * n)}."
        )


def shard_batch(batch: dict, mesh: Mesh) -> dict:
    """Turns this process's numpy batch into global arrays sharded on `data`.

    With several processes each passes its own share; the global batch is the
    concatenation in process order.
    """
    sharding = batch_sharding(mesh)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch
    )


def host_copy(tree):
    """Host numpy copies of replicated arrays, from this process's first shard of each.

    The engine's checkpoints save these: orbax writes numpy arrays from one process as they are,
    whereas it would split each replicated jax.Array into one slice per device, compiling a slice
    program per array shape (5 s of a tiny run on 8 CPU devices) for arrays this small.
    """
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)
