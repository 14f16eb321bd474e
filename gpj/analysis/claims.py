"""The paper's five claims, decided from the results of the runs that test them.

Each claim function names the differences its verdict rests on (`tests`: a difference and the
side the paper predicts) and the boundary; `judge` decides it by comparing each tested
difference's t-interval (seeds as units; 95 %, or a group-sequential stage's nominal level from
`gpj.analysis.sequential`) with that side, by one rule written before the runs:

- **supported**: the interval lies wholly on the predicted side;
- **not supported at this scale**: it lies wholly on the other side;
- **inconclusive**: it contains the boundary (or there is one seed, so no interval); the row
  says which way its estimate leans.

An equivalence test (a test with a `margin` instead of a side: the prediction is "no
difference") is supported when the interval lies wholly inside ±margin and not supported when it
lies wholly outside it. A claim resting on several differences is supported when all are, not
supported when any is not. Every difference of a row, tested or shown beside, gets its interval
at the row's level.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

from gpj.analysis import stats
from gpj.configs.paper import HEADLINE_LAYER, SHUFFLE_LAYERS

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported at this scale", "inconclusive"
SMALL_DROP = 0.10  # claim 2: "largely not channel-order dependent" = loses < 10 points of accuracy
# Claim 1 under circular padding (no border): "no channel-order advantage" = GAPNet's location
# accuracy within ±10 points of PermuteNet's; fixed before its runs (issue 30), as claim 2's.
EQUIVALENCE_MARGIN = 0.10


def decide(interval, sign: int, boundary: float = 0.0) -> str:
    """The verdict on a difference predicted to lie above (`sign` = +1) or below (−1) `boundary`,
    from its interval `[low, high]` (None: one seed, no interval)."""
    if not interval:
        return INCONCLUSIVE
    low, high = (sign * (v - boundary) for v in interval)
    low, high = min(low, high), max(low, high)
    if low > 0:
        return SUPPORTED
    return NOT_SUPPORTED if high < 0 else INCONCLUSIVE


def decide_equivalence(interval, margin: float) -> str:
    """The verdict on a difference predicted to lie within ±`margin`, from its interval."""
    if not interval:
        return INCONCLUSIVE
    low, high = interval
    if -margin < low and high < margin:
        return SUPPORTED
    return NOT_SUPPORTED if low >= margin or high <= -margin else INCONCLUSIVE


def judge(row: dict, confidence: float = 0.95) -> dict:
    """A claim function's `row` with its verdict: every difference gets its t-interval at
    `confidence` (`interval`); each tested one is decided against the row's boundary (or its
    margin), with the side its estimate leans to (`leans`: "for" or "against" the claim), and
    the tests `combine`."""
    differences = {
        name: {**d, "interval": stats.interval(d, confidence)}
        for name, d in row["differences"].items()
    }
    verdicts = []
    for test in row["tests"]:
        tested = differences[test["difference"]]
        if "margin" in test:
            verdicts.append(decide_equivalence(tested["interval"], test["margin"]))
            toward = abs(tested["mean"]) < test["margin"]
        else:
            verdicts.append(decide(tested["interval"], test["sign"], row["boundary"]))
            toward = test["sign"] * (tested["mean"] - row["boundary"]) > 0
        tested["leans"] = "for" if toward else "against"
    return {
        **row,
        "differences": differences,
        "confidence": confidence,
        "verdict": combine(verdicts),
    }


def _tests(*signed) -> list:
    """[{"difference", "sign"}] from (difference, sign) pairs."""
    return [{"difference": name, "sign": sign} for name, sign in signed]


def combine(verdicts) -> str:
    verdicts = list(verdicts)
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return NOT_SUPPORTED if NOT_SUPPORTED in verdicts else INCONCLUSIVE


def _paired(probe: dict, task: str, a: str, b: str) -> dict:
    runs = [r for r in probe["runs"] if r["task"] == task]
    return stats.paired(runs, "head", a, b, "accuracy")


def _at_budget(runs) -> int:
    return sum(r["steps"] >= r.get("budget_steps", r["steps"]) for r in runs)


def _converged(probe: dict, heads, task: str) -> str:
    runs = [r for r in probe["runs"] if r["head"] in heads and r["task"] == task]
    on = probe.get("config", {}).get("train", {}).get("plateau_on", "train_loss")
    curve = {"test_accuracy": "test-curve", "val_accuracy": "validation-accuracy"}.get(
        on, "training-loss"
    )
    done = len(runs) - _at_budget(runs)
    return f"{done} of {len(runs)} runs stopped on a {curve} plateau, the rest at the budget"


def _ran(probe: dict, head: str, task: str) -> bool:
    return any((r["head"], r["task"]) == (head, task) for r in probe["runs"])


def by_shuffle_depth(probes: dict) -> list:
    """Per shuffle layer (`probes`: layer -> a probe's results with PermuteNet and the fixed
    permutation): each head's accuracy per task, the paired drop (fixed permutation −
    PermuteNet), each head's readable R² where measured, and how many runs hit the budget."""
    rows = []
    for layer, probe in sorted(probes.items()):
        row = {"layer": layer, "accuracy": {}, "drop": {}, "readable_r2": {}}
        for task in ("location", "object"):
            runs = {
                h: [r for r in probe["runs"] if (r["head"], r["task"]) == (h, task)]
                for h in ("permutenet", "fixedperm")
            }
            if not all(runs.values()):
                continue
            row["accuracy"][task] = {
                h: stats.describe([r["accuracy"] for r in rs]) for h, rs in runs.items()
            }
            row["drop"][task] = _paired(probe, task, "fixedperm", "permutenet")
            r2 = {h: [r["readable_r2"] for r in rs if "readable_r2" in r] for h, rs in runs.items()}
            if all(r2.values()):
                row["readable_r2"][task] = {h: stats.describe(v) for h, v in r2.items()}
        row["at_budget"] = _at_budget(probe["runs"])
        row["runs"] = len(probe["runs"])
        rows.append(row)
    return rows


