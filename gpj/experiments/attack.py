"""Position-channel attacks (paper, Sec. 5): rank channels by flip scores, ablate them, measure.

Segmentation: a DeepLabv3-style model is trained on canvases of scattered digits or on Cityscapes
(or loaded from an earlier workdir); the channels of its backbone output are ranked by `flip_abs`
(overall) and by `flip_signed` (descending: "left", ascending: "right"); mIoU overall and in the
left, right and center columns is measured with the top-N channels ablated, beside N random
channels.
Classification: GAPNets from a probe workdir (or a probe run inside this workdir) get the same
treatment, measuring location and object accuracy with every test image at every cell.
Channels are ranked on the test images, like the official code (the scores use no labels).
"""

import dataclasses
import functools
import json
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gpj import engine, models, report
from gpj.analysis import attack
from gpj.analysis import segmentation_metrics as seg_metrics
from gpj.data import cityscapes, segmentation
from gpj.errors import ConfigError
from gpj.experiments import probe, training
from gpj.validation import check_choice, check_positive, check_range

FILLS = ("zero", "mean")
RANKINGS = ("overall", "left", "right")
SEGMENTATION_DATASETS = ("digits", "cityscapes")
_EXAMPLE_WIDTH = 256  # the example figure's data is subsampled to at most this many columns


def segmentation_objective(
    params, state, batch, rng, *, ignore_label: int = segmentation.IGNORE_LABEL
):
    """Per-pixel cross-entropy over the labelled pixels (the ignore label does not count)."""
    (logits, _), updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats},
        batch["image"],
        train=True,
        rngs={"dropout": rng},
        mutable=["batch_stats"],
    )
    labels = batch["label"]
    valid = labels != ignore_label
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(valid, labels, 0))
    count = jnp.maximum(valid.sum(), 1)
    accuracy = jnp.sum((jnp.argmax(logits, -1) == labels) & valid) / count
    return jnp.sum(ce * valid) / count, ({"accuracy": accuracy}, updates["batch_stats"])


def region_eval(
    state,
    batch,
    rng,
    ablation=None,
    *,
    num_classes: int,
    ignore_label: int = segmentation.IGNORE_LABEL,
):
    """Confusion matrices of the whole image and its left, right and center columns."""
    del rng
    logits, _ = state.apply_fn(state.variables, batch["image"], train=False, ablation=ablation)
    confusion = seg_metrics.region_confusions(
        batch["label"],
        jnp.argmax(logits, -1),
        num_classes,
        ignore_label=ignore_label,
        valid=batch["mask"],
    )
    return {"confusion": confusion}


def validate(config) -> None:
    """Cheap checks of every field, before any data is read or compiled."""
    training.validate_common(config)
    check_choice(config, "model.name", models.RESNET_NAMES)
    check_choice(config, "model.output_stride", models.OUTPUT_STRIDES)
    for path in ("model.aspp_features", "segmentation.canvas_size", "segmentation.num_train"):
        check_positive(config, path)
    for path in ("segmentation.num_test", "segmentation.digits_per_canvas", "attack.num_random"):
        check_positive(config, path)
    check_positive(config, "attack.example_channels")
    check_range(config, "segmentation.label_radius", 0, config.segmentation.canvas_size)
    check_range(config, "segmentation.left_fraction", 0.0, 1.0)
    check_range(config, "model.dropout_rate", 0.0, 0.99)
    check_choice(config, "attack.fill", FILLS)
    check_choice(config, "segmentation.dataset", SEGMENTATION_DATASETS)
    size = tuple(config.segmentation.image_size)
    if len(size) != 2 or not all(
        isinstance(n, int) and 0 < n <= full for n, full in zip(size, cityscapes.FULL_SIZE)
    ):
        raise ConfigError(
            f"segmentation.image_size={size!r} must be (height, width) with 1 <= height <= "
            f"{cityscapes.FULL_SIZE[0]} and 1 <= width <= {cityscapes.FULL_SIZE[1]}, "
            "e.g. (512, 1024)"
        )
    check_range(config, "segmentation.max_examples", 0, 10**9)
    rates = tuple(config.model.aspp_rates)
    if not rates or any(not isinstance(r, int) or r < 1 for r in rates):
        raise ConfigError(f"model.aspp_rates={rates!r} must be positive integers, e.g. (1, 2, 3)")
    sizes = tuple(config.attack.num_channels)
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ConfigError(
            f"attack.num_channels={sizes!r} must be positive integers, e.g. (1, 4, 16)"
        )
    for task in config.classifier.tasks:
        if task not in probe.TASKS:
            raise ConfigError(
                f"classifier.tasks entry {task!r} is not valid; choose from {probe.TASKS}"
            )
    if not config.segmentation.enabled and not config.classifier.tasks:
        raise ConfigError(
            "nothing to attack: segmentation.enabled is False and classifier.tasks is empty"
        )
    if config.classifier.probe_workdir and config.classifier.tasks:
        _probe_results(config.classifier.probe_workdir)
    if config.segmentation.enabled and config.segmentation.init_workdir:
        if config.model.init_from:
            raise ConfigError(
                "set one of segmentation.init_workdir (an earlier attack's trained model) and "
                "model.init_from (converted weights), not both"
            )
        for seed in training.seeds(config):
            run_dir = _init_run_dir(config.segmentation.init_workdir, seed)
            if not os.path.isdir(os.path.join(run_dir, "checkpoints")):
                raise ConfigError(
                    f"segmentation.init_workdir={config.segmentation.init_workdir!r} has no "
                    f"trained run of seed {seed} (no {run_dir}/checkpoints); give an earlier "
                    "attack workdir or a run folder holding checkpoints/"
                )


