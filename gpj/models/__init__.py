"""Flax linen models of gpj: ResNet/VGG backbones, padded conv, BlurPool, heads, DeepLabv3."""

from gpj.models.ablation import channel_ablation
from gpj.models.conv import PADDINGS
from gpj.models.initialisers import INITS, PARAMS_INIT
from gpj.models.registry import (
    BLUR_FILTERS,
    HEAD_NAMES,
    HEADS,
    MODEL_NAMES,
    OUTPUT_STRIDES,
    PROBE_HEADS,
    RESNET_NAMES,
    STEMS,
    build_model,
    build_segmentation_model,
    from_config,
)

__all__ = [
    "BLUR_FILTERS",
    "HEADS",
    "HEAD_NAMES",
    "INITS",
    "MODEL_NAMES",
    "OUTPUT_STRIDES",
    "PADDINGS",
    "PARAMS_INIT",
    "PROBE_HEADS",
    "RESNET_NAMES",
    "STEMS",
    "build_model",
    "build_segmentation_model",
    "channel_ablation",
    "from_config",
]
