"""Flax linen models of gpj: ResNet/VGG backbones, padding-aware conv, BlurPool, heads."""

from gpj.models.conv import PADDINGS
from gpj.models.registry import BLUR_FILTERS, HEADS, MODEL_NAMES, STEMS, build_model

__all__ = ["BLUR_FILTERS", "HEADS", "MODEL_NAMES", "PADDINGS", "STEMS", "build_model"]
