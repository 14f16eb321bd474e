"""The training engine: learning, determinism, sharding, checkpoints, failure modes."""

import functools
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import gpj_command

from gpj import engine, models, tasks
from gpj.data import batches, sources
from gpj.engine import cpu_devices
from gpj.engine.state import _init_state
from gpj.errors import CheckpointError, ConfigError, TrainingDiverged
from gpj.evaluators.every_cell import every_cell_eval

GRID = 3
BATCH = 16


@pytest.fixture(scope="module")
def dataset():
    return sources.load_dataset("digits", image_size=8, channels=1)


@pytest.fixture(scope="module")
def model():
    return models.build_model("resnet10", num_classes=GRID * GRID, width=0.125)


def optim_config(**overrides):
    c = ml_collections.ConfigDict(
        {
            "name": "adam",
            "learning_rate": 1e-3,
            "b1": 0.5,
            "b2": 0.999,
            "momentum": 0.9,
            "weight_decay": 0.0,
            "schedule": "constant",
            "warmup_steps": 0,
        }
    )
    c.update(overrides)
    return c


LOCATION = tasks.Canvas(GRID, "location").objective
TX = engine.make_optimizer(optim_config(), 0)  # constant learning rate: no step count needed


@functools.cache
def compiled(mesh, objective=LOCATION, seeds=1):
    """Compiled steps shared by the tests, as an experiment shares them across seeds: the train
    step of `seeds` stacked seeds, its seed mesh and the every-cell eval step."""
    eval_step = engine.compile_eval_step(
        functools.partial(every_cell_eval, grid_size=GRID, target="location"), mesh
    )
    seed_mesh = engine.seed_mesh(mesh, math.gcd(seeds, mesh.devices.size))
    return engine.compile_seeds_train_step(objective, seed_mesh), seed_mesh, eval_step


def fit_lanes(lanes, mesh, seeds, num_steps=12, objective=LOCATION, **kw):
    """`engine.fit` of `lanes` in a program of `seeds` seeds, with the tests' cadences."""
    step_fn, seed_mesh, _ = compiled(mesh, objective, seeds)
    return engine.fit(
        lanes,
        step_fn,
        seeds=seeds,
        num_steps=num_steps,
        mesh=mesh,
        seed_mesh=seed_mesh,
        log_every=2,
        checkpoint_every=4,
        keep_checkpoints=2,
        **kw,
    )


def make_run(model, dataset, mesh, objective=LOCATION, seed=0):
    """Fresh state and batch function of a tiny location-task run."""
    state = engine.create_state(model, TX, (1, 8 * GRID, 8 * GRID, 1), seed, mesh)
    n = len(dataset.train_labels)

    def batch_fn(step):
        idx = batches.train_batch_indices(n, BATCH, seed, step)
        return {"image": dataset.train_images[idx], "label": dataset.train_labels[idx]}

    return state, batch_fn


def fit(run_dir, model, dataset, mesh, num_steps=12, objective=LOCATION, **kw):
    """One seed through the engine's loop: (final state, history)."""
    state, batch_fn = make_run(model, dataset, mesh, objective)
    lane = engine.Lane(
        state, kw.pop("batch_fn", batch_fn), str(run_dir), kw.pop("fingerprint", {"test": 1})
    )
    ((state, history),) = fit_lanes([lane], mesh, 1, num_steps, objective, **kw)
    return state, history


def evaluate(state, dataset, mesh):
    sums = engine.evaluate(
        state,
        compiled(mesh)[2],
        batches.eval_batches(
            {"image": dataset.test_images[:64], "label": dataset.test_labels[:64]}, 32
        ),
        mesh,
        jax.random.PRNGKey(0),
    )
    return np.asarray(sums["correct_per_cell"])


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_training_reduces_the_loss(tmp_path, model, dataset):
    _, history = fit(tmp_path, model, dataset, engine.make_mesh(), num_steps=30)
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]


def test_init_compiled_for_speed_gives_the_default_compilers_state(model):
    """The init program compiles with `INIT_COMPILER_OPTIONS` on the CPU; its state must be
    bit-identical to the one XLA's default optimisation gives."""
    shape = (1, 8 * GRID, 8 * GRID, 1)
    fast = engine.compile_init(model, TX, shape, engine.make_mesh())
    default = jax.jit(functools.partial(_init_state, model=model, tx=TX, input_shape=shape))
    for seed in (0, 7):
        expected = default(jax.random.PRNGKey(seed)).checkpoint_items()
        assert leaves_equal(fast(seed).checkpoint_items(), expected)


