import os
import subprocess
import sys

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gpj_command(module, *args, **kw):
    """`python -m module args` from the repository root, with pipes for stdout and stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


@pytest.fixture(scope="session")
def tiny_probe(tmp_path_factory):
    """A finished `configs/probe.py:tiny` run, shared by the probe and attack tests (read only)."""
    workdir = tmp_path_factory.mktemp("tiny-probe")
    proc = gpj_command("gpj.main", "--config=configs/probe.py:tiny", f"--workdir={workdir}")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return workdir, out


def assert_bad_configs_fail_fast(config: str, cases: dict, tmp_path) -> None:
    """Every case {name: (extra args, expected message)} exits 1 before any compute, with one
    `error:` line holding the message and no traceback. Cases run in parallel."""
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
    assert not (never / "results.json").exists()
