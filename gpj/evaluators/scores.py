"""The one-pass position scores of the channels of the model's global-pooled latent."""

import numpy as np

from gpj import tasks
from gpj.analysis import scores
from gpj.data.batches import this_process_batches
from gpj.evaluators.base import Evaluator


class Scores(Evaluator):
    """`scores`: flip_abs, flip_signed (and on canvases η², tuning maps, preferred cells) of every
    latent channel, each test image read once (at every cell on a canvas task). Skipped for
    PermuteNet, whose channel order is random at every pass."""

    tasks = (tasks.Canvas, tasks.Shift, tasks.Segmentation)

    def __init__(self, kind, settings, shapes, mesh):
        del settings
        self.kind, self.mesh = kind, mesh
        self.channels = shapes["latent"][-1]
        self.grid_size = kind.task.score_grid
        self.sweep = scores.compile_sweep(kind.model.apply, mesh, grid_size=self.grid_size)

    @staticmethod
    def applies(kind) -> bool:
        return kind.labels.get("head") != "permutenet"

    def scores(self, state, images) -> dict:
        """The scores of the latent's channels over `images` (numpy), each image read once."""
        inputs = self.kind.task.score_inputs(images)
        size = self.kind.config.eval.batch_size
        return scores.position_scores(
            self.sweep,
            state.variables,
            this_process_batches({"image": inputs}, size),
            self.mesh,
            channels={"latent": self.channels},
            grid_size=self.grid_size,
            num_batches=-(-len(inputs) // size),
        )["latent"]

    def run(self, state, data, *, seed) -> dict:
        del seed
        return as_json(self.scores(state, data.test_images))


def as_json(channel_scores: dict) -> dict:
    """The scores as results.json fields."""
    return {
        "scores": {k: np.asarray(v).tolist() for k, v in channel_scores.items() if k != "count"},
        "num_scored_images": channel_scores["count"],
    }
