"""Presets named in the config argument: `configs/probe.py:cifar10` or `:tiny,vgg16`."""

from collections.abc import Callable, Mapping

import ml_collections


def apply_presets(
    config: ml_collections.ConfigDict,
    arg: str | None,
    presets: Mapping[str, Callable[[ml_collections.ConfigDict], None]],
):
    """Applies the comma-separated presets of `arg` to `config`, in order.

    Raises:
      ValueError: naming the unknown preset and the valid ones.
    """
    for name in filter(None, (arg or "").split(",")):
        if name not in presets:
            raise ValueError(
                f"unknown preset {name!r}; valid presets: {', '.join(sorted(presets))}"
            )
        presets[name](config)
    return config
