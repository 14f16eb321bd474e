"""Accuracy of a shift-task model on centred images and at every offset of a shift grid, and its
shift consistency (how often two random shifts of a test image get the same class)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gpj import engine, tasks
from gpj.analysis.consistency import agreement, consistency
from gpj.configs import evals
from gpj.data import shift
from gpj.data.batches import this_process_batches
from gpj.evaluators.base import Evaluator
from gpj.validation import check_positive


def shift_eval(state, batch, rng, ablation=None, *, task, grid):
    """Sums over the batch: centred and per-offset correct counts, agreeing consistency pairs."""
    del rng
    images, labels, mask = batch["image"], batch["label"], batch["mask"]
    b = images.shape[0]

    def predict(offsets):
        logits, _ = state.apply_fn(
            state.variables, task.place(images, offsets), train=False, ablation=ablation
        )
        return jnp.argmax(logits, -1)

    def correct_at(offset):
        return jnp.sum((predict(jnp.broadcast_to(offset, (b, 2))) == labels) & mask)

    def agree(pair):  # pair: (b, 2, 2) offsets of the two shifts per image
        return agreement(predict(pair[:, 0]), predict(pair[:, 1]), mask)

    centred = shift.centred_offsets(b, task.max_shift)
    return {
        "count": jnp.sum(mask),
        "correct_centred": jnp.sum((predict(centred) == labels) & mask),
        "correct_per_offset": jax.lax.map(correct_at, jnp.asarray(grid)),
        "agree": jnp.sum(jax.lax.map(agree, jnp.swapaxes(batch["pairs"], 0, 1))),
    }


class ShiftAccuracy(Evaluator):
    """`shift`: centred, per-offset and mean shifted accuracy, and consistency over a fixed,
    seeded set of pairs of shifts per test image (settings: `step`, `consistency_pairs`,
    `consistency_seed`)."""

    tasks = (tasks.Shift,)
    defaults = staticmethod(evals.shift)

    @staticmethod
    def check(settings, where):
        for path in ("step", "consistency_pairs"):
            check_positive(settings, path, where)

    def __init__(self, kind, settings, shapes, mesh):
        del shapes
        self.kind, self.mesh = kind, mesh
        e, task = settings, kind.task
        self.grid = shift.shift_grid(task.max_shift, e.step)
        self.pairs = shift.consistency_pairs(
            len(kind.data.test_labels), e.consistency_pairs, task.max_shift, e.consistency_seed
        )
        self.step = engine.compile_eval_step(
            functools.partial(shift_eval, task=task, grid=tuple(map(tuple, self.grid))), mesh
        )

    def run(self, state, data, *, seed) -> dict:
        del seed  # deterministic
        test = {"image": data.test_images, "label": data.test_labels, "pairs": self.pairs}
        batches = this_process_batches(test, self.kind.config.eval.batch_size)
        sums = engine.evaluate(state, self.step, batches, self.mesh, jax.random.PRNGKey(0))
        count = float(sums["count"])
        per_offset = np.asarray(sums["correct_per_offset"]) / count
        return {
            "centred_accuracy": float(sums["correct_centred"]) / count,
            "shifted_accuracy": float(per_offset.mean()),
            "accuracy_per_offset": per_offset.tolist(),
            "consistency": consistency(int(sums["agree"]), int(count) * self.pairs.shape[1]),
        }
