"""A seed's numbers do not depend on the stage, session or resume that trained it.

The tiny probe's GAPNet on the location task (44 steps, a checkpoint every 20 and at the end),
through the real driver, in one process. Every comparison is exact: each seed runs the same
compiled one-seed program (`train.seeds_per_program=1`) on the same devices, its batches and
rngs are functions of (seed, step), and a checkpoint restores float32 arrays bit for bit, so a
tolerance could only hide a real difference (e.g. a step replayed or skipped).
"""

import shutil
import time

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gpj.configs.probe import get_config
from gpj.errors import BudgetReached
from gpj.experiments import runner

COMPARED = ("accuracy", "per_cell_accuracy", "steps", "history")


def probe(workdir, num_seeds: int, deadline=None, **train) -> dict:
    """Runs the tiny probe's GAPNet location run on `num_seeds` seeds (`train` overrides the
    train section); returns {seed: (its result row, its final checkpoint's arrays)}."""
    config = get_config("tiny")
    config.update(runs=("gapnet:location",), num_seeds=num_seeds)
    config.evals = ml_collections.ConfigDict({"every_cell": {}})
    config.train.update(train)
    rows = runner.run(config, str(workdir), deadline)["runs"]
    return {r["seed"]: (r, final_checkpoint(workdir / r["run_dir"])) for r in rows}


def final_checkpoint(run_dir) -> dict:
    """The arrays of a run folder's latest checkpoint (step, params, batch stats, optimizer state,
    rng), as numpy."""
    with ocp.CheckpointManager(run_dir.absolute() / "checkpoints") as manager:
        return manager.restore(manager.latest_step(), args=ocp.args.StandardRestore())


def assert_same_run(got, expected):
    (row, items), (expected_row, expected_items) = got, expected
    for key in COMPARED:
        assert row[key] == expected_row[key], key
    assert items.keys() == expected_items.keys()
    for a, b in zip(leaves(items), leaves(expected_items), strict=True):
        np.testing.assert_array_equal(a, b)


def leaves(items) -> list:
    return [np.asarray(x) for x in jax.tree.leaves(items)]


def test_a_seed_added_in_a_later_stage_equals_training_both_at_once(tmp_path):
    together = probe(tmp_path / "together", num_seeds=2)
    first = probe(tmp_path / "staged", num_seeds=1)
    assert_same_run(first[0], together[0])
    later = probe(tmp_path / "staged", num_seeds=2)  # seed 0 loads its last checkpoint, 1 trains
    assert [later[seed][0]["weights"]["source"] for seed in (0, 1)] == ["checkpoint", "init"]
    for seed in (0, 1):
        assert_same_run(later[seed], together[seed])
    # The comparison can fail: the two seeds differ in their losses and in every parameter.
    assert together[0][0]["history"] != together[1][0]["history"]
    params = [leaves(together[seed][1]["params"]) for seed in (0, 1)]
    assert not any(np.array_equal(a, b) for a, b in zip(*params))
    with pytest.raises(AssertionError):
        assert_same_run(later[1], together[0])


def test_a_run_resumed_mid_training_equals_the_uninterrupted_run(tmp_path):
    uninterrupted = probe(tmp_path, num_seeds=1, keep_checkpoints=3)
    checkpoints = tmp_path / "gapnet-location" / "seed0" / "checkpoints"
    for step in (40, 44):  # as if killed after the checkpoint of step 20
        shutil.rmtree(checkpoints / str(step))
    resumed = probe(tmp_path, num_seeds=1, keep_checkpoints=3)
    assert resumed[0][0]["weights"]["source"] == "checkpoint"
    assert sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()) == [20, 40, 44]
    assert_same_run(resumed[0], uninterrupted[0])


def test_a_run_stopped_at_its_deadline_resumes_to_the_uninterrupted_run(tmp_path):
    """`max_minutes` inside a part: past its deadline a run checkpoints at its next log step and
    raises BudgetReached; the same run again resumes there and ends as if never stopped."""
    uninterrupted = probe(tmp_path / "once", num_seeds=1)
    with pytest.raises(BudgetReached):
        probe(tmp_path / "stopped", num_seeds=1, deadline=time.time())
    checkpoints = tmp_path / "stopped" / "gapnet-location" / "seed0" / "checkpoints"
    steps = [int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()]
    assert steps and max(steps) < uninterrupted[0][0]["steps"]  # it stopped early
    resumed = probe(tmp_path / "stopped", num_seeds=1)
    assert resumed[0][0]["weights"]["source"] == "checkpoint"
    assert_same_run(resumed[0], uninterrupted[0])
