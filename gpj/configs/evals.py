"""Evaluator settings (`config.evals`: evaluator name -> its settings), with their defaults.

Each function returns a fresh ConfigDict of one evaluator's settings (`gpj.evaluators`, which
check them); keyword arguments override its defaults. An entry given on the command line with
fewer settings, e.g. `--config.evals="{'shift': {}, 'scores': {}}"`, takes the rest from here.
"""

import ml_collections


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
