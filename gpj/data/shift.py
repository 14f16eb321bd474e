"""Translations for AugShift and shift consistency, built on device inside jitted steps.

An offset (dy, dx) lies in [0, 2m] on each axis, m = `max_shift`. In both modes offset − m is the
displacement of the content: offset (m, m) is the centred image, and offset (m + a, m + b) moves
every pixel a rows down and b columns right. A pixel at (r, c) of the image therefore lands at

- (r + dy, c + dx) on the (H + 2m) × (W + 2m) canvas of mode "canvas", and
- (r + dy − m, c + dx − m) in the H × W output of mode "crop" (dropped when outside it).

With zero padding, "crop" is the centre H × W window of "canvas" for the same offsets.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gpj.data import canvas

SHIFT_MODES = ("canvas", "crop")
# gpj's padding names → `jnp.pad` modes.
_PAD_MODES = {"zero": "constant", "reflect": "reflect"}


def output_size(image_size: int, max_shift: int, mode: str) -> int:
    """Side of the shifted images: image_size + 2·max_shift for "canvas", image_size for "crop"."""
    _check_max_shift(max_shift)
    _check_mode(mode)
    return image_size + 2 * max_shift if mode == "canvas" else image_size


def place(
    images: jax.Array, offsets: jax.Array, max_shift: int, mode: str, pad_mode: str = "zero"
) -> jax.Array:
    """Translates each image by its own offset, copying pixels exactly.

    Args:
      images: (B, H, W, C) images.
      offsets: (B, 2) integer (dy, dx) offsets in [0, 2·max_shift]; (max_shift, max_shift) is the
        centred image, and offset − max_shift the displacement of the content (down, right).
        Values outside the range are clamped by `lax.dynamic_*_slice`, not checked.
      max_shift: m, the largest displacement along each axis; static.
      mode: "canvas" pastes each image onto a zero canvas of side H + 2m with its top-left corner
        at (dy, dx); "crop" pads each image by m and cuts the H × W window that shows its content
        moved by (dy − m, dx − m), i.e. the window starting at (2m − dy, 2m − dx); static.
      pad_mode: what "crop" uncovers at the borders, "zero" or "reflect"; static.

    Returns:
      (B, S, S', C) shifted images, S = `output_size(H, max_shift, mode)` (and S' likewise).

    Raises:
      ValueError: on an unknown mode or pad_mode, or a negative max_shift.
    """
    _check_max_shift(max_shift)
    _check_mode(mode)
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"pad_mode must be one of {', '.join(_PAD_MODES)}, got {pad_mode!r}")
    _, h, w, c = images.shape
    offsets = offsets.astype(jnp.int32)
    if mode == "canvas":
        return canvas.paste_at(images, offsets, (h + 2 * max_shift, w + 2 * max_shift))
    pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))
    padded = jnp.pad(images, pad, mode=_PAD_MODES[pad_mode])
    # A window starting further down shows content further up, hence 2m − offset.
    starts = 2 * max_shift - offsets
    return jax.vmap(lambda im, s: lax.dynamic_slice(im, (s[0], s[1], 0), (h, w, c)))(padded, starts)


def random_offsets(key: jax.Array, batch_size: int, max_shift: int) -> jax.Array:
    """Draws (batch_size, 2) int32 offsets uniformly from [0, 2·max_shift] on each axis."""
    _check_max_shift(max_shift)
    return jax.random.randint(key, (batch_size, 2), 0, 2 * max_shift + 1, dtype=jnp.int32)


def centred_offsets(batch_size: int, max_shift: int) -> jax.Array:
    """(batch_size, 2) int32 offsets that leave every image centred (all equal to max_shift)."""
    _check_max_shift(max_shift)
    return jnp.full((batch_size, 2), max_shift, jnp.int32)


def shift_grid(max_shift: int, step: int) -> np.ndarray:
    """Every offset on a grid for enumerated shift evaluation.

    Args:
      max_shift: m, the largest displacement along each axis.
      step: grid spacing; 0, m and 2m are always on the grid so that the centred and the extreme
        shifts are evaluated whatever the step.

    Returns:
      (K, 2) int32 (dy, dx) offsets in row-major order (dy outer), each axis in [0, 2m].

    Raises:
      ValueError: on a negative max_shift or a step below 1.
    """
    _check_max_shift(max_shift)
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    axis = np.union1d(np.arange(0, 2 * max_shift + 1, step), [max_shift, 2 * max_shift])
    dy, dx = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([dy.ravel(), dx.ravel()], axis=1).astype(np.int32)


def consistency_pairs(
    num_images: int, pairs_per_image: int, max_shift: int, seed: int
) -> np.ndarray:
    """Fixed pairs of random offsets per test image, for the shift-consistency metric.

    Drawn on the host from `np.random.default_rng(seed)`, so every model evaluated with the same
    seed sees exactly the same pairs. The two offsets of a pair are independent and may coincide,
    as in Zhang (ICML 2019).

    Args:
      num_images: number of test images.
      pairs_per_image: pairs of shifts drawn for each image.
      max_shift: m, the largest displacement along each axis.
      seed: seed of the draw.

    Returns:
      (num_images, pairs_per_image, 2, 2) int32: [image, pair, which shift, (dy, dx)] in [0, 2m].
    """
    _check_max_shift(max_shift)
    rng = np.random.default_rng(seed)
    shape = (num_images, pairs_per_image, 2, 2)
    return rng.integers(0, 2 * max_shift + 1, shape, dtype=np.int32)


def _check_max_shift(max_shift: int) -> None:
    """Raises ValueError on a negative max_shift."""
    if max_shift < 0:
        raise ValueError(f"max_shift must be non-negative, got {max_shift}")


def _check_mode(mode: str) -> None:
    """Raises ValueError on an unknown shift mode."""
    if mode not in SHIFT_MODES:
        raise ValueError(f"mode must be one of {', '.join(SHIFT_MODES)}, got {mode!r}")
