"""The one-pass position-score sweep against a per-image reference loop (batch 1, numpy)."""

import jax
import numpy as np
import pytest

from gpj import engine, models
from gpj.analysis import scores
from gpj.data import batches

GRID = 3
SIZE = 8
NUM_IMAGES = 37  # not a multiple of the batch: the last batch is padded and masked
BATCH = 16


@pytest.fixture(scope="module")
def setup():
    """A GAPNet with random weights and non-trivial BatchNorm statistics, and random images."""
    model = models.build_model("resnet18", num_classes=GRID * GRID, width=0.125)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(NUM_IMAGES, SIZE, SIZE, 1)).astype(np.float32)
    x = np.zeros((1, GRID * SIZE, GRID * SIZE, 1), np.float32)
    variables = jax.jit(model.init, static_argnames="train")(jax.random.PRNGKey(0), x, train=False)
    stats = jax.tree_util.tree_map_with_path(
        lambda path, v: (
            rng.uniform(0.5, 1.5, v.shape) if path[-1].key == "var" else rng.normal(0, 0.2, v.shape)
        ).astype(np.float32),
        variables["batch_stats"],
    )
    return model, {"params": variables["params"], "batch_stats": stats}, images


def reference(model, variables, images, grid_size, outputs):
    """The official code's way: one image (and its flip) through the model at a time."""
    apply = jax.jit(model.apply, static_argnames="train")
    cells = grid_size * grid_size if grid_size else 1
    pooled = {name: [] for name in outputs}  # per output: (N, K, 2, C)
    for image in images:
        per_image = {name: [] for name in outputs}
        for k in range(cells):
            if grid_size:
                x = np.zeros((GRID * SIZE, GRID * SIZE, 1), np.float32)
                r, c = divmod(k, grid_size)
                x[r * SIZE : (r + 1) * SIZE, c * SIZE : (c + 1) * SIZE] = image
            else:
                x = image
            views = [apply(variables, v[None], train=False)[1] for v in (x, x[:, ::-1])]
            for name in outputs:
                z = [np.asarray(out[name], np.float64)[0] for out in views]
                per_image[name].append([v if name == "latent" else v.mean((0, 1)) for v in z])
        for name in outputs:
            pooled[name].append(per_image[name])
    result = {}
    for name in outputs:
        z = np.asarray(pooled[name])  # (N, K, 2, C)
        diff = z[:, :, 0] - z[:, :, 1]
        cell_mean = z[:, :, 0].mean(axis=0)
        total = ((z[:, :, 0] - z[:, :, 0].mean(axis=(0, 1))) ** 2).sum(axis=(0, 1))
        between = len(images) * ((cell_mean - cell_mean.mean(axis=0)) ** 2).sum(axis=0)
        result[name] = {
            "flip_abs": np.abs(diff).mean(axis=(0, 1)),
            "flip_signed": diff.mean(axis=(0, 1)),
            "cell_mean": cell_mean,
            "mean": z[:, :, 0].mean(axis=(0, 1)),
            "eta2": np.divide(between, total, out=np.zeros_like(total), where=total > 0),
        }
    return result


class ReadLog:
    """Eval batches that record which images were handed out, and how often."""

    def __init__(self, images):
        self.images, self.reads, self.iterations = images, [], 0

    def __iter__(self):
        self.iterations += 1
        index = np.arange(len(self.images))
        for batch in batches.eval_batches({"image": self.images, "index": index}, BATCH):
            self.reads.extend(batch["index"][batch["mask"]].tolist())
            yield batch


def sweep(model, variables, images, mesh, *, grid_size, outputs):
    _, out = model.apply(variables, np.zeros((1, 24, 24, 1), np.float32), train=False)
    channels = {n: out[n].shape[-1] for n in outputs}
    step = scores.compile_sweep(model.apply, mesh, grid_size=grid_size, outputs=outputs)
    log = ReadLog(images)
    result = scores.position_scores(
        step, variables, log, mesh, channels=channels, grid_size=grid_size
    )
    return result, log


@pytest.mark.parametrize(
    "grid_size,outputs", [(GRID, ("latent", "stage3")), (0, ("latent", "stage2"))]
)
def test_scores_match_per_image_loop_and_read_each_image_once(setup, grid_size, outputs):
    model, variables, images = setup
    result, log = sweep(
        model, variables, images, engine.make_mesh(), grid_size=grid_size, outputs=outputs
    )
    assert log.iterations == 1 and sorted(log.reads) == list(range(NUM_IMAGES))
    expected = reference(model, variables, images, grid_size, outputs)
    for name in outputs:
        got, want = result[name], expected[name]
        assert got["count"] == NUM_IMAGES
        for key in ("flip_abs", "flip_signed", "mean"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-5, err_msg=key)
        assert np.abs(want["flip_abs"]).max() > 1e-3  # the check is not vacuous
        if grid_size:
            np.testing.assert_allclose(
                got["cell_mean"].reshape(GRID * GRID, -1), want["cell_mean"], rtol=1e-5, atol=1e-5
            )
            np.testing.assert_allclose(got["eta2"], want["eta2"], rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(got["preferred_cell"], want["cell_mean"].argmax(0))
            assert 0.05 < want["eta2"].max() <= 1
        else:
            assert "eta2" not in got and got["cell_mean"].shape == want["mean"].shape
        np.testing.assert_array_equal(
            got["rank_flip_abs"], np.argsort(-got["flip_abs"], kind="stable")
        )
        assert np.all(np.diff(got["flip_signed"][got["rank_flip_signed"]]) <= 0)


def test_scores_are_the_same_on_one_and_eight_devices(setup):
    model, variables, images = setup
    assert jax.device_count() == 8
    one, _ = sweep(
        model,
        variables,
        images,
        engine.make_mesh(jax.devices()[:1]),
        grid_size=GRID,
        outputs=("latent",),
    )
    eight, _ = sweep(
        model, variables, images, engine.make_mesh(), grid_size=GRID, outputs=("latent",)
    )
    for key in ("flip_abs", "flip_signed", "eta2", "cell_mean"):
        np.testing.assert_allclose(one["latent"][key], eight["latent"][key], rtol=1e-5, atol=1e-6)


def test_rank_is_descending_and_stable():
    np.testing.assert_array_equal(scores.rank(np.array([0.1, 0.5, 0.1, 0.9])), [3, 1, 0, 2])
