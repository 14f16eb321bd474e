"""Every check a run makes before any compute, each failing with one line that names the field
and what would be valid (`GpjError`): the fields every experiment shares, the evaluators an
experiment's report needs, an earlier workdir a config names, and the declared kinds (batch sizes,
the model's shapes, earlier runs, the evaluators' settings). The field checks themselves are in
`gpj.validation`; each experiment's own fields are checked by its `check`."""

import os

import jax
import jax.numpy as jnp
import ml_collections

from gpj import engine, evaluators, models
from gpj import results as results_file
from gpj.configs.evals import override
from gpj.convert import store
from gpj.data import sources
from gpj.errors import ConfigError
from gpj.validation import check_choice, check_positive, check_range

PLATEAU_ON = ("train_loss", "val_accuracy")  # what `train.stop_on_plateau` watches


def check_shared(config) -> None:
    """Checks the data, model, optim, train and eval fields that every experiment has, and that
    `model.init_from` names converted weights that fit."""
    check_choice(config, "data.name", sources.DATASETS)
    check_choice(config, "data.channels", (1, 3))
    check_choice(config, "model.name", models.MODEL_NAMES)
    check_choice(config, "model.stem", models.STEMS)
    check_choice(config, "model.padding", models.PADDINGS)
    check_choice(config, "model.param_init", models.INITS)
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
    check_range(config, "train.eval_every_epochs", 0, 10**6)
    check_positive(config, "train.curve_images")
    check_positive(config, "train.seeds_per_program")
    check_positive(config, "train.plateau_patience")
    check_range(config, "train.plateau_min_delta", 0.0, 1e9)
    check_range(config, "train.plateau_gain_se", 0.0, 1e9)
    check_range(config, "data.val_fraction", 0.0, 0.9)
    if config.train.plateau_on == "test_accuracy":
        raise ConfigError(
            "train.plateau_on='test_accuracy' is refused: a run's length must not be chosen on "
            "test data; use 'val_accuracy' (with data.val_fraction > 0) or 'train_loss'"
        )
    check_choice(config, "train.plateau_on", PLATEAU_ON)
    if config.train.stop_on_plateau and not config.train.eval_every_epochs:
        raise ConfigError(
            "train.stop_on_plateau=True needs train.eval_every_epochs >= 1 (the plateau windows)"
        )
    on_val = config.train.stop_on_plateau and config.train.plateau_on == "val_accuracy"
    if on_val and not config.data.val_fraction:
        raise ConfigError(
            "train.plateau_on='val_accuracy' needs a validation split: set data.val_fraction, "
            "e.g. 0.2"
        )
    evaluators.check(config)
    store.check_config(config)


def check_evals(config, names) -> None:
    """`config.evals` must hold the evaluators whose results the experiment's report shows."""
    missing = [name for name in names if name not in config.evals]
    if missing:
        wanted = (*names, *(e for e in config.evals if e not in names))
        raise ConfigError(
            f"evals lacks {', '.join(map(repr, missing))}, which the {config.experiment} report "
            f"needs (it has {', '.join(config.evals) or 'none'}); e.g. {override(wanted)}"
        )


def check_finished(path: str, field: str, experiment: str):
    """The config of a finished earlier `experiment` workdir named by the config field `field`.

    Raises:
      ConfigError: `path` holds no finished run of that experiment.
    """
    try:
        results = results_file.read(os.path.expanduser(path))
    except results_file.ResultsError as e:
        raise ConfigError(f"{field}={path!r} is not a finished {experiment} workdir: {e}") from e
    if results.get("experiment") != experiment:
        raise ConfigError(
            f"{field}={path!r} holds a {results.get('experiment')!r} run, not a {experiment} run"
        )
    return ml_collections.ConfigDict(results["config"])


def check_kinds(kinds, mesh) -> dict:
    """Checks every kind before any compute; returns {kind name: (its evaluators, its test-curve
    metric or None)}.

    Batch sizes must split over the devices, the model must fit its input (shapes only, through
    `jax.eval_shape`), earlier runs must exist, and every evaluator checks its settings against
    the model's output shapes.

    Raises:
      ConfigError: one line naming the field and what would be valid.
    """
    built = {}
    for kind in kinds:
        c = kind.config
        engine.check_batch_size(c.train.batch_size, mesh, "train.batch_size")
        engine.check_batch_size(c.eval.batch_size, mesh, "eval.batch_size")
        if len(kind.data.train_labels) < c.train.batch_size:
            raise ConfigError(
                f"train.batch_size={c.train.batch_size} exceeds the "
                f"{len(kind.data.train_labels)} training images of {kind.data.name}"
            )
        shapes = output_shapes(kind)
        if kind.earlier:
            for seed in kind.seeds:
                run_dir = kind.earlier_run_dir(seed)
                if not os.path.isdir(os.path.join(run_dir, "checkpoints")):
                    raise ConfigError(
                        f"{kind.earlier_field}={kind.earlier!r} has no trained run of seed {seed} "
                        f"(no {run_dir}/checkpoints); give an earlier workdir or a run folder "
                        "holding checkpoints/"
                    )
        plugins = evaluators.build(kind, shapes, mesh)
        curve = evaluators.curve_metric(kind, plugins, shapes, mesh)
        train = kind.config.train
        on_curve = train.stop_on_plateau and train.plateau_on == "val_accuracy"
        if on_curve and not isinstance(curve, evaluators.EveryCell):
            raise ConfigError(
                f"train.plateau_on='val_accuracy' needs a curve of accuracy, but the "
                f"{kind.name} runs' curve is not; use train.plateau_on='train_loss'"
            )
        built[kind.name] = (plugins, curve)
    return built


def output_shapes(kind) -> dict:
    """The shapes of the model's named outputs (`out`), or a ConfigError if the input is too
    small for it."""
    keys = {"params": jax.random.PRNGKey(0), "permute": jax.random.PRNGKey(0)}
    shape = kind.task.input_shape(kind.data)
    try:
        (_, out), _ = jax.eval_shape(
            lambda x: kind.model.init_with_output(keys, x, train=False),
            jax.ShapeDtypeStruct(shape, jnp.float32),
        )
        ok = all(d > 0 for d in out["features"].shape)
    except (ValueError, TypeError, ZeroDivisionError):
        ok = False
    if not ok:
        m = kind.config.model
        what, remedy = kind.task.too_small(shape, kind.config)
        raise ConfigError(
            f"{what} is too small for model.name={m.name!r} with model.padding={m.padding!r} "
            f"and model.stem={m.stem!r}; {remedy}"
        )
    return jax.tree.map(lambda s: tuple(s.shape), out)
