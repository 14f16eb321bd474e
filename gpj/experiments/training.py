"""What every experiment does around the engine: load data, train one seed, batch the test split."""

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from gpj import engine, models
from gpj.analysis import scores
from gpj.data import batches, sources
from gpj.engine import pretrained
from gpj.errors import CheckpointError, ConfigError
from gpj.provenance import environment
from gpj.validation import check_choice, check_positive, check_range, field


@dataclasses.dataclass(frozen=True)
class RunKind:
    """What all seeds of one kind of run share: model, optimizer, compiled steps, length.

    Built once per kind, so every seed after the first reuses the compiled programs.
    """

    name: str  # the run's folder in the workdir and its progress-bar label
    model: Any
    tx: Any
    num_steps: int
    train_step: Callable
    eval_step: Callable


def validate_common(config) -> None:
    """Checks the data, model, optim, train and eval fields that all experiments share."""
    check_choice(config, "data.name", sources.DATASETS)
    check_choice(config, "data.channels", (1, 3))
    check_choice(config, "model.name", models.MODEL_NAMES)
    check_choice(config, "model.stem", models.STEMS)
    check_choice(config, "model.padding", models.PADDINGS)
    check_choice(config, "optim.name", engine.OPTIMIZERS)
    check_choice(config, "optim.schedule", engine.SCHEDULES)
    for path in (
        "num_seeds",
        "data.image_size",
        "model.width",
        "model.bn_momentum",
        "optim.learning_rate",
        "train.batch_size",
        "train.log_every",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "eval.batch_size",
    ):
        check_positive(config, path)
    check_range(config, "model.bn_momentum", 0.0, 0.999999)
    check_range(config, "data.test_fraction", 0.01, 0.99)
    validate_init_from(config)


# Config fields that set the shapes of a model's weights: converted weights need the same values.
_SHAPE_FIELDS = ("model.name", "model.width", "model.aspp_features")


