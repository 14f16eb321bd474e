"""Channel attacks: a metric with the top-N ranked channels ablated, beside N random channels.

`evaluate(channels)` is any function returning a dict of metrics for the model with those
channel indices ablated (zeroed or mean-filled by the caller); one compiled evaluation step
serves every channel set, since the ablation is a mask.
"""

from collections.abc import Callable, Sequence

import jax
import numpy as np
import tqdm

from gpj.analysis import stats

Evaluate = Callable[[np.ndarray], dict]


def random_channels(num_channels: int, n: int, seed: int, draw: int) -> np.ndarray:
    """Draw `draw` of n distinct channels, a function of (seed, n, draw) only."""
    return np.random.default_rng([seed, n, draw]).choice(num_channels, n, replace=False)


def ranked_curve(evaluate: Evaluate, ranking: np.ndarray, sizes: Sequence[int]) -> list:
    """[{"n", metrics...}] with the first n channels of `ranking` ablated, for each n."""
    return [{"n": int(n), **evaluate(np.asarray(ranking[:n]))} for n in sizes]


def random_curve(
    evaluate: Evaluate, num_channels: int, sizes: Sequence[int], num_draws: int, seed: int
) -> list:
    """[{"n", metric: {"mean", "std", "n", "ci95", "draws"}}] over `num_draws` random sets of n
    channels (`stats.describe` of the draws, and the draws)."""
    curve = []
    for n in sizes:
        draws = [evaluate(random_channels(num_channels, n, seed, d)) for d in range(num_draws)]
        row = {"n": int(n)}
        for key in draws[0]:
            values = [d[key] for d in draws]
            row[key] = stats.describe(values)
            row[key]["draws"] = row[key].pop("values")
        curve.append(row)
    return curve


def attack_curves(
    evaluate: Evaluate,
    rankings: dict,
    *,
    num_channels: int,
    sizes: Sequence[int],
    num_draws: int,
    seed: int,
    desc: str = "attack",
) -> dict:
    """The clean metrics, a curve per ranking (e.g. overall, left, right) and the random curve.

    Args:
      evaluate: channel indices -> metrics of the model with them ablated.
      rankings: name -> channel indices in attack order.
      num_channels: channels at the ablated output.
      sizes: the numbers of channels N to ablate.
      num_draws: random channel sets per N.
      seed: seed of the random sets.
      desc: progress bar label.
    """
    total = 1 + len(sizes) * (len(rankings) + num_draws)
    bar = tqdm.tqdm(
        total=total, desc=desc, leave=False, dynamic_ncols=True, disable=jax.process_index() != 0
    )
    with bar:

        def counted(channels):
            metrics = evaluate(channels)
            bar.update(1)
            return metrics

        curves = {"clean": counted(np.zeros(0, np.int64))}
        for name, ranking in rankings.items():
            curves[name] = ranked_curve(counted, ranking, sizes)
        curves["random"] = random_curve(counted, num_channels, sizes, num_draws, seed)
    return curves


def summarise(runs) -> list:
    """Per model, curve, N and metric: `stats.describe` over seeds (random curves: of the draw
    means, with the mean std of the draws)."""
    groups = {}
    for r in runs:
        groups.setdefault(r["model"], []).append(r)
    summary = []
    for model, rs in groups.items():
        for curve in rs[0]["curves"]:
            rows = [r["curves"][curve] for r in rs]
            if curve == "clean":
                rows = [[row] for row in rows]
            for i, row in enumerate(rows[0]):
                entry = {"model": model, "curve": curve, "n": row.get("n", 0), "seeds": len(rs)}
                for key in row:
                    if key == "n":
                        continue
                    entry[key] = stats.describe([_value(rr[i][key]) for rr in rows])
                    if curve == "random":
                        entry[key]["draw_std"] = float(np.mean([rr[i][key]["std"] for rr in rows]))
                summary.append(entry)
    return summary


def effects(runs) -> list:
    """The segmentation attacks' effects beside random channels, per model and N, with the seed
    (one trained model) as the unit: `stats.describe` over seeds, so intervals are Student-t
    with n − 1 degrees of freedom. For each seed, a ranked attack is compared with the mean of
    its random channel sets of the same N:

    - `overall_vs_random`: mIoU (whole image) under the top-N overall channels minus random;
    - `side_confusion`: the k-left <-> k-right confusion rate clean, under the overall attack and
      under random channels, and overall minus random (position-needed data only);
    - `<ranking>_excess` for the side rankings (left, right; sym_left, sym_right on the symmetric
      set): its asymmetry (mIoU left − mIoU right) minus that of the random sets;
    - `<prefix>side_specific`: the left attack's excess interval lies wholly below 0 and the
      right's wholly above (None with one seed: no interval, no decision).
    """
    groups = {}
    for r in runs:
        if "miou_all" in r.get("curves", {}).get("clean", {}):
            groups.setdefault(r["model"], []).append(r)
    rows = []
    for model, rs in groups.items():
        for i, n in enumerate(rs[0]["sizes"]):

            def versus_random(curve, metric, rs=rs, i=i):
                return stats.describe(
                    [r["curves"][curve][i][metric] - _random_mean(r, i, metric) for r in rs]
                )

            row = {"model": model, "n": n, "seeds": len(rs)}
            row["overall_vs_random"] = versus_random("overall", "miou_all")
            if "side_confusion" in rs[0]["curves"]["clean"]:
                row["side_confusion"] = {
                    "clean": stats.describe([r["curves"]["clean"]["side_confusion"] for r in rs]),
                    "overall": stats.describe(
                        [r["curves"]["overall"][i]["side_confusion"] for r in rs]
                    ),
                    "random": stats.describe([_random_mean(r, i, "side_confusion") for r in rs]),
                    "overall_vs_random": versus_random("overall", "side_confusion"),
                }
            for prefix in ("", "sym_"):
                if f"{prefix}left" not in rs[0]["curves"]:
                    continue
                for side in ("left", "right"):
                    row[f"{prefix}{side}_excess"] = stats.describe(
                        [
                            _asymmetry(r["curves"][prefix + side][i]) - _random_asymmetry(r, i)
                            for r in rs
                        ]
                    )
                left, right = row[f"{prefix}left_excess"], row[f"{prefix}right_excess"]
                row[f"{prefix}side_specific"] = (
                    None
                    if left["ci95"] is None
                    else bool(left["ci95"][1] < 0 and right["ci95"][0] > 0)
                )
            rows.append(row)
    return rows


def _asymmetry(metrics) -> float:
    return metrics["miou_left"] - metrics["miou_right"]


def _random_mean(run, i, metric) -> float:
    return float(np.mean(run["curves"]["random"][i][metric]["draws"]))


def _random_asymmetry(run, i) -> float:
    draws = run["curves"]["random"][i]
    return float(np.mean(draws["miou_left"]["draws"]) - np.mean(draws["miou_right"]["draws"]))


def _value(v) -> float:
    return v["mean"] if isinstance(v, dict) else v