def run(config, workdir: str) -> dict:
    """Attacks the segmentation model and the GAPNet classifiers; writes results and report."""
    mesh, dataset = training.start(config, validate)
    started = time.time()
    runs, extra = [], {}
    if config.segmentation.enabled:
        data = _segmentation_data(config, dataset)
        extra["segmentation_data"] = training.dataset_summary(
            data, image_shape=list(data.train_images.shape[1:]), ignore_label=data.ignore_label
        )
        runs += _segmentation_runs(config, data, mesh, workdir)
    if config.classifier.tasks:
        runs += _classifier_runs(config, mesh, workdir)
    segmentation_runs = [r for r in runs if r["model"] == "segmentation"]
    results = training.results(
        config,
        "attack",
        runs=runs,
        summary=summarise(runs),
        started=started,
        dataset=training.dataset_summary(dataset),
        **extra,
        region_effects=region_effects(segmentation_runs) if segmentation_runs else [],
    )
    if jax.process_index() == 0:
        report.write(results, workdir)
    return results


# --- segmentation ---------------------------------------------------------------------------


def _segmentation_data(config, digits) -> segmentation.SegmentationData:
    """The configured dataset: canvases of the `digits` dataset, or Cityscapes."""
    s = config.segmentation
    if s.dataset == "cityscapes":
        data = cityscapes.load(
            data_dir=os.path.expanduser(s.data_dir) or None,
            image_size=tuple(s.image_size),
            max_examples=s.max_examples,
        )
    else:
        try:
            data = segmentation.digit_data(
                digits,
                seed=s.data_seed,
                num_train=s.num_train,
                num_test=s.num_test,
                canvas_size=s.canvas_size,
                digits_per_canvas=s.digits_per_canvas,
                left_fraction=s.left_fraction,
                label_radius=s.label_radius,
            )
        except ValueError as e:
            raise ConfigError(f"segmentation: {e}") from e
    if len(data.train_labels) < config.train.batch_size:
        raise ConfigError(
            f"train.batch_size={config.train.batch_size} exceeds the {len(data.train_labels)} "
            f"training images of {data.name}"
        )
    return data


def _segmentation_runs(config, data, mesh, workdir) -> list:
    s, m = config.segmentation, config.model
    model = models.build_segmentation_model(
        m.name,
        num_classes=data.num_classes,
        width=m.width,
        stem=m.stem,
        padding=m.padding,
        output_stride=m.output_stride,
        aspp_rates=tuple(m.aspp_rates),
        aspp_features=m.aspp_features,
        bn_momentum=m.bn_momentum,
        dropout_rate=m.dropout_rate,
    )
    num_steps = training.num_train_steps(config, data)
    kind = training.RunKind(
        name="segmentation",
        model=model,
        tx=engine.make_optimizer(config.optim, num_steps),
        num_steps=num_steps,
        train_step=engine.compile_train_step(
            functools.partial(segmentation_objective, ignore_label=data.ignore_label), mesh
        ),
        eval_step=engine.compile_eval_step(
            functools.partial(
                region_eval, num_classes=data.num_classes, ignore_label=data.ignore_label
            ),
            mesh,
        ),
    )
    input_shape = (1, *data.train_images.shape[1:])
    runs = []
    for seed in training.seeds(config):
        if s.init_workdir:
            run_dir = _init_run_dir(s.init_workdir, seed)
            state = engine.create_state(kind.model, kind.tx, input_shape, seed, mesh)
            state, history, train_time = engine.restore(state, run_dir), [], 0.0
        else:
            state, history, train_time, run_dir = training.train_seed(
                config,
                kind,
                dataset=data,
                seed=seed,
                input_shape=input_shape,
                mesh=mesh,
                workdir=workdir,
                fingerprint={"segmentation": _data_fingerprint(s)},
            )
        test = {"image": data.test_images, "label": data.test_labels}
        target = Target(kind, state, config, mesh, test, 0, _segmentation_metrics)
        runs.append(
            {
                "model": "segmentation",
                "seed": seed,
                "run_dir": os.path.abspath(run_dir),
                "steps": kind.num_steps,
                "history": history,
                "train_time_s": train_time,
                **_attack(config, target, seed, regional=True),
            }
        )
    return runs


