"""Builds the paper's models by name; every argument is checked before any compute."""

import jax.numpy as jnp
from flax import linen as nn

from gpj.models.conv import PADDINGS
from gpj.models.heads import GAPNet, PermuteNet
from gpj.models.resnet import STEMS, ResNet18, ResNet34, ResNet50
from gpj.models.vgg import VGG11, VGG16

_RESNETS = {"resnet18": ResNet18, "resnet34": ResNet34, "resnet50": ResNet50}
_VGGS = {"vgg11": VGG11, "vgg16": VGG16}
MODEL_NAMES = (*_RESNETS, *_VGGS)
HEADS = ("gapnet", "permutenet")
SHUFFLE_LAYERS = (1, 2, 3, 4, 5)


def _check_choice(arg: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{arg}={value!r} is not one of {choices}")


def build_model(
    name: str,
    *,
    num_classes: int,
    head: str = "gapnet",
    width: float = 1.0,
    stem: str = "paper",
    padding: str = "zero",
    bn_momentum: float = 0.9,
    shuffle_layer: int = 5,
    dtype=jnp.float32,
) -> nn.Module:
    """Returns a linen model whose `apply(variables, x, train=...)` gives `(logits, out)`.

    Args:
      name: backbone, one of `MODEL_NAMES`.
      num_classes: number of logits.
      head: `gapnet` (3x3 conv to classes, then GAP) or `permutenet` (GAP, permute, dense).
      width: multiplier of the backbone widths (0.125 makes a tiny test model).
      stem: ResNet stem, one of `STEMS`; VGG has no separate stem and ignores it.
      padding: padding mode of every conv, one of `PADDINGS`.
      bn_momentum: BatchNorm running-average momentum (flax convention, weight of the old value).
      shuffle_layer: 1..4 permutes the input channels of that ResNet stage; 5 permutes after GAP
        (PermuteNet head only; with GAPNet, 5 means no permutation).
      dtype: computation dtype; logits are float32.

    Raises:
      ValueError: an argument outside its valid values; the message names it.
    """
    _check_choice("name", name, MODEL_NAMES)
    _check_choice("head", head, HEADS)
    _check_choice("stem", stem, STEMS)
    _check_choice("padding", padding, PADDINGS)
    _check_choice("shuffle_layer", shuffle_layer, SHUFFLE_LAYERS)
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be at least 1")
    if width <= 0:
        raise ValueError(f"width={width!r} must be positive")
    if not 0.0 <= bn_momentum < 1.0:
        raise ValueError(f"bn_momentum={bn_momentum!r} must be in [0, 1)")

    common = {"width": width, "padding": padding, "bn_momentum": bn_momentum, "dtype": dtype}
    if name in _VGGS:
        if shuffle_layer != 5:
            raise ValueError(
                f"shuffle_layer={shuffle_layer!r} is only supported for ResNet; VGG needs 5"
            )
        backbone = _VGGS[name](**common)
    else:
        backbone = _RESNETS[name](stem=stem, shuffle_layer=shuffle_layer, **common)

    if head == "gapnet":
        return GAPNet(backbone, num_classes, padding=padding, dtype=dtype)
    return PermuteNet(backbone, num_classes, shuffle_layer=shuffle_layer, dtype=dtype)
