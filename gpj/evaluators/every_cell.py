"""Accuracy with every test image at every cell of the canvas grid, each exactly once."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gpj import engine, tasks
from gpj.data import canvas
from gpj.data.batches import this_process_batches
from gpj.evaluators.base import Evaluator


def every_cell_eval(state, batch, rng, ablation=None, *, grid_size: int, target: str):
    """Correct predictions per cell with every image of the batch at every cell."""
    canvases = canvas.paste_every_cell(batch["image"], grid_size)
    cells = jnp.arange(grid_size * grid_size)

    def one_cell(args):
        cell, x, key = args
        logits, _ = state.apply_fn(
            state.variables, x, train=False, rngs={"permute": key}, ablation=ablation
        )
        labels = jnp.full_like(batch["label"], cell) if target == "location" else batch["label"]
        return jnp.sum((jnp.argmax(logits, -1) == labels) & batch["mask"])

    keys = jax.random.split(rng, cells.shape[0])
    correct = jax.lax.map(one_cell, (cells, canvases, keys))
    return {"correct_per_cell": correct, "count": jnp.sum(batch["mask"])}


class EveryCell(Evaluator):
    """Test accuracy of a canvas-task model, overall and per cell (`every_cell`)."""

    tasks = (tasks.Canvas,)

    def __init__(self, kind, settings, shapes, mesh):
        del settings, shapes
        self.kind, self.mesh = kind, mesh
        task = kind.task
        self.step = engine.compile_eval_step(
            functools.partial(every_cell_eval, grid_size=task.grid_size, target=task.target), mesh
        )

    def sums(self, state, data, rng, ablation=None) -> dict:
        test = {"image": data.test_images, "label": data.test_labels}
        batches = this_process_batches(test, self.kind.config.eval.batch_size)
        return engine.evaluate(state, self.step, batches, self.mesh, rng, ablation)

    def measure(self, state, data, ablation) -> dict:
        """{"accuracy"} with `ablation` applied (the channel attacks' metric)."""
        sums = self.sums(state, data, jax.random.PRNGKey(0), ablation)
        correct = np.asarray(sums["correct_per_cell"])
        return {"accuracy": float(correct.sum() / (float(sums["count"]) * correct.size))}

    def run(self, state, data, *, seed) -> dict:
        # PermuteNet's permutations at test time: a function of the seed and the step reached.
        rng = jax.random.fold_in(jax.random.PRNGKey(seed), int(state.step))
        sums = self.sums(state, data, rng)
        grid = self.kind.task.grid_size
        per_cell = np.asarray(sums["correct_per_cell"]) / float(sums["count"])
        return {
            "accuracy": float(per_cell.mean()),
            "per_cell_accuracy": per_cell.reshape(grid, grid).tolist(),
            "chance": 1.0 / self.kind.task.num_classes(data),
            "num_test_images": int(sums["count"]),
            "num_evaluations": int(sums["count"]) * grid * grid,
        }
