"""PyTorch state dicts (torchvision ResNet, VainF's DeepLabv3) as gpj variables, key by key.

gpj's modules carry torchvision's names (`conv1`, `bn1`, `layer1_0/conv2`, `downsample_conv` …),
so every gpj variable has exactly one PyTorch key. This module spells that correspondence out,
converts layouts (conv OIHW → HWIO, linear (out, in) → (in, out)) and refuses a state dict with any
missing, unknown or mis-shaped key. It needs numpy only; reading `.pth` files is the command
line's (`python -m gpj.convert`).

Architectures:
  resnet18/34/50: torchvision's ImageNet ResNet (`conv1`, `bn1`, `layer1.0.conv1`,
    `layer1.0.downsample.0/1`, `fc`), as gpj's ResNet with the `imagenet` stem and a linear head.
  deeplabv3_resnet50: DeepLabv3 of VainF's DeepLabV3Plus-Pytorch, the model of the paper's
    Cityscapes experiments: `backbone.*` (torchvision ResNet-50 without `fc`, the last stage(s)
    dilated) and `classifier.classifier.*` (ASPP `.0` with `convs.0` 1x1, `convs.1-3` dilated 3x3,
    `convs.4` image pooling and `project`; then a 3x3 conv `.1`, BN `.2` and a 1x1 conv `.4`).
"""

import dataclasses
import functools
import re
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from gpj.errors import CheckpointError
from gpj.models.registry import build_model, build_segmentation_model


@dataclasses.dataclass(frozen=True)
class Arch:
    """A PyTorch architecture gpj can hold exactly."""

    backbone: str  # gpj ResNet name
    segmentation: bool
    prefix: str  # of the backbone keys
    classes_key: str  # its first dimension is the number of classes
    source: str  # where the layout comes from, for messages


ARCHS = {
    "resnet18": Arch("resnet18", False, "", "fc.weight", "torchvision resnet18"),
    "resnet34": Arch("resnet34", False, "", "fc.weight", "torchvision resnet34"),
    "resnet50": Arch("resnet50", False, "", "fc.weight", "torchvision resnet50"),
    "deeplabv3_resnet50": Arch(
        "resnet50",
        True,
        "backbone.",
        "classifier.classifier.4.weight",
        "VainF DeepLabV3Plus-Pytorch deeplabv3_resnet50",
    ),
}

# VainF's `_segm_resnet`: output stride 16 dilates layer4, 8 also layer3; ASPP rates follow.
ASPP_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}
_ASPP_KEY = "classifier.classifier.0.convs.0.0.weight"

_LEAVES = {
    "kernel": "weight",
    "scale": "weight",
    "bias": "bias",
    "mean": "running_mean",
    "var": "running_var",
}
_MODULES = {
    "head_dense": "fc",
    "downsample_conv": "downsample.0",
    "downsample_bn": "downsample.1",
    "aspp": "classifier.classifier.0",
    "project_conv": "project.0",
    "project_bn": "project.1",
    "head_conv": "classifier.classifier.1",
    "head_bn": "classifier.classifier.2",
    "classifier": "classifier.classifier.4",
}


def torch_key(path: tuple[str, ...], arch: Arch, num_rates: int) -> str:
    """The PyTorch key of the gpj variable at `path` (collection, modules…, leaf)."""
    parts = []
    for name in path[1:-1]:
        if name == "backbone":
            parts.append(arch.prefix.rstrip("."))
        elif m := re.fullmatch(r"layer(\d+)_(\d+)", name):
            parts.append(f"layer{m[1]}.{m[2]}")
        elif m := re.fullmatch(r"branch(\d+)_(conv|bn)", name):
            parts.append(f"convs.{m[1]}.{0 if m[2] == 'conv' else 1}")
        elif m := re.fullmatch(r"pool_(conv|bn)", name):
            # The image-pooling branch follows the 1x1 and 3x3 branches; its [0] is the pooling.
            parts.append(f"convs.{num_rates + 1}.{1 if m[1] == 'conv' else 2}")
        else:
            parts.append(_MODULES.get(name, name))
    return ".".join([p for p in parts if p] + [_LEAVES[path[-1]]])


