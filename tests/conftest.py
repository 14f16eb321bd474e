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
