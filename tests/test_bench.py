"""Tests of `gpj.bench`: both sides of a benchmark compute the same thing, and bad input fails."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import gpj_command

from gpj import models
from gpj.bench import canvas, experiment, probe_default, train
from gpj.bench.timing import interleaved_rates


@pytest.mark.parametrize("library", ["torch", "numpy"])
def test_canvas_bench_sides_build_the_same_canvases(library, monkeypatch):
    if library == "torch":
        pytest.importorskip("torch")
    else:
        monkeypatch.setattr(canvas, "_torch", lambda: None)
    result = canvas.run(1, batch_size=6, big_batch_size=None)
    assert result["loop_library"] == library
    assert result["max_abs_diff"] == 0.0
    assert result["ratio"] > 0 and result["batch_size"] == 6


@pytest.mark.parametrize("min_round_s", [0.0, 0.1])
def test_short_calls_are_timed_back_to_back_for_min_round_s(min_round_s):
    calls = []

    def side():
        calls.append(time.perf_counter())
        time.sleep(0.01)
        return jnp.zeros(())

    rates = interleaved_rates({"side": (side, 10)}, repeats=3, min_round_s=min_round_s)
    if min_round_s == 0:
        assert len(calls) == 1 + 3  # warm-up, then one call per round
    else:  # warm-up, a call that sizes the turns, then ~10 calls per round
        per_round = (len(calls) - 2) / 3
        assert per_round == int(per_round) and 5 <= per_round <= 10
    assert 500 < rates["side"] <= 1000  # 10 items per call of a little over 10 ms


def test_probe_default_bench_reports_the_jobs_error():
    with pytest.raises(SystemExit) as failed:
        probe_default.run(1, args=["--config=configs/probe.py:tiny", "--config.train.batch_size=0"])
    message = str(failed.value)
    assert message.startswith("error: the probe job failed (exit 1)")
    assert "train.batch_size=0 must be a positive number" in message


def test_bench_refuses_an_unknown_benchmark():
    proc = gpj_command("gpj.bench", "--only=scores,warp")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "unknown benchmark warp; choose from" in err
    choices = err.split("choose from", 1)[1]
    assert "canvas" in choices and "probe_default" in choices


def test_flop_count_matches_the_layer_formulas():
    """2 FLOPs per multiply-add: a 3x3 conv (8x8 map, 3 -> 4 channels) then a dense 4 -> 5."""

    def net(x, kernel, weights):
        y = jax.lax.conv_general_dilated(
            x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return y.mean(axis=(1, 2)) @ weights

    jaxpr = jax.make_jaxpr(jax.jit(net))(
        jnp.zeros((2, 8, 8, 3)), jnp.zeros((3, 3, 3, 4)), jnp.zeros((4, 5))
    )
    assert train.count_flops(jaxpr.jaxpr) == 2 * (2 * 8 * 8 * 4 * 3 * 3 * 3) + 2 * (2 * 5 * 4)


@pytest.mark.parametrize(
    "head, width, channels", [("gapnet", 1.0, 3), ("gapnet", 0.25, 1), ("permutenet", 0.25, 1)]
)
def test_torch_reference_has_gpjs_architecture(head, width, channels):
    """The PyTorch models of the train and experiment benchmarks have exactly the weights of
    gpj's models: the train bench's GAPNet, and the default main job's GAPNet and PermuteNet."""
    torch = pytest.importorskip("torch")
    from gpj.bench import torch_reference

    reference = torch_reference.ResNet18(
        num_classes=9, in_channels=channels, width=int(64 * width), head=head
    )
    model = models.build_model("resnet18", num_classes=9, width=width, stem="paper", head=head)
    shapes = jax.eval_shape(
        lambda: model.init(
            {"params": jax.random.PRNGKey(0), "permute": jax.random.PRNGKey(0)},
            jnp.zeros((1, 96, 96, channels)),
            train=False,
        )
    )
    jax_sizes = sorted(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes["params"]))
    torch_sizes = sorted(p.numel() for p in reference.parameters())
    assert jax_sizes == torch_sizes
    logits = reference(torch.zeros(2, channels, 96, 96))
    assert tuple(logits.shape) == (2, 9)


def test_experiment_bench_counts_each_programs_training_once():
    rows = [
        {"head": "gapnet", "task": "location", "seed": 0, "program_seeds": [0, 1]},
        {"head": "gapnet", "task": "location", "seed": 1, "program_seeds": [0, 1]},
        {"head": "gapnet", "task": "location", "seed": 2, "program_seeds": [2]},
        {"head": "permutenet", "task": "location", "seed": 0, "program_seeds": [0, 1]},
        {"head": "permutenet", "task": "location", "seed": 1, "program_seeds": [0, 1]},
    ]
    times = [10.0, 10.0, 6.0, 12.0, 12.0]
    runs = [{**row, "train_time_s": t} for row, t in zip(rows, times)]
    assert experiment.training_time({"runs": runs}) == 28.0