def to_torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """PyTorch's shape of a gpj array: HWIO → OIHW, (in, out) → (out, in)."""
    if len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    if len(shape) == 2:
        return (shape[1], shape[0])
    return tuple(shape)


def from_torch(value: np.ndarray) -> np.ndarray:
    """A PyTorch weight in gpj's layout, as float32."""
    value = np.asarray(value, np.float32)
    if value.ndim == 4:
        return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    if value.ndim == 2:
        return np.ascontiguousarray(value.T)
    return value


def build(
    arch: str,
    *,
    num_classes: int,
    width: float = 1.0,
    output_stride: int = 16,
    aspp_features: int = 256,
):
    """The gpj model that holds `arch`'s weights and computes what PyTorch computes (eval mode).

    Args:
      arch: one of `ARCHS`.
      num_classes: number of classes.
      width: channel multiplier (1.0 for the published models).
      output_stride: deeplabv3 only: 16 or 8, as the checkpoint was trained.
      aspp_features: deeplabv3 only: ASPP channels before `width` scaling.
    """
    spec = ARCHS[arch]
    common = {"num_classes": num_classes, "width": width, "stem": "imagenet", "padding": "zero"}
    if not spec.segmentation:
        return build_model(spec.backbone, head="linear", **common)
    return build_segmentation_model(
        spec.backbone,
        output_stride=output_stride,
        aspp_rates=ASPP_RATES[output_stride],
        aspp_features=aspp_features,
        **common,
    )


def convert(
    state_dict: Mapping[str, np.ndarray], arch: str, *, output_stride: int = 16, source: str = ""
) -> tuple[dict, dict]:
    """PyTorch `state_dict` (numpy values) → gpj `{"params", "batch_stats"}` and a description.

    Width, input channels, class count and ASPP channels are read from the weights; every key
    is then checked against the gpj model's variables (built with `jax.eval_shape`, no compute).
    BatchNorm's `num_batches_tracked` is the only key skipped.

    Args:
      state_dict: PyTorch key → array, with any wrapper and `module.` prefix already removed.
      arch: one of `ARCHS`.
      output_stride: deeplabv3 only: 16 (VainF's layer4 dilated) or 8 (layer3 and layer4).
      source: the checkpoint's name, for error messages.

    Returns:
      The variables (numpy float32) and a JSON-able description: arch, the model settings that
      rebuild it (`config`: gpj config fields and their values), key and parameter counts.

    Raises:
      CheckpointError: missing or unknown keys, or a weight of the wrong shape; one message
        lists them.
    """
    if arch not in ARCHS:
        raise CheckpointError(f"arch={arch!r} is not one of {tuple(ARCHS)}")
    spec = ARCHS[arch]
    if spec.segmentation and output_stride not in ASPP_RATES:
        raise CheckpointError(f"output_stride={output_stride!r} is not one of {tuple(ASPP_RATES)}")
    source = source or "the state dict"
    settings = _infer_settings(state_dict, spec)
    try:
        model = build(arch, output_stride=output_stride, **settings["build"])
    except ValueError as e:
        raise CheckpointError(f"{source}: cannot build {arch} from its weights ({e})") from e
    shapes = _variable_shapes(model, settings["input_channels"])
    num_rates = len(ASPP_RATES[output_stride]) if spec.segmentation else 0
    expected = {torch_key(path, spec, num_rates): path for path in shapes}
    batch_norms = {key.rsplit(".", 1)[0] for key in expected if key.endswith(".running_mean")}
    skipped = {f"{prefix}.num_batches_tracked" for prefix in batch_norms} & set(state_dict)

    missing = sorted(set(expected) - set(state_dict))
    unknown = sorted(set(state_dict) - set(expected) - skipped)
    describe = _describe(arch, settings)
    if missing or unknown:
        problems = []
        if missing:
            count, verb = _keys(missing)
            problems.append(f"{count} of {describe} {verb} missing: {_listing(missing)}")
        if unknown:
            count, verb = _keys(unknown)
            problems.append(f"{count} {verb} not part of {describe}: {_listing(unknown)}")
        raise CheckpointError(f"{source}: {'; '.join(problems)}")
    wrong = []
    for key, path in expected.items():
        have, want = tuple(np.shape(state_dict[key])), to_torch_shape(shapes[path])
        if have != want:
            wrong.append(f"{key} has shape {have}, {describe} needs {want}")
    if wrong:
        raise CheckpointError(f"{source}: {_listing(wrong, limit=4)}")

    flat = {path: from_torch(state_dict[key]) for key, path in expected.items()}
    variables = traverse_util.unflatten_dict(flat)
    info = {
        "arch": arch,
        "layout": spec.source,
        "num_classes": settings["build"]["num_classes"],
        "input_channels": settings["input_channels"],
        "width": settings["build"]["width"],
        "num_keys": len(expected),
        "num_skipped_keys": len(skipped),
        "num_params": int(sum(v.size for p, v in flat.items() if p[0] == "params")),
        "config": _config_fields(arch, settings, output_stride),
    }
    if spec.segmentation:
        info.update(output_stride=output_stride, aspp_rates=list(ASPP_RATES[output_stride]))
    return variables, info


