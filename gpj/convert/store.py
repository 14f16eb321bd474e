"""Converted weights on disk (written by `python -m gpj.convert`), and states started from them.

A converted folder holds `variables/`, an orbax checkpoint of `{"params", "batch_stats"}` laid
out as a gpj model's variables, and `conversion.json`, which says what was converted and which
config values rebuild the model. A config names such a folder in `model.init_from`: `check_config`
checks it fits the config, `start_from` puts its weights into a run's first state.
"""

import json
import os
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from flax import traverse_util

from gpj.errors import CheckpointError, ConfigError
from gpj.validation import check_positive, field

VARIABLES = "variables"
INFO = "conversion.json"
BACKBONE = "backbone"  # the submodule name of every gpj model's backbone


def save(directory: str, variables: dict, info: dict, *, overwrite: bool = False) -> None:
    """Writes `variables` and `info` into `directory` (created if needed).

    Raises:
      CheckpointError: `directory` already holds converted weights and `overwrite` is False,
        or it cannot be written.
    """
    directory = os.path.abspath(os.path.expanduser(directory))
    target = os.path.join(directory, VARIABLES)
    if os.path.exists(target) or os.path.exists(os.path.join(directory, INFO)):
        if not overwrite:
            raise CheckpointError(
                f"{directory} already holds converted weights; choose another folder or "
                "pass --overwrite"
            )
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.makedirs(directory, exist_ok=True)
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(target, variables)
        with open(os.path.join(directory, INFO), "w") as f:
            json.dump(info, f, indent=1)
    except OSError as e:
        raise CheckpointError(f"cannot write {directory} ({e.strerror or e})") from e


def read_info(directory: str) -> dict:
    """The `conversion.json` of a converted folder.

    Raises:
      CheckpointError: the folder, its `conversion.json` or its `variables/` is missing, or the
        JSON cannot be read.
    """
    directory = os.path.expanduser(directory)
    path = os.path.join(directory, INFO)
    if not os.path.isdir(directory):
        raise CheckpointError(f"{directory} is not a folder")
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"{directory} is not a folder written by `python -m gpj.convert`: cannot read "
            f"{INFO} ({getattr(e, 'strerror', None) or e})"
        ) from e
    if not isinstance(info, dict) or "arch" not in info:
        raise CheckpointError(f"{path} does not describe converted weights (no 'arch')")
    if not os.path.isdir(os.path.join(directory, VARIABLES)):
        raise CheckpointError(f"{directory} has {INFO} but no {VARIABLES}/ checkpoint")
    return info


def load(directory: str) -> tuple[dict, dict]:
    """The converted variables (host numpy arrays) and `conversion.json` of `directory`."""
    info = read_info(directory)
    path = os.path.abspath(os.path.join(os.path.expanduser(directory), VARIABLES))
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            metadata = checkpointer.metadata(path).item_metadata
            target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), metadata)
            variables = checkpointer.restore(path, target)
    except Exception as e:  # orbax raises many types; all mean an unreadable checkpoint
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read the converted weights in {path}: {reason}") from e
    return variables, info


def merge(target: dict, converted: dict) -> tuple[dict, dict]:
    """Puts converted weights into a model's variables, submodule by top-level submodule.

    The backbone must match exactly. Every other submodule (a head, ASPP, a classifier) is taken
    when the converted weights hold it with the same names and shapes, else it keeps its value
    in `target`: a classifier for another number of classes starts fresh.

    Args:
      target: the model's `{"params", "batch_stats"}` (arrays or shape structs).
      converted: converted `{"params", "batch_stats"}`.

    Returns:
      The merged variables (converted numpy arrays where taken, `target`'s leaves elsewhere)
      and `{"loaded", "fresh", "unused"}`: sorted names of the taken submodules, the model's
      submodules left as they were, and converted submodules this model has no place for.

    Raises:
      CheckpointError: the backbone differs; the message names the first differences.
    """
    target_parts, converted_parts = _by_submodule(target), _by_submodule(converted)
    backbone = converted_parts.get(BACKBONE, {})
    differences = _differences(target_parts.get(BACKBONE, {}), backbone)
    if differences:
        raise CheckpointError(
            "the converted backbone does not fit this model's: "
            + "; ".join(differences[:4])
            + (f"; … and {len(differences) - 4} more" if len(differences) > 4 else "")
        )
    merged, summary = {}, {"loaded": [], "fresh": [], "unused": []}
    for name, leaves in target_parts.items():
        taken = name in converted_parts and not _differences(leaves, converted_parts[name])
        summary["loaded" if taken else "fresh"].append(name)
        merged.update(converted_parts[name] if taken else leaves)
    summary["unused"] = sorted(set(converted_parts) - set(target_parts))
    summary = {k: sorted(v) for k, v in summary.items()}
    return traverse_util.unflatten_dict(merged), summary


