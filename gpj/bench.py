"""Benchmarks, each measured side by side in one run: `python -m gpj.bench [--only=NAME,...]`.

  scores  the one-pass position-score sweep vs a per-image loop in the style of the official
          code (batch 1: each image, then its flip, through the model; latents collected and
          reduced on the host), same model, weights and images; warm-up (compilation) excluded.

Results are printed as a table and, with --out, written as JSON ({name: {metric: value}}).
"""

import os
import sys
import time

import jax
import numpy as np
from absl import app, flags

from gpj import engine, models
from gpj.analysis import scores
from gpj.data import batches, segmentation, sources
from gpj.report.common import markdown_table, write_json

_ONLY = flags.DEFINE_list("only", [], "Benchmarks to run (default: all): " + "scores")
_OUT = flags.DEFINE_string("out", None, "Write the results to this JSON file.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions of each side (median kept).")


def _segmentation_setup(num_images: int = 480, canvas_size: int = 48):
    """The default attack's model (random weights) and test canvases."""
    digits = sources.load_dataset("digits", image_size=16, channels=1)
    splits = segmentation.make_splits(
        digits,
        seed=0,
        num_train=1,
        num_test=num_images,
        canvas_size=canvas_size,
        digits_per_canvas=3,
        left_fraction=0.75,
        label_radius=3,
    )
    model = models.build_segmentation_model(
        "resnet18",
        num_classes=segmentation.NUM_CLASSES,
        width=0.25,
        output_stride=8,
        aspp_rates=(1, 2, 3),
    )
    images = splits["test_images"]
    variables = jax.jit(model.init, static_argnames="train")(
        jax.random.PRNGKey(0), images[:1], train=False
    )
    return model, variables, images


def _per_image_scores(apply, variables, images) -> tuple[np.ndarray, np.ndarray]:
    """The official code's way: one image and then its flip at a time, reduced on the host."""
    diffs = []
    for image in images:
        z = np.asarray(apply(variables, image[None])[1]["latent"])
        z_flip = np.asarray(apply(variables, image[None, :, ::-1])[1]["latent"])
        diffs.append(z[0] - z_flip[0])
    diffs = np.stack(diffs)
    return np.abs(diffs).mean(0), diffs.mean(0)


def bench_scores(repeats: int) -> dict:
    model, variables, images = _segmentation_setup()
    mesh = engine.make_mesh()
    batch_size = 120
    channels = {"latent": model.apply(variables, images[:1], train=False)[1]["latent"].shape[-1]}
    sweep = scores.compile_sweep(model.apply, mesh)
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))

    def run_sweep():
        return scores.position_scores(
            sweep,
            variables,
            batches.eval_batches({"image": images}, batch_size),
            mesh,
            channels=channels,
        )["latent"]

    def run_loop():
        return _per_image_scores(apply, variables, images)

    swept, looped = run_sweep(), run_loop()  # warm-up: compilation is not timed
    times = {"sweep": [], "loop": []}
    for _ in range(repeats):  # interleaved, so both sides see the same machine state
        for name, fn in (("sweep", run_sweep), ("loop", run_loop)):
            started = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - started)
    sweep_s, loop_s = np.median(times["sweep"]), np.median(times["loop"])
    return {
        "ratio": float(loop_s / sweep_s),
        "sweep_images_per_s": float(len(images) / sweep_s),
        "loop_images_per_s": float(len(images) / loop_s),
        "images": len(images),
        "sweep_batch_size": batch_size,
        "repeats": repeats,
        "max_abs_diff_flip_abs": float(np.abs(swept["flip_abs"] - looped[0]).max()),
        "max_abs_diff_flip_signed": float(np.abs(swept["flip_signed"] - looped[1]).max()),
        "model": "DeepLabv3 resnet18 width 0.25, output stride 8, 48x48 digit canvases",
        "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    }


BENCHMARKS = {"scores": bench_scores}


def main(argv):
    del argv
    unknown = [name for name in _ONLY.value if name not in BENCHMARKS]
    if _REPEATS.value < 1:
        sys.exit(f"error: --repeats={_REPEATS.value} must be at least 1")
    if unknown:
        sys.exit(
            f"error: unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    results = {}
    for name in _ONLY.value or list(BENCHMARKS):
        results[name] = BENCHMARKS[name](_REPEATS.value)
        if _OUT.value:  # written after each benchmark, so a later failure loses nothing
            os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
            write_json(results, _OUT.value)
    rows = [
        [name, key, f"{v:.4g}" if isinstance(v, float) else v]
        for name, metrics in results.items()
        for key, v in metrics.items()
    ]
    print(markdown_table(["benchmark", "metric", "value"], rows))


if __name__ == "__main__":
    app.run(main)
