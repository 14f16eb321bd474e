"""Every claim of the paper at embedded scale, one command, and a scorecard.

  python -m gpj.main --config=configs/paper.py                 # every part
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
Any field of a part can be overridden, e.g. `--config.attack.num_seeds=5`.
"""

import ml_collections

from gpj.configs import attack, invariance, probe
from gpj.configs.presets import apply_presets

SHUFFLE_LAYERS = {f"shuffle_layer_{k}": k for k in range(1, 6)}  # part -> its shuffle layer
SHUFFLE_PARTS = tuple(SHUFFLE_LAYERS)
PARTS = ("probe", "probe_circular", "invariance", "attack", *SHUFFLE_PARTS)
SEEDS = 3


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.experiment = "paper"
    c.parts = PARTS  # the parts to run; a later run with more parts in the same workdir resumes

    c.probe = probe.get_config("controls")
    c.probe.num_seeds = SEEDS
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
    c.probe_circular.num_seeds = SEEDS
    _plateau(c.probe_circular, budget_epochs=12)

    c.invariance = invariance.get_config()

    c.attack = attack.get_config()
    c.attack.classifier.tasks = ()  # the GAPNets' attacks are not among the claims
    c.attack.num_seeds = SEEDS
    _plateau(c.attack, budget_epochs=12)

    for name, layer in SHUFFLE_LAYERS.items():
        c[name] = probe.get_config("shuffle_depth")
        c[name].model.shuffle_layer = layer
    return apply_presets(c, arg, PRESETS)


def _plateau(part, budget_epochs):
    """Train until the training loss plateaus, at most `budget_epochs`."""
    part.train.update(num_epochs=budget_epochs, stop_on_plateau=True)


def _tiny(c):
    for name, module, presets in (
        ("probe", probe, "tiny,controls"),
        ("probe_circular", probe, "tiny,controls,circular"),
        ("invariance", invariance, "tiny"),
        ("attack", attack, "tiny"),
    ):
        tiny = module.get_config(presets)
        tiny.num_seeds = 2  # two seeds: the smallest count with an interval
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
