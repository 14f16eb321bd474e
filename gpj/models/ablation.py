"""Channel ablation of named outputs: replace chosen channels by a fill value, inside jit.

An ablation maps output names ("stem", "stage1".."stage4", "features") to
`{"keep": (C,), "fill": (C,)}` arrays. Its dict structure is static and its arrays are traced, so
ablating other channels or fill values reuses the compiled model.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

Ablation = Mapping[str, Mapping[str, Any]] | None


def ablate(x: jnp.ndarray, name: str, ablation: Ablation) -> jnp.ndarray:
    """Returns `x * keep + fill * (1 - keep)` over the channel axis if `ablation` names `name`.

    Args:
      x: (..., C) output called `name`.
      name: output name looked up in `ablation`.
      ablation: None, or a dict from output names to `{"keep": (C,), "fill": (C,)}`.

    Returns:
      `x` unchanged when `ablation` is None or lacks `name`, else the ablated `x`.
    """
    if ablation is None or name not in ablation:
        return x
    keep = jnp.asarray(ablation[name]["keep"], x.dtype)
    fill = jnp.asarray(ablation[name]["fill"], x.dtype)
    if keep.shape != x.shape[-1:] or fill.shape != x.shape[-1:]:
        raise ValueError(
            f"ablation[{name!r}] has keep {keep.shape} and fill {fill.shape}, but the output has "
            f"{x.shape[-1]} channels"
        )
    return x * keep + fill * (1 - keep)


def channel_ablation(
    num_channels: int, channels: Sequence[int], fill: Sequence[float] | None = None
) -> dict[str, np.ndarray]:
    """Host-side `{"keep", "fill"}` entry of an ablation that replaces `channels`.

    Args:
      num_channels: channels C of the ablated output.
      channels: distinct indices in [0, C) to replace; empty keeps every channel.
      fill: (C,) replacement values (e.g. each channel's dataset mean); None fills zeros.

    Returns:
      float32 (C,) arrays: `keep` (0 at `channels`, 1 elsewhere) and `fill`.

    Raises:
      ValueError: an index outside [0, C) or repeated, or a fill of the wrong shape.
    """
    indices = np.asarray(channels)
    if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
        raise ValueError(f"channels={channels!r} must be a flat sequence of integers")
    keep = np.ones(num_channels, np.float32)
    for index in indices.tolist():
        if not 0 <= index < num_channels:
            raise ValueError(f"channel {index} is outside [0, {num_channels})")
        if keep[index] == 0:
            raise ValueError(f"channel {index} is listed more than once")
        keep[index] = 0
    if fill is None:
        fill = np.zeros(num_channels, np.float32)
    fill = np.asarray(fill, np.float32)
    if fill.shape != (num_channels,):
        raise ValueError(f"fill has shape {fill.shape}, expected ({num_channels},)")
    return {"keep": keep, "fill": fill}
