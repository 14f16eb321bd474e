"""ResNet backbones (torchvision v1.5 layout) with padding, stem and channel-permutation options."""

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from gpj.models.blurpool import MaxBlurPool, antialiased
from gpj.models.conv import PaddedConv, scaled_width

STEMS = ("paper", "cifar", "imagenet")

ModuleDef = Any


def _add_shortcut(
    x: jnp.ndarray, y: jnp.ndarray, conv: ModuleDef, norm: ModuleDef, strides: int
) -> jnp.ndarray:
    """Returns relu(y + shortcut(x)), projecting x with a 1x1 conv + BN when the shape changes.

    Called inside a block's compact `__call__`, so the projection modules belong to that block.
    """
    if strides != 1 or x.shape[-1] != y.shape[-1]:
        x = conv(y.shape[-1], 1, strides=strides, name="downsample_conv")(x)
        x = norm(name="downsample_bn")(x)
    # Only `valid` padding makes the residual branch smaller; keep its centre, as it is aligned there.
    top = (x.shape[1] - y.shape[1]) // 2
    left = (x.shape[2] - y.shape[2]) // 2
    x = x[:, top : top + y.shape[1], left : left + y.shape[2]]
    return nn.relu(y + x)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with a residual connection (ResNet-18/34)."""

    features: int
    conv: ModuleDef
    norm: ModuleDef
    strides: int = 1
    expansion: ClassVar[int] = 1

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        y = self.conv(self.features, 3, strides=self.strides, name="conv1")(x)
        y = nn.relu(self.norm(name="bn1")(y))
        y = self.conv(self.features, 3, name="conv2")(y)
        y = self.norm(name="bn2")(y)
        return _add_shortcut(x, y, self.conv, self.norm, self.strides)


class Bottleneck(nn.Module):
    """1x1 → 3x3 (strided, as in torchvision v1.5) → 1x1 x4 bottleneck block (ResNet-50)."""

    features: int
    conv: ModuleDef
    norm: ModuleDef
    strides: int = 1
    expansion: ClassVar[int] = 4

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        y = nn.relu(self.norm(name="bn1")(self.conv(self.features, 1, name="conv1")(x)))
        y = self.conv(self.features, 3, strides=self.strides, name="conv2")(y)
        y = nn.relu(self.norm(name="bn2")(y))
        y = self.conv(self.features * self.expansion, 1, name="conv3")(y)
        y = self.norm(name="bn3")(y)
        return _add_shortcut(x, y, self.conv, self.norm, self.strides)


class ResNet(nn.Module):
    """ResNet backbone returning `(features, out)`, with `out` holding "stem" and "stage1".."stage4".

    Attributes:
      stage_sizes: blocks per stage.
      block_cls: `BasicBlock` or `Bottleneck`.
      width: multiplier of the base widths 64/128/256/512.
      stem: `paper` (7x7/2 conv, no max-pool: official PermuteNet), `cifar` (3x3/1 conv) or
        `imagenet` (7x7/2 conv + 3x3/2 max-pool).
      padding: padding mode of every conv, one of `conv.PADDINGS`.
      bn_momentum: BatchNorm running-average momentum (flax convention: weight of the old value).
      shuffle_layer: k in 1..4 permutes the channels of stage k's input with a fresh permutation
        from the `permute` rng on every call; 5 leaves the backbone unpermuted.
      blur_filter: 0 for plain strided downsampling; 1..5 makes every strided conv and max-pool
        dense, followed by a `BlurPool` of that filter size (Zhang 2019). Params are unchanged.
      dtype: computation dtype.
    """

    stage_sizes: Sequence[int]
    block_cls: ModuleDef
    width: float = 1.0
    stem: str = "paper"
    padding: str = "zero"
    bn_momentum: float = 0.9
    shuffle_layer: int = 5
    blur_filter: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        if self.stem not in STEMS:
            raise ValueError(f"stem={self.stem!r} is not one of {STEMS}")
        conv = functools.partial(PaddedConv, padding=self.padding, dtype=self.dtype)
        if self.blur_filter:
            conv = antialiased(conv, self.blur_filter, dtype=self.dtype)
        norm = functools.partial(
            nn.BatchNorm,
            use_running_average=not train,
            momentum=self.bn_momentum,
            epsilon=1e-5,
            dtype=self.dtype,
        )
        if self.stem == "cifar":
            x = conv(scaled_width(64, self.width), 3, name="conv1")(x)
        else:
            x = conv(scaled_width(64, self.width), 7, strides=2, name="conv1")(x)
        x = nn.relu(norm(name="bn1")(x))
        if self.stem == "imagenet":
            x = self._stem_max_pool(x)
        out = {"stem": x}
        for i, num_blocks in enumerate(self.stage_sizes):
            if self.shuffle_layer == i + 1:
                # One permutation for the whole batch per forward pass, like torch.randperm upstream.
                perm = jax.random.permutation(self.make_rng("permute"), x.shape[-1])
                x = jnp.take(x, perm, axis=-1)
            for j in range(num_blocks):
                x = self.block_cls(
                    scaled_width(64 * 2**i, self.width),
                    conv=conv,
                    norm=norm,
                    strides=2 if i > 0 and j == 0 else 1,
                    name=f"layer{i + 1}_{j}",
                )(x)
            out[f"stage{i + 1}"] = x
        return x, out

    def _stem_max_pool(self, x: jnp.ndarray) -> jnp.ndarray:
        """The imagenet stem's 3x3 stride-2 max-pool, or with `blur_filter` its MaxBlurPool."""
        if not self.blur_filter:
            # flax pads max-pool windows with -inf, like torch's MaxPool2d(3, 2, padding=1).
            return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        return MaxBlurPool(
            3, pad=1, filter_size=self.blur_filter, dtype=self.dtype, name="maxpool"
        )(x)


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck)
