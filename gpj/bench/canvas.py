"""`canvas`: device-side canvas construction vs a per-sample Python loop in the official code's style.

The official PyTorch code builds each training canvas on the host, one sample at a time: a zero
(C, G·H, G·W) canvas from `torch.zeros`, the image copied into a random grid cell by slice
assignment, and the canvases stacked into a batch with `torch.stack`. gpj draws the cells and
pastes the images inside jit (`canvas.random_cells` + `canvas.paste`, NHWC), on images already on
the device. Setting: the cifar10 probe preset's canvases (32×32×3 images, grid 3, so 96×96
canvases, batch 48), and a bigger batch as a second row.

The loop uses torch where it is installed (the `torch` extra) and otherwise numpy zeros and slice
assignment in the same per-sample style; `loop_library` says which. torch gets as many threads as
there are CPU cores, the number JAX's CPU backend uses. Both sides get the same cells once, for
the `max_abs_diff` check; in the timed runs each side draws its own.
"""

import random

import jax
import numpy as np

from gpj.bench.timing import interleaved_rates, torch_on_every_core
from gpj.data import canvas

IMAGE_SIZE = 32
CHANNELS = 3
GRID_SIZE = 3
# Each side's turn in a round: calls back to back for about this long (a call takes a millisecond).
ROUND_S = 0.5


def _torch():
    """torch, or None where the optional extra is missing (imported here: it is slow to import)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def loop_canvases(lib, images, cells, grid_size: int):
    """The official code's way: one zero canvas per sample, the image sliced into its cell, then
    the batch stacked. `lib` is torch or numpy, `images` (C, H, W) arrays of that library."""
    out = []
    for image, cell in zip(images, cells, strict=True):
        c, h, w = image.shape
        row, col = divmod(cell, grid_size)
        board = lib.zeros((c, grid_size * h, grid_size * w), dtype=lib.float32)
        board[:, row * h : (row + 1) * h, col * w : (col + 1) * w] = image
        out.append(board)
    return lib.stack(out)


def _compare(lib, batch_size: int, repeats: int, seed: int = 0) -> dict:
    """Rates of both sides and their largest pixel difference, for one batch size."""
    rng = np.random.default_rng(seed)
    images_nhwc = rng.random((batch_size, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), dtype=np.float32)
    images_nchw = np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))
    host_images = list(images_nchw if lib is np else lib.from_numpy(images_nchw))
    device_images = jax.device_put(images_nhwc)
    key = jax.random.PRNGKey(seed)

    @jax.jit
    def device_canvases(key, images):
        cells = canvas.random_cells(key, images.shape[0], GRID_SIZE)
        return canvas.paste(images, cells, GRID_SIZE)

    def loop():
        cells = [random.randrange(GRID_SIZE * GRID_SIZE) for _ in host_images]
        return loop_canvases(lib, host_images, cells, GRID_SIZE)

    # The same cells on both sides: the ones `device_canvases` draws from `key`.
    cells = np.asarray(canvas.random_cells(key, batch_size, GRID_SIZE)).tolist()
    looped = np.asarray(loop_canvases(lib, host_images, cells, GRID_SIZE)).transpose(0, 2, 3, 1)
    pasted = np.asarray(device_canvases(key, device_images))
    rate = interleaved_rates(
        {
            "device": (lambda: device_canvases(key, device_images), batch_size),
            "loop": (loop, batch_size),
        },
        repeats,
        min_round_s=ROUND_S,
    )
    return {
        "ratio": rate["device"] / rate["loop"],
        "device_canvases_per_s": rate["device"],
        "loop_canvases_per_s": rate["loop"],
        "max_abs_diff": float(np.abs(pasted - looped).max()),
    }


def run(repeats: int, batch_size: int = 48, big_batch_size: int | None = 480) -> dict:
    """Both sides at `batch_size` and, unless `big_batch_size` is None, at `big_batch_size`
    (metrics suffixed `_batch_<n>`)."""
    torch = _torch()
    lib = torch if torch is not None else np
    with torch_on_every_core(torch):
        result = _compare(lib, batch_size, repeats)
        if big_batch_size is not None:
            big = _compare(lib, big_batch_size, repeats)
            result.update({f"{k}_batch_{big_batch_size}": v for k, v in big.items()})
    return {
        **result,
        "batch_size": batch_size,
        "grid_size": GRID_SIZE,
        "image_size": IMAGE_SIZE,
        "loop_library": "torch" if torch is not None else "numpy",
        "repeats": repeats,
        "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    }