def _infer_settings(state_dict, spec: Arch) -> dict:
    """Width, input channels, classes and ASPP channels, read from the weights that set them.

    A missing key falls back to the published model's value; the key check then reports it.
    """

    def shape(key):
        return tuple(np.shape(state_dict[key])) if key in state_dict else ()

    conv1 = shape(spec.prefix + "conv1.weight")
    width, channels = (conv1[0] / 64, conv1[1]) if len(conv1) == 4 and conv1[0] else (1.0, 3)
    classes = shape(spec.classes_key)
    published_classes = 19 if spec.segmentation else 1000
    build_args = {"num_classes": classes[0] if classes else published_classes, "width": width}
    if spec.segmentation:
        aspp = shape(_ASPP_KEY)
        build_args["aspp_features"] = max(1, round(aspp[0] / width)) if aspp else 256
    return {"build": build_args, "input_channels": channels}


def _variable_shapes(model, input_channels: int) -> dict:
    """Flat {(collection, modules…, leaf): shape} of the model's variables, without compute."""
    rngs = {name: jax.random.key(0) for name in ("params", "permute", "dropout")}
    x = jax.ShapeDtypeStruct((1, 128, 128, input_channels), jnp.float32)
    shapes = jax.eval_shape(functools.partial(model.init, train=False), rngs, x)
    return {path: leaf.shape for path, leaf in traverse_util.flatten_dict(shapes).items()}


def _config_fields(arch: str, settings: dict, output_stride: int) -> dict:
    """The gpj `model.*` config values that rebuild the converted model."""
    spec = ARCHS[arch]
    fields = {
        "model.name": spec.backbone,
        "model.width": settings["build"]["width"],
        "model.stem": "imagenet",
        "model.padding": "zero",
    }
    if spec.segmentation:
        fields.update(
            {
                "model.output_stride": output_stride,
                "model.aspp_rates": list(ASPP_RATES[output_stride]),
                "model.aspp_features": settings["build"]["aspp_features"],
            }
        )
    return fields


def _describe(arch: str, settings: dict) -> str:
    b = settings["build"]
    parts = [] if b["width"] == 1.0 else [f"width {b['width']:g}"]
    parts += [f"{settings['input_channels']} input channels", f"{b['num_classes']} classes"]
    return f"{arch} ({', '.join(parts)})"


def _keys(keys: list) -> tuple[str, str]:
    return ("1 key", "is") if len(keys) == 1 else (f"{len(keys)} keys", "are")


def _listing(items, limit: int = 8) -> str:
    """The first `limit` items, then how many more there are."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, … and {len(items) - limit} more"
