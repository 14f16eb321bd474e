"""VGG backbones with BatchNorm (configs A and D) and padding-mode options."""

import functools
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from gpj.models.ablation import Ablation, ablate
from gpj.models.blurpool import MaxBlurPool
from gpj.models.conv import PaddedConv, scaled_width

# Conv widths before scaling; "M" is a 2x2 stride-2 max-pool that closes a stage.
VGG11_LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG16_LAYERS = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class VGG(nn.Module):
    """VGG-BN feature extractor returning `(features, out)`, `out["stageN"]` after the N-th max-pool.

    `__call__(x, train, ablation=None)` applies `ablation.ablate` to each "stageN" output before
    storing it and passing it on.

    Attributes:
      layers: conv widths and "M" max-pools, e.g. `VGG11_LAYERS`.
      width: multiplier of the conv widths.
      padding: padding mode of every conv, one of `conv.PADDINGS`.
      bn_momentum: BatchNorm running-average momentum (flax convention).
      blur_filter: 0 for plain 2x2 stride-2 max-pools; 1..5 pools at stride 1 and downsamples with
        a `BlurPool` of that filter size (Zhang 2019).
      dtype: computation dtype.
    """

    layers: Sequence[int | str]
    width: float = 1.0
    padding: str = "zero"
    bn_momentum: float = 0.9
    blur_filter: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, train: bool, ablation: Ablation = None
    ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        out = {}
        num_convs = 0
        for layer in self.layers:
            if layer == "M":
                stage = len(out) + 1
                x = ablate(self._max_pool(x, name=f"pool{stage}"), f"stage{stage}", ablation)
                out[f"stage{stage}"] = x
                continue
            num_convs += 1
            # torchvision's vgg*_bn convs keep their bias; kept so its weights import one-to-one.
            x = PaddedConv(
                scaled_width(layer, self.width),
                3,
                padding=self.padding,
                use_bias=True,
                dtype=self.dtype,
                name=f"conv{num_convs}",
            )(x)
            x = nn.BatchNorm(
                use_running_average=not train,
                momentum=self.bn_momentum,
                epsilon=1e-5,
                dtype=self.dtype,
                name=f"bn{num_convs}",
            )(x)
            x = nn.relu(x)
        return x, out

    def _max_pool(self, x: jnp.ndarray, name: str) -> jnp.ndarray:
        """2x2 stride-2 max-pool, or with `blur_filter` its anti-aliased MaxBlurPool."""
        if not self.blur_filter:
            return nn.max_pool(x, (2, 2), strides=(2, 2))
        # Unpadded, as in antialiased-cnns: the dense pool leaves side n - 1, and the blur's
        # ceil((n - 1) / 2) equals the plain pool's floor(n / 2) for every n, odd ones too.
        return MaxBlurPool(2, filter_size=self.blur_filter, dtype=self.dtype, name=name)(x)


VGG11 = functools.partial(VGG, layers=VGG11_LAYERS)
VGG16 = functools.partial(VGG, layers=VGG16_LAYERS)