def channel_wise_position(probe: dict) -> dict:
    """Claim 1: GAPNet (and the fixed permutation, where it ran) find the cell; PermuteNet
    cannot."""
    differences = {"gapnet − permutenet": _paired(probe, "location", "gapnet", "permutenet")}
    if _ran(probe, "fixedperm", "location"):
        differences["fixedperm − permutenet"] = _paired(
            probe, "location", "fixedperm", "permutenet"
        )
    return {
        "measured": "location accuracy with channel order (GAPNet"
        + (", fixed permutation" if len(differences) > 1 else "")
        + ") − without (PermuteNet)",
        "differences": differences,
        "tests": _tests(*((name, +1) for name in differences)),
        "boundary": 0.0,
        "convergence": _converged(probe, ("permutenet", "gapnet", "fixedperm"), "location"),
    }


def no_border_no_advantage(probe: dict) -> dict:
    """Claim 1's border account, under circular padding (no border): GAPNet's location accuracy
    equals PermuteNet's within ±`EQUIVALENCE_MARGIN` (an equivalence test)."""
    difference = _paired(probe, "location", "gapnet", "permutenet")
    return {
        "measured": "location accuracy with channel order (GAPNet) − without (PermuteNet), "
        f"predicted within ±{100 * EQUIVALENCE_MARGIN:.0f} points (equivalence)",
        "differences": {"gapnet − permutenet": difference},
        "tests": [{"difference": "gapnet − permutenet", "margin": EQUIVALENCE_MARGIN}],
        "boundary": EQUIVALENCE_MARGIN,
        "convergence": _converged(probe, ("permutenet", "gapnet"), "location"),
    }


