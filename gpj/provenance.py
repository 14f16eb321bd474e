"""What a result was computed with: the command, the code's git commit, package versions, the CPU
and devices."""

import importlib.metadata
import os
import platform
import subprocess
import sys

import jax

PACKAGES = (
    "gpj",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "ml-collections",
    "numpy",
    "scikit-learn",
)


def environment() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    devices = jax.devices()
    return {
        "argv": sys.argv[1:],
        "git": git_state(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "packages": versions,
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
    }


def git_state(folder: str | None = None) -> dict | None:
    """The git commit of the checkout that tracks a folder, and whether its tracked files have
    uncommitted changes.

    Args:
      folder: a folder of tracked files; by default the `gpj` package's own folder, so the
        answer is about the code that ran, wherever it was run from.

    Returns:
      {"commit": 40 hex digits, "dirty": bool}, or None when no checkout tracks the folder (e.g.
      the package was installed from a wheel, even into a virtualenv inside some other checkout),
      or git is missing or does not answer within its timeout.
    """
    folder = folder or os.path.dirname(os.path.abspath(__file__))

    def git(*args):
        return subprocess.run(
            ["git", "-C", folder, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        if not git("ls-files", "--", "."):
            return None
        commit = git("rev-parse", "--verify", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(changes)}


def cpu_model() -> str:
    """The host CPU's model name (e.g. "Intel(R) Xeon(R) Processor"), as Linux names it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
