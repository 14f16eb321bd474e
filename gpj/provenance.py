"""What a result was computed with: the command, package versions, the CPU and devices."""

import importlib.metadata
import platform
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
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "packages": versions,
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
    }


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