def order_free_semantics(probe: dict) -> dict:
    """Claim 2: PermuteNet recognises objects nearly as well as with channel order: the fixed
    permutation's object accuracy minus PermuteNet's is below `SMALL_DROP`."""
    drop = _paired(probe, "object", "fixedperm", "permutenet")
    differences = {"fixedperm − permutenet": drop}
    if _ran(probe, "fixedperm", "location") and _ran(probe, "permutenet", "location"):
        # The paper's complementary half, reported beside the verdict: location without order.
        differences["location: fixedperm − permutenet"] = _paired(
            probe, "location", "fixedperm", "permutenet"
        )
    if _ran(probe, "sum", "object"):
        # Context, not part of the verdict: does PermuteNet read more than the channel sum?
        differences["permutenet − sum"] = _paired(probe, "object", "permutenet", "sum")
    return {
        "measured": f"object accuracy lost without channel order (fixed permutation − PermuteNet), "
        f"against {100 * SMALL_DROP:.0f} points",
        "differences": differences,
        "tests": _tests(("fixedperm − permutenet", -1)),
        "boundary": SMALL_DROP,
        "convergence": _converged(probe, ("permutenet", "fixedperm"), "object"),
    }


def augshift_invariance(invariance: dict, control: str) -> dict:
    """Claim 3: AugShift raises shift consistency over `control`: the plain `baseline` (the
    paper's claim) or the `two_view` control (λ = 0: the consistency loss's own share)."""
    comparisons = {tuple(c["variant"]): c for c in invariance["comparisons"]}
    names = ("augshift", "two_view"), ("augshift", "baseline"), ("two_view", "baseline")
    tested = f"augshift − {control}"
    return {
        "measured": f"shift consistency: AugShift − {control}, paired by seed",
        "differences": {f"{a} − {b}": comparisons[a, b] for a, b in names},
        "tests": _tests((tested, +1)),
        "boundary": 0.0,
    }


