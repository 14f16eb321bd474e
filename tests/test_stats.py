"""Summaries over seeds: the mean, sample standard deviation and t-interval of `describe`, and
paired differences, checked against scipy."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gpj.analysis import stats


@pytest.mark.parametrize("values", [[0.5, 0.7, 0.9], [1.0, 2.0], [3.0, 3.0, 3.0, 3.0]])
def test_describe_gives_mean_sample_std_and_the_t_interval(values):
    d = stats.describe(values)
    assert d["n"] == len(values) and d["mean"] == pytest.approx(np.mean(values))
    assert d["std"] == pytest.approx(np.std(values, ddof=1))
    low, high = (
        scipy_stats.t.interval(
            0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values)
        )
        if np.std(values)
        else (np.mean(values), np.mean(values))
    )
    assert d["ci95"] == pytest.approx([low, high])


def test_one_value_has_no_interval_and_no_value_is_an_error():
    assert stats.describe([0.25]) == {
        "mean": 0.25,
        "std": 0.0,
        "n": 1,
        "ci95": None,
        "values": [0.25],
    }
    with pytest.raises(ValueError):
        stats.describe([])


def test_summarise_groups_rows_in_first_seen_order():
    rows = [{"k": "b", "m": 1.0}, {"k": "a", "m": 2.0}, {"k": "b", "m": 3.0}]
    summary = stats.summarise(rows, ("k",), ("m",))
    assert [(s["k"], s["n"], s["m"]["mean"]) for s in summary] == [("b", 2, 2.0), ("a", 1, 2.0)]


def test_paired_differences_match_scipys_paired_t_test():
    a = {0: 0.61, 1: 0.70, 2: 0.66, 3: 0.59, 4: 0.72}
    b = {0: 0.58, 1: 0.69, 2: 0.60, 3: 0.60, 4: 0.65, 5: 0.9}  # seed 5 has no pair: left out
    rows = [{"variant": "a", "seed": k, "m": v} for k, v in a.items()]
    rows += [{"variant": "b", "seed": k, "m": v} for k, v in reversed(b.items())]
    d = stats.paired(rows, "variant", "a", "b", "m")
    assert d["pairs"] == [0, 1, 2, 3, 4] and d["n"] == 5 and d["variant"] == ["a", "b"]
    test = scipy_stats.ttest_rel(list(a.values()), [b[k] for k in a])
    interval = test.confidence_interval(0.95)
    assert d["mean"] == pytest.approx(np.mean([a[k] - b[k] for k in a]))
    assert d["ci95"] == pytest.approx([interval.low, interval.high])
    with pytest.raises(ValueError, match="no seed has both"):
        stats.paired(rows, "variant", "a", "c", "m")
