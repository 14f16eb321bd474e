"""`train`: gpj's GAPNet ResNet-18 train step vs the official code's PyTorch model, side by side.

The setting of the cifar10 probe preset: 32x32x3 images pasted on a 3x3 grid (96x96 canvases),
batch 48, Adam (lr 1e-3, betas 0.5/0.999), location task (9 classes). gpj's side is the engine's
compiled train step with the probe objective (canvases pasted inside the step); the PyTorch side
gets ready canvases and runs zero_grad, forward, loss, backward and Adam. torch gets as many
threads as there are CPU cores, the number JAX's CPU backend uses.

FLOPs are counted from the model's forward jaxpr (2 per multiply-add of every convolution and
dense layer) and a train step is taken as 3x the forward, the usual convention. The matmul peak is
the fastest float32 2048x2048 matmul of the same run, timed before PyTorch starts.
"""

import time

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from gpj import engine, models, tasks
from gpj.bench.timing import interleaved_rates, torch_on_every_core
from gpj.configs import sections
from gpj.engine import cpu_devices

BATCH_SIZE = 48
IMAGE_SIZE = 32
GRID_SIZE = 3
NUM_CLASSES = GRID_SIZE * GRID_SIZE
PEAK_MATMUL_SIZE = 2048


def _conv_flops(eqn) -> int:
    rhs = eqn.invars[1].aval.shape
    out = eqn.outvars[0].aval.shape
    dims = eqn.params["dimension_numbers"]
    in_features = rhs[dims.rhs_spec[1]]
    window = int(np.prod([rhs[d] for d in dims.rhs_spec[2:]]))
    return 2 * int(np.prod(out)) * window * in_features


def _dot_flops(eqn) -> int:
    lhs = eqn.invars[0].aval.shape
    (contracting, _), _ = eqn.params["dimension_numbers"]
    return 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(np.prod([lhs[d] for d in contracting]))


def count_flops(jaxpr) -> int:
    """Multiply-add FLOPs of every convolution and dot in `jaxpr` and the jaxprs it calls."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            total += _conv_flops(eqn)
        elif eqn.primitive.name == "dot_general":
            total += _dot_flops(eqn)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            total += count_flops(sub)
    return total


def _matmul_peak(repeats: int) -> float:
    """FLOP/s of the fastest of `repeats` float32 matmuls (after one untimed call)."""
    n = PEAK_MATMUL_SIZE
    a = jnp.asarray(np.random.default_rng(0).random((n, n), np.float32))
    matmul = jax.jit(lambda a: a @ a)
    matmul(a).block_until_ready()
    best = float("inf")
    for _ in range(max(repeats, 5)):
        started = time.perf_counter()
        matmul(a).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def _jax_side():
    """gpj's compiled step, its state and batch: a function of no arguments running one step."""
    model = models.build_model("resnet18", num_classes=NUM_CLASSES, width=1.0, stem="paper")
    tx = engine.make_optimizer(sections.optim(), total_steps=1)
    mesh = engine.make_mesh()
    canvas_size = GRID_SIZE * IMAGE_SIZE
    state = engine.create_state(model, tx, (BATCH_SIZE, canvas_size, canvas_size, 3), 0, mesh)
    step = engine.compile_train_step(tasks.Canvas(GRID_SIZE, "location").objective, mesh)
    rng = np.random.default_rng(0)
    batch = engine.shard_batch(
        {
            "image": rng.random((BATCH_SIZE, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32),
            "label": np.zeros(BATCH_SIZE, np.int32),
        },
        mesh,
    )
    holder = {"state": state}

    def run_step():
        holder["state"], metrics = step(holder["state"], batch)
        return metrics["loss"]

    forward = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(
        holder["state"].variables, jnp.zeros((1, canvas_size, canvas_size, 3))
    )
    return run_step, count_flops(forward.jaxpr) * BATCH_SIZE * 3


def _torch_side():
    import torch

    from gpj.bench import torch_reference

    optim = sections.optim()
    step = torch_reference.make_train_step(NUM_CLASSES, optim.learning_rate, (optim.b1, optim.b2))
    canvas_size = GRID_SIZE * IMAGE_SIZE
    generator = torch.Generator().manual_seed(0)
    canvases = torch.rand(BATCH_SIZE, 3, canvas_size, canvas_size, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (BATCH_SIZE,), generator=generator)
    return lambda: step(canvases, labels)


def run(repeats: int) -> dict:
    try:
        import torch
    except ImportError:
        raise SystemExit(
            "error: the train benchmark compares with PyTorch; install the torch extra "
            "(pip install -e '.[torch]') or leave it out with --only"
        ) from None
    with torch_on_every_core(torch):
        peak = _matmul_peak(repeats)  # before torch runs: its idle threads spin for a while
        jax_step, step_flops = _jax_side()
        rate = interleaved_rates(
            {"jax": (jax_step, BATCH_SIZE), "torch": (_torch_side(), BATCH_SIZE)}, repeats
        )
    gflops = step_flops / BATCH_SIZE * rate["jax"] / 1e9
    return {
        "jax_images_per_s": rate["jax"],
        "torch_images_per_s": rate["torch"],
        "ratio_vs_torch": rate["jax"] / rate["torch"],
        "gflops_per_s": gflops,
        "fraction_of_matmul_peak": gflops / (peak / 1e9),
        "matmul_peak_gflops_per_s": peak / 1e9,
        "train_step_gflop": step_flops / 1e9,
        "torch_threads": cpu_devices.cpu_cores(),
        "torch_version": torch.__version__,
        "repeats": repeats,
        "model": "GAPNet ResNet-18 (paper stem), 96x96 canvases, batch 48, Adam",
        "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    }
