"""Converts PyTorch weights into a gpj checkpoint that configs start from (`model.init_from`).

  python -m gpj.convert --torch_checkpoint=resnet50-0676ba61.pth --arch=resnet50 --out=weights/r50
  python -m gpj.convert --torch_checkpoint=best_deeplabv3_resnet50_cityscapes_os16.pth \\
      --arch=deeplabv3_resnet50 --out=weights/deeplabv3-cityscapes

The checkpoint may be a bare state dict, or a dict holding it under `model_state` (VainF's
DeepLabV3Plus-Pytorch, the paper's segmentation code) or `state_dict`; a DataParallel `module.`
prefix is removed. It is read with `torch.load(weights_only=True)`: tensors and plain data only,
no code runs. Needs PyTorch: `pip install -e '.[torch]'`.
"""

import os
import sys

import numpy as np
from absl import app, flags, logging

from gpj.convert import store, torch_layout
from gpj.errors import CheckpointError, GpjError

_CHECKPOINT = flags.DEFINE_string("torch_checkpoint", None, "PyTorch checkpoint file (.pth).")
_ARCH = flags.DEFINE_enum("arch", None, list(torch_layout.ARCHS), "Architecture of the weights.")
_OUT = flags.DEFINE_string("out", None, "Folder to write the gpj checkpoint into.")
_OUTPUT_STRIDE = flags.DEFINE_enum(
    "output_stride",
    None,
    [str(s) for s in torch_layout.ASPP_RATES],
    "deeplabv3_resnet50 only: the output stride it was trained with (default 16; 8 dilates "
    "layer3 too). Sets the dilations, not the weights.",
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace converted weights already in --out.")
flags.mark_flags_as_required(["torch_checkpoint", "arch", "out"])

WRAPPERS = ("model_state", "state_dict")  # VainF's training checkpoints; other training scripts
PARALLEL_PREFIX = "module."


def load_state_dict(path: str) -> tuple[dict, str]:
    """The state dict of a PyTorch checkpoint as numpy arrays, and how it was stored.

    Raises:
      CheckpointError: the file is missing, unreadable, needs code to unpickle, or holds no
        state dict.
    """
    import torch  # optional dependency: only this command needs it

    # VainF's checkpoints store the best mIoU as a numpy scalar; allowing numpy scalars and
    # dtypes (under numpy 1's and 2's module names) runs no code beyond building them.
    scalar = (np._core if hasattr(np, "_core") else np.core).multiarray.scalar
    numpy_types = [(scalar, f"numpy.{core}.multiarray.scalar") for core in ("core", "_core")]
    numpy_types.append(np.dtype)
    numpy_types += [type(np.dtype(t)) for t in ("f2", "f4", "f8", "i4", "i8", "u1", "bool")]
    try:
        with torch.serialization.safe_globals(numpy_types):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f"--torch_checkpoint={path}: no such file") from e
    except IsADirectoryError as e:
        raise CheckpointError(f"--torch_checkpoint={path} is a folder, not a file") from e
    except Exception as e:  # torch raises many types for unreadable or unsafe files
        reason = _torch_reason(e)
        if "Unsupported global" in reason:
            raise CheckpointError(
                f"{path} cannot be read safely (weights_only=True): {reason}"
            ) from e
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({reason})") from e

    layout = "state dict"
    if isinstance(checkpoint, dict):
        for wrapper in WRAPPERS:
            if isinstance(checkpoint.get(wrapper), dict):
                checkpoint, layout = checkpoint[wrapper], f"state dict under {wrapper!r}"
                break
    if not isinstance(checkpoint, dict) or not all(
        isinstance(v, torch.Tensor) for v in checkpoint.values()
    ):
        keys = list(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(
            f"{path} holds no state dict: neither tensors by name nor a dict with one of "
            f"{WRAPPERS} (it holds {keys})"
        )
    if checkpoint and all(k.startswith(PARALLEL_PREFIX) for k in checkpoint):
        checkpoint = {k[len(PARALLEL_PREFIX) :]: v for k, v in checkpoint.items()}
        layout += f", {PARALLEL_PREFIX!r} prefix removed"
    return {k: v.detach().cpu().float().numpy() for k, v in checkpoint.items()}, layout


def _torch_reason(error: Exception) -> str:
    """The line of a `torch.load` error that says what is wrong (it wraps it in advice)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0].split(". ")[0] if lines else type(error).__name__


def convert_file(path: str, arch: str, out: str, *, output_stride: int = 16, overwrite=False):
    """Converts the PyTorch checkpoint `path` of `arch` and writes it to `out`.

    Returns:
      The description written to `out/conversion.json`.
    """
    state_dict, layout = load_state_dict(path)
    variables, info = torch_layout.convert(
        state_dict, arch, output_stride=output_stride, source=path
    )
    info = {"source": os.path.abspath(path), "stored_as": layout, **info}
    store.save(out, variables, info, overwrite=overwrite)
    return info


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    try:
        if _OUTPUT_STRIDE.value and not torch_layout.ARCHS[_ARCH.value].segmentation:
            raise CheckpointError(f"--output_stride applies to deeplabv3 only, not {_ARCH.value}")
        try:
            import torch  # noqa: F401
        except ImportError as e:
            raise GpjError("gpj.convert needs PyTorch: pip install -e '.[torch]'") from e
        info = convert_file(
            _CHECKPOINT.value,
            _ARCH.value,
            _OUT.value,
            output_stride=int(_OUTPUT_STRIDE.value or 16),
            overwrite=_OVERWRITE.value,
        )
    except GpjError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    overrides = " ".join(f"--config.{k}={_flag_value(v)}" for k, v in info["config"].items())
    print(
        f"converted {info['num_keys']} weights ({info['num_params']:,} parameters) of "
        f"{info['arch']} with {info['num_classes']} classes into {os.path.abspath(_OUT.value)}\n"
        f"start a run from them with:\n  --config.model.init_from={os.path.abspath(_OUT.value)} "
        f"{overrides}"
    )


def _flag_value(value) -> str:
    """A config value as a command-line override reads it."""
    return f"'({', '.join(map(str, value))})'" if isinstance(value, list) else str(value)


def parse_flags(argv):
    """absl flag parsing with mistakes reported in one `error:` line."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
