"""The run driver: each program compiles once per run kind, weights come from one written order,
and evaluators plug into any experiment."""

import collections
import json
import os

import jax
import numpy as np
import pytest
from conftest import parse_config

from gpj.engine import compilation_cache
from gpj.experiments import runner

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
# gpj's own programs (the rest are JAX's and orbax's small helpers).
PROGRAMS = (
    *("_init_state", "seeds_train_step", "every_cell_eval", "sweep_step"),
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
        [
            "--config.variants=('baseline',)",
            "--config.evals={'shift': {}, 'position_probe': {}, 'scores': {}}",
        ],
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
    results, counts = compile_counts(lambda: runner.run(config, str(tmp_path)))
    trained = {r["run_dir"].split("/seed")[0] for r in results["runs"] if r["history"]}
    assert len({r["seed"] for r in results["runs"]}) == 2
    # Every kind's train step and init compiled exactly once, although each served two seeds;
    # no program compiled more often than there are kinds.
    ours = {name: n for name, n in counts.items() if name in PROGRAMS}
    assert ours["seeds_train_step"] == len(trained) and ours["_init_state"] == kinds, ours
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
    results, counts = compile_counts(lambda: runner.run(parse_config(args), str(tmp_path)))
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


def test_weights_of_a_fresh_run_come_from_init(tiny_probe):
    """A resumed or re-evaluated run says `checkpoint`: test_probe.py and test_resume.py."""
    workdir, _ = tiny_probe
    results = json.loads((workdir / "results.json").read_text())
    assert {r["weights"]["source"] for r in results["runs"]} == {"init"}
    assert all(r["weights"]["path"] is None for r in results["runs"])


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
