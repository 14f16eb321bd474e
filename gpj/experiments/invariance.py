"""Translation invariance (AugShift): does training make predictions and latents ignore shifts?

Variants: a single-view baseline with random shifts, AugShift (two shifted views, cross-entropy
on both plus `weight` * MSE between their global-pooled latents), BlurPool anti-aliasing, and
AugShift with BlurPool. Each is evaluated on centred test images, at every offset of a shift
grid, for shift consistency over a fixed set of seeded pairs of shifts, and with a linear probe
on the frozen latents that tries to read the offset back.
"""

import dataclasses
import functools
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from gpj import engine, models, report
from gpj.analysis.consistency import agreement, consistency
from gpj.data import shift
from gpj.errors import ConfigError
from gpj.experiments import training
from gpj.validation import check_choice, check_positive, check_range


@dataclasses.dataclass(frozen=True)
class Variant:
    """How one variant trains: number of views, latent-MSE weight, BlurPool on or off."""

    views: int
    augshift: bool
    blur: bool


VARIANTS = {
    "baseline": Variant(views=1, augshift=False, blur=False),
    "two_view": Variant(views=2, augshift=False, blur=False),
    "augshift": Variant(views=2, augshift=True, blur=False),
    "blurpool": Variant(views=1, augshift=False, blur=True),
    "augshift_blurpool": Variant(views=2, augshift=True, blur=True),
}


def shift_objective(params, state, batch, rng, *, shift_cfg, views: int, weight: float):
    """Sum of the views' cross-entropies, plus `weight` * MSE of the two views' GAP latents.

    Both views go through the model in one batch, so they share BatchNorm statistics.
    """
    images, labels = batch["image"], batch["label"]
    b = images.shape[0]
    x = jnp.concatenate(
        [
            shift.place(images, shift.random_offsets(k, b, shift_cfg.max_shift), *shift_cfg.args)
            for k in jax.random.split(rng, views)
        ]
    )
    (logits, out), updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, x, train=True, mutable=["batch_stats"]
    )
    targets = jnp.tile(labels, views)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets).reshape(views, b)
    loss = ce.mean(axis=1).sum()
    metrics = {"ce": ce.mean(), "accuracy": jnp.mean(jnp.argmax(logits, -1) == targets)}
    if views == 2:
        mse = latent_mse(out["latent"][:b], out["latent"][b:])
        loss = loss + weight * mse
        metrics["latent_mse"] = mse
    return loss, (metrics, updates["batch_stats"])


def latent_mse(z1, z2):
    """Mean squared difference of two batches of latents (over examples and channels)."""
    return jnp.mean(jnp.square(z1 - z2))


@dataclasses.dataclass(frozen=True)
class ShiftConfig:
    """The static shift settings the jitted functions close over (hashable)."""

    max_shift: int
    mode: str
    pad_mode: str

    @property
    def args(self):
        return (self.max_shift, self.mode, self.pad_mode)


def shift_eval(state, batch, rng, ablation=None, *, shift_cfg, grid):
    """Sums over the batch: centred and per-offset correct counts, agreeing consistency pairs."""
    del rng
    images, labels, mask = batch["image"], batch["label"], batch["mask"]
    b = images.shape[0]

    def predict(offsets):
        logits, _ = state.apply_fn(
            state.variables,
            shift.place(images, offsets, *shift_cfg.args),
            train=False,
            ablation=ablation,
        )
        return jnp.argmax(logits, -1)

    def correct_at(offset):
        return jnp.sum((predict(jnp.broadcast_to(offset, (b, 2))) == labels) & mask)

    def agree(pair):  # pair: (b, 2, 2) offsets of the two shifts per image
        return agreement(predict(pair[:, 0]), predict(pair[:, 1]), mask)

    centred = shift.centred_offsets(b, shift_cfg.max_shift)
    return {
        "count": jnp.sum(mask),
        "correct_centred": jnp.sum((predict(centred) == labels) & mask),
        "correct_per_offset": jax.lax.map(correct_at, jnp.asarray(grid)),
        "agree": jnp.sum(jax.lax.map(agree, jnp.swapaxes(batch["pairs"], 0, 1))),
    }


