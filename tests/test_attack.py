"""The attack experiment: attack curves, the segmentation loss, the CLI end to end, bad configs."""

import json

import jax
import numpy as np
import pytest
from conftest import assert_bad_configs_fail_fast, gpj_command

from gpj import engine, models, tasks
from gpj.analysis import attack
from gpj.configs import sections
from gpj.data import segmentation


def test_attack_curves_on_a_metric_with_known_answers():
    important = {3, 5}  # the metric loses half a point for each of these channels ablated

    def evaluate(channels):
        return {"m": 1.0 - len(important & set(channels.tolist())) / 2}

    ranking = np.array([5, 3, 0, 1, 2, 4, 6, 7])
    curves = attack.attack_curves(
        evaluate, {"overall": ranking}, num_channels=8, sizes=(1, 2, 4), num_draws=200, seed=0
    )
    assert curves["clean"] == {"m": 1.0}
    assert [(r["n"], r["m"]) for r in curves["overall"]] == [(1, 0.5), (2, 0.0), (4, 0.0)]
    for row in curves["random"]:
        draws = row["m"]["draws"]
        assert len(draws) == 200 and row["m"]["std"] == pytest.approx(np.std(draws, ddof=1))
        # N random of 8 channels hit 2N/8 important ones on average: m = 1 - N/8.
        assert row["m"]["mean"] == pytest.approx(1 - row["n"] / 8, abs=0.05)


def _run(seed, clean, overall, left, right, random_draws):
    """A segmentation run's curves at one N: (left mIoU, right mIoU) per ranking and draw."""

    def metrics(left_right, confusion=0.1):
        return {
            "miou_all": sum(left_right) / 2,
            "miou_left": left_right[0],
            "miou_right": left_right[1],
            "side_confusion": confusion,
        }

    draws = [metrics(d) for d in random_draws]
    return {
        "model": "seg",
        "seed": seed,
        "sizes": [8],
        "curves": {
            "clean": metrics(clean),
            "overall": [{"n": 8, **metrics(overall, 0.3)}],
            "left": [{"n": 8, **metrics(left)}],
            "right": [{"n": 8, **metrics(right)}],
            "random": [{"n": 8, **{k: {"draws": [d[k] for d in draws]} for k in draws[0]}}],
        },
    }


def test_attack_effects_use_seeds_as_units_with_t_intervals():
    from scipy import stats as scipy_stats

    runs = [
        _run(0, (0.8, 0.8), (0.5, 0.5), (0.4, 0.7), (0.7, 0.45), [(0.7, 0.7), (0.72, 0.66)]),
        _run(1, (0.8, 0.8), (0.55, 0.5), (0.45, 0.7), (0.72, 0.4), [(0.7, 0.74), (0.7, 0.7)]),
        _run(2, (0.8, 0.8), (0.5, 0.6), (0.42, 0.72), (0.7, 0.42), [(0.66, 0.7), (0.7, 0.7)]),
    ]
    (row,) = attack.effects(runs)
    random_all = [
        np.mean([(a + b) / 2 for a, b in d])
        for d in ([(0.7, 0.7), (0.72, 0.66)], [(0.7, 0.74), (0.7, 0.7)], [(0.66, 0.7), (0.7, 0.7)])
    ]
    overall = np.array([0.5, 0.525, 0.55]) - random_all
    expected = scipy_stats.ttest_1samp(overall, 0).confidence_interval()
    assert row["overall_vs_random"]["mean"] == pytest.approx(overall.mean())
    assert row["overall_vs_random"]["ci95"] == pytest.approx(list(expected))
    assert row["side_confusion"]["overall_vs_random"]["mean"] == pytest.approx(0.2)
    # Left attack: asymmetry (left − right) minus the random sets' mean asymmetry, per seed.
    left = [(0.4 - 0.7) - 0.03, (0.45 - 0.7) + 0.02, (0.42 - 0.72) + 0.02]
    assert row["left_excess"]["mean"] == pytest.approx(np.mean(left))
    assert row["left_excess"]["n"] == 3 and row["side_specific"] is True
    assert "sym_side_specific" not in row
    # One seed: no interval, no decision.
    assert attack.effects(runs[:1])[0]["side_specific"] is None


