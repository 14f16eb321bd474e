"""DeepLabv3 segmentation head (torchvision layout) on a dilated backbone."""

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from gpj.models.ablation import Ablation
from gpj.models.conv import PaddedConv
from gpj.models.heads import backbone_outputs


def _batch_norm(train: bool, momentum: float, dtype: Any, name: str) -> nn.BatchNorm:
    """BatchNorm with the ResNet conventions (flax momentum, epsilon 1e-5)."""
    return nn.BatchNorm(
        use_running_average=not train, momentum=momentum, epsilon=1e-5, dtype=dtype, name=name
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling, as torchvision's DeepLabv3 `ASPP`.

    Branches, each conv (no bias) + BN + ReLU to `features` channels: a 1x1 conv, one 3x3 conv
    per rate with that dilation, and global average pooling → 1x1 conv broadcast back to the map
    size. Their concatenation goes through a 1x1 conv + BN + ReLU and dropout.

    Attributes:
      features: channels of every branch and of the output.
      rates: dilations of the 3x3 branches.
      padding: padding mode of every conv, one of `conv.PADDINGS`.
      bn_momentum: BatchNorm running-average momentum (flax convention).
      dropout_rate: dropout rate of the output in training; uses the `dropout` rng.
      dtype: computation dtype.
    """

    features: int = 256
    rates: Sequence[int] = (12, 24, 36)
    padding: str = "zero"
    bn_momentum: float = 0.9
    dropout_rate: float = 0.1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        def conv_bn_relu(y: jnp.ndarray, kernel_size: int, name: str, dilation: int = 1):
            y = PaddedConv(
                self.features,
                kernel_size,
                dilation=dilation,
                padding=self.padding,
                dtype=self.dtype,
                name=f"{name}_conv",
            )(y)
            return nn.relu(_batch_norm(train, self.bn_momentum, self.dtype, f"{name}_bn")(y))

        branches = [conv_bn_relu(x, 1, "branch0")]
        for i, rate in enumerate(self.rates):
            branches.append(conv_bn_relu(x, 3, f"branch{i + 1}", dilation=rate))
        pooled = conv_bn_relu(x.mean(axis=(1, 2), keepdims=True), 1, "pool")
        branches.append(jnp.broadcast_to(pooled, (*x.shape[:3], self.features)))
        y = conv_bn_relu(jnp.concatenate(branches, axis=-1), 1, "project")
        return nn.Dropout(self.dropout_rate, deterministic=not train)(y)


class DeepLabV3(nn.Module):
    """Backbone → ASPP → 3x3 conv + BN + ReLU → 1x1 conv → bilinear upsampling to the input size.

    `__call__(x, train, ablation=None)` returns `(logits, out)`: float32 (N, H, W, num_classes)
    logits for an (N, H, W, C) input, and `out` with the backbone intermediates, its (ablated)
    output "features", their global average pool "latent" and the ASPP output "aspp". The
    upsampling uses half-pixel centres, as torch's `interpolate(align_corners=False)`.

    Attributes:
      backbone: module mapping `(x, train, ablation)` to `(features, out)`, usually a ResNet
        with `output_stride` 8 or 16.
      num_classes: number of classes.
      aspp_rates: dilations of the ASPP 3x3 branches.
      aspp_features: channels of the ASPP and of the 3x3 head conv.
      padding: padding mode of the head convs, one of `conv.PADDINGS`.
      bn_momentum: BatchNorm running-average momentum (flax convention).
      dropout_rate: dropout rate after the ASPP in training; uses the `dropout` rng.
      dtype: computation dtype; logits are float32.
    """

    backbone: nn.Module
    num_classes: int
    aspp_rates: Sequence[int] = (12, 24, 36)
    aspp_features: int = 256
    padding: str = "zero"
    bn_momentum: float = 0.9
    dropout_rate: float = 0.1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, train: bool, ablation: Ablation = None
    ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        conv = functools.partial(PaddedConv, padding=self.padding, dtype=self.dtype)
        features, out = backbone_outputs(self.backbone, x, train, ablation)
        y = ASPP(
            self.aspp_features,
            self.aspp_rates,
            padding=self.padding,
            bn_momentum=self.bn_momentum,
            dropout_rate=self.dropout_rate,
            dtype=self.dtype,
            name="aspp",
        )(features, train)
        out["aspp"] = y
        y = conv(self.aspp_features, 3, name="head_conv")(y)
        y = nn.relu(_batch_norm(train, self.bn_momentum, self.dtype, "head_bn")(y))
        y = conv(self.num_classes, 1, use_bias=True, name="classifier")(y).astype(jnp.float32)
        logits = jax.image.resize(y, (*x.shape[:3], self.num_classes), method="bilinear")
        return logits, out