def latents_at(state, batch, rng, ablation=None, *, shift_cfg):
    """GAP latents of the batch's images placed at the batch's `offsets`."""
    del rng
    x = shift.place(batch["image"], batch["offsets"], *shift_cfg.args)
    _, out = state.apply_fn(state.variables, x, train=False, ablation=ablation)
    return {"latent": out["latent"], "mask": batch["mask"]}


def validate(config) -> None:
    training.validate_common(config)
    check_choice(config, "shift.mode", shift.SHIFT_MODES)
    check_choice(config, "shift.pad_mode", ("zero", "reflect"))
    check_range(config, "shift.max_shift", 1, 10_000)
    check_range(config, "blurpool.filter_size", 1, 5)
    check_range(config, "augshift.weight", 0.0, float("inf"))
    for path in ("eval.shift_step", "eval.consistency_pairs", "eval.probe_grid"):
        check_positive(config, path)
    if config.eval.probe_grid > 2 * config.shift.max_shift + 1:
        raise ConfigError(
            f"eval.probe_grid={config.eval.probe_grid} has more cells per axis than the "
            f"{2 * config.shift.max_shift + 1} offsets of shift.max_shift={config.shift.max_shift}"
        )
    if not config.variants:
        raise ConfigError(f"variants is empty; choose from: {', '.join(VARIANTS)}")
    for name in config.variants:
        if name not in VARIANTS:
            raise ConfigError(
                f"variants entry {name!r} is not valid; choose from: {', '.join(VARIANTS)}"
            )


@dataclasses.dataclass(frozen=True)
class VariantKind(training.RunKind):
    """One variant (its folder is the variant's name), plus its latent extractor."""

    latent_step: Callable

    @classmethod
    def build(cls, config, name, dataset, shift_cfg, grid, mesh) -> "VariantKind":
        variant = VARIANTS[name]
        m = config.model
        num_steps = training.num_train_steps(config, dataset)
        objective = functools.partial(
            shift_objective,
            shift_cfg=shift_cfg,
            views=variant.views,
            weight=config.augshift.weight if variant.augshift else 0.0,
        )
        return cls(
            name=name,
            num_steps=num_steps,
            model=models.build_model(
                m.name,
                num_classes=dataset.num_classes,
                head="linear",
                width=m.width,
                stem=m.stem,
                padding=m.padding,
                bn_momentum=m.bn_momentum,
                blur_filter=config.blurpool.filter_size if variant.blur else 0,
            ),
            tx=engine.make_optimizer(config.optim, num_steps),
            train_step=engine.compile_train_step(objective, mesh),
            eval_step=engine.compile_eval_step(
                functools.partial(shift_eval, shift_cfg=shift_cfg, grid=grid), mesh
            ),
            latent_step=engine.compile_eval_step(
                functools.partial(latents_at, shift_cfg=shift_cfg), mesh
            ),
        )