def init_state(state, directory: str):
    """`state` with the converted weights of `directory` merged into its params and batch stats.

    Each array keeps the sharding of the one it replaces. The optimizer state is kept: at step 0
    it holds zeros and counts only (Adam, SGD), which do not depend on the parameter values.

    Returns:
      The state, `merge`'s summary and the folder's `conversion.json`.
    """
    converted, info = load(directory)
    variables, summary = merge(state.variables, converted)
    placed = jax.tree.map(
        lambda new, old: (
            old if new is old else jax.device_put(np.asarray(new, old.dtype), old.sharding)
        ),
        variables,
        state.variables,
    )
    state = state.replace(params=placed["params"], batch_stats=placed["batch_stats"])
    return state, summary, info


# Config fields that set the shapes of a model's weights: converted weights need the same values.
_SHAPE_FIELDS = ("model.name", "model.width", "model.aspp_features")


def check_config(config) -> None:
    """`model.init_from` is a readable converted folder that fits the model's shapes.

    `train.num_epochs` must be positive, or 0 with `model.init_from` (evaluate as loaded).

    Raises:
      ConfigError: either does not hold.
    """
    init_from = config.model.init_from
    if not (init_from and config.train.num_epochs == 0):
        try:
            check_positive(config, "train.num_epochs")
        except ConfigError as e:
            raise ConfigError(
                f"{e} (0, to evaluate without training, needs model.init_from)"
            ) from None
    if not init_from:
        return
    try:
        info = read_info(init_from)
    except CheckpointError as e:
        raise ConfigError(f"model.init_from={init_from!r}: {e}") from e
    for path in _SHAPE_FIELDS:
        wanted = info.get("config", {}).get(path)
        if wanted is not None and _field_or_none(config, path) not in (None, wanted):
            raise ConfigError(
                f"model.init_from={init_from!r} holds {info['arch']} weights, which need "
                f"{path}={wanted!r}; the config has {field(config, path)!r}"
            )


def start_from(state, config, run_dir: str, *, train: bool):
    """`state` with the converted weights of `model.init_from`, saying what it took.

    The backbone always comes from the converted weights; a head, ASPP or classifier when they
    hold it with the same shapes, else it keeps its random init (e.g. a classifier for another
    class count). What was taken, what starts fresh and the converted model's settings that
    differ from the config (a stem or padding changed on purpose) are logged and written to
    `run_dir/init_from.json`.

    Raises:
      CheckpointError: the backbone does not fit, or `train` is False (evaluation only) and some
        part of the model would keep its random init.
    """
    path = config.model.init_from
    try:
        state, summary, info = init_state(state, path)
    except CheckpointError as e:
        raise CheckpointError(f"model.init_from={path!r}: {e}") from e
    differs = {}
    for key, converted in info.get("config", {}).items():
        current = _field_or_none(config, key)
        if current is not None and _as_list(current) != _as_list(converted):
            differs[key] = {"converted": converted, "config": _as_list(current)}
    if not train and summary["fresh"]:
        raise CheckpointError(
            f"train.num_epochs=0 evaluates the model as loaded, but model.init_from={path!r} "
            f"({info['arch']}, {info.get('num_classes')} classes) has no weights for its "
            f"{', '.join(summary['fresh'])}; train it (train.num_epochs > 0) or convert a model "
            "that has them"
        )
    logging.warning(
        "model.init_from=%s (%s): loaded %s; random init: %s; converted but unused: %s%s",
        path,
        info["arch"],
        ", ".join(summary["loaded"]),
        ", ".join(summary["fresh"]) or "none",
        ", ".join(summary["unused"]) or "none",
        "".join(
            f"; {k} is {v['config']!r}, converted with {v['converted']!r}"
            for k, v in differs.items()
        ),
    )
    if jax.process_index() == 0:
        record = {
            "path": os.path.abspath(os.path.expanduser(path)),
            "arch": info["arch"],
            "source": info.get("source"),
            **summary,
            "differs": differs,
        }
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "init_from.json"), "w") as f:
            json.dump(record, f, indent=1)
    return state


def _field_or_none(config, path: str):
    try:
        return field(config, path)
    except (KeyError, AttributeError):
        return None


def _as_list(value):
    """Tuples (config) and lists (JSON) compare equal."""
    return list(value) if isinstance(value, (list, tuple)) else value


def _by_submodule(variables: dict) -> dict:
    """{top-level submodule: {(collection, submodule, …, leaf): leaf}}."""
    parts = {}
    for path, leaf in traverse_util.flatten_dict(dict(variables)).items():
        parts.setdefault(path[1], {})[path] = leaf
    return parts


def _differences(model: dict, converted: dict) -> list[str]:
    """Where two flat variable dicts differ: wrong shapes, then missing names, then extra ones."""
    shapes, missing, extra = [], [], []
    for path in sorted(set(model) | set(converted), key=lambda p: (p[0] != "params", p)):
        name = "/".join(path)
        if path not in converted:
            missing.append(f"{name} is missing from the converted weights")
        elif path not in model:
            extra.append(f"{name} is not in this model")
        elif tuple(model[path].shape) != tuple(converted[path].shape):
            shapes.append(
                f"{name} has shape {tuple(converted[path].shape)} in the converted weights, "
                f"{tuple(model[path].shape)} in this model"
            )
    return shapes + missing + extra
