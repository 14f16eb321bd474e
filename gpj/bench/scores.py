"""`scores`: the one-pass position-score sweep vs a per-image loop in the official code's style.

The loop takes batch 1 (each image, then its flip, through the model; latents collected and
reduced on the host) and runs eagerly, as the official code runs; the same loop jitted is the
fastest a batch-1 loop gets. Same model, weights and images; warm-up (compilation) excluded.
"""

import jax
import numpy as np

from gpj import engine, models
from gpj.analysis import scores
from gpj.bench.timing import interleaved_rates
from gpj.data import batches, segmentation, sources

SWEEP_BATCH_SIZE = 120


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


def run(repeats: int, eager_images: int = 48) -> dict:
    """The sweep against two per-image loops: eager (op by op, as the official PyTorch code runs)
    on the first `eager_images` images, and jitted (the fastest a batch-1 loop gets)."""
    model, variables, images = _segmentation_setup()
    mesh = engine.make_mesh()
    batch_size = SWEEP_BATCH_SIZE
    channels = {"latent": model.apply(variables, images[:1], train=False)[1]["latent"].shape[-1]}
    sweep = scores.compile_sweep(model.apply, mesh)

    def eager(v, x):
        return model.apply(v, x, train=False)

    jitted = jax.jit(eager)

    def run_sweep(subset=images):
        return scores.position_scores(
            sweep,
            variables,
            batches.eval_batches({"image": subset}, batch_size),
            mesh,
            channels=channels,
        )["latent"]

    sides = {
        "sweep": (run_sweep, len(images)),
        "jitted_loop": (lambda: _per_image_scores(jitted, variables, images), len(images)),
        "eager_loop": (
            lambda: _per_image_scores(eager, variables, images[:eager_images]),
            eager_images,
        ),
    }
    swept = run_sweep(images[:eager_images])  # the same images through both: same scores?
    looped = sides["eager_loop"][0]()
    rate = interleaved_rates(sides, repeats)
    return {
        "ratio": rate["sweep"] / rate["eager_loop"],
        "ratio_vs_jitted_loop": rate["sweep"] / rate["jitted_loop"],
        "sweep_images_per_s": rate["sweep"],
        "loop_images_per_s": rate["eager_loop"],
        "jitted_loop_images_per_s": rate["jitted_loop"],
        "images": len(images),
        "eager_loop_images": eager_images,
        "sweep_batch_size": batch_size,
        "repeats": repeats,
        "max_abs_diff_flip_abs": float(np.abs(swept["flip_abs"] - looped[0]).max()),
        "max_abs_diff_flip_signed": float(np.abs(swept["flip_signed"] - looped[1]).max()),
        "model": "DeepLabv3 resnet18 width 0.25, output stride 8, 48x48 digit canvases",
        "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    }