def test_same_seed_same_numbers_and_checkpoint_restore_is_bit_identical(tmp_path, model, dataset):
    mesh = engine.make_mesh()
    state_a, hist_a = fit(tmp_path / "a", model, dataset, mesh)
    state_b, hist_b = fit(tmp_path / "b", model, dataset, mesh)
    assert hist_a == hist_b and leaves_equal(state_a.params, state_b.params)
    # A rerun of a finished workdir restores the final checkpoint and trains no further.
    restored, hist_c = fit(
        tmp_path / "a",
        model,
        dataset,
        mesh,
        batch_fn=lambda step: pytest.fail("a finished run must not train"),
    )
    assert int(restored.step) == 12 and hist_c == hist_a
    assert leaves_equal(restored.checkpoint_items(), state_a.checkpoint_items())
    np.testing.assert_array_equal(
        evaluate(restored, dataset, mesh), evaluate(state_a, dataset, mesh)
    )


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, model, dataset):
    mesh = engine.make_mesh()
    full, full_history = fit(tmp_path / "full", model, dataset, mesh)
    _, batch_fn = make_run(model, dataset, mesh)

    def killed_at_step_10(step):
        if step == 10:
            raise KeyboardInterrupt
        return batch_fn(step)

    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "cut", model, dataset, mesh, batch_fn=killed_at_step_10)
    steps = sorted(int(p) for p in os.listdir(tmp_path / "cut" / "checkpoints") if p.isdigit())
    assert steps == [4, 8]
    resumed, history = fit(
        tmp_path / "cut",
        model,
        dataset,
        mesh,
        batch_fn=lambda step: (
            batch_fn(step) if step >= 8 else pytest.fail(f"step {step} was already done")
        ),
    )
    assert int(resumed.step) == 12
    assert leaves_equal(resumed.checkpoint_items(), full.checkpoint_items())
    assert [h["step"] for h in history] == [h["step"] for h in full_history]
    assert history[-1] == full_history[-1]


def test_plateau_rule_on_step_weighted_window_means():
    # Windows of 4 steps; records of 2 steps each, so a window's mean is of two records.
    def history(window_means):
        return [{"step": 4 * i + j, "loss": m} for i, m in enumerate(window_means) for j in (2, 4)]

    rule = functools.partial(engine.plateaued, window=4, patience=2, min_delta=0.1)
    assert not rule(history([2.0, 1.0]))  # no window before the patience windows
    assert not rule(history([2.0, 1.0, 0.95, 0.85]))  # the last is 0.15 below the best, 1.0
    assert rule(history([2.0, 1.0, 0.95, 0.91]))  # both within 0.1 of 1.0
    assert not rule(history([2.0, 1.0, 0.95]))  # one window since the best is not two
    # A record covering 3 of a window's 4 steps weighs 3×: mean (3 * 0.8 + 1 * 2.0) / 4 = 1.1.
    uneven = [{"step": 4, "loss": 1.0}, {"step": 7, "loss": 0.8}, {"step": 8, "loss": 2.0}]
    uneven += [{"step": 12, "loss": 1.05}]
    assert rule(uneven)
    assert not rule(uneven[:-1] + [{"step": 11, "loss": 1.0}])  # a partial window is no window


def test_validation_plateau_rule_needs_a_gain_above_its_noise():
    def history(points, every=100):  # curve points every 100 steps between loss-only records
        return [
            r
            for i, p in enumerate(points)
            for r in ({"step": every * i + 50}, {"step": every * (i + 1), "val_accuracy": p})
        ]

    # 400 images: at an earlier best of 0.5 one SE is sqrt(0.25 / 400) = 0.025, so 2 SE = 0.05.
    rule = functools.partial(engine.val_plateaued, key="val_accuracy", count=400, gain_se=2.0)
    assert not rule(history([0.2, 0.5, 0.52]))  # one point in the later half (steps 200-300)
    assert rule(history([0.2, 0.5, 0.52, 0.54]))  # later best 0.54 is 0.04 < 0.05 above 0.5
    assert not rule(history([0.2, 0.5, 0.52, 0.56]))  # 0.06 above: still learning
    assert rule(history([0.2, 0.5, 0.3, 0.4]))  # falling after the best is a plateau too
    # The window scales with the steps taken: at step 800 the earlier half is steps 100-400.
    assert not rule(history([0.1, 0.2, 0.3, 0.4, 0.41, 0.42, 0.43, 0.46]))  # 0.06 > 2 SE(0.4)
    assert rule(history([1.0, 1.0, 1.0, 1.0]))
    # At 0 the binomial SE is 0, so the floor of one image (1 / 400) applies: 2 SE = 0.005.
    assert rule(history([0.0, 0.0, 0.0, 0.004]))
    assert not rule(history([0.0, 0.0, 0.0, 0.006]))