def test_side_confusion_counts_shapes_given_the_other_side():
    from gpj.analysis import segmentation_metrics

    k = 2  # classes: 0 background, 1-2 shapes on the left, 3-4 the same shapes on the right
    confusion = np.zeros((5, 5), np.int64)
    confusion[0, 0] = 100  # background is not counted
    confusion[1, 1], confusion[1, 3] = 6, 2  # shape 1 left: 2 pixels called shape 1 right
    confusion[4, 2], confusion[4, 4], confusion[4, 1] = 3, 5, 4  # shape 2 right: 3 swapped
    assert segmentation_metrics.side_confusion(confusion, k) == pytest.approx(5 / 20)


def test_random_channels_are_distinct_and_a_function_of_seed_n_and_draw():
    a = attack.random_channels(64, 16, seed=0, draw=3)
    assert len(set(a.tolist())) == 16 and a.max() < 64
    np.testing.assert_array_equal(a, attack.random_channels(64, 16, seed=0, draw=3))
    assert not np.array_equal(a, attack.random_channels(64, 16, seed=0, draw=4))
    assert not np.array_equal(a, attack.random_channels(64, 16, seed=1, draw=3))


def test_segmentation_loss_is_the_mean_cross_entropy_over_labelled_pixels():
    model = models.build_segmentation_model(
        "resnet10", num_classes=segmentation.NUM_CLASSES, width=0.125, aspp_rates=(1, 2)
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 24, 24, 1)).astype(np.float32)
    labels = rng.integers(0, segmentation.NUM_CLASSES, size=(2, 24, 24)).astype(np.int32)
    labels[0, :5] = segmentation.IGNORE_LABEL
    tx = engine.make_optimizer(sections.optim(), 1)
    state = engine.create_state(model, tx, x.shape, 0, engine.make_mesh())
    variables = state.variables
    key = jax.random.PRNGKey(2)
    loss, (metrics, _) = jax.jit(tasks.Segmentation().objective)(
        state.params, state, {"image": x, "label": labels}, key
    )
    (logits, _), _ = jax.jit(
        lambda v: model.apply(v, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"])
    )(variables)
    logits = np.asarray(logits, np.float64)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = labels != segmentation.IGNORE_LABEL
    picked = np.take_along_axis(log_p, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    assert float(loss) == pytest.approx(-picked[valid].mean(), rel=1e-5)
    expected_acc = (logits.argmax(-1) == labels)[valid].mean()
    assert float(metrics["accuracy"]) == pytest.approx(expected_acc, abs=1e-6)


def test_tiny_attack_writes_curves_tables_figures(tiny_attack):
    workdir, out = tiny_attack
    results = json.loads((workdir / "results.json").read_text())
    assert {r["model"] for r in results["runs"]} == {
        "segmentation-position_needed",
        "segmentation-shape_only",
        "gapnet-location",
        "gapnet-object",
    }
    for r in results["runs"]:
        c = r["num_channels"]
        assert sorted(r["scores"]["rank_flip_abs"]) == list(range(c))
        assert r["sizes"] == [n for n in (1, 4, 16) if n <= c]
        curves = r["curves"]
        assert [row["n"] for row in curves["overall"]] == r["sizes"]
        assert all(len(row[k]["draws"]) == 2 for row in curves["random"] for k in row if k != "n")
        if r["model"].startswith("segmentation"):
            rankings = {"overall", "left", "right", "sym_left", "sym_right"}
            assert set(curves) == {"clean", "random"} | rankings
            metrics = {"miou_all", "miou_left", "miou_right", "miou_center"}
            if r["model"] == "segmentation-position_needed":
                metrics.add("side_confusion")
            assert set(curves["clean"]) == metrics
            # Ranked on the calibration split (64 canvases of train digits), not the test split.
            assert r["ranked_on"] == "calibration" and r["num_scored_images"] == 64
            assert "eta2" not in r["scores"]
            example = r["example"]
            assert set(example["predictions"]) == {"clean", "overall", "left", "right"}
            assert np.asarray(example["label"]).shape == (16, 24)
        else:
            assert set(curves) == {"clean", "overall", "random"}
            assert np.asarray(r["scores"]["cell_mean"]).shape == (3, 3, c)
            assert 0 <= min(r["scores"]["eta2"]) and max(r["scores"]["eta2"]) <= 1
    location = next(r for r in results["runs"] if r["model"] == "gapnet-location")
    assert location["curves"]["clean"]["accuracy"] > 0.5
    assert not (workdir / "probe").exists()  # the GAPNets came from the given probe workdir
    report = (workdir / "report.md").read_text()
    for heading in (
        "**DeepLabv3, position-needed labels**",
        "**DeepLabv3, shape-only labels (control B)**",
        "**Region-specific attack**",
        "**Classification**",
    ):
        assert heading in out and heading in report
    assert "What the paper's hypothesis predicts" in report
    assert "one seed: undecided" in report  # a single seed has no interval to decide with
    for figure in (
        "attack_curves.png",
        "score_histograms.png",
        "tuning_maps.png",
        "segmentation_example.png",
    ):
        assert (workdir / figure).stat().st_size > 1000 and f"]({figure})" in report


def test_attack_loads_a_trained_model_or_trains_a_probe_and_reproduces(tiny_attack, tmp_path):
    """Segmentation loaded from the first run; the location GAPNet trained here with the tiny
    probe's settings: both must give the first run's numbers exactly."""
    workdir, _ = tiny_attack
    proc = gpj_command(
        "gpj.main",
        "--config=configs/attack.py:tiny",
        f"--workdir={tmp_path}",
        f"--config.segmentation.init_workdir={workdir}",
        "--config.segmentation.designs=('position_needed',)",
        "--config.classifier.tasks=('location',)",
    )
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    before = json.loads((workdir / "results.json").read_text())["runs"]
    after = json.loads((tmp_path / "results.json").read_text())["runs"]
    # Trained through the driver into <workdir>/probe, without a probe report of its own.
    probe_run = tmp_path / "probe" / "gapnet-location" / "seed0"
    assert not (tmp_path / "segmentation-position_needed").exists()
    assert (probe_run / "checkpoints").is_dir()
    assert not (tmp_path / "probe" / "results.json").exists()
    assert [r["weights"]["source"] for r in after] == ["earlier_workdir", "init"]
    assert after[0]["history"] == [] and after[0]["train_time_s"] == 0  # loaded, not trained
    assert [r["model"] for r in after] == ["segmentation-position_needed", "gapnet-location"]
    first = {r["model"]: r for r in before}
    for b in after:
        a = first[b["model"]]
        assert a["curves"] == b["curves"] and a["scores"] == b["scores"]


BAD_CONFIGS = {
    "sizes": (
        ["--config.evals.attack.num_channels=()"],
        "evals.attack.num_channels=() must be positive",
    ),
    "fill": (["--config.evals.attack.fill=median"], "evals.attack.fill='median' is not valid"),
    "draws": (
        ["--config.evals.attack.num_random=0"],
        "evals.attack.num_random=0 must be a positive number",
    ),
    "setting": (
        ["--config.evals={'attack': {'channels': 4}}"],
        "evals.attack.channels is not a setting of the attack evaluator; its settings: ",
    ),
    "more channels than the model has": (
        ["--config.evals.attack.num_channels=(1, 4, 100)"],
        "asks for 100 channels, but the segmentation-position_needed model's backbone output has 64",
    ),
    "backbone": (["--config.model.name=vgg16"], "model.name='vgg16' is not valid"),
    "stride": (["--config.model.output_stride=4"], "model.output_stride=4 is not valid"),
    "side": (
        ["--config.segmentation.left_fraction=1.5"],
        "segmentation.left_fraction=1.5 must be between 0.0 and 1.0",
    ),
    "design": (
        ["--config.segmentation.designs=('colour',)"],
        "segmentation.designs=('colour',) must name one or more of",
    ),
    "rank_on": (
        ["--config.evals.attack.rank_on=train"],
        "evals.attack.rank_on='train' is not valid",
    ),
    "dead zone": (
        ["--config.segmentation.dead_zone=10"],
        "segmentation: dead_zone=10 leaves no room for a 8-pixel-wide digit",
    ),
    "task": (["--config.classifier.tasks=('colour',)"], "classifier.tasks entry 'colour'"),
    "probe": (
        ["--config.classifier.probe_workdir=/nonexistent"],
        "classifier.probe_workdir='/nonexistent' is not a finished probe workdir",
    ),
    "init": (
        ["--config.segmentation.init_workdir=/nonexistent"],
        "segmentation.init_workdir='/nonexistent' has no trained run of seed 0",
    ),
}


def test_every_bad_attack_config_fails_fast_with_one_clear_line():
    assert_bad_configs_fail_fast("configs/attack.py:tiny", BAD_CONFIGS)
