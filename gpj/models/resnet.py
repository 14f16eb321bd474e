"""ResNet backbones (torchvision v1.5 layout) with padding, stem and channel-permutation options."""

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import jax.numpy as jnp
from flax import linen as nn

from gpj.models.ablation import Ablation, ablate
from gpj.models.blurpool import MaxBlurPool, antialiased
from gpj.models.conv import PaddedConv, scaled_width
from gpj.models.permutation import channel_permutation

# Total stride of each stem: 7x7/2 conv; 3x3/1 conv; 7x7/2 conv + 3x3/2 max-pool.
STEM_STRIDES = {"paper": 2, "cifar": 1, "imagenet": 4}
STEMS = tuple(STEM_STRIDES)

ModuleDef = Any


def stage_schedule(
    stem: str, output_stride: int, num_stages: int = 4
) -> list[tuple[int, int, int]]:
    """Stride and 3x3 dilations of each stage, as torchvision's `replace_stride_with_dilation`.

    Stages after the first halve the map until the total stride would exceed `output_stride`;
    from then on a stage keeps stride 1 and doubles the dilation instead. Its first block still
    uses the previous dilation, as in torchvision's `_make_layer`.

    Args:
      stem: one of `STEMS`.
      output_stride: total stride of the features; 0 for the plain strides.
      num_stages: stages of the ResNet.

    Returns:
      Per stage, `(strides, first-block dilation, later-blocks dilation)`.

    Raises:
      ValueError: `output_stride` is not a total stride this stem and stage count can reach.
    """
    total = STEM_STRIDES[stem]
    reachable = [total * 2**k for k in range(num_stages)]
    if output_stride and output_stride not in reachable:
        raise ValueError(
            f"output_stride={output_stride!r} is not reachable with the {stem!r} stem; "
            f"use 0 or one of {reachable}"
        )
    schedule = [(1, 1, 1)]
    dilation = 1
    for _ in range(1, num_stages):
        previous = dilation
        if output_stride and total * 2 > output_stride:
            dilation *= 2
            strides = 1
        else:
            total *= 2
            strides = 2
        schedule.append((strides, previous, dilation))
    return schedule


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
    """Two 3x3 conv + BN layers with a residual connection (ResNet-18/34).

    Both 3x3 convs use `dilation`; the first one is strided.
    """

    features: int
    conv: ModuleDef
    norm: ModuleDef
    strides: int = 1
    dilation: int = 1
    expansion: ClassVar[int] = 1

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        conv3x3 = functools.partial(self.conv, self.features, 3, dilation=self.dilation)
        y = nn.relu(self.norm(name="bn1")(conv3x3(strides=self.strides, name="conv1")(x)))
        y = conv3x3(name="conv2")(y)
        y = self.norm(name="bn2")(y)
        return _add_shortcut(x, y, self.conv, self.norm, self.strides)


class Bottleneck(nn.Module):
    """1x1 → 3x3 (strided, as in torchvision v1.5) → 1x1 x4 bottleneck block (ResNet-50)."""

    features: int
    conv: ModuleDef
    norm: ModuleDef
    strides: int = 1
    dilation: int = 1
    expansion: ClassVar[int] = 4

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        y = nn.relu(self.norm(name="bn1")(self.conv(self.features, 1, name="conv1")(x)))
        conv3x3 = self.conv(
            self.features, 3, strides=self.strides, dilation=self.dilation, name="conv2"
        )
        y = nn.relu(self.norm(name="bn2")(conv3x3(y)))
        y = self.conv(self.features * self.expansion, 1, name="conv3")(y)
        y = self.norm(name="bn3")(y)
        return _add_shortcut(x, y, self.conv, self.norm, self.strides)


class ResNet(nn.Module):
    """ResNet backbone returning `(features, out)`, with `out` holding "stem" and "stage1".."stage4".

    `__call__(x, train, ablation=None)` applies `ablation.ablate` to each of those outputs before
    storing it and passing it on.

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
      fixed_permutation: permute with one fixed permutation instead (PermuteNet's control).
      blur_filter: 0 for plain strided downsampling; 1..5 makes every strided conv and max-pool
        dense, followed by a `BlurPool` of that filter size (Zhang 2019). Params are unchanged.
      output_stride: 0 for the plain strides; else the total stride of the features, reached by
        dilating instead of striding the last stages (see `stage_schedule`). Params are unchanged.
      conv_path: how every conv is computed, one of `conv.CONV_PATHS` (the alternatives are for
        the `levers` benchmark).
      dtype: computation dtype.
    """

    stage_sizes: Sequence[int]
    block_cls: ModuleDef
    width: float = 1.0
    stem: str = "paper"
    padding: str = "zero"
    bn_momentum: float = 0.9
    shuffle_layer: int = 5
    fixed_permutation: bool = False
    blur_filter: int = 0
    output_stride: int = 0
    conv_path: str = "conv"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, train: bool, ablation: Ablation = None
    ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        if self.stem not in STEMS:
            raise ValueError(f"stem={self.stem!r} is not one of {STEMS}")
        schedule = stage_schedule(self.stem, self.output_stride, len(self.stage_sizes))
        conv = functools.partial(
            PaddedConv, padding=self.padding, path=self.conv_path, dtype=self.dtype
        )
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
        x = ablate(x, "stem", ablation)
        out = {"stem": x}
        for i, (num_blocks, (strides, first_dilation, dilation)) in enumerate(
            zip(self.stage_sizes, schedule, strict=True)
        ):
            if self.shuffle_layer == i + 1:
                perm = channel_permutation(self, x.shape[-1], self.fixed_permutation)
                x = jnp.take(x, perm, axis=-1)
            for j in range(num_blocks):
                x = self.block_cls(
                    scaled_width(64 * 2**i, self.width),
                    conv=conv,
                    norm=norm,
                    strides=strides if j == 0 else 1,
                    dilation=first_dilation if j == 0 else dilation,
                    name=f"layer{i + 1}_{j}",
                )(x)
            x = ablate(x, f"stage{i + 1}", ablation)
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


# One block per stage: the same stems, strides, dilations and heads at half ResNet-18's depth,
# for smoke runs and tests, where depth does not matter (the `tiny` presets).
ResNet10 = functools.partial(ResNet, stage_sizes=(1, 1, 1, 1), block_cls=BasicBlock)
ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck)
