"""AugShift objective, the shift evaluator, and the invariance experiment end to end."""

import json
import os

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_bad_configs_fail_fast

from gpj import engine, models, tasks
from gpj.analysis import stats
from gpj.configs.invariance import get_config
from gpj.data import shift
from gpj.errors import ConfigError
from gpj.evaluators.shift import shift_eval
from gpj.experiments import invariance, runner
from gpj.experiments.invariance import COMPARISONS
from gpj.report import invariance as report_invariance
from gpj.validation import field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def state():
    model = models.build_model("resnet18", num_classes=10, head="linear", width=0.125)
    mesh = engine.make_mesh(jax.devices()[:1])
    return engine.create_state(model, optax.adam(1e-3), (1, 8, 8, 1), 0, mesh)


def batch(n=8, size=8):
    rng = np.random.default_rng(0)
    return {
        "image": jnp.asarray(rng.normal(size=(n, size, size, 1)), jnp.float32),
        "label": jnp.asarray(rng.integers(0, 10, n), jnp.int32),
    }


def test_latent_mse_is_exactly_zero_for_identical_views(state):
    z = jax.random.normal(jax.random.PRNGKey(1), (4, 16))
    assert float(tasks.latent_mse(z, z)) == 0.0
    no_shift = tasks.Shift(max_shift=0, mode="canvas", pad_mode="zero", views=2, weight=5.0)
    _, (metrics, _) = no_shift.objective(state.params, state, batch(), jax.random.PRNGKey(2))
    assert float(metrics["latent_mse"]) == 0.0


def test_augshift_loss_is_two_cross_entropies_plus_weighted_latent_mse(state):
    b, rng = batch(size=4), jax.random.PRNGKey(3)

    def objective(weight):
        task = tasks.Shift(max_shift=2, mode="canvas", pad_mode="zero", views=2, weight=weight)
        return task.objective(state.params, state, b, rng)

    loss0, (m0, _) = objective(0.0)
    loss3, (m3, _) = objective(3.0)
    assert float(m3["latent_mse"]) > 0
    np.testing.assert_allclose(float(loss0), 2 * float(m0["ce"]), rtol=1e-6)
    np.testing.assert_allclose(
        float(loss3), float(loss0) + 3.0 * float(m3["latent_mse"]), rtol=1e-6
    )
    # The same views as an independent computation: place, forward once, two CEs, MSE.
    k1, k2 = jax.random.split(rng)
    views = [shift.place(b["image"], shift.random_offsets(k, 8, 2), 2, "canvas") for k in (k1, k2)]
    (logits, out), _ = state.apply_fn(
        state.variables, jnp.concatenate(views), train=True, mutable=["batch_stats"]
    )
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.tile(b["label"], 2))
    mse = jnp.mean((out["latent"][:8] - out["latent"][8:]) ** 2)
    np.testing.assert_allclose(
        float(loss3), float(ce[:8].mean() + ce[8:].mean() + 3 * mse), rtol=1e-5
    )


class RowReader(flax.struct.PyTreeNode):
    """A stand-in trained model: predicts the row of the brightest pixel (exact, no learning)."""

    variables: dict = flax.struct.field(default_factory=dict)

    def apply_fn(self, variables, x, train, ablation=None):
        del variables, train, ablation
        rows = jnp.argmax(jnp.max(x[..., 0], axis=2), axis=1)
        return jax.nn.one_hot(rows, x.shape[1]), {}


def test_shift_eval_places_every_offset_exactly_and_counts_agreeing_pairs():
    m, n = 3, 5
    images = np.zeros((n, 4, 4, 1), np.float32)
    images[:, 0, 0, 0] = 1.0  # the bright pixel lands on canvas row dy
    labels = np.full(n, m, np.int32)  # correct exactly when the image is vertically centred
    grid = shift.shift_grid(m, 1)
    pairs = shift.consistency_pairs(n, 4, m, seed=0)
    task = tasks.Shift(max_shift=m, mode="canvas", pad_mode="zero")
    sums = shift_eval(
        RowReader(),
        {"image": images, "label": labels, "mask": np.ones(n, bool), "pairs": pairs},
        None,
        task=task,
        grid=grid,
    )
    assert int(sums["correct_centred"]) == n
    np.testing.assert_array_equal(sums["correct_per_offset"], np.where(grid[:, 0] == m, n, 0))
    assert int(sums["agree"]) == int(np.sum(pairs[:, :, 0, 0] == pairs[:, :, 1, 0]))


