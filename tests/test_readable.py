"""The `readable` evaluator: the readable statistic, the ridge fit and its scores against numpy."""

import functools
import json
import math
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from gpj import models
from gpj.data import canvas
from gpj.evaluators import readable

GRID, SIZE, CLASSES = 2, 8, 4


def numpy_ridge(features, targets, penalty):
    """Ridge on standardised features with a free intercept, as an augmented least-squares
    problem: the penalty rows sqrt(penalty)·I act on the weights and not on the intercept."""
    z = (features - features.mean(0)) / (features.std(0) + 1e-8)
    n, d = z.shape
    design = np.vstack(
        [
            np.hstack([z, np.ones((n, 1))]),
            np.hstack([np.sqrt(penalty) * np.eye(d), np.zeros((d, 1))]),
        ]
    )
    rhs = np.vstack([targets, np.zeros((d, targets.shape[1]))])
    coef, *_ = np.linalg.lstsq(design, rhs, rcond=None)
    return lambda f: (
        np.hstack([(f - features.mean(0)) / (features.std(0) + 1e-8), np.ones((len(f), 1))]) @ coef
    )


def test_ridge_fit_and_scores_match_numpy():
    rng = np.random.default_rng(0)
    train_x, test_x = rng.normal(size=(60, 5)), rng.normal(size=(30, 5))
    mixing = rng.normal(size=(5, 3))
    train_y = train_x @ mixing + rng.normal(size=(60, 3))
    test_y = test_x @ mixing + rng.normal(size=(30, 3))
    fitted = readable.ridge_fit(train_x, train_y, 2.0)(test_x)
    np.testing.assert_allclose(fitted, numpy_ridge(train_x, train_y, 2.0)(test_x), rtol=1e-8)
    labels = rng.integers(0, 3, 30)
    scores = readable.explained(fitted, test_y, labels)
    r2 = 1 - ((test_y - fitted) ** 2).sum() / ((test_y - test_y.mean(0)) ** 2).sum()
    assert scores["readable_r2"] == pytest.approx(r2)
    agree = sum(int(np.argmax(a) == np.argmax(b)) for a, b in zip(fitted, test_y))
    assert scores["readable_agreement"] == pytest.approx(agree / 30)
    right = sum(int(np.argmax(a) == y) for a, y in zip(fitted, labels))
    assert scores["readable_accuracy"] == pytest.approx(right / 30)


def _eval(head, shuffle_layer, images, cells):
    """`readable_eval` of a randomly initialised tiny model, and the model's own intermediates
    from a plain `apply` for an independent check."""
    model = models.build_model(
        "resnet10", num_classes=CLASSES, width=0.125, head=head, shuffle_layer=shuffle_layer
    )
    x = np.zeros((1, GRID * SIZE, GRID * SIZE, 1), np.float32)
    rngs = {"params": jax.random.key(0), "permute": jax.random.key(1)}
    variables = model.init(rngs, x, train=False)
    state = SimpleNamespace(apply_fn=model.apply, variables=variables)
    batch = {"image": images, "cell": cells, "mask": np.ones(len(cells), bool)}
    step = functools.partial(readable.readable_eval, grid_size=GRID, shuffle_layer=shuffle_layer)
    out = step(state, batch, jax.random.key(2))
    canvases = canvas.paste(images, cells, GRID)
    _, inner = model.apply(variables, canvases, train=False, rngs={"permute": jax.random.key(3)})
    return out, inner, (model, variables, canvases)


@pytest.mark.parametrize("shuffle_layer", [1, 3, 5])
def test_statistic_is_the_channel_sum_at_the_shuffle_layer(shuffle_layer):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(6, SIZE, SIZE, 1)).astype(np.float32)
    cells = rng.integers(0, GRID * GRID, 6).astype(np.int32)
    out, inner, _ = _eval("permutenet", shuffle_layer, images, cells)
    if shuffle_layer == 5:
        expected = np.asarray(inner["latent"]).sum(-1, keepdims=True)
    else:
        source = np.asarray(inner["stem" if shuffle_layer == 1 else f"stage{shuffle_layer - 1}"])
        expected = source.sum(-1).reshape(6, -1)
    # Another permutation draw than the evaluator's: the statistic does not depend on it.
    np.testing.assert_allclose(out["statistic"], expected, rtol=1e-5, atol=1e-5)


def test_logits_are_the_mean_over_permutation_draws():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(5, SIZE, SIZE, 1)).astype(np.float32)
    cells = rng.integers(0, GRID * GRID, 5).astype(np.int32)
    out, _, (model, variables, canvases) = _eval("permutenet", 5, images, cells)
    keys = jax.random.split(jax.random.key(2), readable.PASSES)
    draws = [
        np.asarray(model.apply(variables, canvases, train=False, rngs={"permute": k})[0])
        for k in keys
    ]
    np.testing.assert_allclose(out["logits"], np.mean(draws, axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(draws[0], draws[1])  # the draws differ: the mean is over something


def test_the_sum_head_is_fully_explained_and_a_fixed_order_read_out_is_not():
    """Logits that are a linear function of the channel sum (the sum control) are explained
    whole by the layer-5 statistic; a read-out of ordered channels (GAPNet's linear head) is not."""
    rng = np.random.default_rng(3)
    images = rng.normal(size=(64, SIZE, SIZE, 1)).astype(np.float32)
    cells = rng.integers(0, GRID * GRID, 64).astype(np.int32)
    labels = rng.integers(0, CLASSES, 64)
    results = {}
    for head in ("sum", "linear"):
        model = models.build_model("resnet10", num_classes=CLASSES, width=0.125, head=head)
        x = canvas.paste(images, cells, GRID)
        variables = model.init(jax.random.key(4), x[:1], train=False)
        logits, inner = model.apply(variables, x, train=False)
        stat = np.asarray(readable.readable_statistic(inner, 5))
        fit = readable.ridge_fit(stat[:32], np.asarray(logits[:32]), 1e-6)
        results[head] = readable.explained(fit(stat[32:]), np.asarray(logits[32:]), labels[32:])
    assert results["sum"]["readable_r2"] > 0.999
    assert results["sum"]["readable_agreement"] == 1.0
    assert results["linear"]["readable_r2"] < 0.9


def test_evaluator_applies_to_permuted_heads_only():
    kinds = {
        h: SimpleNamespace(labels={"head": h}) for h in ("gapnet", "permutenet", "fixedperm", "sum")
    }
    assert [h for h, k in kinds.items() if readable.Readable.applies(k)] == [
        "permutenet",
        "fixedperm",
    ]


def test_tiny_permutenet_run_reports_what_its_shuffle_layer_leaves_readable(shared_run):
    """End to end: the evaluator as a plug-in of a probe run, PermuteNet shuffled before stage 2."""
    workdir, _ = shared_run(
        "tiny-readable",
        "--config=configs/probe.py:tiny",
        "--config.runs=('permutenet:object',)",
        "--config.evals={'every_cell': {}, 'readable': {}}",
        "--config.model.shuffle_layer=2",
    )
    (run,) = json.loads((workdir / "results.json").read_text())["runs"]
    assert run["readable_statistic"] == "channel-summed map"
    # resnet10 with the paper stem on 24x24 canvases: stage 1's output map is 12x12.
    assert run["readable_features"] == 12 * 12
    # The scores themselves are checked against numpy above; here: each is a number (a read-out
    # of constant logits, or features the ridge cannot fit, would give NaN).
    assert all(math.isfinite(run[f"readable_{k}"]) for k in ("r2", "agreement", "accuracy"))
