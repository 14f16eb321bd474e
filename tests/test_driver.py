"""The run driver: each program compiles once per run kind, weights come from one written order,
evaluators plug into any experiment, and the statistics are right."""

import collections
import json
import os

import jax
import numpy as np
import pytest
from conftest import parse_config
from scipy import stats as scipy_stats

from gpj.analysis import stats
from gpj.engine import compilation_cache
from gpj.experiments import EXPERIMENTS

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
# gpj's own programs (the rest are JAX's and orbax's small helpers).
PROGRAMS = (
    *("_init_state", "train_step", "seeds_train_step", "every_cell_eval", "sweep_step"),
    "shift_eval",
    *("latents_at", "region_eval", "<lambda>"),
)


def compile_counts(fn):
    """fn's result and how many times each program was compiled (or loaded from the persistent
    cache: JAX reports both as a backend compile) while it ran, by function name."""
    counts = collections.Counter()

    def listen(event, duration, **kwargs):
        del duration
        if event == COMPILE_EVENT:
            counts[kwargs.get("fun_name", "").removeprefix("jit(").removesuffix(")")] += 1

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        return fn(), counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


# Two seeds of each experiment's tiny preset, with `kinds` run kinds; the invariance run also adds
# the position scores to its evaluators, with one override. The session's finished tiny runs have
# put these programs in the compilation cache: here they are loaded (JAX counts that as a
# compile, too), so the test costs little more than the two seeds' steps.
TWO_SEED_RUNS = {
    "probe": (["--config.runs=('gapnet:location',)"], 1),
    "invariance": (
        ["--config.variants=('baseline',)", "--config.evals=('shift','position_probe','scores')"],
        1,
    ),
    "attack": (["--config.classifier.tasks=('location',)"], 3),  # 2 segmentation designs
}


@pytest.mark.parametrize("experiment", TWO_SEED_RUNS)
def test_each_program_compiles_once_per_run_kind(experiment, tmp_path, request):
    overrides, kinds = TWO_SEED_RUNS[experiment]
    request.getfixturevalue(f"tiny_{experiment}")
    args = [f"--config=configs/{experiment}.py:tiny", "--config.num_seeds=2", *overrides]
    if experiment == "attack":  # GAPNets of the shared tiny probe: loaded, not trained
        args.append(f"--config.classifier.probe_workdir={request.getfixturevalue('tiny_probe')[0]}")
    config = parse_config(args)
    results, counts = compile_counts(lambda: EXPERIMENTS[experiment].run(config, str(tmp_path)))
    trained = {r["run_dir"].split("/seed")[0] for r in results["runs"] if r["history"]}
    assert len({r["seed"] for r in results["runs"]}) == 2
    # Every kind's train step and init compiled exactly once, although each served two seeds;
    # no program compiled more often than there are kinds.
    ours = {name: n for name, n in counts.items() if name in PROGRAMS}
    assert ours["train_step"] == len(trained) and ours["_init_state"] == kinds, ours
    # A segmentation kind's mIoU program compiles twice: without an ablation (the test curve)
    # and with one (the attacks).
    segmentation = sum(r.get("model", "").startswith("segmentation") for r in results["runs"]) // 2
    assert ours.get("region_eval", 0) <= 2 * segmentation, ours
    assert max(v for name, v in ours.items() if name != "region_eval") <= kinds, ours
    if experiment == "invariance":
        assert all("scores" in r and "consistency" in r for r in results["runs"])
        assert counts["sweep_step"] == kinds
    if experiment == "probe":  # determinism: seed 0 trained afresh gives the shared run's numbers
        shared = json.loads((request.getfixturevalue("tiny_probe")[0] / "results.json").read_text())
        expected = next(r for r in shared["runs"] if r["run_dir"].endswith("gapnet-location/seed0"))
        (again,) = [r for r in results["runs"] if r["seed"] == 0]
        for key in ("accuracy", "per_cell_accuracy", "history", "scores"):
            assert again[key] == expected[key], key


