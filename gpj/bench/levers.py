"""`levers`: the CPU train step on each convolution path (`gpj.models.conv.CONV_PATHS`), side by
side in one run, against XLA's convolutions (`conv`).

`matmul` computes the strided 1x1 convolutions as a strided slice and a matmul; `im2col` computes
every convolution as one matmul over its patches, which also takes the weight gradients as plain
matmuls, without XLA's transposes to a batch-minor layout. Both are timed on
the whole train step, since a convolution timed alone, with the other core idle, ranks them
differently. Models: the default probe model (ResNet-18 at width 0.25, 48x48 canvases) and the
`train` benchmark's (width 1.0, 96x96), batch 48 split over the devices as in training.

The third lever, fewer BatchNorm collectives, has no version with the same numbers: each layer's
statistics depend on the layer before, forward and backward. Running seeds side by side without
collectives is the `seeds` benchmark.
"""

import jax
import numpy as np

from gpj import engine, models, tasks
from gpj.bench.timing import interleaved_rates
from gpj.configs import sections

BATCH_SIZE = 48
STEP_MODELS = {"default": (16, 1, 0.25), "train_bench": (32, 3, 1.0)}  # image side, channels, width
PATHS = ("conv", "matmul", "im2col")


def _step(image_size, channels, width, path, mesh):
    """One train step of the probe's GAPNet (location task) with convolution path `path`."""
    model = models.build_model("resnet18", num_classes=9, width=width, stem="paper")
    model = model.clone(backbone=model.backbone.clone(conv_path=path))
    tx = engine.make_optimizer(sections.optim(), total_steps=1)
    side = 3 * image_size
    state = engine.create_state(model, tx, (BATCH_SIZE, side, side, channels), 0, mesh)
    step = engine.compile_train_step(tasks.Canvas(3, "location").objective, mesh)
    rng = np.random.default_rng(0)
    batch = engine.shard_batch(
        {
            "image": rng.random((BATCH_SIZE, image_size, image_size, channels), np.float32),
            "label": np.zeros(BATCH_SIZE, np.int32),
        },
        mesh,
    )
    holder = {"state": state}

    def run():
        holder["state"], metrics = step(holder["state"], batch)
        return metrics["loss"]

    return run


def run(repeats: int) -> dict:
    mesh = engine.make_mesh()
    result = {}
    for name, (image_size, channels, width) in STEP_MODELS.items():
        sides = {
            path: (_step(image_size, channels, width, path, mesh), BATCH_SIZE) for path in PATHS
        }
        # The default model's step is short: time its turns back to back, as training runs them.
        rate = interleaved_rates(sides, repeats, min_round_s=2.0 if name == "default" else 0.0)
        for path in PATHS:
            result[f"{name}_images_per_s_{path}"] = rate[path]
        for path in PATHS[1:]:
            result[f"{name}_speedup_{path}"] = rate[path] / rate["conv"]
    result.update(
        batch_size=BATCH_SIZE,
        repeats=repeats,
        devices=f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    )
    return result
