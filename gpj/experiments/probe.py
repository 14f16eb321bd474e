"""The position probe (paper, Table 1): GAPNet vs PermuteNet on canvas tasks.

Each image is pasted into one cell of a G x G zero canvas. The *location* task
predicts the cell, the *object* task the image's class. GAPNet keeps channel
order after global pooling; PermuteNet shuffles it at every forward pass, so a
location read-out that needs channel order collapses. Every test image is
evaluated at every cell, exactly, and every trained GAPNet's channels are scored
for position (`analysis.scores`) over the test images at every cell.
"""

import dataclasses
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gpj import engine, models, report
from gpj.data import canvas
from gpj.errors import ConfigError
from gpj.experiments import training
from gpj.validation import check_positive, check_range

TASKS = ("location", "object")


def canvas_objective(params, state, batch, rng, *, grid_size: int, task: str):
    """Cross-entropy on canvases with each image at a random cell."""
    k_cells, k_permute = jax.random.split(rng)
    cells = canvas.random_cells(k_cells, batch["image"].shape[0], grid_size)
    labels = cells if task == "location" else batch["label"]
    (logits, _), updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats},
        canvas.paste(batch["image"], cells, grid_size),
        train=True,
        rngs={"permute": k_permute},
        mutable=["batch_stats"],
    )
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return loss, ({"accuracy": accuracy}, updates["batch_stats"])


def every_cell_eval(state, batch, rng, ablation=None, *, grid_size: int, task: str):
    """Correct predictions per cell with every image of the batch at every cell."""
    canvases = canvas.paste_every_cell(batch["image"], grid_size)
    cells = jnp.arange(grid_size * grid_size)

    def one_cell(args):
        cell, x, key = args
        logits, _ = state.apply_fn(
            state.variables, x, train=False, rngs={"permute": key}, ablation=ablation
        )
        labels = jnp.full_like(batch["label"], cell) if task == "location" else batch["label"]
        return jnp.sum((jnp.argmax(logits, -1) == labels) & batch["mask"])

    keys = jax.random.split(rng, cells.shape[0])
    correct = jax.lax.map(one_cell, (cells, canvases, keys))
    return {"correct_per_cell": correct, "count": jnp.sum(batch["mask"])}


def validate(config) -> None:
    """Cheap checks of every field, before any data is read or compiled."""
    training.validate_common(config)
    check_range(config, "model.shuffle_layer", 1, 5)
    check_range(config, "model.blur_filter", 0, 5)
    if config.model.name.startswith("vgg") and config.model.shuffle_layer != 5:
        raise ConfigError(
            f"model.shuffle_layer={config.model.shuffle_layer} needs a ResNet; "
            f"model.name={config.model.name!r} supports only 5 (after GAP)"
        )
    check_positive(config, "data.grid_size")
    if config.data.grid_size < 2 and any(r.endswith(":location") for r in config.runs):
        raise ConfigError(
            f"data.grid_size={config.data.grid_size} leaves one cell: the location "
            "task needs data.grid_size >= 2"
        )
    if not config.runs:
        raise ConfigError("runs is empty; give at least one of e.g. 'gapnet:location'")
    valid = [f"{h}:{t}" for h in ("gapnet", "permutenet") for t in TASKS]
    for spec in config.runs:
        if spec not in valid:
            raise ConfigError(
                f"runs entry {spec!r} is not valid; entries are head:task, one of: "
                f"{', '.join(valid)}"
            )


def build(config, head: str, num_classes: int):
    """The model of one run; only PermuteNet takes the shuffle layer."""
    m = config.model
    return models.build_model(
        m.name,
        num_classes=num_classes,
        head=head,
        width=m.width,
        stem=m.stem,
        padding=m.padding,
        bn_momentum=m.bn_momentum,
        shuffle_layer=m.shuffle_layer if head == "permutenet" else 5,
        blur_filter=m.blur_filter,
    )


