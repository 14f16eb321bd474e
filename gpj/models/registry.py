"""Builds the paper's models by name; every argument is checked before any compute."""

import jax.numpy as jnp
from flax import linen as nn

from gpj.models.blurpool import FILTER_SIZES
from gpj.models.conv import PADDINGS
from gpj.models.heads import GAPNet, LinearNet, PermuteNet
from gpj.models.resnet import STEMS, ResNet18, ResNet34, ResNet50
from gpj.models.vgg import VGG11, VGG16

_RESNETS = {"resnet18": ResNet18, "resnet34": ResNet34, "resnet50": ResNet50}
_VGGS = {"vgg11": VGG11, "vgg16": VGG16}
MODEL_NAMES = (*_RESNETS, *_VGGS)
HEADS = ("gapnet", "permutenet", "linear")
SHUFFLE_LAYERS = (1, 2, 3, 4, 5)
BLUR_FILTERS = (0, *FILTER_SIZES)


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
    blur_filter: int = 0,
    dtype=jnp.float32,
) -> nn.Module:
    """Returns a linen model whose `apply(variables, x, train=...)` gives `(logits, out)`.

    Args:
      name: backbone, one of `MODEL_NAMES`.
      num_classes: number of logits.
      head: `gapnet` (3x3 conv to classes, then GAP), `permutenet` (GAP, permute, dense) or
        `linear` (GAP, dense).
      width: multiplier of the backbone widths (0.125 makes a tiny test model).
      stem: ResNet stem, one of `STEMS`; VGG has no separate stem and ignores it.
      padding: padding mode of every conv, one of `PADDINGS`.
      bn_momentum: BatchNorm running-average momentum (flax convention, weight of the old value).
      shuffle_layer: 1..4 permutes the input channels of that ResNet stage; 5 permutes after GAP
        (PermuteNet head only; with the other heads, 5 means no permutation).
      blur_filter: 0 for plain strided downsampling; 1..5 anti-aliases every strided conv and
        max-pool with a BlurPool of that binomial filter size (Zhang 2019). Params are unchanged.
      dtype: computation dtype; logits are float32.

    Raises:
      ValueError: an argument outside its valid values; the message names it.
    """
    _check_choice("name", name, MODEL_NAMES)
    _check_choice("head", head, HEADS)
    _check_choice("stem", stem, STEMS)
    _check_choice("padding", padding, PADDINGS)
    _check_choice("shuffle_layer", shuffle_layer, SHUFFLE_LAYERS)
    _check_choice("blur_filter", blur_filter, BLUR_FILTERS)
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be at least 1")
    if width <= 0:
        raise ValueError(f"width={width!r} must be positive")
    if not 0.0 <= bn_momentum < 1.0:
        raise ValueError(f"bn_momentum={bn_momentum!r} must be in [0, 1)")

    common = {
        "width": width,
        "padding": padding,
        "bn_momentum": bn_momentum,
        "blur_filter": blur_filter,
        "dtype": dtype,
    }
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
    if head == "linear":
        return LinearNet(backbone, num_classes, dtype=dtype)
    return PermuteNet(backbone, num_classes, shuffle_layer=shuffle_layer, dtype=dtype)
