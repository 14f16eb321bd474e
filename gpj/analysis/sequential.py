"""A group-sequential rule: seeds are added in stages, and only while a verdict is undecided.

The design, fixed before any run (`configs/paper.py`: `stages`, `alpha`):

- Stages of n_1 < n_2 < ... < n_K seeds. At stage k each open difference gets the Student-t
  interval of its n_k seeds (n_k − 1 degrees of freedom) at one nominal confidence 1 − α', the
  same at every stage: Pocock's constant-boundary design (Pocock 1977, "Group sequential methods
  in the design and analysis of clinical trials", Biometrika 64:191-199; Jennison & Turnbull
  2000, *Group Sequential Methods with Applications to Clinical Trials*, ch. 2-3). Pocock's
  rather than O'Brien-Fleming's: with 3 seeds at the first look, O'Brien-Fleming's first
  boundary (a 0.03 % test on 2 degrees of freedom) could almost never stop a claim early.
- The `claims.decide` rule on that interval: wholly on the predicted side of the boundary,
  **supported**; wholly on the other, **not supported at this scale**; else the difference
  continues to the next stage, and after the last it is **inconclusive**, reported with the
  smallest effect its final n could have detected (`detectable`).
- α' holds the overall two-sided error at α: when the true mean difference lies on the boundary,
  the chance that any stage gives a decisive verdict is α. Pocock's normal-theory constant
  assumes a known variance; with 3 seeds the t-statistic's tails are far heavier, and reading
  the same nominal level off t quantiles instead (the usual approximation for an unknown
  variance) gives 5.5 % at n = 3, 6, 10. So α' is calibrated for the t-statistics themselves: it is the α-quantile
  of the smallest stage p-value over `CALIBRATION_STUDIES` simulated studies with no effect (the
  statistics are pivotal: free of the mean and the spread, so one simulation serves every claim).
"""

import functools
import itertools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import special

from gpj.analysis import claims

CALIBRATION_STUDIES = 2**20
STUDIES = 2**20  # simulated studies behind each stated error rate (over 10^6)
POWER = 0.8  # the power at which `detectable` states the smallest detectable effect


class Design(NamedTuple):
    """Stages of seeds (cumulative n per stage) and the overall two-sided error."""

    stages: tuple
    alpha: float = 0.05

    @property
    def nominal_alpha(self) -> float:
        """α': each stage's two-sided nominal level (`nominal_alpha`)."""
        return nominal_alpha(tuple(self.stages), self.alpha)

    @property
    def confidence(self) -> float:
        return 1.0 - self.nominal_alpha


def check_stages(stages: Sequence[int]) -> None:
    """Raises ValueError unless `stages` are increasing whole numbers of seeds, from at least 2."""
    stages = tuple(stages)
    if (
        not stages
        or any(not isinstance(n, int) or isinstance(n, bool) for n in stages)
        or stages[0] < 2
        or any(b <= a for a, b in itertools.pairwise(stages))
    ):
        raise ValueError(
            f"{stages!r} must be increasing seed counts from at least 2 (an interval needs two "
            "seeds), e.g. (3, 6, 10)"
        )


