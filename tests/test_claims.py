"""The claims scorecard: the verdict rule, each claim's differences against scipy, the paper
config's up-front checks."""

import numpy as np
import pytest
from conftest import assert_bad_configs_fail_fast, assert_command_line_errors, parse_config
from scipy import stats as scipy_stats

from gpj.analysis import claims, sequential, stats


@pytest.mark.parametrize(
    "interval,sign,boundary,verdict",
    [
        ((0.1, 0.3), +1, 0.0, claims.SUPPORTED),
        ((-0.3, -0.1), +1, 0.0, claims.NOT_SUPPORTED),
        ((-0.1, 0.3), +1, 0.0, claims.INCONCLUSIVE),
        ((-0.3, -0.1), -1, 0.0, claims.SUPPORTED),
        ((0.02, 0.08), -1, 0.1, claims.SUPPORTED),  # a drop below 10 points
        ((0.12, 0.5), -1, 0.1, claims.NOT_SUPPORTED),
        ((0.05, 0.15), -1, 0.1, claims.INCONCLUSIVE),
    ],
)
def test_the_verdict_rule(interval, sign, boundary, verdict):
    assert claims.decide(list(interval), sign, boundary) == verdict


def test_one_seed_is_inconclusive_and_claims_combine():
    assert claims.decide(None, +1) == claims.INCONCLUSIVE
    s, n, i = claims.SUPPORTED, claims.NOT_SUPPORTED, claims.INCONCLUSIVE
    assert claims.combine([s, s]) == s
    assert claims.combine([s, i]) == i
    assert claims.combine([i, n]) == n


def _probe(accuracy, **extra):
    """A probe's results from {(head, task): per-seed accuracies}; `extra` fields every run."""
    runs = [
        {"head": h, "task": t, "seed": k, "accuracy": a, "steps": 10, "budget_steps": 20, **extra}
        for (h, t), values in accuracy.items()
        for k, a in enumerate(values)
    ]
    return {
        "runs": runs,
        "summary": stats.summarise(runs, ("head", "task"), ("accuracy",)),
        "environment": {"cpu": "a test CPU", "packages": {"jax": "0.0"}},
    }


def test_claims_one_and_two_pair_heads_by_seed():
    probe = _probe(
        {
            ("gapnet", "location"): [1.0, 0.98, 0.99],
            ("fixedperm", "location"): [1.0, 0.97, 1.0],
            ("permutenet", "location"): [0.2, 0.3, 0.25],
            ("fixedperm", "object"): [0.95, 0.9, 0.93],
            ("permutenet", "object"): [0.2, 0.25, 0.3],
        }
    )
    one = claims.judge(claims.channel_wise_position(probe))
    expected = scipy_stats.ttest_rel([1.0, 0.98, 0.99], [0.2, 0.3, 0.25]).confidence_interval()
    assert one["differences"]["gapnet − permutenet"]["ci95"] == pytest.approx(list(expected))
    assert one["differences"]["gapnet − permutenet"]["interval"] == pytest.approx(list(expected))
    assert one["verdict"] == claims.SUPPORTED
    assert one["convergence"].startswith("9 of 9 runs stopped on a training-loss plateau")
    two = claims.judge(claims.order_free_semantics(probe))
    drop = np.array([0.95, 0.9, 0.93]) - [0.2, 0.25, 0.3]
    assert two["differences"]["fixedperm − permutenet"]["mean"] == pytest.approx(drop.mean())
    assert two["verdict"] == claims.NOT_SUPPORTED  # loses far more than 10 points


def _depth_probe(permutenet_object):
    return _probe(
        {
            ("permutenet", "location"): [0.9, 0.95, 1.0],
            ("fixedperm", "location"): [1.0, 1.0, 1.0],
            ("gapnet", "location"): [1.0, 1.0, 0.99],
            ("permutenet", "object"): permutenet_object,
            ("fixedperm", "object"): [0.95, 0.93, 0.94],
        },
        readable_r2=0.8,
    ) | {"config": {"train": {"plateau_on": "val_accuracy"}}}


def _scorecard(outcome: dict) -> list:
    """The scorecard rows of `outcome` (part -> results) judged by the one-stage design (the
    plain 95 % interval)."""

    design = sequential.Design((3,))
    judged = {
        i: sequential.judge(decide(outcome[part]), 1, design)[0]
        for i, (_, part, _, decide) in enumerate(claims.ROWS)
        if part in outcome
    }
    return claims.scorecard(outcome, judged, open_rows=[])


