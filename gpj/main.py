"""Runs one gpj experiment from a config file.

python -m gpj.main --config=configs/probe.py[:presets] [--workdir=DIR] [--config.field=value]
"""

import datetime
import os
import sys
import tempfile

from absl import app, flags, logging
from ml_collections import config_flags

from gpj.errors import ConfigError, GpjError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder (default: runs/<experiment>-<time>)."
)
_DISTRIBUTED = flags.DEFINE_enum(
    "distributed",
    "none",
    ["none", "auto"],
    "auto: join a multi-process run that JAX detects (SLURM, TPU pod, Open MPI).",
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "HOST:PORT of process 0, for an explicit multi-process run."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run (explicit).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (explicit).")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices",
    0,
    "Single-process CPU runs: XLA devices to split the cores into (0: one per core, as the "
    "batch sizes allow); a device count in XLA_FLAGS wins.",
)
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache",
    None,
    "Folder of JAX's persistent compilation cache (default: $JAX_COMPILATION_CACHE_DIR, else "
    "~/.cache/gpj/jax); an empty value disables it.",
)
flags.mark_flags_as_required(["config"])


def prepare_workdir(path: str) -> str:
    """Creates the workdir and proves it is writable before any compute."""
    try:
        os.makedirs(path, exist_ok=True)
        # A file of its own: processes that share the workdir must not remove each other's.
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test"):
            pass
    except OSError as e:
        raise ConfigError(f"--workdir={path} is not writable ({e.strerror}); choose another folder")
    return path


def argv_flag(argv, name: str) -> str:
    """The command-line argument that set flag `name` (for error messages)."""
    return next((a for a in argv if a.split("=")[0] == name), name)


def parse_flags(argv):
    """absl flag parsing, with config-file and override mistakes reported in one line."""
    try:
        return flags.FLAGS(argv)
    except (
        flags.Error
    ) as e:  # a config file that fails to load embeds its traceback: keep the cause
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        message = lines[0] if len(lines) == 1 else f"{argv_flag(argv, '--config')}: {lines[-1]}"
    except Exception as e:  # noqa: BLE001  (whatever the config file raised, said in one line)
        key = str(e).strip("'\"")
        bad = [
            a.split("=")[0]
            for a in argv
            if a.startswith("--config.") and key in a.split("=")[0].split(".")
        ]
        if isinstance(e, (AttributeError, KeyError)) and bad:  # an override names no field
            message = (
                f"{bad[0]}: the config has no field {key!r}; "
                "see the config file for the fields and their defaults"
            )
        else:  # the config file itself failed to load or to build its config
            message = f"{argv_flag(argv, '--config')}: {type(e).__name__}: {e}"
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import jax  # after flag parsing: keeps --help fast

    from gpj import report
    from gpj.engine import compilation_cache, cpu_devices, distributed
    from gpj.experiments import EXPERIMENTS, batch_sizes

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(
            logging.WARNING
        )  # orbax logs every save at INFO; --verbosity=0 shows all
    try:
        config = _CONFIG.value
        experiment = config.get("experiment")
    except OSError as e:  # ml_collections defers a config file that could not be read to here
        print(
            f"error: {argv_flag(argv, '--config')}: {str(e).strip().splitlines()[-1].strip()}",
            file=sys.stderr,
        )
        sys.exit(1)
    cache = _COMPILATION_CACHE.value
    compilation_cache.enable(compilation_cache.default_dir() if cache is None else cache)
    try:
        distributed.initialize(
            _COORDINATOR.value,
            _NUM_PROCESSES.value,
            _PROCESS_ID.value,
            auto=_DISTRIBUTED.value == "auto",
        )
        if experiment not in EXPERIMENTS:
            raise ConfigError(
                f"experiment={experiment!r} is not valid; choose one of: {', '.join(EXPERIMENTS)}"
            )
        # Before any JAX computation: the CPU backend's device count is fixed at its start.
        single_process = _DISTRIBUTED.value == "none" and _COORDINATOR.value is None
        if single_process:
            cpu_devices.split_cpu(batch_sizes(config), _CPU_DEVICES.value)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        workdir = prepare_workdir(_WORKDIR.value or os.path.join("runs", f"{experiment}-{stamp}"))
        results = EXPERIMENTS[experiment].run(config, workdir)
    except GpjError as e:
        logging.debug("user error", exc_info=True)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    if jax.process_index() == 0:
        print(report.table(results))
        print(
            f"\nresults: {os.path.join(workdir, 'results.json')}\n"
            f"report:  {report.path(results, workdir)}"
        )


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
