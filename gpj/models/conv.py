"""Padding-aware 2-D convolution: the padding mode is an option, not a new layer."""

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax

PADDINGS = ("zero", "reflect", "replicate", "circular", "valid", "partial")

# jnp.pad modes with the same meaning as torch's padding_mode; partial convolution zero-pads.
PAD_MODES = {
    "zero": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "partial": "constant",
}

# How a convolution is computed, the same sums in another order: "conv" (XLA's convolution),
# "matmul" (a strided 1x1 convolution as a strided slice and a dot over the channels, whose
# gradient is a pad instead of XLA's dilated convolution) or "im2col" (one matmul over the
# patches, with plain matmuls for the weight gradient). `python -m gpj.bench --only=levers` times
# the train step on each; on the CPUs measured neither alternative was faster
# (docs/performance.md), so every model uses "conv".
CONV_PATHS = ("conv", "matmul", "im2col")


# torchvision initialises ResNet/VGG convs with kaiming_normal_(mode="fan_out", nonlinearity="relu").
kaiming_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def scaled_width(base: int, width: float) -> int:
    """Channel count `base * width`, rounded, at least 1."""
    return max(1, round(base * width))


def _valid_taps(size: int, kernel_size: int, strides: int, dilation: int, pad: int) -> np.ndarray:
    """Number of kernel taps inside an axis of length `size`, per output position."""
    num_out = (size + 2 * pad - dilation * (kernel_size - 1) - 1) // strides + 1
    taps = np.arange(num_out)[:, None] * strides - pad + np.arange(kernel_size)[None, :] * dilation
    return ((taps >= 0) & (taps < size)).sum(axis=1)


def partial_conv_ratio(
    height: int, width: int, kernel_size: int, strides: int, dilation: int
) -> np.ndarray:
    """Partial-convolution rescaling map (out_h, out_w): kernel area / valid input pixels.

    The all-ones input mask factorises over rows and columns, so the valid count is an outer
    product of per-axis counts; it depends only on the input shape, hence plain numpy.
    """
    pad = dilation * (kernel_size - 1) // 2
    count = np.outer(
        _valid_taps(height, kernel_size, strides, dilation, pad),
        _valid_taps(width, kernel_size, strides, dilation, pad),
    )
    return np.where(count > 0, kernel_size**2 / np.maximum(count, 1), 0.0).astype(np.float32)


def im2col(x: jnp.ndarray, k: int, strides: int, dilation: int, pad: int) -> jnp.ndarray:
    """The k x k patches of `x` zero-padded by `pad`: (n, out_h, out_w, k*k*c), taps in a HWIO
    kernel's (row, column, channel) order, so a convolution is `patches @ kernel.reshape(-1, o)`."""
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, h, w, c = x.shape
    out_h = (h - dilation * (k - 1) - 1) // strides + 1
    out_w = (w - dilation * (k - 1) - 1) // strides + 1
    taps = [
        lax.slice(
            x,
            (0, i * dilation, j * dilation, 0),
            (
                n,
                i * dilation + strides * (out_h - 1) + 1,
                j * dilation + strides * (out_w - 1) + 1,
                c,
            ),
            (1, strides, strides, 1),
        )
        for i in range(k)
        for j in range(k)
    ]
    return jnp.concatenate(taps, axis=-1)


class PaddedConv(nn.Module):
    """Square convolution with PyTorch-style symmetric padding in one of `PADDINGS`.

    Pads `dilation * (kernel_size - 1) // 2` on each side (none for `valid`), so output shapes
    match torch.nn.Conv2d. Params: `kernel` (k, k, in, out) and, with `use_bias`, `bias` (out,).

    Attributes:
      features: output channels.
      kernel_size: side of the square kernel.
      strides: spatial stride.
      dilation: kernel dilation.
      padding: one of `PADDINGS`; `partial` is the partial convolution of Liu et al. (2018).
      use_bias: whether to add a bias.
      dtype: computation dtype (params stay float32).
      kernel_init: kernel initialiser.
      path: how the convolution is computed, one of `CONV_PATHS`.
    """

    features: int
    kernel_size: int
    strides: int = 1
    dilation: int = 1
    padding: str = "zero"
    use_bias: bool = False
    dtype: Any = jnp.float32
    kernel_init: Callable = kaiming_fan_out
    path: str = "conv"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if self.padding not in PADDINGS:
            raise ValueError(f"padding={self.padding!r} is not one of {PADDINGS}")
        k = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        height, width = x.shape[1:3]
        pad = 0 if self.padding == "valid" else self.dilation * (k - 1) // 2
        # Zeros are the convolution's own padding: no padded copy of x, forward or backward.
        conv_pad = pad if PAD_MODES.get(self.padding) == "constant" else 0
        if pad and not conv_pad:
            x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=PAD_MODES[self.padding])
        span = self.dilation * (k - 1) + 1
        if min(height, width) + 2 * pad < span:
            # XLA would silently return an empty map, and its global mean would be NaN.
            raise ValueError(
                f"input {height}x{width} is too small for a {k}x{k} kernel (dilation {self.dilation}) "
                f"with padding={self.padding!r}"
            )
        if self.path not in CONV_PATHS:
            raise ValueError(f"path={self.path!r} is not one of {CONV_PATHS}")
        x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
        if k == 1 and self.strides > 1 and self.path == "matmul":
            s = self.strides  # a 1x1 kernel has no padding in any mode, and dilation is moot
            y = jnp.einsum("nhwc,co->nhwo", x[:, ::s, ::s], kernel[0, 0])
        elif self.path == "im2col":
            patches = im2col(x, k, self.strides, self.dilation, conv_pad)
            y = patches @ kernel.reshape(-1, self.features)
        else:
            y = self._conv(x, kernel, conv_pad)
        if self.padding == "partial":
            ratio = partial_conv_ratio(height, width, k, self.strides, self.dilation)
            y = y * jnp.asarray(ratio, y.dtype)[None, :, :, None]
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,))
            y = y + bias.astype(y.dtype)
        return y

    def _conv(self, x, kernel, pad):
        return lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(self.strides, self.strides),
            padding=((pad, pad), (pad, pad)),
            rhs_dilation=(self.dilation, self.dilation),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
