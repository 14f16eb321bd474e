"""What every experiment does around the engine: load data, train one seed, batch the test split."""

import os
import time

import jax

from gpj import engine, models
from gpj.data import batches, sources
from gpj.validation import check_choice, check_positive, check_range


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
        "train.num_epochs",
        "train.batch_size",
        "train.log_every",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "eval.batch_size",
    ):
        check_positive(config, path)
    check_range(config, "model.bn_momentum", 0.0, 0.999999)
    check_range(config, "data.test_fraction", 0.01, 0.99)


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


def train_seed(
    config,
    *,
    model,
    tx,
    train_step,
    num_steps,
    dataset,
    seed,
    input_shape,
    mesh,
    run_dir,
    fingerprint,
    desc,
):
    """Trains (or resumes) one seed in `run_dir`; returns (state, history, seconds).

    The host yields raw normalised images and labels in an order fixed by (seed, step); the
    objective inside `train_step` builds canvases or shifted views on the device.
    """
    state = engine.create_state(model, tx, input_shape, seed, mesh)
    n = len(dataset.train_labels)
    pid, pcount = jax.process_index(), jax.process_count()

    def batch_fn(step):
        idx = batches.train_batch_indices(n, config.train.batch_size, seed, step, pid, pcount)
        return {"image": dataset.train_images[idx], "label": dataset.train_labels[idx]}

    started = time.time()
    state, history = engine.fit(
        state,
        train_step,
        batch_fn,
        num_steps=num_steps,
        mesh=mesh,
        run_dir=run_dir,
        log_every=config.train.log_every,
        checkpoint_every=config.train.checkpoint_every,
        keep_checkpoints=config.train.keep_checkpoints,
        fingerprint={
            **fingerprint,
            "seed": seed,
            "num_steps": num_steps,
            "batch_size": config.train.batch_size,
            "model": config.model.to_dict(),
            "data": config.data.to_dict(),
            "optim": config.optim.to_dict(),
        },
        desc=desc,
    )
    return state, history, time.time() - started


def test_batches(config, arrays: dict):
    """This process's share of the test split (or any per-example arrays), padded and masked."""
    return batches.eval_batches(
        arrays, config.eval.batch_size, jax.process_index(), jax.process_count()
    )
