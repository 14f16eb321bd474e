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
        "segmentation",
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
        if r["model"] == "segmentation":
            assert set(curves) == {"clean", "overall", "left", "right", "random"}
            assert set(curves["clean"]) == {"miou_all", "miou_left", "miou_right", "miou_center"}
            assert "eta2" not in r["scores"] and r["num_scored_images"] == 64
            example = r["example"]
            assert set(example["predictions"]) == {"clean", "overall", "left", "right"}
            assert np.asarray(example["label"]).shape == (24, 24)
        else:
            assert set(curves) == {"clean", "overall", "random"}
            assert np.asarray(r["scores"]["cell_mean"]).shape == (3, 3, c)
            assert 0 <= min(r["scores"]["eta2"]) and max(r["scores"]["eta2"]) <= 1
    location = next(r for r in results["runs"] if r["model"] == "gapnet-location")
    assert location["curves"]["clean"]["accuracy"] > 0.5
    assert not (workdir / "probe").exists()  # the GAPNets came from the given probe workdir
    report = (workdir / "report.md").read_text()
    for heading in ("**Segmentation**", "**Region-specific attack**", "**Classification**"):
        assert heading in out and heading in report
    assert ("region-specific effect appeared" in report) != ("did not appear" in report)
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
        "--config.classifier.tasks=('location',)",
    )
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    before = json.loads((workdir / "results.json").read_text())["runs"]
    after = json.loads((tmp_path / "results.json").read_text())["runs"]
    # Trained through the driver into <workdir>/probe, without a probe report of its own.
    probe_run = tmp_path / "probe" / "gapnet-location" / "seed0"
    assert not (tmp_path / "segmentation").exists() and (probe_run / "checkpoints").is_dir()
    assert not (tmp_path / "probe" / "results.json").exists()
    assert [r["weights"]["source"] for r in after] == ["earlier_workdir", "init"]
    assert after[0]["history"] == [] and after[0]["train_time_s"] == 0  # loaded, not trained
    assert [r["model"] for r in after] == ["segmentation", "gapnet-location"]
    for a, b in zip(before[:2], after, strict=True):
        assert a["curves"] == b["curves"] and a["scores"] == b["scores"]


BAD_CONFIGS = {
    "sizes": (["--config.attack.num_channels=()"], "attack.num_channels=() must be positive"),
    "fill": (["--config.attack.fill=median"], "attack.fill='median' is not valid"),
    "more channels than the model has": (
        ["--config.attack.num_channels=(1, 4, 100)"],
        "asks for 100 channels, but the segmentation model's backbone output has 64",
    ),
    "backbone": (["--config.model.name=vgg16"], "model.name='vgg16' is not valid"),
    "stride": (["--config.model.output_stride=4"], "model.output_stride=4 is not valid"),
    "side": (
        ["--config.segmentation.left_fraction=1.5"],
        "segmentation.left_fraction=1.5 must be between 0.0 and 1.0",
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