def check_fits(config, canvas_shape, num_classes: int) -> None:
    """Fails early when the canvas is too small for the network (shapes only)."""
    model = build(config, "gapnet", num_classes)
    keys = {"params": jax.random.PRNGKey(0), "permute": jax.random.PRNGKey(0)}
    try:
        (_, out), _ = jax.eval_shape(
            lambda x: model.init_with_output(keys, x, train=False),
            jax.ShapeDtypeStruct(canvas_shape, jnp.float32),
        )
        ok = all(d > 0 for d in out["features"].shape)
    except (ValueError, TypeError, ZeroDivisionError):
        ok = False
    if not ok:
        raise ConfigError(
            f"the {canvas_shape[1]}x{canvas_shape[2]} canvas (data.grid_size={config.data.grid_size} "
            f"x data.image_size={config.data.image_size}) is too small for model.name="
            f"{config.model.name!r} with model.padding={config.model.padding!r} and "
            f"model.stem={config.model.stem!r}; use a larger data.image_size or data.grid_size"
        )


def run(config, workdir: str) -> dict:
    """Trains and evaluates every run and seed; writes results.json, report.md, figures."""
    mesh, dataset = training.start(config, validate)
    grid = config.data.grid_size
    _, h, w, c = dataset.train_images.shape
    canvas_shape = (1, grid * h, grid * w, c)
    check_fits(config, canvas_shape, dataset.num_classes)

    started = time.time()
    runs = []
    for spec in config.runs:
        kind = ProbeKind.build(config, spec, dataset, mesh)
        for seed in training.seeds(config):
            runs.append(
                _train_and_evaluate(config, kind, dataset, seed, mesh, canvas_shape, workdir)
            )
    results = training.results(
        config,
        "probe",
        runs=runs,
        summary=training.summarise(runs, ("head", "task"), ("accuracy",)),
        started=started,
        dataset=training.dataset_summary(dataset, canvas=list(canvas_shape[1:])),
        chance={"location": 1.0 / grid**2, "object": 1.0 / dataset.num_classes},
    )
    if jax.process_index() == 0:
        report.write(results, workdir)
    return results


@dataclasses.dataclass(frozen=True)
class ProbeKind(training.RunKind):
    """One head:task pair (its folder is `head-task`)."""

    head: str
    task: str
    num_classes: int

    @classmethod
    def build(cls, config, spec: str, dataset, mesh) -> "ProbeKind":
        head, task = spec.split(":")
        grid = config.data.grid_size
        num_classes = grid * grid if task == "location" else dataset.num_classes
        num_steps = training.num_train_steps(config, dataset)
        return cls(
            name=f"{head}-{task}",
            head=head,
            task=task,
            num_classes=num_classes,
            num_steps=num_steps,
            model=build(config, head, num_classes),
            tx=engine.make_optimizer(config.optim, num_steps),
            train_step=engine.compile_train_step(
                functools.partial(canvas_objective, grid_size=grid, task=task), mesh
            ),
            eval_step=engine.compile_eval_step(
                functools.partial(every_cell_eval, grid_size=grid, task=task), mesh
            ),
        )


def _train_and_evaluate(config, kind: ProbeKind, dataset, seed, mesh, canvas_shape, workdir):
    """Trains (or resumes) one seed of a run kind, then evaluates it at every cell."""
    state, history, train_time, run_dir = training.train_seed(
        config,
        kind,
        dataset=dataset,
        seed=seed,
        input_shape=canvas_shape,
        mesh=mesh,
        workdir=workdir,
        fingerprint={"head": kind.head, "task": kind.task},
    )
    started = time.time()
    sums = engine.evaluate(
        state,
        kind.eval_step,
        training.test_batches(config, {"image": dataset.test_images, "label": dataset.test_labels}),
        mesh,
        jax.random.fold_in(jax.random.PRNGKey(seed), kind.num_steps),
    )
    grid = config.data.grid_size
    per_cell = np.asarray(sums["correct_per_cell"]) / float(sums["count"])
    eval_time = time.time() - started
    scored = {}
    if kind.head == "gapnet":  # PermuteNet's channel order is random at every pass
        scored = training.scores_json(
            training.channel_scores(state, config, mesh, dataset.test_images, grid_size=grid)
        )
    return {
        "head": kind.head,
        "task": kind.task,
        "seed": seed,
        "run_dir": os.path.relpath(run_dir, workdir),
        "accuracy": float(per_cell.mean()),
        "per_cell_accuracy": per_cell.reshape(grid, grid).tolist(),
        "chance": 1.0 / kind.num_classes,
        "num_test_images": int(sums["count"]),
        "num_evaluations": int(sums["count"]) * grid * grid,
        "steps": kind.num_steps,
        "history": history,
        "train_time_s": train_time,
        "eval_time_s": eval_time,
        **scored,
    }
