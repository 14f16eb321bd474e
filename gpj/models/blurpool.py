"""Anti-aliased downsampling (Zhang, ICML 2019): low-pass with a binomial filter, then subsample."""

import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax

from gpj.models.conv import PAD_MODES

FILTER_SIZES = (1, 2, 3, 4, 5)
BLUR_PADDINGS = ("zero", "reflect", "replicate", "circular", "valid")


def binomial_filter(filter_size: int) -> np.ndarray:
    """Normalised 2-D binomial filter: outer square of Pascal's row `filter_size - 1`, summing to 1.

    Args:
      filter_size: side of the filter, one of `FILTER_SIZES`; 1 means plain subsampling.

    Returns:
      A (filter_size, filter_size) float32 array.

    Raises:
      ValueError: `filter_size` is not one of `FILTER_SIZES`.
    """
    if filter_size not in FILTER_SIZES:
        raise ValueError(f"filter_size={filter_size!r} is not one of {FILTER_SIZES}")
    row = np.array([math.comb(filter_size - 1, k) for k in range(filter_size)], np.float64)
    return (np.outer(row, row) / row.sum() ** 2).astype(np.float32)


class BlurPool(nn.Module):
    """Depthwise blur with a fixed binomial filter, then subsampling by `strides`; no params.

    Pads `(filter_size - 1) // 2` before and `filter_size // 2` after (none for `valid`), so the
    output side is `ceil(side / strides)`, as in antialiased-cnns and torch's strided convs.

    Attributes:
      filter_size: side of the binomial filter, one of `FILTER_SIZES`.
      strides: subsampling factor.
      padding: one of `BLUR_PADDINGS`; the paper's `reflect` adds no constant border.
      dtype: computation dtype.
    """

    filter_size: int = 3
    strides: int = 2
    padding: str = "reflect"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        taps = binomial_filter(self.filter_size)
        if self.padding not in BLUR_PADDINGS:
            raise ValueError(f"padding={self.padding!r} is not one of {BLUR_PADDINGS}")
        if self.strides < 1:
            raise ValueError(f"strides={self.strides!r} must be at least 1")
        k = self.filter_size
        if self.padding != "valid":
            pads = ((k - 1) // 2, k // 2)
            x = jnp.pad(x, ((0, 0), pads, pads, (0, 0)), mode=PAD_MODES[self.padding])
        if min(x.shape[1:3]) < k:
            # XLA would silently return an empty map, as in `PaddedConv`.
            raise ValueError(f"input side {min(x.shape[1:3])} is too small for a {k}x{k} blur")
        channels = x.shape[-1]
        # A constant, not a param: one copy of the filter per channel (HWIO, one input per group).
        kernel = jnp.asarray(
            np.broadcast_to(taps[:, :, None, None], (k, k, 1, channels)), self.dtype
        )
        return lax.conv_general_dilated(
            x.astype(self.dtype),
            kernel,
            window_strides=(self.strides, self.strides),
            padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=channels,
        )


class MaxBlurPool(nn.Module):
    """Max-pool densely (stride 1), then downsample with `BlurPool`: Zhang's MaxBlurPool.

    Attributes:
      window: side of the square max-pool window.
      pad: -inf padding on each side of the max-pool (1 for torch's MaxPool2d(3, 2, padding=1)).
      strides: subsampling factor of the blur.
      filter_size: side of the binomial filter.
      padding: padding mode of the blur.
      dtype: computation dtype.
    """

    window: int
    pad: int = 0
    strides: int = 2
    filter_size: int = 3
    padding: str = "reflect"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        pads = ((self.pad, self.pad), (self.pad, self.pad))
        x = nn.max_pool(x, (self.window, self.window), padding=pads)
        return BlurPool(self.filter_size, self.strides, self.padding, self.dtype, name="blur")(x)


def antialiased(
    conv: Callable[..., nn.Module], filter_size: int, dtype: Any = jnp.float32
) -> Callable[..., Callable[[jnp.ndarray], jnp.ndarray]]:
    """Wraps a conv constructor so that a strided conv runs at stride 1, then `BlurPool` subsamples.

    The conv keeps its name and params, so weights move freely between plain and anti-aliased
    models; the blur (no params) is named `<name>_blur`. Like the modules it builds, the returned
    constructor must be called inside a compact method.

    Args:
      conv: constructor called as `conv(features, kernel_size, strides=..., name=..., ...)`.
      filter_size: side of the binomial filter, one of `FILTER_SIZES`.
      dtype: computation dtype of the blur.

    Returns:
      A constructor with `conv`'s signature whose result maps `x` to the downsampled features.
    """

    def make(*args, strides: int = 1, name: str, **kwargs) -> Callable[[jnp.ndarray], jnp.ndarray]:
        layer = conv(*args, name=name, **kwargs)
        if strides == 1:
            return layer
        blur = BlurPool(filter_size, strides, dtype=dtype, name=f"{name}_blur")
        return lambda x: blur(layer(x))

    return make
