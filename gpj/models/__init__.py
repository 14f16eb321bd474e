"""Flax linen models of gpj: ResNet/VGG backbones, padding-aware conv, GAPNet/PermuteNet heads."""

from gpj.models.conv import PADDINGS
from gpj.models.registry import HEADS, MODEL_NAMES, STEMS, build_model

__all__ = ["HEADS", "MODEL_NAMES", "PADDINGS", "STEMS", "build_model"]
