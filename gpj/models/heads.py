"""Heads on any backbone returning (features, out): the paper's GAPNet and PermuteNet, and linear.

Every head's `__call__(x, train, ablation=None)` passes `ablation` to the backbone and ablates its
output, named "features", before the head (see `ablation.ablate`).
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from gpj.models.ablation import Ablation, ablate
from gpj.models.conv import PaddedConv


def backbone_outputs(
    backbone: nn.Module, x: jnp.ndarray, train: bool, ablation: Ablation
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """Runs `backbone` and ablates its output "features"; call inside a compact method.

    Returns:
      The ablated features, and the backbone intermediates plus "features" and its global average
      pool "latent".
    """
    features, out = backbone(x, train, ablation)
    features = ablate(features, "features", ablation)
    return features, {**out, "features": features, "latent": features.mean(axis=(1, 2))}


class GAPNet(nn.Module):
    """Backbone → 3x3 conv to `num_classes` channels → global average pool → logits.

    Attributes:
      backbone: module mapping `(x, train, ablation)` to `(features, out)`.
      num_classes: number of logits.
      padding: padding mode of the head conv, one of `conv.PADDINGS`.
      dtype: computation dtype; logits are float32.
    """

    backbone: nn.Module
    num_classes: int
    padding: str = "zero"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, train: bool, ablation: Ablation = None
    ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        features, out = backbone_outputs(self.backbone, x, train, ablation)
        y = PaddedConv(
            self.num_classes,
            3,
            padding=self.padding,
            use_bias=True,
            dtype=self.dtype,
            name="head_conv",
        )(features)
        return y.astype(jnp.float32).mean(axis=(1, 2)), out


class PermuteNet(nn.Module):
    """Backbone → global average pool → channel permutation → dense logits.

    With `shuffle_layer == 5` the pooled channels get a fresh random order from the `permute` rng
    on every call, in training and evaluation alike; for 1..4 the backbone permutes instead.

    Attributes:
      backbone: module mapping `(x, train, ablation)` to `(features, out)`.
      num_classes: number of logits.
      shuffle_layer: 5 to permute the pooled latent here; 1..4 when the backbone permutes.
      dtype: computation dtype; logits are float32.
    """

    backbone: nn.Module
    num_classes: int
    shuffle_layer: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, train: bool, ablation: Ablation = None
    ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        _, out = backbone_outputs(self.backbone, x, train, ablation)
        latent = out["latent"]
        if self.shuffle_layer == 5:
            latent = jnp.take(
                latent, jax.random.permutation(self.make_rng("permute"), latent.shape[-1]), axis=-1
            )
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="head_dense")(latent)
        return logits.astype(jnp.float32), out


class LinearNet(nn.Module):
    """Backbone → global average pool → dense logits: the standard classifier, unpermuted.

    Attributes:
      backbone: module mapping `(x, train, ablation)` to `(features, out)`.
      num_classes: number of logits.
      dtype: computation dtype; logits are float32.
    """

    backbone: nn.Module
    num_classes: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, train: bool, ablation: Ablation = None
    ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        _, out = backbone_outputs(self.backbone, x, train, ablation)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="head_dense")(out["latent"])
        return logits.astype(jnp.float32), out
