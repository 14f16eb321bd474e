"""Builds the paper's models and DeepLabv3 by name; every argument is checked before any compute."""

import jax.numpy as jnp
from flax import linen as nn

from gpj.models.blurpool import FILTER_SIZES
from gpj.models.conv import PADDINGS, scaled_width
from gpj.models.deeplab import DeepLabV3
from gpj.models.heads import GAPNet, LinearNet, PermuteNet
from gpj.models.resnet import STEMS, ResNet10, ResNet18, ResNet34, ResNet50, stage_schedule
from gpj.models.vgg import VGG11, VGG16

_RESNETS = {
    "resnet10": ResNet10,
    "resnet18": ResNet18,
    "resnet34": ResNet34,
    "resnet50": ResNet50,
}
_VGGS = {"vgg11": VGG11, "vgg16": VGG16}
RESNET_NAMES = tuple(_RESNETS)  # the backbones DeepLabv3 takes
MODEL_NAMES = (*_RESNETS, *_VGGS)
HEAD_NAMES = {  # every head, by its name in tables and figures
    "gapnet": "GAPNet",
    "permutenet": "PermuteNet",
    "fixedperm": "fixed permutation",
    "sum": "channel sum",
    "linear": "linear",
}
HEADS = tuple(HEAD_NAMES)
PROBE_HEADS = HEADS[:4]  # the canvas probe's heads; `linear` is the invariance models'
SHUFFLE_LAYERS = (1, 2, 3, 4, 5)
BLUR_FILTERS = (0, *FILTER_SIZES)
OUTPUT_STRIDES = (8, 16)


def _check_choice(arg: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{arg}={value!r} is not one of {choices}")


def _check_common(num_classes: int, width: float, bn_momentum: float) -> None:
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be at least 1")
    if width <= 0:
        raise ValueError(f"width={width!r} must be positive")
    if not 0.0 <= bn_momentum < 1.0:
        raise ValueError(f"bn_momentum={bn_momentum!r} must be in [0, 1)")


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
      head: `gapnet` (3x3 conv to classes, then GAP), `permutenet` (GAP, permute, dense),
        its controls `fixedperm` (one fixed permutation instead of a fresh one per pass) and
        `sum` (GAP, sum of the channels, one weight and bias per class), or `linear` (GAP, dense).
      width: multiplier of the backbone widths (0.125 makes a tiny test model).
      stem: ResNet stem, one of `STEMS`; VGG has no separate stem and ignores it.
      padding: padding mode of every conv, one of `PADDINGS`.
      bn_momentum: BatchNorm running-average momentum (flax convention, weight of the old value).
      shuffle_layer: 1..4 permutes the input channels of that ResNet stage; 5 permutes after GAP
        (permutenet and fixedperm heads only; with the other heads, 5 means no permutation).
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
    _check_common(num_classes, width, bn_momentum)

    fixed = head == "fixedperm"
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
        backbone = _RESNETS[name](
            stem=stem, shuffle_layer=shuffle_layer, fixed_permutation=fixed, **common
        )

    if head == "gapnet":
        return GAPNet(backbone, num_classes, padding=padding, dtype=dtype)
    if head in ("linear", "sum"):
        return LinearNet(backbone, num_classes, channel_sum=head == "sum", dtype=dtype)
    return PermuteNet(
        backbone, num_classes, shuffle_layer=shuffle_layer, fixed_permutation=fixed, dtype=dtype
    )


def build_segmentation_model(
    name: str,
    *,
    num_classes: int,
    width: float = 1.0,
    stem: str = "paper",
    padding: str = "zero",
    output_stride: int = 8,
    aspp_rates: tuple[int, ...] = (12, 24, 36),
    aspp_features: int = 256,
    bn_momentum: float = 0.9,
    dropout_rate: float = 0.1,
    dtype=jnp.float32,
) -> nn.Module:
    """Returns a DeepLabv3 on a dilated ResNet: `apply(variables, x, train=...)` -> `(logits, out)`.

    Logits are float32 (N, H, W, num_classes) for an (N, H, W, C) input. Training needs a
    `dropout` rng.

    Args:
      name: backbone, a ResNet name of `MODEL_NAMES`.
      num_classes: number of classes.
      width: multiplier of the backbone and ASPP widths.
      stem: ResNet stem, one of `STEMS`.
      padding: padding mode of every conv, one of `PADDINGS`.
      output_stride: total stride of the backbone features, one of `OUTPUT_STRIDES`; the stem must
        be able to reach it (the `cifar` stem only reaches 8).
      aspp_rates: dilations of the ASPP 3x3 branches, positive integers.
      aspp_features: ASPP channels before `width` scaling.
      bn_momentum: BatchNorm running-average momentum (flax convention, weight of the old value).
      dropout_rate: dropout rate after the ASPP, in [0, 1).
      dtype: computation dtype; logits are float32.

    Raises:
      ValueError: an argument outside its valid values; the message names it.
    """
    _check_choice("name", name, RESNET_NAMES)
    _check_choice("stem", stem, STEMS)
    _check_choice("padding", padding, PADDINGS)
    _check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    stage_schedule(stem, output_stride)  # raises if the stem cannot reach output_stride
    _check_common(num_classes, width, bn_momentum)
    aspp_rates = tuple(aspp_rates)
    if not aspp_rates or not all(isinstance(rate, int) and rate > 0 for rate in aspp_rates):
        raise ValueError(f"aspp_rates={aspp_rates!r} must be a non-empty tuple of positive ints")
    if aspp_features < 1:
        raise ValueError(f"aspp_features={aspp_features!r} must be at least 1")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate={dropout_rate!r} must be in [0, 1)")

    backbone = _RESNETS[name](
        width=width,
        stem=stem,
        padding=padding,
        bn_momentum=bn_momentum,
        output_stride=output_stride,
        dtype=dtype,
    )
    return DeepLabV3(
        backbone,
        num_classes,
        aspp_rates=aspp_rates,
        aspp_features=scaled_width(aspp_features, width),
        padding=padding,
        bn_momentum=bn_momentum,
        dropout_rate=dropout_rate,
        dtype=dtype,
    )


# The `config.model` fields that each builder takes, besides `name` (others are not model shape).
_CLASSIFIER_FIELDS = ("width", "stem", "padding", "bn_momentum", "shuffle_layer", "blur_filter")
_SEGMENTATION_FIELDS = (
    *("width", "stem", "padding", "bn_momentum", "output_stride"),
    *("aspp_rates", "aspp_features", "dropout_rate"),
)


def from_config(model_config, *, num_classes: int, head: str, **overrides) -> nn.Module:
    """The model that a `config.model` section describes, with the given head.

    Args:
      model_config: a `config.model` ConfigDict (or mapping); fields it lacks keep the builder's
        defaults.
      num_classes: number of logits (classes per pixel for `deeplab`).
      head: one of `HEADS`, or `deeplab` for `build_segmentation_model`.
      **overrides: builder arguments that replace the config's (e.g. `blur_filter=0`).
    """
    segmentation = head == "deeplab"
    names = _SEGMENTATION_FIELDS if segmentation else _CLASSIFIER_FIELDS
    kwargs = {k: model_config[k] for k in names if k in model_config} | overrides
    if "aspp_rates" in kwargs:
        kwargs["aspp_rates"] = tuple(kwargs["aspp_rates"])
    if segmentation:
        return build_segmentation_model(model_config["name"], num_classes=num_classes, **kwargs)
    return build_model(model_config["name"], num_classes=num_classes, head=head, **kwargs)