def _data_fingerprint(s) -> dict:
    # Where the data lives does not change the run; what it is does.
    skip = ("init_workdir", "enabled", "data_dir")
    return {k: v for k, v in s.to_dict().items() if k not in skip}


def _init_run_dir(path: str, seed: int) -> str:
    """A run folder holding `checkpoints/`, or an earlier attack workdir's run of this seed."""
    path = os.path.expanduser(path)
    if os.path.isdir(os.path.join(path, "checkpoints")):
        return path
    return os.path.join(path, "segmentation", f"seed{seed}")


def _segmentation_metrics(sums) -> dict:
    regions = seg_metrics.region_scores(np.asarray(sums["confusion"], np.int64))
    return {f"miou_{r}": regions[r]["miou"] for r in seg_metrics.REGIONS}


def _segmentation_example(target, ablations: dict) -> dict:
    """Predictions for the first test image, clean and under each ablation; every `step`-th
    pixel of large images, so that results.json stays small."""
    x = target.test["image"][:1]
    step = -(-x.shape[2] // _EXAMPLE_WIDTH)
    predict = jax.jit(lambda v, a: jnp.argmax(target.state.apply_fn(v, x, False, a)[0], -1))
    return {
        "image": x[0, ::step, ::step, 0].round(3).tolist(),
        "label": target.test["label"][0][::step, ::step].tolist(),
        "predictions": {
            name: np.asarray(predict(target.state.variables, a))[0, ::step, ::step].tolist()
            for name, a in ablations.items()
        },
    }


# --- classification -------------------------------------------------------------------------


def _probe_results(path: str) -> dict:
    results_path = os.path.join(os.path.expanduser(path), "results.json")
    try:
        with open(results_path) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"classifier.probe_workdir={path!r} is not a finished probe workdir: cannot read "
            f"{results_path} ({e})"
        ) from e
    if results.get("experiment") != "probe":
        raise ConfigError(
            f"classifier.probe_workdir={path!r} holds a {results.get('experiment')!r} run, "
            "not a probe run"
        )
    return results


def _classifier_runs(config, mesh, workdir) -> list:
    probe_dir = os.path.expanduser(config.classifier.probe_workdir)
    if probe_dir:
        results = _probe_results(probe_dir)
    else:
        probe_dir = os.path.join(workdir, "probe")
        probe_config = config.classifier.probe.copy_and_resolve_references()
        probe_config.runs = tuple(f"gapnet:{t}" for t in config.classifier.tasks)
        results = probe.run(probe_config, probe_dir)
    probe_config = ml_collections.ConfigDict(results["config"])
    dataset = training.load_data(probe_config)
    grid = probe_config.data.grid_size
    _, h, w, c = dataset.train_images.shape
    runs = []
    for r in results["runs"]:
        if r["head"] != "gapnet" or r["task"] not in config.classifier.tasks:
            continue
        kind = probe.ProbeKind.build(probe_config, f"gapnet:{r['task']}", dataset, mesh)
        state = engine.create_state(
            kind.model, kind.tx, (1, grid * h, grid * w, c), r["seed"], mesh
        )
        run_dir = os.path.join(probe_dir, r["run_dir"])
        state = engine.restore(state, run_dir)
        test = {"image": dataset.test_images, "label": dataset.test_labels}
        target = Target(kind, state, probe_config, mesh, test, grid, _classifier_metrics)
        runs.append(
            {
                "model": f"gapnet-{r['task']}",
                "seed": r["seed"],
                "run_dir": os.path.abspath(run_dir),
                **_attack(config, target, r["seed"], regional=False),
            }
        )
    if not runs:
        raise ConfigError(
            f"the probe workdir {probe_dir} has no GAPNet run of tasks {config.classifier.tasks}"
        )
    return runs


def _classifier_metrics(sums) -> dict:
    correct = np.asarray(sums["correct_per_cell"])
    return {"accuracy": float(correct.sum() / (float(sums["count"]) * correct.size))}


