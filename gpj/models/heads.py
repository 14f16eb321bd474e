"""Heads on any backbone returning (features, out): the paper's GAPNet and PermuteNet, PermuteNet's
two controls (a fixed permutation, and the sum of the pooled channels), and linear.

Every head's `__call__(x, train, ablation=None)` passes `ablation` to the backbone and ablates its
output, named "features", before the head (see `ablation.ablate`).
"""

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from gpj.models.ablation import Ablation, ablate
from gpj.models.conv import PaddedConv
from gpj.models.permutation import channel_permutation


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


def dense_readout(
    head: nn.Module, x: jnp.ndarray, train: bool, ablation: Ablation, transform
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """`head.backbone`, global average pooling, `transform` of the pooled latent, then one dense
    layer ("head_dense") to `head.num_classes` float32 logits; call inside `head`'s compact
    method. Returns the logits and the backbone's outputs (`backbone_outputs`)."""
    _, out = backbone_outputs(head.backbone, x, train, ablation)
    latent = transform(out["latent"])
    logits = nn.Dense(head.num_classes, dtype=head.dtype, name="head_dense")(latent)
    return logits.astype(jnp.float32), out


class PermuteNet(nn.Module):
    """Backbone → global average pool → channel permutation → dense logits.

    With `shuffle_layer == 5` the pooled channels get a fresh random order from the `permute` rng
    on every call, in training and evaluation alike; for 1..4 the backbone permutes instead.
    With `fixed_permutation` the order is drawn once and kept (the fixed-permutation control: a
    linear read-out of channels in their own order, as GAPNet's).

    Attributes:
      backbone: module mapping `(x, train, ablation)` to `(features, out)`.
      num_classes: number of logits.
      shuffle_layer: 5 to permute the pooled latent here; 1..4 when the backbone permutes.
      fixed_permutation: one fixed permutation instead of a fresh one per call.
      dtype: computation dtype; logits are float32.
    """

    backbone: nn.Module
    num_classes: int
    shuffle_layer: int = 5
    fixed_permutation: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool, ablation: Ablation = None):
        def permuted(latent):
            if self.shuffle_layer != 5:
                return latent
            perm = channel_permutation(self, latent.shape[-1], self.fixed_permutation)
            return jnp.take(latent, perm, axis=-1)

        return dense_readout(self, x, train, ablation, permuted)


class LinearNet(nn.Module):
    """Backbone → global average pool → dense logits: the standard classifier, unpermuted.

    With `channel_sum`, the dense layer reads only the sum of the pooled channels,
    logit_k = a_k · Σ_d z_d + b_k: PermuteNet's sum control, all that a linear head can read
    deterministically from pooled channels whose order is drawn afresh at every pass.

    Attributes:
      backbone: module mapping `(x, train, ablation)` to `(features, out)`.
      num_classes: number of logits.
      channel_sum: read the sum of the pooled channels instead of the channels.
      dtype: computation dtype; logits are float32.
    """

    backbone: nn.Module
    num_classes: int
    channel_sum: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool, ablation: Ablation = None):
        def read(latent):
            return latent.sum(axis=-1, keepdims=True) if self.channel_sum else latent

        return dense_readout(self, x, train, ablation, read)