def test_plateau_stop_ends_early_logs_the_test_curve_and_a_rerun_trains_nothing(
    tmp_path, model, dataset
):
    mesh = engine.make_mesh()
    always = functools.partial(engine.plateaued, window=4, patience=1, min_delta=1e9)
    calls = []

    def curve(state):
        calls.append(int(state.step))
        return {"test_accuracy": evaluate(state, dataset, mesh).sum() / 64}

    state, history = fit(tmp_path, model, dataset, mesh, evaluate=curve, eval_every=4, stop=always)
    # Windows end at 4 and 8; at 8 the second window is no better than the first: stop there.
    assert int(state.step) == 8 and calls == [4, 8]
    assert [h["step"] for h in history if "test_accuracy" in h] == [4, 8]
    assert os.path.isdir(tmp_path / "checkpoints" / "8")
    restored, again = fit(
        tmp_path,
        model,
        dataset,
        mesh,
        batch_fn=lambda step: pytest.fail("a run that stopped must not train on"),
        evaluate=curve,
        eval_every=4,
        stop=always,
    )
    assert int(restored.step) == 8 and again == history


def test_one_and_eight_devices_agree(tmp_path, model, dataset):
    assert jax.device_count() == 8, "conftest should give 8 virtual CPU devices"
    one = engine.make_mesh(jax.devices()[:1])
    eight = engine.make_mesh()
    s1, h1 = fit(tmp_path / "one", model, dataset, one, num_steps=6)
    s8, h8 = fit(tmp_path / "eight", model, dataset, eight, num_steps=6)
    # Same math; only the order of floating-point reductions differs.
    for a, b in zip(h1, h8):
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s8.params)):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-3)
    np.testing.assert_array_equal(evaluate(s1, dataset, one), evaluate(s8, dataset, eight))


def test_batch_not_divisible_by_devices_is_a_config_error():
    with pytest.raises(
        ConfigError, match="train.batch_size=12 is not divisible by the number of devices \\(8\\)"
    ):
        engine.check_batch_size(12, engine.make_mesh(), "train.batch_size")


def test_corrupt_checkpoint_is_reported_and_left_untouched(tmp_path, model, dataset):
    mesh = engine.make_mesh()
    fit(tmp_path, model, dataset, mesh, num_steps=4)
    ckpt = tmp_path / "checkpoints" / "4"
    files = [p for p in ckpt.rglob("*") if p.is_file() and p.stat().st_size > 0]
    for p in files:
        p.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot restore the checkpoint of step 4"):
        fit(tmp_path, model, dataset, mesh, num_steps=4)
    assert all(p.read_bytes() == b"garbage" for p in files)


def test_incompatible_checkpoint_is_a_clear_error(tmp_path, model, dataset):
    mesh = engine.make_mesh()
    fit(tmp_path, model, dataset, mesh, num_steps=4)
    wider = models.build_model("resnet10", num_classes=GRID * GRID, width=0.25)
    with pytest.raises(CheckpointError, match="cannot restore"):
        fit(tmp_path, wider, dataset, mesh, num_steps=4)


def test_other_settings_in_the_same_run_dir_are_refused(tmp_path, model, dataset):
    mesh = engine.make_mesh()
    fit(tmp_path, model, dataset, mesh, num_steps=4)
    with pytest.raises(CheckpointError, match="other settings \\(differing: test\\)"):
        fit(tmp_path, model, dataset, mesh, num_steps=4, fingerprint={"test": 2})
    assert json.loads((tmp_path / "run_config.json").read_text()) == {"test": 1}


def diverging(params, state, batch, rng):
    """The location objective, with the loss turning NaN from step 5 on."""
    loss, aux = LOCATION(params, state, batch, rng)
    return jnp.where(state.step >= 5, jnp.nan, loss), aux


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, model, dataset):
    with pytest.raises(TrainingDiverged, match="last good checkpoint \\(step 4\\)"):
        fit(tmp_path, model, dataset, engine.make_mesh(), objective=diverging)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4"]


def test_cosine_schedule_with_warmup_and_weight_decay():
    tx = engine.make_optimizer(
        optim_config(
            name="sgd",
            momentum=0.0,
            schedule="cosine",
            warmup_steps=2,
            weight_decay=0.1,
            learning_rate=1.0,
        ),
        10,
    )
    params = {"w": jnp.ones(())}
    opt_state = tx.init(params)
    lrs = []
    for _ in range(10):
        updates, opt_state = tx.update({"w": jnp.zeros(())}, opt_state, params)
        lrs.append(-float(updates["w"]) / 0.1)  # zero gradient: the update is -lr * wd * w
    expected = [0.0, 0.5] + [0.5 * (1 + np.cos(np.pi * k / 8)) for k in range(8)]
    np.testing.assert_allclose(lrs, expected, atol=1e-6)