BAD = {
    "variants": ("variants", ("baseline", "mixup"), "variants entry 'mixup' is not valid"),
    "mode": ("shift.mode", "roll", "shift.mode='roll' is not valid; choose one of: canvas, crop"),
    "filter": ("blurpool.filter_size", 7, "blurpool.filter_size=7 must be between 1 and 5"),
    "grid": ("evals.position_probe.grid", 0, "evals.position_probe.grid=0 must be a positive"),
    "step": ("evals.shift.step", -4, "evals.shift.step=-4 must be a positive number"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_invariance_configs_are_refused(case):
    path, value, message = BAD[case]
    config = get_config("tiny")
    section, _, key = path.rpartition(".")
    (field(config, section) if section else config)[key] = value
    with pytest.raises(ConfigError, match=message.replace("(", "\\(").replace(")", "\\)")):
        runner.check_fields(config)


def test_a_probe_grid_finer_than_the_offsets_is_refused_before_training():
    """The position probe checks its grid against the task's offsets, where it is built."""
    config = get_config("tiny")
    config.evals.position_probe.grid = 99
    with pytest.raises(ConfigError, match="evals.position_probe.grid=99 has more cells per axis"):
        runner.check(config)


def test_no_plateau_rule_reads_test_data():
    assert_bad_configs_fail_fast(
        "configs/invariance.py:tiny",
        {
            "plateau on test data": (
                ["--config.train.stop_on_plateau=True", "--config.train.plateau_on=test_accuracy"],
                "train.plateau_on='test_accuracy' is refused: a run's length must not be chosen",
            )
        },
    )


@pytest.mark.parametrize("preset", [None, "tiny", "cifar10", "blurpool"])
def test_presets_are_valid(preset):
    runner.check_fields(get_config(preset))


def test_tiny_invariance_run_end_to_end(tiny_invariance):
    tmp_path, out = tiny_invariance
    assert "| variant | centred acc. | shifted acc. | consistency |" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["variant"] for r in results["runs"]] == ["baseline", "augshift_blurpool"]
    for r in results["runs"]:
        for key in invariance.METRICS:
            assert 0.0 <= r[key] <= 1.0
        assert len(r["accuracy_per_offset"]) == len(results["shift_grid"])
        assert (tmp_path / r["run_dir"] / "checkpoints" / str(r["steps"])).is_dir()
    report = (tmp_path / "report.md").read_text()
    for figure in ("accuracy_vs_shift.png", "training_curves.png"):
        assert (tmp_path / figure).stat().st_size > 1000 and f"]({figure})" in report


def test_default_compares_augshift_with_its_two_view_control_paired_by_seed():
    config = get_config()
    assert {"baseline", "two_view", "augshift"} <= set(config.variants) and config.num_seeds >= 5
    # Seeds where AugShift is always 2-4 points more consistent than two_view, and the baseline
    # sometimes above, sometimes below.
    consistency = {
        "two_view": [0.60, 0.70, 0.65, 0.62, 0.68],
        "augshift": [0.63, 0.73, 0.69, 0.64, 0.71],
        "baseline": [0.70, 0.60, 0.66, 0.75, 0.58],
    }
    rows = [
        {"variant": v, "seed": seed, "consistency": c}
        for v, values in consistency.items()
        for seed, c in enumerate(values)
    ]
    results = {
        "comparisons": [stats.paired(rows, "variant", a, b, "consistency") for a, b in COMPARISONS]
    }
    lines = report_invariance.comparisons_table(results).splitlines()
    (vs_control,) = [line for line in lines if "augshift − two_view" in line]
    (vs_baseline,) = [line for line in lines if "augshift − baseline" in line]
    assert "| 5 | +3.0 [+2.1, +3.9] |" in vs_control and vs_control.endswith("| higher |")
    assert vs_baseline.endswith("| no difference shown |")
