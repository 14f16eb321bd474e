"""The group-sequential rule: its boundaries against Pocock's published constants, its error
rate and power by simulation through the verdict code itself, and its stage bookkeeping."""

import numpy as np
import pytest
from scipy import special
from scipy import stats as scipy_stats

from gpj.analysis import claims, sequential, stats


@pytest.mark.parametrize(
    "stages,constant",
    # Pocock (1977), Table 1 / Jennison & Turnbull (2000), Table 2.1: two-sided α = 0.05,
    # K equally spaced looks (only the information fractions matter, so n = 2, 4, ...).
    [((2, 4), 2.178), ((2, 4, 6), 2.289), ((2, 4, 6, 8, 10), 2.413)],
)
def test_known_variance_calibration_gives_pococks_constants(stages, constant):
    level = sequential.nominal_alpha(stages, 0.05, known_variance=True)
    assert -special.ndtri(level / 2) == pytest.approx(constant, abs=0.01)


def test_with_no_effect_at_most_alpha_of_verdicts_are_decisive():
    """20,000 studies with the true difference on the boundary: the share of decisive verdicts
    (each one false) stays within the binomial error of α; the rule is not silent either."""
    design = sequential.Design((3, 6, 10), 0.05)
    null = sequential.simulate(design, effect=0.0, studies=20_000, seed=2026)
    error = 3 * np.sqrt(0.05 * 0.95 / 20_000)
    assert null["decisive"] <= 0.05 + error
    assert null["decisive"] >= 0.05 - error  # calibrated, not merely conservative
    # Stopping at 3 or 6 seeds when there is no effect is rare: almost every study uses all 10.
    assert null["mean_seeds"] > 9.5


def test_power_and_early_stopping_at_a_stated_effect():
    design = sequential.Design((3, 6, 10))
    strong = sequential.simulate(design, effect=1.5, studies=10_000, seed=7)
    assert strong["verdicts"][claims.SUPPORTED] > 0.9  # power at 1.5 per-seed SD
    assert strong["verdicts"][claims.NOT_SUPPORTED] < 0.001
    assert strong["mean_seeds"] < 8  # it often stops before 10


def test_one_stage_is_the_plain_95_percent_interval():
    assert sequential.nominal_alpha((3,)) == 0.05
    values = [0.2, 0.3, 0.25]
    row = {
        "differences": {"d": stats.describe(values)},
        "tests": [{"difference": "d", "sign": +1}],
        "boundary": 0.0,
    }
    judged, done = sequential.judge(row, 1, sequential.Design((3,)))
    expected = scipy_stats.ttest_1samp(values, 0).confidence_interval()
    assert done and judged["differences"]["d"]["interval"] == pytest.approx(list(expected))
    assert judged["verdict"] == claims.SUPPORTED


def test_an_undecided_row_continues_then_ends_inconclusive_with_its_detectable_effect():
    design = sequential.Design((3, 6))
    values = [0.2, -0.1, 0.05, 0.1, -0.05, 0.0]
    for stage, n in enumerate(design.stages, 1):
        row = {
            "differences": {"d": stats.describe(values[:n]), "context": stats.describe(values)},
            "tests": [{"difference": "d", "sign": -1}],
            "boundary": 0.0,
        }
        judged, done = sequential.judge(row, stage, design)
        assert judged["verdict"] == claims.INCONCLUSIVE and done == (stage == 2)
    tested = judged["differences"]["d"]
    confidence = 1 - design.nominal_alpha
    t = scipy_stats.t(df=5)
    expected = (t.ppf(0.5 + confidence / 2) + t.ppf(0.8)) * np.std(values, ddof=1) / np.sqrt(6)
    assert tested["detectable"] == pytest.approx(expected)
    low, high = tested["interval"]
    assert high - low == pytest.approx(
        2 * t.ppf(0.5 + confidence / 2) * np.std(values, ddof=1) / np.sqrt(6)
    )
    assert "interval" not in judged["differences"]["context"]  # context is not tested
    assert (judged["stage"], judged["stages"]) == (2, 2)


@pytest.mark.parametrize("stages", [(), (1, 3), (3, 3), (6, 3), (3.0, 6), (True, 4)])
def test_bad_stages_are_refused(stages):
    with pytest.raises(ValueError, match="must be increasing seed counts from at least 2"):
        sequential.check_stages(stages)


def test_pococks_normal_level_read_off_t_quantiles_would_exceed_alpha():
    """Why the level is calibrated for t: Pocock's known-variance level, used with t quantiles
    at n = 3, 6, 10, gives more than 5 % false verdicts (5.5 %) over 2^18 null studies."""
    stages = (3, 6, 10)
    normal_level = sequential.nominal_alpha(stages, 0.05, known_variance=True)
    null = np.random.default_rng(3).standard_normal((2**18, stages[-1]))
    smallest = sequential._smallest_p(null, stages, known_variance=False)
    error = 3 * np.sqrt(0.05 * 0.95 / 2**18)
    assert np.mean(smallest < normal_level) > 0.05 + error
    assert np.mean(smallest < sequential.nominal_alpha(stages)) <= 0.05 + error
