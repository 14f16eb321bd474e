"""The group-sequential rule: its boundaries against Pocock's published constants, its error
rates and power by vectorised simulation checked against the verdict code itself and an independent
simulation, and its stage bookkeeping."""

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


def test_vectorised_rule_gives_judges_verdict_study_by_study():
    """`verdicts` (all studies at once) against `judge` (the verdict code the scorecard uses) on
    the same draws, for one- and two-difference rows, at and off the boundary."""
    design = sequential.Design((3, 6, 10))
    rng = np.random.default_rng(11)
    code = {claims.SUPPORTED: 1, claims.NOT_SUPPORTED: -1, claims.INCONCLUSIVE: 0}
    for tests, effect in ((1, 0.0), (2, 0.0), (2, 0.8)):
        values = rng.normal(effect, 1.0, (400, tests, 10))
        fast, seeds = sequential.verdicts(values, design)
        for i in range(len(values)):
            for stage, n in enumerate(design.stages, 1):
                names = [f"d{j}" for j in range(tests)]
                row = {
                    "differences": {
                        name: stats.describe(values[i, j, :n]) for j, name in enumerate(names)
                    },
                    "tests": [{"difference": name, "sign": +1} for name in names],
                    "boundary": 0.0,
                }
                judged, done = sequential.judge(row, stage, design)
                if done:
                    break
            assert (code[judged["verdict"]], n) == (fast[i], seeds[i])


def _independent_false_verdicts(rows, stages, level, studies, seed):
    """Whether any of `rows` (tested differences per row) gives a decisive verdict at any stage,
    per simulated scorecard with no effect, from scipy's one-sample t-test: its own code."""
    rng = np.random.default_rng(seed)
    any_false = np.zeros(studies, bool)
    for tests in rows:
        values = rng.standard_normal((studies, tests, stages[-1]))
        decisive = np.zeros(studies, bool)
        for n, a in zip(stages, level, strict=True):
            t, p = scipy_stats.ttest_1samp(values[..., :n], 0.0, axis=-1)
            supported, against = (p < a) & (t > 0), (p < a) & (t < 0)
            decisive |= against.any(-1) | supported.all(-1)
        any_false |= decisive
    return any_false.mean()


def test_stated_error_rates_match_an_independent_simulation():
    """Over 10^6 studies, each stated rate (a row, a two-difference row, a part of two rows, a
    12-row scorecard, the earlier 95 % look) within 4 Monte Carlo SEs of scipy's t-tests on
    2^18 fresh studies; one row's rate is α, and the family's is far above it."""
    design = sequential.Design((3, 6, 10), 0.05)
    rows = (2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2)
    errors = sequential.error_rates(design, rows)
    assert errors["studies"] >= 10**6
    level = (design.nominal_alpha,) * 3
    cases = {
        "row": ((1,), level),
        "two_difference_row": ((2,), level),
        "part": ((1, 1), level),
        "scorecard": (rows, level),
        "earlier": ((1,), (0.05, *level[1:])),
    }
    for seed, (key, (family, levels)) in enumerate(cases.items()):
        independent = _independent_false_verdicts(family, design.stages, levels, 2**18, seed)
        se = np.hypot(errors[key]["se"], np.sqrt(independent * (1 - independent) / 2**18))
        assert abs(errors[key]["rate"] - independent) < 4 * se, key
    assert abs(errors["row"]["rate"] - 0.05) < 3 * errors["row"]["se"]  # calibrated per row
    assert errors["scorecard"]["rate"] > 0.3
    assert errors["earlier"]["rate"] > 0.07


def test_power_and_early_stopping_at_a_stated_effect():
    design = sequential.Design((3, 6, 10))
    null = sequential.power(design, 0.0, 2**16, seed=3)
    assert null["mean_seeds"] > 9.5  # with no effect almost every study uses all 10 seeds
    strong = sequential.power(design, 1.5, 2**16, seed=7)
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
    context = judged["differences"]["context"]  # shown beside, at the row's level too
    assert context["interval"] == pytest.approx(stats.interval(context, confidence))
    assert "detectable" not in context and tested["leans"] == "against"
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


def test_a_scorecard_with_no_measured_rows_states_no_false_verdicts():
    """A run stopped at its budget before any part finished still states its design: a scorecard
    of no rows has a family rate of exactly 0 (the run that hit this crashed at its last step)."""
    errors = sequential.error_rates(sequential.Design((3,)), (), studies=2**10)
    assert errors["rows"] == 0 and errors["scorecard"] == {"rate": 0.0, "se": 0.0}
    assert 0 < errors["row"]["rate"] < 1