def test_claim_two_is_decided_at_each_shuffle_depth():

    deep, shallow = _depth_probe([0.2, 0.25, 0.22]), _depth_probe([0.93, 0.9, 0.94])
    for r in deep["runs"][:3]:
        r["steps"] = 20  # three runs ended at their budget
    outcome = {"probe": deep, "shuffle_layer_1": shallow}
    rows = _scorecard(outcome)
    assert [r["claim"] for r in rows] == [1, 2, 2]
    headline, first = rows[1:]  # in scorecard order, whatever order the parts ran in
    assert "shuffle layer 1" in first["setting"] and "channel-summed map" in first["setting"]
    assert "headline" in headline["setting"] and "only the channel sum" in headline["setting"]
    assert first["verdict"] == claims.SUPPORTED and headline["verdict"] == claims.NOT_SUPPORTED
    assert headline["convergence"].startswith(
        "6 of 6 runs stopped on a validation-accuracy plateau"
    )
    assert headline["command"] == claims.COMMANDS["probe"]  # layer 5 is the probe part's
    assert (headline["stage"], headline["cpu"], headline["jax"]) == (1, "a test CPU", "0.0")
    location = first["differences"]["location: fixedperm − permutenet"]
    assert location["mean"] == pytest.approx(np.mean([0.1, 0.05, 0.0]))

    table = claims.shuffle_depth(outcome)
    assert [r["layer"] for r in table] == [1, 5]
    drop = np.array([0.95, 0.93, 0.94]) - [0.2, 0.25, 0.22]
    expected = scipy_stats.ttest_rel([0.95, 0.93, 0.94], [0.2, 0.25, 0.22]).confidence_interval()
    assert table[1]["drop"]["object"]["mean"] == pytest.approx(drop.mean())
    assert table[1]["drop"]["object"]["ci95"] == pytest.approx(list(expected))
    assert table[1]["accuracy"]["object"]["permutenet"]["mean"] == pytest.approx(0.67 / 3)
    assert table[1]["readable_r2"]["object"]["fixedperm"]["mean"] == pytest.approx(0.8)
    assert (table[1]["at_budget"], table[1]["runs"]) == (3, 15)


BAD_PAPER_CONFIGS = {
    "an unknown part": (
        ["--config.parts=('probe','shuffle_layer_6')"],
        "parts entry 'shuffle_layer_6' is not a part; parts are some of: probe,",
    ),
    "a repeated part": (["--config.parts=('probe','probe')"], "parts entry 'probe' is repeated"),
    "a part's field": (
        ["--config.probe.model.padding=mirror"],
        "probe.model.padding='mirror' is not valid",
    ),
    "stages that do not grow": (
        ["--config.stages=(3,3)"],
        "stages=(3, 3) must be increasing seed counts from at least 2",
    ),
    "an error rate above one half": (["--config.alpha=0.7"], "alpha=0.7 must be between"),
    "a negative budget": (["--config.max_minutes=-1.0"], "max_minutes=-1.0 must be between 0.0"),
    "a part of the wrong experiment": (
        ["--config.attack.experiment=probe"],
        "attack.experiment='probe' must be 'attack'",
    ),
}


def test_bad_paper_configs_fail_before_any_training():
    assert_bad_configs_fail_fast("configs/paper.py:tiny", BAD_PAPER_CONFIGS)


def test_a_bad_part_on_the_command_line_is_one_error_line_and_writes_nothing(tmp_path):
    case = {"an unknown part": BAD_PAPER_CONFIGS["an unknown part"]}
    assert_command_line_errors("configs/paper.py:shuffle_depth", case, tmp_path)


@pytest.mark.parametrize("preset", ["shuffle_depth", "tiny,shuffle_depth", ""])
def test_paper_presets_pass_every_check_before_compute(preset):
    from gpj import experiments

    experiments.check(parse_config([f"--config=configs/paper.py:{preset}".rstrip(":")]))