def _effect(attack: dict, model: str) -> dict:
    rows = [e for e in attack["effects"] if e["model"] == model]
    return rows[len(rows) // 2] if rows else None  # the middle N of evals.attack.num_channels


def position_channels_needed(attack: dict) -> dict:
    """Claim 4: ablating the top-N position channels hurts the position-needed segmentation more
    than N random channels (middle N)."""
    needed = _effect(attack, "segmentation-position_needed")
    control = _effect(attack, "segmentation-shape_only")
    differences = {"position-needed: top − random mIoU": needed["overall_vs_random"]}
    if "side_confusion" in needed:
        differences["position-needed: top − random side confusion"] = needed["side_confusion"][
            "overall_vs_random"
        ]
    if control:
        differences["shape-only (control B): top − random mIoU"] = control["overall_vs_random"]
    return {
        "measured": f"whole-image mIoU with the top-{needed['n']} position channels ablated, "
        "minus N random channels",
        "differences": differences,
        "tests": _tests(("position-needed: top − random mIoU", -1)),
        "boundary": 0.0,
    }


def region_specific_attack(attack: dict) -> dict:
    """Claim 5: the 'left' channels' attack hurts the left half more than random channels do,
    and the 'right' channels' the right half (middle N, ranked on the calibration split)."""
    needed = _effect(attack, "segmentation-position_needed")
    differences = {
        "'left' attack: asymmetry − random": needed["left_excess"],
        "'right' attack: asymmetry − random": needed["right_excess"],
    }
    if "sym_left_excess" in needed:
        differences["control C 'left' attack"] = needed["sym_left_excess"]
        differences["control C 'right' attack"] = needed["sym_right_excess"]
    return {
        "measured": f"Δ mIoU(left half) − Δ mIoU(right half) of the top-{needed['n']} 'left' / "
        "'right' channels, minus random channels'",
        "differences": differences,
        "tests": _tests(
            ("'left' attack: asymmetry − random", -1), ("'right' attack: asymmetry − random", +1)
        ),
        "boundary": 0.0,
    }


class Row(NamedTuple):
    """One scorecard row: a claim, the part whose results decide it, in what setting, how."""

    claim: int
    part: str
    setting: str
    decide: Callable[[dict], dict]


def _depth_setting(layer: int) -> str:
    return (
        f"zero padding, shuffle layer {layer} (before ResNet stage {layer}): the layers after it "
        "can read the channel-summed map"
    )


ROWS = (  # in scorecard order
    Row(1, "probe", "zero padding: tests the claim", channel_wise_position),
    Row(
        1,
        "probe_circular",
        "circular padding: no border, so no channel-order advantage is predicted (equivalence)",
        no_border_no_advantage,
    ),
    Row(
        2,
        "probe",
        f"zero padding, shuffle after GAP (layer {HEADLINE_LAYER}, the paper's headline and "
        "the official code's default): PermuteNet can read only the channel sum",
        order_free_semantics,
    ),
    Row(
        2,
        "probe_circular",
        f"circular padding, shuffle after GAP (layer {HEADLINE_LAYER}): no border cue; only "
        "the channel sum",
        order_free_semantics,
    ),
    *(
        Row(2, name, _depth_setting(layer), order_free_semantics)
        for name, layer in SHUFFLE_LAYERS.items()
    ),
    Row(
        3,
        "invariance",
        "against the plain baseline: the paper's claim",
        functools.partial(augshift_invariance, control="baseline"),
    ),
    Row(
        3,
        "invariance",
        "against the two-view control (λ = 0): the consistency loss's own share",
        functools.partial(augshift_invariance, control="two_view"),
    ),
    Row(4, "attack", "position-needed task, control B", position_channels_needed),
    Row(5, "attack", "calibration ranking, control C", region_specific_attack),
)
COMMANDS = {  # the paper-scale command of each part (GPU/TPU; the data prepared once)
    "probe": "python -m gpj.main --config=configs/probe.py:cifar10,controls "
    "--config.data.data_dir=~/tensorflow_datasets",
    "invariance": "python -m gpj.main --config=configs/invariance.py:cifar10 "
    "--config.data.data_dir=~/tensorflow_datasets",
    "probe_circular": "python -m gpj.main --config=configs/probe.py:cifar10,controls,circular "
    "--config.data.data_dir=~/tensorflow_datasets",
    "attack": "python -m gpj.main --config=configs/attack.py:cityscapes",
    **{
        name: "python -m gpj.main --config=configs/probe.py:cifar10,shuffle_depth "
        f"--config.model.shuffle_layer={layer} --config.data.data_dir=~/tensorflow_datasets"
        for name, layer in SHUFFLE_LAYERS.items()
    },
}


def scorecard(outcome: dict, judged: dict, open_rows: list) -> list:
    """One row per claim and setting whose part ran: what was measured, the differences, the
    verdict with its stage and n (a row still open at a budget stop says so), the CPU and jax
    version of its part's run, and the paper-scale command."""
    rows = []
    for i, row in enumerate(ROWS):
        if i not in judged:
            continue
        environment = outcome[row.part]["environment"]
        found = {"claim": row.claim, "part": row.part, "setting": row.setting, **judged[i]}
        found["command"] = COMMANDS[row.part]
        if i in open_rows:  # stopped at the budget before its next stage
            found["verdict"] = "open"
        found.update(cpu=environment["cpu"], jax=environment["packages"]["jax"])
        rows.append(found)
    return rows


def shuffle_depth(outcome: dict) -> list:
    """The shuffle-depth table's rows (`by_shuffle_depth`) of the shuffle parts that ran, the
    `probe` part giving the last row (layer 5)."""
    layers = {**SHUFFLE_LAYERS, "probe": HEADLINE_LAYER}
    return by_shuffle_depth(
        {layer: outcome[name] for name, layer in layers.items() if name in outcome}
    )
