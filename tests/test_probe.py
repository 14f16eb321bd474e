"""The probe experiment end to end, its presets, and every bad-config case of the CLI."""

import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import assert_bad_configs_fail_fast, gpj_command

from gpj import checks, kinds
from gpj.configs.probe import get_config
from gpj.errors import ConfigError
from gpj.experiments import runner


def gpj_main(*args, **kw):
    return gpj_command("gpj.main", *args, **kw)


def test_tiny_probe_writes_results_report_figures_checkpoints(tiny_probe):
    workdir, out = tiny_probe
    results = json.loads((workdir / "results.json").read_text())
    assert "| GAPNet |" in out and "| PermuteNet |" in out
    assert {(r["head"], r["task"]) for r in results["runs"]} == {
        (h, t) for h in ("gapnet", "permutenet") for t in ("location", "object")
    }
    n_test = results["dataset"]["num_test"]
    for r in results["runs"]:
        assert r["num_test_images"] == n_test and r["num_evaluations"] == 9 * n_test
        assert len(r["per_cell_accuracy"]) == 3 and all(
            len(row) == 3 for row in r["per_cell_accuracy"]
        )
        assert abs(sum(map(sum, r["per_cell_accuracy"])) / 9 - r["accuracy"]) < 1e-9
        run_dir = workdir / r["run_dir"]
        assert (run_dir / "checkpoints" / str(r["steps"])).is_dir()
        # No plateau stop: the whole budget; the test curve is logged at the last step.
        assert r["steps"] == r["budget_steps"] and r["history"][-1]["step"] == r["steps"]
        curve = [h for h in r["history"] if "test_accuracy" in h]
        assert [h["step"] for h in curve] == [r["steps"]] and 0 <= curve[0]["test_accuracy"] <= 1
        assert any(f.startswith("events.out.tfevents") for f in os.listdir(run_dir / "tensorboard"))
    assert results["chance"] == {"location": 1 / 9, "object": 1 / 10}
    assert results["environment"]["device_count"] >= 1 and results["environment"]["packages"]["jax"]
    assert results["config"]["model"]["name"] == "resnet10"
    report = (workdir / "report.md").read_text()
    assert "| model | location (chance 11.1) | object (chance 10.0) |" in report
    for figure in ("per_cell_accuracy.png", "training_curves.png"):
        assert (workdir / figure).stat().st_size > 1000 and f"]({figure})" in report
    for r in results["runs"]:  # GAPNets get their channels scored; PermuteNets do not
        assert ("scores" in r) == (r["head"] == "gapnet")
        if r["head"] == "gapnet":
            assert r["num_scored_images"] == n_test
            assert np.asarray(r["scores"]["cell_mean"]).shape[:2] == (3, 3)
    assert "## Channel position scores" in report and "](tuning_maps.png)" in report
    assert "needs converged runs: `python -m gpj.main --config=configs/paper.py`" in out
    gapnet_location = [
        r for r in results["runs"] if (r["head"], r["task"]) == ("gapnet", "location")
    ]
    assert gapnet_location[0]["accuracy"] > 0.5  # far above chance even after one tiny epoch


def test_rerun_on_the_same_workdir_resumes_and_reproduces(tiny_probe, tmp_path):
    workdir = tmp_path / "copy"  # the shared run stays as it is
    shutil.copytree(tiny_probe[0], workdir)
    before = json.loads((workdir / "results.json").read_text())["runs"]
    proc = gpj_main(
        "--config=configs/probe.py:tiny",
        f"--workdir={workdir}",
        "--config.runs=('permutenet:location',)",
    )
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    after = json.loads((workdir / "results.json").read_text())["runs"]
    assert len(after) == 1 and "permutenet-location" not in err  # restored: no progress bar
    weights = after[0]["weights"]
    assert weights["source"] == "checkpoint" and weights["path"].startswith(str(workdir))
    expected = next(r for r in before if r["run_dir"] == after[0]["run_dir"])
    for key in ("accuracy", "per_cell_accuracy", "history"):
        assert after[0][key] == expected[key]


BAD_CONFIGS = {
    "model": (
        ["--config.model.name=resnet19"],
        "model.name='resnet19' is not valid; choose one of: resnet10, resnet18",
    ),
    "padding": (
        ["--config.model.padding=mirror"],
        "model.padding='mirror' is not valid; choose one of: zero, reflect",
    ),
    "dataset": (
        ["--config.data.name=imagenet"],
        "data.name='imagenet' is not valid; choose one of: digits",
    ),
    "grid": (
        ["--config.model.padding=valid"],
        "canvas (data.grid_size=3 x data.image_size=8) is too small",
    ),
    "epochs": (["--config.train.num_epochs=0"], "train.num_epochs=0 must be a positive number"),
    "shuffle": (
        ["--config.model.shuffle_layer=7"],
        "model.shuffle_layer=7 must be between 1 and 5",
    ),
    "runs": (["--config.runs=('gapnet:colour',)"], "runs entry 'gapnet:colour' is not valid"),
    "plateau on": (
        ["--config.train.plateau_on=test_loss"],
        "train.plateau_on='test_loss' is not valid; choose one of: train_loss, val_accuracy",
    ),
    "plateau on test data": (
        ["--config.train.plateau_on=test_accuracy"],
        "train.plateau_on='test_accuracy' is refused: a run's length must not be chosen on test",
    ),
    "validation plateau without a split": (
        ["--config.train.stop_on_plateau=True", "--config.train.plateau_on=val_accuracy"],
        "train.plateau_on='val_accuracy' needs a validation split: set data.val_fraction",
    ),
    "validation split": (
        ["--config.data.val_fraction=0.95"],
        "data.val_fraction=0.95 must be between 0.0 and 0.9",
    ),
    "evals": (
        ["--config.evals={'every_cell': {}, 'accuracy': {}}"],
        "evals entry 'accuracy' is not valid",
    ),
    "report's evaluator missing": (
        ["--config.evals={'scores': {}}"],
        (
            "evals lacks 'every_cell', which the probe report needs (it has scores); e.g. "
            "--config.evals=\"{'every_cell': {}, 'scores': {}}\""
        ),
    ),
    "eval for another task": (
        ["--config.evals={'every_cell': {}, 'shift': {}}"],
        "evals entry 'shift' measures shift tasks, but the gapnet-location runs learn a canvas",
    ),
}


