"""Multi-host start-up: join a run of several processes through `jax.distributed`.

Every process runs the same command. Each feeds its own rows of every global batch
(`gpj.data.batches`), so a run gives the same numbers with any number of processes; only
process 0 writes reports, figures and logs, and orbax coordinates the checkpoint writes.
"""

import jax

from gpj.errors import ConfigError


def initialize(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None, auto: bool
) -> None:
    """Joins the distributed run the arguments describe, before any other JAX call.

    Args:
      coordinator_address: "host:port" of process 0's coordinator, or None.
      num_processes: number of processes in the run, or None.
      process_id: this process's index in [0, num_processes), or None.
      auto: let JAX detect the cluster (SLURM, TPU pods, Open MPI, Kubernetes...).

    Without any of them, the run is a single process and nothing happens.

    Raises:
      ConfigError: the explicit flags are incomplete or inconsistent, or combined with auto.
    """
    explicit = {
        "--coordinator_address": coordinator_address,
        "--num_processes": num_processes,
        "--process_id": process_id,
    }
    given = [name for name, value in explicit.items() if value is not None]
    if auto and given:
        raise ConfigError(f"--distributed=auto detects the cluster itself; drop {', '.join(given)}")
    if auto:
        try:
            jax.distributed.initialize()
        except ValueError as e:  # JAX found no cluster it knows
            raise ConfigError(
                f"--distributed=auto found no cluster to join ({e}); run under SLURM, on a TPU "
                "pod or with mpirun, or give --coordinator_address, --num_processes, --process_id"
            ) from e
        return
    if not given:
        return
    missing = [name for name, value in explicit.items() if value is None]
    if missing:
        raise ConfigError(
            f"a multi-process run needs all of --coordinator_address, --num_processes and "
            f"--process_id; missing: {', '.join(missing)}"
        )
    host, _, port = coordinator_address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"--coordinator_address={coordinator_address} is not HOST:PORT, e.g. 127.0.0.1:12345"
        )
    if num_processes < 1:
        raise ConfigError(f"--num_processes={num_processes} must be at least 1")
    if not 0 <= process_id < num_processes:
        raise ConfigError(f"--process_id={process_id} must be in [0, {num_processes})")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
