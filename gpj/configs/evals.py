"""Evaluator settings (`config.evals`: evaluator name -> its settings), with their defaults.

Each function returns a fresh ConfigDict of one evaluator's settings (`gpj.evaluators`, which
check them); keyword arguments override its defaults. An entry given on the command line with
fewer settings, e.g. `--config.evals="{'shift': {}, 'scores': {}}"`, takes the rest from here.
"""

import ml_collections

MOVED = {  # an older gpj's fields (schema 2 results) -> their place now, in an experiment's config
    "attack": "evals.attack",
    "eval.shift_step": "evals.shift.step",
    "eval.consistency_pairs": "evals.shift.consistency_pairs",
    "eval.consistency_seed": "evals.shift.consistency_seed",
    "eval.probe_grid": "evals.position_probe.grid",
    "eval.probe_seed": "evals.position_probe.seed",
}


def override(names, flag: str = "--config.evals") -> str:
    """The command-line override that measures with the evaluators `names`, each at its
    defaults, e.g. `--config.evals="{'every_cell': {}, 'scores': {}}"`."""
    return f'{flag}="{ {name: {} for name in names}!r}"'


def no_settings() -> ml_collections.ConfigDict:
    """An evaluator without settings: every_cell, scores, miou, readable."""
    return ml_collections.ConfigDict()


def shift(**overrides) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.step = 4  # accuracy at every offset of this grid of shifts (pixels)
    c.consistency_pairs = 5  # seeded pairs of random shifts per test image
    c.consistency_seed = 0  # seed of those pairs
    c.update(overrides)
    return c


def position_probe(**overrides) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.grid = 3  # the probe predicts which of grid x grid offset cells an image is in
    c.seed = 0  # seed of the probe's offsets
    c.update(overrides)
    return c


def attack(**overrides) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_channels = (4, 16, 64)  # N: top-N vs N random channels
    c.num_random = 20  # random channel sets per N
    # calibration: rank on images apart from the test split (digits: the calibration splits;
    # otherwise the first num_test train images) | test: on the test images, as the official code
    c.rank_on = "calibration"
    c.fill = "zero"  # zero | mean (the channel's mean over the scored images)
    c.example_channels = 32  # N of the example segmentation figure
    c.update(overrides)
    return c
