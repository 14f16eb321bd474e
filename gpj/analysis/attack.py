"""Channel attacks: a metric with the top-N ranked channels ablated, beside N random channels.

`evaluate(channels)` is any function returning a dict of metrics for the model with those
channel indices ablated (zeroed or mean-filled by the caller); one compiled evaluation step
serves every channel set, since the ablation is a mask.
"""

from collections.abc import Callable, Sequence

import jax
import numpy as np
import tqdm

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
    """[{"n", metric: {"mean", "std", "draws"}}] over `num_draws` random sets of n channels."""
    curve = []
    for n in sizes:
        draws = [evaluate(random_channels(num_channels, n, seed, d)) for d in range(num_draws)]
        row = {"n": int(n)}
        for key in draws[0]:
            values = [d[key] for d in draws]
            std = float(np.std(values, ddof=1)) if num_draws > 1 else 0.0
            row[key] = {"mean": float(np.mean(values)), "std": std, "draws": values}
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
