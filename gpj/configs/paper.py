"""Every claim of the paper at embedded scale, one command, and a scorecard.

  python -m gpj.main --config=configs/paper.py                 # every part, seeds in stages
  python -m gpj.main --config=configs/paper.py --config.max_minutes=60   # stop cleanly at 1 h
  python -m gpj.main --config=configs/paper.py:shuffle_depth   # claim 2 by shuffle depth only
  python -m gpj.main --config=configs/paper.py:tiny            # smoke test of all nine parts

Runs the parts named in `parts` (default: all nine), each an experiment in its own folder of the
workdir (resumable, with its own report), then writes `scorecard.md` with the rows of the claims
those parts test:
  probe           claims 1-2 with zero padding: GAPNet, PermuteNet and its two controls (fixed
                  permutation, channel sum) on both tasks, trained until the training loss
                  plateaus (within a budget);
  probe_circular  the same under circular padding (no border, so no absolute position): the
                  runs claims 1-2 compare;
  invariance      claim 3: AugShift against its two-view control and the baseline, 5 seeds;
  attack          claims 4-5: the position-needed segmentation task, its shape-only control
                  (B) and the symmetric calibration ranking (C);
  shuffle_layer_1 ... shuffle_layer_5
                  claim 2 by shuffle depth (the paper's PermuteNet table): PermuteNet beside the
                  fixed permutation at that depth, both tasks, 3 seeds, each run trained until
                  its test curve plateaus (`configs/probe.py:shuffle_depth`).
Seeds come in stages, under a group-sequential rule fixed before the runs
(`gpj.analysis.sequential`): stage 1 trains `stages[0]` seeds of every part; each later stage
adds seeds only to the parts with a claim row still undecided, up to `stages[k]` (earlier seeds
load from their checkpoints, never retrained). A row is decided when its t-interval at the
design's nominal level (Pocock-type, calibrated so the overall two-sided error is `alpha`) clears
its boundary; one still open after the last stage is inconclusive. `stages=(3,)` is the
fixed-n design with plain 95 % intervals. A part's `num_seeds` is set by the stage.

Any other field of a part can be overridden, e.g. `--config.attack.train.num_epochs=20`.
"""

import ml_collections

from gpj.configs import attack, invariance, probe
from gpj.configs.presets import apply_presets

SHUFFLE_LAYERS = {f"shuffle_layer_{k}": k for k in range(1, 6)}  # part -> its shuffle layer
SHUFFLE_PARTS = tuple(SHUFFLE_LAYERS)
PARTS = ("probe", "probe_circular", "invariance", "attack", *SHUFFLE_PARTS)
STAGES = (3, 6, 10)  # seeds per part at each stage (cumulative)
# Predictions for the first sequential run, written before it, from the fixed-n run's intervals
# (stage intervals are at 98.07 %, about 1.65x the 95 % width at 3 seeds):
# - stage 1 decides claim 1 with zero padding (supported) and claim 2 at layers 1, 2 and 4
#   (supported) and at layer 5 (not supported, every part); layer 3's interval reaches past 10
#   points, so it continues and is supported at stage 2;
# - claim 1 with circular padding (GAPNet too at chance: no absolute position on a torus; a
#   difference near 0) runs all three stages and ends inconclusive;
# - claim 3 (AugShift − two_view, about +0.9 points at a per-seed SD of about 1.1) continues;
#   it ends supported or inconclusive with about even odds (power ~50 % at that effect);
# - claims 4 and 5 (effects far inside per-seed SDs of ~5 and ~27 points) run all three stages
#   and end inconclusive, with the smallest detectable effect stated.


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.experiment = "paper"
    c.parts = PARTS  # the parts to run; a later run with more parts in the same workdir resumes
    c.stages = STAGES
    c.alpha = 0.05  # the overall two-sided error of every verdict
    c.max_minutes = 0.0  # stop cleanly before a part that would end past this (0: no budget)

    c.probe = probe.get_config("controls")
    c.probe.num_seeds = STAGES[0]
    _plateau(c.probe, budget_epochs=12)

    c.probe_circular = probe.get_config("controls,circular")
    # What claims 1-2 need there: whether any head still finds the cell, and the object accuracy
    # lost without channel order.
    c.probe_circular.runs = (
        "gapnet:location",
        "permutenet:location",
        "fixedperm:object",
        "permutenet:object",
    )
    c.probe_circular.num_seeds = STAGES[0]
    _plateau(c.probe_circular, budget_epochs=12)

    c.invariance = invariance.get_config()
    c.invariance.num_seeds = STAGES[0]

    c.attack = attack.get_config()
    c.attack.classifier.tasks = ()  # the GAPNets' attacks are not among the claims
    c.attack.num_seeds = STAGES[0]
    _plateau(c.attack, budget_epochs=12)

    for name, layer in SHUFFLE_LAYERS.items():
        c[name] = probe.get_config("shuffle_depth")
        c[name].model.shuffle_layer = layer
        c[name].num_seeds = STAGES[0]
    return apply_presets(c, arg, PRESETS)


def _plateau(part, budget_epochs):
    """Train until the training loss plateaus, at most `budget_epochs`."""
    part.train.update(num_epochs=budget_epochs, stop_on_plateau=True)


def _tiny(c):
    c.stages = (2,)  # two seeds: the smallest count with an interval
    for name, module, presets in (
        ("probe", probe, "tiny,controls"),
        ("probe_circular", probe, "tiny,controls,circular"),
        ("invariance", invariance, "tiny"),
        ("attack", attack, "tiny"),
    ):
        tiny = module.get_config(presets)
        tiny.num_seeds = 2
        if name == "probe_circular":
            tiny.runs = c.probe_circular.runs
        if name == "invariance":
            tiny.variants = ("baseline", "two_view", "augshift")
        if name == "attack":
            tiny.classifier.tasks = ()
        tiny.train.update(num_epochs=2, eval_every_epochs=1, stop_on_plateau=True)
        c[name] = tiny
    for name in SHUFFLE_PARTS:
        tiny = probe.get_config("tiny,shuffle_depth")
        tiny.num_seeds = 2
        tiny.model.shuffle_layer = SHUFFLE_LAYERS[name]
        tiny.train.update(num_epochs=2, eval_every_epochs=1)
        c[name] = tiny


def _shuffle_depth(c):
    """Claim 2 by shuffle depth alone: the five shuffle_layer parts."""
    c.parts = SHUFFLE_PARTS


PRESETS = {"tiny": _tiny, "shuffle_depth": _shuffle_depth}
