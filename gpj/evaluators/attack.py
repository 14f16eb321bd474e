"""Channel attacks: the task's metric with the top-N position channels of the backbone output
ablated, beside N random channels (settings: `gpj.configs.evals.attack`).

Channels are ranked by the scores of the latent (the backbone output, globally pooled), which use
no labels: by `flip_abs` (overall) and, for segmentation, by `flip_signed` (descending: "left",
ascending: "right"). `rank_on="calibration"` (default) scores images apart from the test
split: the dataset's "calibration" set where it has one (digit canvases), else the first
num_test train images; "test" scores the test images, like the official code. Where the data has
a "symmetric" seeded calibration set (exactly half of its digits on each side, drawn afresh for
each training seed), it also ranks "sym_left"/"sym_right" on the run's seed's set (control C: a
signed score with no side to find). Segmentation runs also record one test image's predictions,
clean and under each attack, for the example figure.
"""

import jax
import jax.numpy as jnp
import numpy as np

from gpj import models, tasks
from gpj.analysis import attack
from gpj.configs import evals
from gpj.errors import ConfigError
from gpj.evaluators.base import Evaluator
from gpj.evaluators.every_cell import EveryCell
from gpj.evaluators.regions import RegionMIoU
from gpj.evaluators.scores import Scores, as_json
from gpj.validation import check_choice, check_positive

RANKINGS = ("overall", "left", "right")
_EXAMPLE_WIDTH = 256  # the example figure's data is subsampled to at most this many columns
_METRICS = {tasks.Canvas: EveryCell, tasks.Segmentation: RegionMIoU}
FILLS = ("zero", "mean")
RANK_ON = ("calibration", "test")


class Attack(Evaluator):
    """`attack`: scores, the ranked and random attack curves and, for segmentation, the
    region-specific rankings and the example figure's data."""

    tasks = tuple(_METRICS)
    defaults = staticmethod(evals.attack)
    applies = staticmethod(Scores.applies)

    @staticmethod
    def check(settings, where):
        for path in ("num_random", "example_channels"):
            check_positive(settings, path, where)
        check_choice(settings, "fill", FILLS, where)
        check_choice(settings, "rank_on", RANK_ON, where)
        sizes = tuple(settings.num_channels)
        if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
            raise ConfigError(
                f"{where}num_channels={sizes!r} must be positive integers, e.g. (1, 4, 16)"
            )

    def __init__(self, kind, settings, shapes, mesh):
        self.kind, self.settings = kind, settings
        self.scores = Scores(kind, Scores.defaults(), shapes, mesh)
        metric = _METRICS[type(kind.task)]
        self.metric = metric(kind, metric.defaults(), shapes, mesh)
        self.regional = isinstance(kind.task, tasks.Segmentation)
        self.num_channels = shapes["latent"][-1]
        largest = max(self.settings.num_channels)
        if largest > self.num_channels:
            raise ConfigError(
                f"evals.attack.num_channels={tuple(self.settings.num_channels)!r} asks for {largest} "
                f"channels, but the {kind.name} model's backbone output has {self.num_channels}; "
                f"use sizes up to {self.num_channels}"
            )
        if self.regional:
            self.predict = jax.jit(
                lambda v, x, a: jnp.argmax(kind.model.apply(v, x, False, a)[0], -1)
            )

    def ranking_images(self, data):
        """(name, images) the channels are ranked on, per its `rank_on`."""
        if self.settings.rank_on == "test":
            return "test", data.test_images
        calibration = getattr(data, "calibration", {})
        if "calibration" in calibration:
            return "calibration", calibration["calibration"]
        return "train", data.train_images[: len(data.test_labels)]

    def run(self, state, data, *, seed) -> dict:
        ranked_on, images = self.ranking_images(data)
        sc = self.scores.scores(state, images)
        fill = sc["mean"] if self.settings.fill == "mean" else None

        def ablation(channels):
            return {"features": models.channel_ablation(self.num_channels, channels, fill)}

        rankings = {"overall": sc["rank_flip_abs"]}
        if self.regional:
            rankings.update(left=sc["rank_flip_signed"], right=sc["rank_flip_signed"][::-1])
            symmetric = getattr(data, "seeded_calibration", {}).get("symmetric")
            if ranked_on == "calibration" and symmetric is not None:
                signed = self.scores.scores(state, symmetric(seed))["rank_flip_signed"]
                rankings.update(sym_left=signed, sym_right=signed[::-1])
        sizes = tuple(self.settings.num_channels)
        curves = attack.attack_curves(
            lambda channels: self.metric.measure(state, data, ablation(channels)),
            rankings,
            num_channels=self.num_channels,
            sizes=sizes,
            num_draws=self.settings.num_random,
            seed=seed,
            desc=f"attack {self.kind.name} seed {seed}",
        )
        result = {
            "ranked_on": ranked_on,
            "num_channels": self.num_channels,
            "sizes": list(sizes),
            "curves": curves,
            **as_json(sc),
        }
        if self.regional:
            n = min(self.settings.example_channels, self.num_channels)
            ablations = {"clean": ablation([])} | {
                name: ablation(rankings[name][:n]) for name in RANKINGS
            }
            result["example"] = {"n": n, **self.example(state, data, ablations)}
        return result

    def example(self, state, data, ablations: dict) -> dict:
        """The first test image's predictions, clean and under each ablation; every `step`-th
        pixel of large images, so that results.json stays small."""
        x = data.test_images[:1]
        step = -(-x.shape[2] // _EXAMPLE_WIDTH)
        return {
            "image": x[0, ::step, ::step, 0].round(3).tolist(),
            "label": data.test_labels[0][::step, ::step].tolist(),
            "predictions": {
                name: np.asarray(self.predict(state.variables, x, a))[0, ::step, ::step].tolist()
                for name, a in ablations.items()
            },
        }