# --- shared -------------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    """A trained model and what attacking it needs: test arrays, grid and metrics of eval sums."""

    kind: training.RunKind
    state: engine.TrainState
    config: ml_collections.ConfigDict
    mesh: object
    test: dict  # {"image", "label"} arrays of the test split
    grid_size: int  # > 0: images are scored at every cell of this grid
    metrics: Callable[[dict], dict]

    def sweep(self) -> dict:
        return training.channel_scores(
            self.state, self.config, self.mesh, self.test["image"], grid_size=self.grid_size
        )

    def evaluate(self, ablation) -> dict:
        sums = engine.evaluate(
            self.state,
            self.kind.eval_step,
            training.test_batches(self.config, self.test),
            self.mesh,
            jax.random.PRNGKey(0),
            ablation,
        )
        return self.metrics(sums)


def _attack(config, target, seed: int, *, regional: bool) -> dict:
    """Scores, ranked and random attack curves and, for segmentation, the example figure data."""
    sc = target.sweep()
    num_channels = len(sc["flip_abs"])
    sizes = tuple(n for n in config.attack.num_channels if n <= num_channels)
    fill = sc["mean"] if config.attack.fill == "mean" else None
    rankings = {"overall": sc["rank_flip_abs"]}
    if regional:
        rankings.update(left=sc["rank_flip_signed"], right=sc["rank_flip_signed"][::-1])

    def ablation(channels):
        return {"features": models.channel_ablation(num_channels, channels, fill)}

    curves = attack.attack_curves(
        lambda channels: target.evaluate(ablation(channels)),
        rankings,
        num_channels=num_channels,
        sizes=sizes,
        num_draws=config.attack.num_random,
        seed=seed,
        desc=f"attack {target.kind.name} seed {seed}",
    )
    result = {
        "num_channels": num_channels,
        "sizes": list(sizes),
        "curves": curves,
        **training.scores_json(sc),
    }
    if regional:
        n = min(config.attack.example_channels, num_channels)
        result["example"] = {
            "n": n,
            **_segmentation_example(
                target,
                {"clean": ablation([])} | {name: ablation(rankings[name][:n]) for name in RANKINGS},
            ),
        }
    return result


def summarise(runs) -> list:
    """Per model, curve, N and metric: mean and std over seeds (random curves: of draw means)."""
    groups = {}
    for r in runs:
        groups.setdefault(r["model"], []).append(r)
    summary = []
    for model, rs in groups.items():
        for curve in rs[0]["curves"]:
            rows = [r["curves"][curve] for r in rs]
            if curve == "clean":
                rows = [[row] for row in rows]
            for i, row in enumerate(rows[0]):
                entry = {"model": model, "curve": curve, "n": row.get("n", 0), "seeds": len(rs)}
                for key in row:
                    if key == "n":
                        continue
                    values = [_value(rr[i][key]) for rr in rows]
                    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                    entry[key] = {"mean": float(np.mean(values)), "std": std}
                    if curve == "random":
                        entry[key]["draw_std"] = float(np.mean([rr[i][key]["std"] for rr in rows]))
                summary.append(entry)
    return summary


def region_effects(runs) -> list:
    """Per N, the region-specific attack against random channels (means over seeds).

    With a = Δ mIoU(left) − Δ mIoU(right) (changes from the clean model), the attack on the
    "left" channels is side-specific when it lowers the left mIoU and its a lies more than two
    standard deviations below the a of random channel sets of the same size (pooled over draws
    and seeds); the "right" attack likewise above. Both must hold for `appeared`.
    """
    effects = []
    for i, n in enumerate(runs[0]["sizes"]):

        def delta(run, curve, region, i=i):
            return (
                run["curves"][curve][i][f"miou_{region}"] - run["curves"]["clean"][f"miou_{region}"]
            )

        row = {"n": n}
        for attack_name in ("left", "right"):
            for region in ("left", "right"):
                row[f"{attack_name}_attack_{region}"] = float(
                    np.mean([delta(r, attack_name, region) for r in runs])
                )
        random_a = []
        for r in runs:
            draws = r["curves"]["random"][i]
            clean = r["curves"]["clean"]
            for left, right in zip(
                draws["miou_left"]["draws"], draws["miou_right"]["draws"], strict=True
            ):
                random_a.append(left - clean["miou_left"] - (right - clean["miou_right"]))
        mean_a = float(np.mean(random_a))
        std_a = float(np.std(random_a, ddof=1)) if len(random_a) > 1 else 0.0
        left_a = row["left_attack_left"] - row["left_attack_right"]
        right_a = row["right_attack_left"] - row["right_attack_right"]
        row.update(
            random_asymmetry=mean_a,
            random_asymmetry_std=std_a,
            appeared=bool(
                row["left_attack_left"] < 0
                and row["right_attack_right"] < 0
                and left_a < mean_a - 2 * std_a
                and right_a > mean_a + 2 * std_a
            ),
        )
        effects.append(row)
    return effects


def _value(v) -> float:
    return v["mean"] if isinstance(v, dict) else v
