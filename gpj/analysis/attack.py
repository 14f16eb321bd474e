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
            row[key] = {**stats.describe(values), "draws": values}
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


def region_effects(runs) -> list:
    """Per N, the region-specific attack against random channels (means over seeds).

    With a = Δ mIoU(left) − Δ mIoU(right) (changes from the clean model), the attack on the
    "left" channels is side-specific when it lowers the left mIoU and its a lies more than two
    standard deviations below the a of random channel sets of the same size (pooled over draws
    and seeds); the "right" attack likewise above. Both must hold for `appeared`.
    """
    effects = []
    for i, n in enumerate(runs[0]["sizes"]):

        def delta(run, curve, region, i=i):
            return (
                run["curves"][curve][i][f"miou_{region}"] - run["curves"]["clean"][f"miou_{region}"]
            )

        row = {"n": n}
        for attack_name in ("left", "right"):
            for region in ("left", "right"):
                row[f"{attack_name}_attack_{region}"] = float(
                    np.mean([delta(r, attack_name, region) for r in runs])
                )
        random_a = []
        for r in runs:
            draws = r["curves"]["random"][i]
            clean = r["curves"]["clean"]
            for left, right in zip(
                draws["miou_left"]["draws"], draws["miou_right"]["draws"], strict=True
            ):
                random_a.append(left - clean["miou_left"] - (right - clean["miou_right"]))
        random = stats.describe(random_a)
        left_a = row["left_attack_left"] - row["left_attack_right"]
        right_a = row["right_attack_left"] - row["right_attack_right"]
        row.update(
            random_asymmetry=random["mean"],
            random_asymmetry_std=random["std"],
            appeared=bool(
                row["left_attack_left"] < 0
                and row["right_attack_right"] < 0
                and left_a < random["mean"] - 2 * random["std"]
                and right_a > random["mean"] + 2 * random["std"]
            ),
        )
        effects.append(row)
    return effects


def _value(v) -> float:
    return v["mean"] if isinstance(v, dict) else v
