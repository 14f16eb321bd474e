"""What a permuted read-out can use: how much of a trained PermuteNet's logits the statistic left
readable at its shuffle layer explains, fitted on training images and scored on held-out ones.

A fresh channel permutation leaves the layers after it, in expectation over permutations, only
what does not depend on channel order: after global pooling (shuffle layer 5) the channel sum of
the pooled latent; before ResNet stage k (1-4) the channel-summed map of that stage's input. The
evaluator regresses the model's logits (averaged over `PASSES` permutations) on that statistic
with a ridge regression fitted on the training images, and reports on the test images the
fraction of logit variance it explains, how often its arg-max agrees with the model's, and how
often that arg-max is right. Images sit at seeded random cells, as in training.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gpj import engine, tasks
from gpj.data import canvas
from gpj.data.batches import this_process_batches
from gpj.evaluators.base import Evaluator

PASSES = 4  # permutation draws the logits are averaged over
RIDGE = 1.0  # ridge penalty on the standardised statistic, fixed before any run
CELL_SEED = 0


def readable_statistic(out: dict, shuffle_layer: int) -> jnp.ndarray:
    """(n, features): the channel sum of the pooled latent (layer 5), or the flattened
    channel-summed map of stage `shuffle_layer`'s input (1-4), from a model's intermediates."""
    if shuffle_layer == 5:
        return out["latent"].sum(axis=-1, keepdims=True)
    source = out["stem"] if shuffle_layer == 1 else out[f"stage{shuffle_layer - 1}"]
    return source.sum(axis=-1).reshape(source.shape[0], -1)


def readable_eval(state, batch, rng, ablation=None, *, grid_size: int, shuffle_layer: int):
    """The statistic and the logits averaged over `PASSES` permutation draws, per image."""
    x = canvas.paste(batch["image"], batch["cell"], grid_size)

    def one_pass(key):
        logits, out = state.apply_fn(
            state.variables, x, train=False, rngs={"permute": key}, ablation=ablation
        )
        return logits, readable_statistic(out, shuffle_layer)

    logits, statistic = jax.lax.map(one_pass, jax.random.split(rng, PASSES))
    return {"logits": logits.mean(axis=0), "statistic": statistic[0], "mask": batch["mask"]}


def ridge_fit(features: np.ndarray, targets: np.ndarray, penalty: float):
    """Ridge regression with an unpenalised intercept on standardised features: returns a
    function mapping features to fitted targets."""
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-8
    z = (features - mean) / std
    target_mean = targets.mean(axis=0)
    gram = z.T @ z + penalty * np.eye(z.shape[1])
    weights = np.linalg.solve(gram, z.T @ (targets - target_mean))
    return lambda f: ((f - mean) / std) @ weights + target_mean


def explained(fitted: np.ndarray, logits: np.ndarray, labels: np.ndarray) -> dict:
    """R² of `fitted` for `logits` (each class centred on its own mean), the share of images whose
    arg-max agrees, and the accuracy of the fitted arg-max."""
    residual = np.sum((logits - fitted) ** 2)
    total = np.sum((logits - logits.mean(axis=0)) ** 2)
    return {
        "readable_r2": float(1.0 - residual / total),
        "readable_agreement": float(np.mean(fitted.argmax(-1) == logits.argmax(-1))),
        "readable_accuracy": float(np.mean(fitted.argmax(-1) == labels)),
    }


class Readable(Evaluator):
    """`readable`: R², arg-max agreement and accuracy of the shuffle layer's readable statistic
    as a linear model of a PermuteNet's (or its fixed-permutation control's) logits."""

    tasks = (tasks.Canvas,)

    @staticmethod
    def applies(kind) -> bool:
        return kind.labels.get("head") in ("permutenet", "fixedperm")

    def __init__(self, kind, settings, shapes, mesh):
        del settings, shapes
        self.kind, self.mesh = kind, mesh
        self.shuffle_layer = kind.model.shuffle_layer
        self.step = engine.compile_eval_step(
            functools.partial(
                readable_eval, grid_size=kind.task.grid_size, shuffle_layer=self.shuffle_layer
            ),
            mesh,
        )

    def _collect(self, state, images, labels, rng) -> tuple:
        """(statistic, mean logits, labels) of `images` at seeded random cells."""
        task = self.kind.task
        cells = np.random.default_rng(CELL_SEED).integers(0, task.grid_size**2, len(labels))
        targets = cells if task.target == "location" else labels
        arrays = {"image": images, "cell": cells.astype(np.int32)}
        stats, logits = [], []
        for i, batch in enumerate(this_process_batches(arrays, self.kind.config.eval.batch_size)):
            sharded = engine.shard_batch(batch, self.mesh)
            out = jax.device_get(self.step(state, sharded, jax.random.fold_in(rng, i), None))
            mask = np.asarray(out["mask"])  # the global batch, padding masked
            stats.append(np.asarray(out["statistic"])[mask])
            logits.append(np.asarray(out["logits"])[mask])
        return np.concatenate(stats), np.concatenate(logits), targets

    def run(self, state, data, *, seed) -> dict:
        rng = jax.random.fold_in(jax.random.PRNGKey(seed), int(state.step))
        train_rng, test_rng = jax.random.split(rng)
        train_stat, train_logits, _ = self._collect(
            state, data.train_images, data.train_labels, train_rng
        )
        test_stat, test_logits, test_y = self._collect(
            state, data.test_images, data.test_labels, test_rng
        )
        fit = ridge_fit(train_stat, train_logits, RIDGE)
        return {
            **explained(fit(test_stat), test_logits, test_y),
            "readable_statistic": "channel sum"
            if self.shuffle_layer == 5
            else "channel-summed map",
            "readable_features": int(test_stat.shape[1]),
        }
