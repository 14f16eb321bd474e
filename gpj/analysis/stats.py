"""Summary statistics of repeated measurements: mean, sample std and a 95 % t-interval.

Every experiment and report summarises seeds and random draws through `describe`, so a mean
never appears without its n, its spread and its interval.
"""

from collections.abc import Sequence

import numpy as np
from scipy import special


def describe(values: Sequence[float], confidence: float = 0.95) -> dict:
    """{"mean", "std", "n", "ci95", "values"} of `values`.

    `values` are the measurements themselves (a report shows them beside the mean when there are
    only a few). `std` is the sample standard deviation (ddof=1; 0 for a single value). `ci95` is the
    two-sided Student-t interval of the mean with n - 1 degrees of freedom, `[low, high]`, or
    None for a single value (one measurement has no interval).
    """
    values = np.asarray(values, np.float64)
    n = len(values)
    if n == 0:
        raise ValueError("describe() needs at least one value")
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else 0.0
    described = {"mean": mean, "std": std, "n": n}
    return {**described, "ci95": interval(described, confidence), "values": values.tolist()}


def interval(described: dict, confidence: float) -> list | None:
    """The two-sided Student-t interval `[low, high]` of a `describe`d mean at `confidence`
    (n − 1 degrees of freedom), or None for a single value."""
    n = described["n"]
    if n < 2:
        return None
    # stdtrit: the Student-t quantile (scipy.stats.t.ppf, without importing scipy.stats).
    half = float(special.stdtrit(n - 1, 0.5 + confidence / 2)) * described["std"] / np.sqrt(n)
    return [described["mean"] - half, described["mean"] + half]


def summarise(rows: Sequence[dict], group_by: Sequence[str], metrics: Sequence[str]) -> list:
    """Per group of rows with equal `group_by` fields (in first-seen order): those fields, n, and
    `describe` of every metric."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in group_by), []).append(row)
    return [
        {
            **dict(zip(group_by, key, strict=True)),
            "n": len(members),
            **{m: describe([r[m] for r in members]) for m in metrics},
        }
        for key, members in groups.items()
    ]


def paired(rows: Sequence[dict], label: str, a, b, metric: str, pair_by: str = "seed") -> dict:
    """`metric` of the rows whose `label` is `a` minus that of the rows whose `label` is `b`,
    paired by `pair_by` (the pairs both have): {label: [a, b], "metric", "pairs"} and the fields
    of `describe` over the pairs' differences.

    Raises:
      ValueError: no `pair_by` value has both an `a` and a `b` row.
    """
    values = {}
    for row in rows:
        if row[label] in (a, b):
            values.setdefault(row[pair_by], {})[row[label]] = row[metric]
    pairs = sorted(k for k, v in values.items() if len(v) == 2)
    if not pairs:
        raise ValueError(f"no {pair_by} has both {label}={a!r} and {label}={b!r}")
    differences = [values[k][a] - values[k][b] for k in pairs]
    return {label: [a, b], "metric": metric, "pairs": pairs, **describe(differences)}
