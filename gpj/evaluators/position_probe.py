"""The linear position probe: how well a logistic regression reads an image's position back from
the model's frozen global-pooled latents."""

import functools

import jax
import numpy as np

from gpj import engine, tasks
from gpj.configs import evals
from gpj.data.batches import this_process_batches
from gpj.errors import ConfigError
from gpj.evaluators.base import Evaluator
from gpj.validation import check_positive


def latents_at(state, batch, rng, ablation=None, *, task):
    """GAP latents of the batch's images placed at the batch's `offsets`."""
    del rng
    x = task.place(batch["image"], batch["offsets"])
    _, out = state.apply_fn(state.variables, x, train=False, ablation=ablation)
    return {"latent": out["latent"], "mask": batch["mask"]}


class PositionProbe(Evaluator):
    """`position_probe`: train and test images at seeded random offsets; the probe predicts which
    of the `grid` × `grid` equal-width offset cells each image is in (chance: the most frequent
    test cell)."""

    tasks = (tasks.Shift,)
    defaults = staticmethod(evals.position_probe)

    @staticmethod
    def check(settings, where):
        check_positive(settings, "grid", where)

    def __init__(self, kind, settings, shapes, mesh):
        del shapes
        m = kind.task.max_shift
        if settings.grid > 2 * m + 1:
            raise ConfigError(
                f"evals.position_probe.grid={settings.grid} has more cells per axis than the "
                f"{2 * m + 1} offsets of shift.max_shift={m}"
            )
        self.kind, self.mesh = kind, mesh
        self.step = engine.compile_eval_step(functools.partial(latents_at, task=kind.task), mesh)
        self.offsets = self._offsets(kind, settings)

    @staticmethod
    def _offsets(kind, settings) -> dict:
        """Seeded random offsets for the train and test images, and their offset-cell labels."""
        m, g = kind.task.max_shift, settings.grid
        rng = np.random.default_rng(settings.seed)
        data = {}
        for split, n in (
            ("train", len(kind.data.train_labels)),
            ("test", len(kind.data.test_labels)),
        ):
            offsets = rng.integers(0, 2 * m + 1, size=(n, 2)).astype(np.int32)
            cells = offsets * g // (2 * m + 1)  # equal-width bins of the 2m+1 offsets per axis
            data[split] = (offsets, (cells[:, 0] * g + cells[:, 1]).astype(np.int32))
        return data

    def latents(self, state, images, offsets) -> np.ndarray:
        chunks = []
        for batch in this_process_batches(
            {"image": images, "offsets": offsets}, self.kind.config.eval.batch_size
        ):
            out = jax.device_get(
                self.step(state, engine.shard_batch(batch, self.mesh), jax.random.PRNGKey(0), None)
            )
            chunks.append(np.asarray(out["latent"])[np.asarray(out["mask"])])  # the global batch
        return np.concatenate(chunks)

    def run(self, state, data, *, seed) -> dict:
        del seed  # deterministic
        (train_offsets, train_y), (test_offsets, test_y) = (
            self.offsets["train"],
            self.offsets["test"],
        )
        train_z = self.latents(state, data.train_images, train_offsets)
        test_z = self.latents(state, data.test_images, test_offsets)
        # Imported here: scikit-learn takes a second to import, and most commands never get here.
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(train_z)
        clf = LogisticRegression(max_iter=2000).fit(scaler.transform(train_z), train_y)
        return {
            "position_probe_accuracy": float(clf.score(scaler.transform(test_z), test_y)),
            "position_probe_chance": float(np.bincount(test_y).max() / len(test_y)),
        }