def test_every_bad_config_fails_fast_with_one_clear_line():
    assert_bad_configs_fail_fast("configs/probe.py:tiny", BAD_CONFIGS)


def check(config):
    """The config's checks and the models' fit to the canvas, without the (tfds) data: images of
    the configured shape stand in for it."""
    runner.check_fields(config)
    d = config.data
    images = SimpleNamespace(
        train_images=np.zeros((1, d.image_size, d.image_size, d.channels)), num_classes=10
    )
    for spec in config.runs:
        checks.output_shapes(kinds.canvas(config, spec, images))


@pytest.mark.parametrize(
    "preset",
    ["cifar10", "vgg16", "tiny", "cifar10,vgg16", "imagenette", "controls,circular,pytorch_init"],
)
def test_presets_are_valid_and_fit(preset):
    check(get_config(preset))


@pytest.mark.parametrize("layer", [1, 2, 3, 4, 5])
def test_shuffle_depth_preset_is_valid_and_fits_at_every_depth(layer):
    config = get_config("shuffle_depth")
    config.model.shuffle_layer = layer
    check(config)
    assert config.train.plateau_on == "val_accuracy" and config.num_seeds == 3
    assert "readable" in config.evals


def test_converged_preset_stops_on_validation_data_at_most_at_the_official_length():
    """The stopping rule reads a validation split carved from the training digits, and the cap
    is at least the official code's step count (issue 30)."""
    from gpj.configs.probe import OFFICIAL_STEPS
    from gpj.data import sources

    config = get_config("controls,converged")
    check(config)
    data = sources.from_config(config.data)
    assert (config.train.plateau_on, config.data.val_fraction) == ("val_accuracy", 0.2)
    total = len(data.val_labels) + len(data.train_labels)
    assert abs(len(data.val_labels) - 0.2 * total) <= 10  # 20 % of each of the 10 classes
    assert np.bincount(data.val_labels).min() > 0
    kind = kinds.canvas(config, "permutenet:object", data)
    assert kind.num_steps >= OFFICIAL_STEPS


def test_official_length_preset_trains_the_official_step_count():
    from gpj.configs.probe import OFFICIAL_STEPS
    from gpj.data import sources

    config = get_config("official_length")
    check(config)
    kind = kinds.canvas(config, config.runs[0], sources.from_config(config.data))
    assert abs(kind.num_steps - OFFICIAL_STEPS) / OFFICIAL_STEPS < 0.001
    assert config.runs == ("permutenet:object", "fixedperm:object")
    assert not config.train.stop_on_plateau and config.train.eval_every_epochs > 0


def test_vgg16_on_tiny_canvases_is_refused_before_compute():
    with pytest.raises(ConfigError, match="24x24 canvas .* too small for model.name='vgg16'"):
        check(get_config("tiny,vgg16"))


def test_cifar10_preset_is_the_paper_setting():
    c = get_config("cifar10")
    assert (c.data.name, c.data.grid_size, c.data.image_size, c.model.width, c.model.stem) == (
        "cifar10",
        3,
        32,
        1.0,
        "paper",
    )
    assert (
        c.train.batch_size,
        c.train.num_epochs,
        c.optim.name,
        c.optim.learning_rate,
        c.optim.b1,
    ) == (48, 20, "adam", 1e-3, 0.5)


def test_vgg_with_an_inner_shuffle_layer_is_refused():
    config = get_config("vgg16")
    config.model.shuffle_layer = 2
    with pytest.raises(ConfigError, match="model.shuffle_layer=2 needs a ResNet"):
        runner.check_fields(config)


def test_a_run_stops_when_its_validation_curve_plateaus(tmp_path):
    """A curve point every epoch and no gain counted as real (gain_se=1e9): once each half of the
    steps holds two points (epoch 4) the run stops, after 4 of its 8 epochs; it logs the
    validation and the test curve, and the stop read only the validation one."""
    proc = gpj_main(
        "--config=configs/probe.py:tiny",
        "--config.runs=('gapnet:location',)",
        "--config.evals={'every_cell': {}}",
        "--config.data.val_fraction=0.2",
        "--config.train.num_epochs=8",
        "--config.train.eval_every_epochs=1",
        "--config.train.stop_on_plateau=True",
        "--config.train.plateau_on=val_accuracy",
        "--config.train.plateau_gain_se=1e9",
        f"--workdir={tmp_path}",
    )
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    (run,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert run["steps"] * 2 == run["budget_steps"]
    curve = [h for h in run["history"] if "val_accuracy" in h]
    assert len(curve) == 4 and all("test_accuracy" in h for h in curve)
    assert "until the validation accuracy stops rising" in (tmp_path / "report.md").read_text()