def validate_init_from(config) -> None:
    """`model.init_from` is a readable converted folder that fits the model's shapes.

    `train.num_epochs` must be positive, or 0 with `model.init_from` (evaluate as loaded).
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
        info = pretrained.read_info(init_from)
    except CheckpointError as e:
        raise ConfigError(f"model.init_from={init_from!r}: {e}") from e
    for path in _SHAPE_FIELDS:
        wanted = info.get("config", {}).get(path)
        if wanted is not None and _field_or_none(config, path) not in (None, wanted):
            raise ConfigError(
                f"model.init_from={init_from!r} holds {info['arch']} weights, which need "
                f"{path}={wanted!r}; the config has {field(config, path)!r}"
            )


def _field_or_none(config, path: str):
    try:
        return field(config, path)
    except (KeyError, AttributeError):
        return None


def load_data(config) -> sources.ImageDataset:
    d = config.data
    return sources.load_dataset(
        d.name,
        image_size=d.image_size,
        channels=d.channels,
        data_dir=os.path.expanduser(d.data_dir) or None,
        test_fraction=d.test_fraction,
        split_seed=d.split_seed,
    )


def num_train_steps(config, dataset) -> int:
    """Epochs converted to steps (the last partial batch of an epoch is dropped)."""
    return config.train.num_epochs * batches.steps_per_epoch(
        len(dataset.train_labels), config.train.batch_size
    )


def start(config, validate):
    """Validates the config, builds the mesh, checks batch sizes and loads the data."""
    validate(config)
    mesh = engine.make_mesh()
    engine.check_batch_size(config.train.batch_size, mesh, "train.batch_size")
    engine.check_batch_size(config.eval.batch_size, mesh, "eval.batch_size")
    return mesh, load_data(config)


def seeds(config) -> list:
    return [config.seed + i for i in range(config.num_seeds)]


def train_seed(config, kind: RunKind, *, dataset, seed, input_shape, mesh, workdir, fingerprint):
    """Trains (or resumes) one seed in `workdir/<kind.name>/seed<seed>`.

    The host yields raw normalised images and labels in an order fixed by (seed, step); the
    objective inside `kind.train_step` builds canvases or shifted views on the device.

    Returns:
      (state, history, seconds, run_dir).
    """
    run_dir = os.path.join(workdir, kind.name, f"seed{seed}")
    state = engine.create_state(kind.model, kind.tx, input_shape, seed, mesh)
    if config.model.init_from:
        state = start_from_converted(state, config, run_dir, train=kind.num_steps > 0)
    n = len(dataset.train_labels)
    pid, pcount = jax.process_index(), jax.process_count()

    def batch_fn(step):
        idx = batches.train_batch_indices(n, config.train.batch_size, seed, step, pid, pcount)
        return {"image": dataset.train_images[idx], "label": dataset.train_labels[idx]}

    started = time.time()
    state, history = engine.fit(
        state,
        kind.train_step,
        batch_fn,
        num_steps=kind.num_steps,
        mesh=mesh,
        run_dir=run_dir,
        log_every=config.train.log_every,
        checkpoint_every=config.train.checkpoint_every,
        keep_checkpoints=config.train.keep_checkpoints,
        fingerprint={
            **fingerprint,
            "seed": seed,
            "num_steps": kind.num_steps,
            "batch_size": config.train.batch_size,
            "model": config.model.to_dict(),
            # Where the data lives does not change the run; what it is does.
            "data": {k: v for k, v in config.data.to_dict().items() if k != "data_dir"},
            "optim": config.optim.to_dict(),
        },
        desc=f"{kind.name} seed {seed}",
    )
    return state, history, time.time() - started, run_dir


def start_from_converted(state, config, run_dir: str, *, train: bool):
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
        state, summary, info = pretrained.init_state(state, path)
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


def _as_list(value):
    """Tuples (config) and lists (JSON) compare equal."""
    return list(value) if isinstance(value, (list, tuple)) else value


def dataset_summary(dataset, **extra) -> dict:
    return {
        "name": dataset.name,
        "num_train": len(dataset.train_labels),
        "num_test": len(dataset.test_labels),
        "num_classes": dataset.num_classes,
        **extra,
    }


def results(config, experiment: str, *, runs, summary, started, **fields) -> dict:
    """The results.json content every experiment writes (its own fields in between)."""
    return {
        "experiment": experiment,
        "config": config.to_dict(),
        "environment": environment(),
        **fields,
        "seeds": seeds(config),
        "runs": runs,
        "summary": summary,
        "wall_time_s": time.time() - started,
    }


def summarise(runs, group_by, metrics) -> list:
    """Per group of runs: n and, for every metric, mean and sample std (ddof=1; 0 for one seed)."""
    groups = {}
    for r in runs:
        groups.setdefault(tuple(r[k] for k in group_by), []).append(r)
    summary = []
    for key, rs in groups.items():
        row = {**dict(zip(group_by, key, strict=True)), "n": len(rs)}
        for metric in metrics:
            values = [r[metric] for r in rs]
            std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            row[metric] = {"mean": float(np.mean(values)), "std": std}
        summary.append(row)
    return summary


def test_batches(config, arrays: dict):
    """This process's share of the test split (or any per-example arrays), padded and masked."""
    return batches.eval_batches(
        arrays, config.eval.batch_size, jax.process_index(), jax.process_count()
    )


def channel_scores(state, config, mesh, images, *, grid_size: int) -> dict:
    """Position scores of the backbone output's channels over `images`, each read once."""
    _, out = jax.eval_shape(
        lambda v, x: state.apply_fn(v, x, train=False, rngs={"permute": jax.random.PRNGKey(0)}),
        state.variables,
        jax.ShapeDtypeStruct((1, *images.shape[1:]), jnp.float32),
    )
    sweep = scores.compile_sweep(state.apply_fn, mesh, grid_size=grid_size)
    return scores.position_scores(
        sweep,
        state.variables,
        test_batches(config, {"image": images}),
        mesh,
        channels={"latent": out["latent"].shape[-1]},
        grid_size=grid_size,
        num_batches=-(-len(images) // config.eval.batch_size),
    )["latent"]


def scores_json(channel_scores: dict) -> dict:
    """The scores as results.json fields."""
    return {
        "scores": {k: np.asarray(v).tolist() for k, v in channel_scores.items() if k != "count"},
        "num_scored_images": channel_scores["count"],
    }
