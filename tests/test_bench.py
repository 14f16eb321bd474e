"""Tests of `gpj.bench`: both sides of a benchmark compute the same thing, and bad input fails."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import gpj_command

from gpj import models
from gpj.bench import canvas, probe_default, train


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


def test_torch_reference_has_gpjs_architecture():
    """The PyTorch model of the train benchmark has exactly the weights of gpj's model."""
    torch = pytest.importorskip("torch")
    from gpj.bench import torch_reference

    reference = torch_reference.GAPNetResNet18(num_classes=9)
    model = models.build_model("resnet18", num_classes=9, width=1.0, stem="paper")
    shapes = jax.eval_shape(
        lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 96, 96, 3)), train=False)
    )
    jax_sizes = sorted(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes["params"]))
    torch_sizes = sorted(p.numel() for p in reference.parameters())
    assert jax_sizes == torch_sizes
    logits = reference(torch.zeros(2, 3, 96, 96))
    assert tuple(logits.shape) == (2, 9)