@functools.cache
def nominal_alpha(stages: tuple, alpha: float = 0.05, known_variance: bool = False) -> float:
    """α' for `stages`: the per-stage two-sided level at which the chance of any decisive verdict
    over all stages, with no effect, is `alpha`.

    With one stage the t-test is exact, so α' = α. `known_variance` calibrates z-statistics
    instead (σ known), which reproduces Pocock's published constants.
    """
    check_stages(stages)
    if len(stages) == 1 and not known_variance:
        return alpha
    rng = np.random.default_rng(0)
    chunks = [
        _smallest_p(rng.standard_normal((2**16, stages[-1])), stages, known_variance)
        for _ in range(CALIBRATION_STUDIES // 2**16)
    ]
    return float(np.quantile(np.concatenate(chunks), alpha))


def _smallest_p(values: np.ndarray, stages: tuple, known_variance: bool) -> np.ndarray:
    """Each simulated study's (row's) smallest two-sided p-value over its stages."""
    smallest = np.ones(len(values))
    for n in stages:
        x = values[:, :n]
        if known_variance:
            p = 2 * special.ndtr(-np.abs(x.sum(1)) / np.sqrt(n))
        else:
            t = x.mean(1) / (x.std(1, ddof=1) / np.sqrt(n))
            p = 2 * special.stdtr(n - 1, -np.abs(t))
        smallest = np.minimum(smallest, p)
    return smallest


def judge(row: dict, stage: int, design: Design) -> tuple:
    """(`row` judged at `stage` (1-based) by `claims.judge` at the design's nominal level, done):
    done when the verdict is decisive or the stage is the last. The row records its stage and,
    when it ends inconclusive, each tested difference's smallest detectable effect."""
    judged = claims.judge(row, design.confidence)
    last = stage == len(design.stages)
    done = judged["verdict"] != claims.INCONCLUSIVE or last
    judged.update(stage=stage, stages=len(design.stages), alpha=design.alpha)
    if done and judged["verdict"] == claims.INCONCLUSIVE:
        for test in judged["tests"]:
            d = judged["differences"][test["difference"]]
            d["detectable"] = detectable(d, design.confidence)
    return judged, done


def detectable(described: dict, confidence: float, power: float = POWER) -> float | None:
    """The smallest distance from the boundary that a true mean difference would need for the
    interval at `confidence` to clear it with probability `power`, at this n and spread:
    (t_{1-α'/2} + t_power) · s / √n, n − 1 degrees of freedom. None with one value."""
    n = described["n"]
    if n < 2:
        return None
    quantiles = special.stdtrit(n - 1, 0.5 + confidence / 2) + special.stdtrit(n - 1, power)
    return float(quantiles * described["std"] / np.sqrt(n))


def verdicts(values: np.ndarray, design: Design, levels=None) -> tuple:
    """The rule on simulated rows, all at once: `values` (studies, tests, seeds) are the per-seed
    differences of each row's tested differences, each predicted positive against a boundary of
    0; each stage's `claims.decide` on every test, `claims.combine`d, stopping a row at its first
    decisive stage. `levels`: each stage's two-sided nominal level (default: the design's α').
    Returns (verdict per row: +1 supported, −1 not supported, 0 inconclusive; seeds it used)."""
    levels = levels or (design.nominal_alpha,) * len(design.stages)
    verdict = np.zeros(len(values), np.int8)
    seeds = np.full(len(values), design.stages[-1])
    undecided = np.ones(len(values), bool)
    for n, level in zip(design.stages, levels, strict=True):
        x = values[..., :n]
        mean, half = x.mean(-1), special.stdtrit(n - 1, 1 - level / 2) * x.std(-1, ddof=1)
        half = half / np.sqrt(n)
        each = np.where(mean - half > 0, 1, np.where(mean + half < 0, -1, 0))
        combined = np.where((each == -1).any(-1), -1, np.where((each == 1).all(-1), 1, 0))
        now = undecided & (combined != 0)
        verdict[now], seeds[now] = combined[now], n
        undecided &= ~now
    return verdict, seeds


def _share(hits: np.ndarray) -> dict:
    """A simulated rate with its Monte Carlo standard error."""
    rate = float(hits.mean())
    return {"rate": rate, "se": float(np.sqrt(rate * (1 - rate) / hits.size))}


def error_rates(design: Design, rows: tuple, studies: int = STUDIES, seed: int = 0) -> dict:
    """The chance of a false verdict (any decisive one, every true difference on its boundary),
    from `studies` simulated scorecards of independent `rows` (each row's number of tested
    differences): per one-difference row, per two-difference row, per part of two open
    one-difference rows, over the whole scorecard, and per one-difference row had stage 1 also
    been read at a fixed 95 % (the earlier look)."""
    rng = np.random.default_rng(seed)
    chunk = min(studies, 2**16)
    hits = {key: [] for key in ("row", "two_difference_row", "part", "scorecard", "earlier")}
    for _ in range(studies // chunk):
        decisive = [
            verdicts(rng.standard_normal((chunk, k, design.stages[-1])), design)[0] != 0
            for k in (1, 1, 2, *rows)
        ]
        hits["row"].append(decisive[0])
        hits["part"].append(decisive[0] | decisive[1])
        hits["two_difference_row"].append(decisive[2])
        hits["scorecard"].append(np.any([np.zeros(chunk, bool), *decisive[3:]], axis=0))
        earlier = (design.alpha,) + (design.nominal_alpha,) * (len(design.stages) - 1)
        values = rng.standard_normal((chunk, 1, design.stages[-1]))
        hits["earlier"].append(verdicts(values, design, earlier)[0] != 0)
    rates = {key: _share(np.concatenate(h)) for key, h in hits.items()}
    return {"studies": studies // chunk * chunk, "rows": len(rows), **rates}


def power(design: Design, effect: float, studies: int = STUDIES, seed: int = 0) -> dict:
    """A one-difference row at a true effect of `effect` per-seed SDs: the share of each verdict
    and the mean number of seeds used."""
    values = np.random.default_rng(seed).normal(effect, 1.0, (studies, 1, design.stages[-1]))
    verdict, seeds = verdicts(values, design)
    shares = {
        claims.SUPPORTED: float(np.mean(verdict == 1)),
        claims.NOT_SUPPORTED: float(np.mean(verdict == -1)),
    }
    shares[claims.INCONCLUSIVE] = 1.0 - sum(shares.values())
    return {
        "effect": effect,
        "studies": studies,
        "verdicts": shares,
        "decisive": float(np.mean(verdict != 0)),
        "mean_seeds": float(seeds.mean()),
    }


@functools.cache
def operating_characteristics(design: Design, rows: tuple, effects=(1.0, 1.5)) -> dict:
    """The design's α', its false-verdict rates (`error_rates`, over a scorecard of `rows`) and
    its power at `effects` (per-seed SDs): what the scorecard states beside its rule."""
    return {
        "stages": list(design.stages),
        "alpha": design.alpha,
        "nominal_alpha": design.nominal_alpha,
        "method": "Pocock constant nominal level, calibrated for Student-t statistics",
        "errors": error_rates(design, rows),
        "power": [power(design, e, 2**18, seed=1 + i) for i, e in enumerate(effects)],
    }