@pytest.mark.parametrize(
    "batch_sizes, cores, expected",
    [((48, 120), 2, 2), ((48, 120), 16, 12), ((45, 120), 2, 1), ((32, 200), 8, 8)],
)
def test_cpu_devices_divide_every_batch_size(batch_sizes, cores, expected):
    assert cpu_devices.devices_for(batch_sizes, cores) == expected


_SHOW_DEVICES = (
    "from gpj.engine import cpu_devices; import jax, sys; "
    "print(cpu_devices.split_cpu((48, 120), int(sys.argv[1])), jax.device_count())"
)


@pytest.mark.parametrize("requested", [0, 3])
def test_split_cpu_sets_the_device_count_before_jax_starts(requested):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", _SHOW_DEVICES, str(requested)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    expected = requested or cpu_devices.devices_for((48, 120), cpu_devices.cpu_cores())
    assert out == [str(expected), str(expected)]


def test_a_device_count_in_xla_flags_wins():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=5"}
    out = subprocess.run(
        [sys.executable, "-c", _SHOW_DEVICES, "0"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["None", "5"]


def test_negative_cpu_devices_is_refused_in_one_line():
    proc = gpj_command("gpj.main", "--config=configs/probe.py:tiny", "--cpu_devices=-1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.strip() == "error: --cpu_devices=-1 must be 0 (one per core) or positive"


def fit_seeds(run_dirs, model, dataset, mesh, seeds, num_steps=12, calls=None):
    """The seeds of `run_dirs` ({seed: folder}) trained side by side in one program of `seeds`
    seeds; `calls` collects the (seed, step) of every batch drawn."""
    lanes = []
    for seed, run_dir in run_dirs.items():
        state, batch_fn = make_run(model, dataset, mesh, seed=seed)

        def drawn(step, seed=seed, batch_fn=batch_fn):
            if calls is not None:
                calls.append((seed, step))
            return batch_fn(step)

        lanes.append(engine.Lane(state, drawn, str(run_dir), {"seed": seed}))
    return fit_lanes(lanes, mesh, seeds, num_steps)


def test_a_seed_among_others_equals_the_seed_alone(tmp_path, model, dataset):
    """Seeds 0 and 1 in one program of two seeds, and of four (two idle slots), against each seed
    alone: the same batches in the same order and the same random streams exactly, the same
    numbers to float summation order."""
    mesh = engine.make_mesh()
    calls = {}
    alone = []
    for seed in (0, 1):
        calls[seed] = []
        dirs = {seed: tmp_path / f"alone{seed}"}
        alone += fit_seeds(dirs, model, dataset, mesh, 1, calls=calls[seed])
    for seeds in (2, 4):
        together_calls = []
        dirs = {seed: tmp_path / f"s{seeds}-{seed}" for seed in (0, 1)}
        together = fit_seeds(dirs, model, dataset, mesh, seeds, calls=together_calls)
        for seed in (0, 1):
            assert [c for c in together_calls if c[0] == seed][: len(calls[seed])] == calls[seed]
            (state, history), (state_alone, history_alone) = together[seed], alone[seed]
            assert np.array_equal(
                jax.random.key_data(state.rng), jax.random.key_data(state_alone.rng)
            )
            assert int(state.step) == int(state_alone.step) == 12
            np.testing.assert_allclose(history[0]["loss"], history_alone[0]["loss"], rtol=1e-5)
            for a, b in zip(history, history_alone):
                assert a["step"] == b["step"]
                np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-3)
            for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(state_alone.params)):
                np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-3)


def test_seeds_resumed_at_different_steps_train_on_together(tmp_path, model, dataset):
    """Seed 0 killed after its checkpoint of step 8, seed 1 finished alone: resumed together,
    seed 0 trains steps 8-11 only, seed 1 nothing, and both equal uninterrupted runs."""
    mesh = engine.make_mesh()
    dirs = {0: tmp_path / "seed0", 1: tmp_path / "seed1"}
    (full0, full0_history), _ = fit_seeds(
        {0: tmp_path / "full0", 1: tmp_path / "full1"}, model, dataset, mesh, 2
    )
    fit_seeds({0: dirs[0]}, model, dataset, mesh, 1, num_steps=8)
    fit_seeds({1: dirs[1]}, model, dataset, mesh, 1)
    calls = []
    (state0, history0), (state1, _) = fit_seeds(dirs, model, dataset, mesh, 2, calls=calls)
    assert sorted({step for seed, step in calls}) == [8, 9, 10, 11]
    assert int(state0.step) == int(state1.step) == 12
    assert [h["step"] for h in history0] == [h["step"] for h in full0_history]
    for a, b in zip(jax.tree.leaves(state0.params), jax.tree.leaves(full0.params)):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-3)