def run(config, workdir: str) -> dict:
    """Trains and evaluates every variant and seed; writes results.json, report.md, figures."""
    mesh, dataset = training.start(config, validate)
    s = config.shift
    shift_cfg = ShiftConfig(s.max_shift, s.mode, s.pad_mode)
    size = shift.output_size(config.data.image_size, s.max_shift, s.mode)
    input_shape = (1, size, size, config.data.channels)
    grid = shift.shift_grid(s.max_shift, config.eval.shift_step)
    pairs = shift.consistency_pairs(
        len(dataset.test_labels),
        config.eval.consistency_pairs,
        s.max_shift,
        config.eval.consistency_seed,
    )
    probe_data = _probe_offsets(config, dataset)

    started = time.time()
    runs = []
    for name in config.variants:
        kind = VariantKind.build(config, name, dataset, shift_cfg, tuple(map(tuple, grid)), mesh)
        for seed in training.seeds(config):
            state, history, train_time, run_dir = training.train_seed(
                config,
                kind,
                dataset=dataset,
                seed=seed,
                input_shape=input_shape,
                mesh=mesh,
                workdir=workdir,
                fingerprint={"variant": name, "shift": s.to_dict(), **_variant_settings(config)},
            )
            t0 = time.time()
            metrics = _evaluate(config, kind, state, dataset, pairs, grid, probe_data, mesh)
            runs.append(
                {
                    "variant": name,
                    "seed": seed,
                    "run_dir": os.path.relpath(run_dir, workdir),
                    "steps": kind.num_steps,
                    "history": history,
                    "train_time_s": train_time,
                    "eval_time_s": time.time() - t0,
                    **metrics,
                }
            )
    summary = training.summarise(runs, ("variant",), METRICS)
    for row in summary:  # the probe's chance depends only on the seeded offsets
        row["position_probe_chance"] = runs[0]["position_probe_chance"]
    results = training.results(
        config,
        "invariance",
        runs=runs,
        summary=summary,
        started=started,
        dataset=training.dataset_summary(dataset, input=list(input_shape[1:])),
        shift_grid=grid.tolist(),
        chance={"object": 1.0 / dataset.num_classes},
    )
    if jax.process_index() == 0:
        report.write(results, workdir)
    return results


def _variant_settings(config) -> dict:
    return {"augshift": config.augshift.to_dict(), "blurpool": config.blurpool.to_dict()}


def _probe_offsets(config, dataset) -> dict:
    """Seeded random offsets for the train and test images, and their offset-cell labels."""
    m, g = config.shift.max_shift, config.eval.probe_grid
    rng = np.random.default_rng(config.eval.probe_seed)
    data = {}
    for split, n in (("train", len(dataset.train_labels)), ("test", len(dataset.test_labels))):
        offsets = rng.integers(0, 2 * m + 1, size=(n, 2)).astype(np.int32)
        cells = offsets * g // (2 * m + 1)  # equal-width bins of the 2m+1 offsets per axis
        data[split] = (offsets, (cells[:, 0] * g + cells[:, 1]).astype(np.int32))
    return data


def _evaluate(config, kind, state, dataset, pairs, grid, probe_data, mesh) -> dict:
    rng = jax.random.PRNGKey(0)  # the eval functions are deterministic
    test = {"image": dataset.test_images, "label": dataset.test_labels, "pairs": pairs}
    sums = engine.evaluate(state, kind.eval_step, training.test_batches(config, test), mesh, rng)
    count = float(sums["count"])
    per_offset = np.asarray(sums["correct_per_offset"]) / count
    latents = {
        split: _latents(config, kind, state, images, probe_data[split][0], mesh)
        for split, images in (("train", dataset.train_images), ("test", dataset.test_images))
    }
    probe_acc = _linear_probe(
        latents["train"], probe_data["train"][1], latents["test"], probe_data["test"][1]
    )
    test_cells = probe_data["test"][1]
    return {
        "centred_accuracy": float(sums["correct_centred"]) / count,
        "shifted_accuracy": float(per_offset.mean()),
        "accuracy_per_offset": per_offset.tolist(),
        "consistency": consistency(int(sums["agree"]), int(count) * pairs.shape[1]),
        "position_probe_accuracy": probe_acc,
        "position_probe_chance": float(np.bincount(test_cells).max() / len(test_cells)),
    }


def _latents(config, kind, state, images, offsets, mesh) -> np.ndarray:
    chunks = []
    for batch in training.test_batches(config, {"image": images, "offsets": offsets}):
        out = jax.device_get(
            kind.latent_step(state, engine.shard_batch(batch, mesh), jax.random.PRNGKey(0), None)
        )
        chunks.append(np.asarray(out["latent"])[np.asarray(out["mask"])])  # the global batch
    return np.concatenate(chunks)


def _linear_probe(train_z, train_y, test_z, test_y) -> float:
    """Test accuracy of a logistic-regression read-out of the offset cell from frozen latents."""
    scaler = StandardScaler().fit(train_z)
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(train_z), train_y)
    return float(clf.score(scaler.transform(test_z), test_y))


METRICS = ("centred_accuracy", "shifted_accuracy", "consistency", "position_probe_accuracy")
