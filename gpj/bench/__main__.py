"""Benchmarks, each measured side by side in one run: `python -m gpj.bench [--only=NAME,...]`.

  train          gpj's GAPNet ResNet-18 train step vs the official code's PyTorch model
  scores         the one-pass position-score sweep vs a per-image loop
  canvas         device-side canvas construction vs a per-sample Python loop
  levers         the train step on each convolution path (strided 1x1 convs as matmuls, every
                 conv as an im2col matmul) vs XLA's convolutions
  seeds          S = 1, 2, 4, 8 seeds of the default probe model in one program vs one after another
  experiment     the default main job's training (all runs and seeds) vs the official code's way
                 (a PyTorch model of it training the same runs and seeds one after another)
  probe_default  wall time (cold, and with a warm compilation cache) and peak memory of the
                 default main job

Results are printed as a table and, with --out, written as JSON ({name: {metric: value}}), each
benchmark with the CPU and jax version it ran on; docs/performance.md renders its tables from
such files in results/ (`python -m gpj.report.readme`).
"""

import os
import sys

from absl import app, flags, logging

from gpj import provenance
from gpj.bench import canvas, experiment, levers, probe_default, scores, seeds, train
from gpj.engine import cpu_devices
from gpj.errors import ConfigError
from gpj.report.common import metrics_table, write_json

BENCHMARKS = {
    "train": train.run,
    "scores": scores.run,
    "canvas": canvas.run,
    "probe_default": probe_default.run,
    "seeds": seeds.run,
    "levers": levers.run,
    "experiment": experiment.run,
}

_ONLY = flags.DEFINE_list("only", [], "Benchmarks to run (default: all): " + ", ".join(BENCHMARKS))
_OUT = flags.DEFINE_string("out", None, "Write the results to this JSON file.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repetitions of each side (median kept).")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "XLA CPU devices to split the cores into (0: one per core), as gpj.main."
)
# The batch sizes the benchmarks split over the devices: the train step's and the sweep's.
_BATCH_SIZES = (train.BATCH_SIZE, scores.SWEEP_BATCH_SIZE, seeds.BATCH_SIZE)


def _machine() -> dict:
    """Where a benchmark ran, kept with its numbers (absolute times depend on it)."""
    env = provenance.environment()
    return {"cpu": env["cpu"], "jax": env["packages"]["jax"]}


def main(argv):
    del argv
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    unknown = [name for name in _ONLY.value if name not in BENCHMARKS]
    if _REPEATS.value < 1:
        sys.exit(f"error: --repeats={_REPEATS.value} must be at least 1")
    if unknown:
        sys.exit(
            f"error: unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    try:
        cpu_devices.split_cpu(_BATCH_SIZES, _CPU_DEVICES.value)
    except ConfigError as e:
        sys.exit(f"error: {e}")
    results = {}
    for name in _ONLY.value or list(BENCHMARKS):
        results[name] = {**BENCHMARKS[name](_REPEATS.value), **_machine()}
        if _OUT.value:  # written after each benchmark, so a later failure loses nothing
            os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
            write_json(results, _OUT.value)
    print(metrics_table(results))


if __name__ == "__main__":
    app.run(main)
