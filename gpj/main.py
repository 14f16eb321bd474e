"""Runs one gpj experiment from a config file.

python -m gpj.main --config=configs/probe.py[:presets] [--workdir=DIR] [--config.field=value]
"""

import datetime
import os
import sys
import tempfile

from absl import app, flags, logging
from ml_collections import config_flags

from gpj import command_line
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
_PRINT_CONFIG = flags.DEFINE_bool(
    "print_config", False, "Print the resolved config (presets and overrides applied) and exit."
)
flags.mark_flags_as_required(["config"])


def prepare_workdir(path: str) -> str | None:
    """Creates the workdir and proves it is writable before any compute. Returns the top-most
    folder this created (None: the workdir existed), for `remove_if_empty`."""
    created = None
    parent = os.path.abspath(path)
    while not os.path.exists(parent):
        created, parent = parent, os.path.dirname(parent)
    try:
        os.makedirs(path, exist_ok=True)
        # A file of its own: processes that share the workdir must not remove each other's.
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test"):
            pass
    except OSError as e:
        raise ConfigError(f"--workdir={path} is not writable ({e.strerror}); choose another folder")
    return created


def remove_if_empty(path: str, created: str | None) -> None:
    """Removes the folders from `path` up to `created` that this run made and left empty: a
    command refused for a bad value leaves no empty run folder."""
    if not (path and created):
        return
    folder = os.path.abspath(path)
    while folder.startswith(created) and not os.listdir(folder):
        os.rmdir(folder)
        if folder == created:
            break
        folder = os.path.dirname(folder)


def parse_flags(argv):
    """absl flag parsing: `--help` is gpj's usage (exit 0), a `--config=configs/NAME.py` resolves
    from any folder, and config-file and override mistakes are one line (exit 1)."""
    if any(a in ("--help", "-h", "--helpshort") for a in argv[1:]):
        print(command_line.usage())
        sys.exit(0)
    try:
        return flags.FLAGS(command_line.resolve_config(argv))
    except (
        flags.Error
    ) as e:  # a config file that fails to load embeds its traceback: keep the cause
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        message = command_line.old_evals(argv) or (
            lines[0]
            if len(lines) == 1
            else f"{command_line.argv_flag(argv, '--config')}: {lines[-1]}"
        )
    except Exception as e:  # noqa: BLE001  (whatever the config file raised, said in one line)
        message = command_line.one_line(e, argv)
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import jax  # after flag parsing: keeps --help fast

    from gpj import evaluators, experiments, report
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
            f"error: {command_line.argv_flag(argv, '--config')}: "
            f"{str(e).strip().splitlines()[-1].strip()}",
            file=sys.stderr,
        )
        sys.exit(1)
    cache = _COMPILATION_CACHE.value
    workdir, created = None, None
    try:
        config = evaluators.complete(config)  # each evaluator's settings, defaults filled in
        if _PRINT_CONFIG.value:
            print(config)
            return
        compilation_cache.enable(compilation_cache.default_dir() if cache is None else cache)
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
        workdir = _WORKDIR.value or os.path.join("runs", f"{experiment}-{stamp}")
        created = prepare_workdir(workdir)
        results = experiments.run(config, workdir)
    except GpjError as e:
        logging.debug("user error", exc_info=True)
        remove_if_empty(workdir, created)
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