def test_tiny_paper_shuffle_depth_parts_write_the_table_and_their_scorecard_rows(tmp_path):
    """End to end: two of the shuffle-depth parts, named in `parts`, each a probe in its own
    folder; the scorecard has their claim-2 rows only, the table and the plot; run again, it loads
    the finished parts; with a second stage it stops at a budget, then resumes, training only the
    added seed."""
    import json

    from conftest import finished_run

    only_object = "('permutenet:object','fixedperm:object')"
    headline = "('gapnet:location','permutenet:location','permutenet:object','fixedperm:object')"
    args = (
        "--config=configs/paper.py:tiny,shuffle_depth",
        "--config.parts=('shuffle_layer_2','probe')",
        f"--config.shuffle_layer_2.runs={only_object}",
        f"--config.probe.runs={headline}",
        "--config.probe.evals={'every_cell': {}, 'readable': {}}",
    )
    out = finished_run(tmp_path, *args)
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["parts"]) == {"shuffle_layer_2", "probe"}
    part = json.loads((tmp_path / "shuffle_layer_2" / "results.json").read_text())
    assert part["config"]["model"]["shuffle_layer"] == 2 and len(part["runs"]) == 4
    assert {r["readable_statistic"] for r in part["runs"]} == {"channel-summed map"}
    assert [r["claim"] for r in results["claims"]] == [1, 2, 2]
    assert results["environment"]["git"]["commit"]  # the commit the scorecard was made from
    assert [r["layer"] for r in results["shuffle_depth"]] == [2, 5]
    assert results["shuffle_depth"][0]["runs"] == 4
    assert not (tmp_path / "probe_circular").exists()
    scorecard = (tmp_path / "scorecard.md").read_text()
    assert "**Claim 2 by shuffle depth**" in scorecard and "| 5 (headline) |" in scorecard
    assert "](shuffle_depth.png)" in scorecard and (tmp_path / "shuffle_depth.png").is_file()
    assert "Claim 2 by shuffle depth" in out
    assert results["loaded_parts"] == {} and results["wall_time_s"] == pytest.approx(
        sum(results["part_wall_time_s"].values())
    )

    # Run again in the same workdir: the finished parts are loaded, not rerun, with their times.
    finished_run(tmp_path, *args)
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["loaded_parts"] == {"shuffle_layer_2": [1], "probe": [1]}
    assert again["part_wall_time_s"] == results["part_wall_time_s"]
    assert again["claims"] == results["claims"] and again["elapsed_s"] < 60
    assert "loaded: it ran earlier in this workdir" in (tmp_path / "scorecard.md").read_text()

    # Two stages, with α so small that no 2-seed interval can decide: stage 1 loads the 2-seed
    # parts, stage 2 would add a seed to each. A budget of 6 ms stops cleanly before it ...
    staged = (*args, "--config.stages=(2,3)", "--config.alpha=1e-6")
    out = finished_run(tmp_path, *staged, "--config.max_minutes=1e-4")
    stopped = json.loads((tmp_path / "results.json").read_text())
    assert "Stopped at the budget" in out and not stopped["complete"]
    assert "Stage 2 of 2: 3 seeds for shuffle_layer_2 (~" in out  # its expected time
    assert stopped["stopped"] == {"stage": 2, "part": "shuffle_layer_2"}
    assert [(r["verdict"], r["stage"]) for r in stopped["claims"]] == [("open", 1)] * 3
    assert "**Stopped at the budget**" in (tmp_path / "scorecard.md").read_text()

    # ... and the same command without it resumes: seeds 0-1 load from their checkpoints, only
    # seed 2 trains, and each row is judged at stage 2 of 2 with its smallest detectable effect.
    finished_run(tmp_path, *staged)
    final = json.loads((tmp_path / "results.json").read_text())
    assert final["complete"] and final["loaded_parts"] == {
        "shuffle_layer_2": [1],
        "probe": [1],
    }
    part = json.loads((tmp_path / "probe" / "results.json").read_text())
    sources = {(r["seed"], r["weights"]["source"]) for r in part["runs"]}
    assert sources == {(0, "checkpoint"), (1, "checkpoint"), (2, "init")}
    for row in final["claims"]:
        assert (row["stage"], row["stages"], row["verdict"]) == (2, 2, claims.INCONCLUSIVE)
        for test in row["tests"]:
            tested = row["differences"][test["difference"]]
            assert tested["n"] == 3 and tested["detectable"] > 0
    times = json.loads((tmp_path / "part_times.json").read_text())
    assert set(times["probe"]) == {"2", "3"}
    assert final["wall_time_s"] == pytest.approx(sum(sum(t.values()) for t in times.values()))