def test_two_seeds_in_one_program_match_the_shared_runs(tiny_probe, tmp_path):
    """`train.seeds_per_program=2`: the tiny probe's two GAPNet seeds trained side by side in one
    compiled program, each in its own folder, against the same seeds one program each (seed 0: the
    shared run; summation order aside, the same numbers)."""
    args = [
        "--config=configs/probe.py:tiny",
        "--config.runs=('gapnet:location',)",
        "--config.num_seeds=2",
        "--config.train.seeds_per_program=2",
    ]
    results, counts = compile_counts(
        lambda: EXPERIMENTS["probe"].run(parse_config(args), str(tmp_path))
    )
    assert counts["seeds_train_step"] == 1 and counts["train_step"] == 0
    runs = {r["seed"]: r for r in results["runs"]}
    assert all(r["program_seeds"] == [0, 1] for r in runs.values())
    assert all((tmp_path / "gapnet-location" / f"seed{s}" / "checkpoints").is_dir() for s in runs)
    shared = json.loads((tiny_probe[0] / "results.json").read_text())
    alone = next(r for r in shared["runs"] if r["run_dir"].endswith("gapnet-location/seed0"))
    assert alone["program_seeds"] == [0]
    together = runs[0]
    assert [h["step"] for h in together["history"]] == [h["step"] for h in alone["history"]]
    np.testing.assert_allclose(
        [h["loss"] for h in together["history"]][:2],
        [h["loss"] for h in alone["history"]][:2],
        rtol=1e-3,
    )
    assert abs(together["accuracy"] - alone["accuracy"]) <= 0.05


def test_weights_come_from_init_then_from_the_runs_own_checkpoint(tiny_probe):
    workdir, _ = tiny_probe
    results = json.loads((workdir / "results.json").read_text())
    assert {r["weights"]["source"] for r in results["runs"]} == {"init"}
    assert all(r["weights"]["path"] is None for r in results["runs"])


@pytest.mark.parametrize("values", [[0.5, 0.7, 0.9], [1.0, 2.0], [3.0, 3.0, 3.0, 3.0]])
def test_describe_gives_mean_sample_std_and_the_t_interval(values):
    d = stats.describe(values)
    assert d["n"] == len(values) and d["mean"] == pytest.approx(np.mean(values))
    assert d["std"] == pytest.approx(np.std(values, ddof=1))
    low, high = (
        scipy_stats.t.interval(
            0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values)
        )
        if np.std(values)
        else (np.mean(values), np.mean(values))
    )
    assert d["ci95"] == pytest.approx([low, high])


def test_one_value_has_no_interval_and_no_value_is_an_error():
    assert stats.describe([0.25]) == {
        "mean": 0.25,
        "std": 0.0,
        "n": 1,
        "ci95": None,
        "values": [0.25],
    }
    with pytest.raises(ValueError):
        stats.describe([])


def test_summarise_groups_rows_in_first_seen_order():
    rows = [{"k": "b", "m": 1.0}, {"k": "a", "m": 2.0}, {"k": "b", "m": 3.0}]
    summary = stats.summarise(rows, ("k",), ("m",))
    assert [(s["k"], s["n"], s["m"]["mean"]) for s in summary] == [("b", 2, 2.0), ("a", 1, 2.0)]


def test_paired_differences_match_scipys_paired_t_test():
    a = {0: 0.61, 1: 0.70, 2: 0.66, 3: 0.59, 4: 0.72}
    b = {0: 0.58, 1: 0.69, 2: 0.60, 3: 0.60, 4: 0.65, 5: 0.9}  # seed 5 has no pair: left out
    rows = [{"variant": "a", "seed": k, "m": v} for k, v in a.items()]
    rows += [{"variant": "b", "seed": k, "m": v} for k, v in reversed(b.items())]
    d = stats.paired(rows, "variant", "a", "b", "m")
    assert d["pairs"] == [0, 1, 2, 3, 4] and d["n"] == 5 and d["variant"] == ["a", "b"]
    test = scipy_stats.ttest_rel(list(a.values()), [b[k] for k in a])
    interval = test.confidence_interval(0.95)
    assert d["mean"] == pytest.approx(np.mean([a[k] - b[k] for k in a]))
    assert d["ci95"] == pytest.approx([interval.low, interval.high])
    with pytest.raises(ValueError, match="no seed has both"):
        stats.paired(rows, "variant", "a", "c", "m")


def test_runs_share_the_persistent_compilation_cache(tiny_probe):
    """`gpj.main` children of this session write their programs to the session's cache folder
    (JAX_COMPILATION_CACHE_DIR, set by conftest), from where later runs load them."""
    del tiny_probe
    assert any("train_step" in name for name in os.listdir(os.environ["JAX_COMPILATION_CACHE_DIR"]))


def test_the_cache_folder_defaults_to_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache.default_dir() == str(tmp_path / "gpj" / "jax")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
    assert compilation_cache.default_dir() == "/elsewhere"
