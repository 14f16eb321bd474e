import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

import filelock
import pytest

# CUDA builds of torch ship Triton. Triton and TensorFlow each bundle LLVM, and `import triton`
# after TensorFlow has loaded crashes the process (torch imports Triton when it first builds an
# optimizer). A test process may load both, so Triton, where installed, loads first.
with contextlib.suppress(ImportError):
    import triton  # noqa: F401

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
# One persistent compilation cache for the whole session, in-process and in every `gpj.main`
# child: a program compiled once (e.g. the tiny probe's train steps) is loaded, not compiled,
# by every later run. It starts empty, so each session measures what it compiles itself.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="gpj-test-xla-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    del config
    from gpj.engine import compilation_cache

    compilation_cache.enable(os.environ["JAX_COMPILATION_CACHE_DIR"])


def gpj_command(module, *args, **kw):
    """`python -m module args` from the repository root (or `cwd`), with pipes for stdout and
    stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **{"cwd": ROOT, **kw},
    )


def finished_run(workdir, *args) -> str:
    """Runs `python -m gpj.main ARGS --workdir=WORKDIR` to the end; returns its stdout."""
    proc = gpj_command("gpj.main", *args, f"--workdir={workdir}")
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return out


# Finished runs of each experiment's tiny preset, shared by the whole session (read only: a test
# that reruns in one works on a copy). Tests, notebooks and the compile-count test build on them.
# Under pytest-xdist the first worker that needs a run makes it, in the session's common temporary
# folder, and the others wait for it and reuse it.
@pytest.fixture(scope="session")
def tiny_probe(shared_run):
    return shared_run("tiny-probe", "--config=configs/probe.py:tiny")


@pytest.fixture(scope="session")
def tiny_attack(shared_run, tiny_probe):
    """The tiny attack on the tiny probe's GAPNets, training its segmentation model."""
    probe_workdir = f"--config.classifier.probe_workdir={tiny_probe[0]}"
    return shared_run("tiny-attack", "--config=configs/attack.py:tiny", probe_workdir)


@pytest.fixture(scope="session")
def tiny_invariance(shared_run):
    return shared_run("tiny-invariance", "--config=configs/invariance.py:tiny")


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory, worker_id):
    """`shared_run(name, *args)`: (workdir, stdout) of `gpj.main ARGS`, run once per session."""
    if worker_id == "master":  # one process: an ordinary session folder
        root = tmp_path_factory.getbasetemp()
    else:  # the workers' folders share one parent, unique to this session
        root = tmp_path_factory.getbasetemp().parent

    def run(name, *args):
        workdir, out = root / name, root / f"{name}.stdout"
        with filelock.FileLock(str(root / f"{name}.lock")):
            if not out.exists():
                out.write_text(finished_run(workdir, *args))
        return workdir, out.read_text()

    return run


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: a worker per core, at most two; a session's programs are mostly compiled on one
    core at a time, and more workers would mostly wait for the shared runs."""
    del config
    from gpj.engine import cpu_devices

    return min(2, cpu_devices.cpu_cores())


def parse_config(args):
    """The config `gpj.main` would run for these arguments (`--config=FILE[:presets]` and
    `--config.field=value` overrides), parsed by ml_collections' own flag parser, in-process,
    each evaluator's settings completed as `gpj.main` completes them."""
    from absl import flags
    from ml_collections import config_flags

    from gpj import evaluators

    argv = ["gpj", *(a.replace("--config=", f"--config={ROOT}/", 1) for a in args)]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, "", flag_values=values, lock_config=True, sys_argv=argv
    )
    values(argv)
    return evaluators.complete(values.config)


def assert_bad_configs_fail_fast(config: str, cases: dict) -> None:
    """Every case {name: (extra args, expected message)} is refused by the checks a run makes
    before any training (`gpj.experiments.check`), with one line holding the message.

    In-process, so each case costs milliseconds; `test_probe` runs the command line itself for
    each kind of mistake (one `error:` line, exit code 1, no traceback)."""
    from gpj import experiments
    from gpj.errors import GpjError

    for name, (args, message) in cases.items():
        if not any(a.startswith("--config=") for a in args):
            args = [f"--config={config}", *args]
        with pytest.raises(GpjError) as caught:
            experiments.check(parse_config(args))
        text = str(caught.value)
        assert "\n" not in text and message in text, (name, text)


def assert_command_line_errors(config: str, cases: dict, tmp_path) -> None:
    """Every case {name: (extra args, expected message)}, run as `python -m gpj.main`, exits 1
    before any compute with one `error:` line holding the message and no traceback. Cases run in
    parallel."""
    never = tmp_path / "never-created"
    procs = {}
    for name, (args, _) in cases.items():
        if not any(a.startswith("--config=") for a in args):
            args = [f"--config={config}", *args]
        if not any(a.startswith("--workdir") for a in args):
            args = [*args, f"--workdir={never}"]
        procs[name] = gpj_command("gpj.main", *args)
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, (name, err)
        assert "Traceback" not in err, (name, err)
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and cases[name][1] in lines[0], (name, err)
    assert not never.exists()  # refused before any compute, and no empty run folder left
