"""The invariance experiment's report: accuracy, shift consistency and position left in the latent."""

import matplotlib.pyplot as plt
import numpy as np

from gpj.analysis import stats
from gpj.report.common import (
    chance_line,
    colours,
    curves_figure,
    document,
    interval_note,
    interval_percent,
    legend_below,
    markdown_table,
    pct,
    pct_ci,
    pct_difference,
    save_figure,
    styled,
)

COLUMNS = (
    ("centred_accuracy", "centred acc."),
    ("shifted_accuracy", "shifted acc."),
    ("consistency", "consistency"),
    ("position_probe_accuracy", "position probe"),
)


def table(results: dict) -> str:
    """Rows: variants; columns: each metric's mean and 95 % t-interval in %; then the paired
    comparisons."""
    rows = [
        [s["variant"]] + [pct_ci(s[key]) for key, _ in COLUMNS] + [pct(s["position_probe_chance"])]
        for s in results["summary"]
    ]
    header = ["variant", *(title for _, title in COLUMNS), "probe chance"]
    n = max(s["n"] for s in results["summary"])
    return (
        markdown_table(header, rows) + f"\n\nIn %, {interval_note(n)}. Shifted accuracy: mean over "
        "every offset of the shift grid. Consistency: how often two random shifts of a test image "
        "get the same class. Position probe: a linear read-out of the offset cell from the frozen "
        "global-pooled latent (chance: the most frequent cell)." + comparisons_table(results)
    )


def comparisons_table(results: dict) -> str:
    """Paired-by-seed differences in consistency, with their 95 % t-intervals."""
    rows = []
    for c in results.get("comparisons", []):
        a, b = c["variant"]
        low, high = c["ci95"]
        verdict = "higher" if low > 0 else "lower" if high < 0 else "no difference shown"
        rows.append(
            [
                f"{a} − {b}",
                c["n"],
                pct_difference(c),
                verdict,
            ]
        )
    if not rows:
        return ""
    header = ["consistency, paired by seed", "n", "difference, points [95 % t-interval]", "reads"]
    return (
        "\n\n"
        + markdown_table(header, rows)
        + "\n\n*reads*: the first variant is higher (or lower) when the whole interval lies above "
        "(or below) zero; otherwise these seeds do not show a difference."
    )


def markdown(results: dict, figures) -> str:
    c, d = results["config"], results["dataset"]
    s, m = c["shift"], c["model"]
    settings = (
        f"Data: `{d['name']}`, {d['num_train']} train / {d['num_test']} test images, shifted by up "
        f"to {s['max_shift']} px in each direction ({s['mode']} mode; model input "
        f"{d['input'][0]}×{d['input'][1]}). Model: `{m['name']}` (width {m['width']}, "
        f"`{m['stem']}` stem, `{m['padding']}` padding) with a linear head on the global-pooled "
        f"latent; AugShift weight {c['augshift']['weight']}, BlurPool filter "
        f"{c['blurpool']['filter_size']}; {c['train']['num_epochs']} epochs, batch "
        f"{c['train']['batch_size']}, {c['optim']['name']} lr {c['optim']['learning_rate']}. "
        f"Consistency over {c['evals']['shift']['consistency_pairs']} seeded pairs of shifts per test image; "
        f"shift grid step {c['evals']['shift']['step']} px ({len(results['shift_grid'])} offsets)."
    )
    runs = [
        [r["variant"], r["seed"]]
        + [pct(r[key]) for key, _ in COLUMNS]
        + [f"{r['train_time_s']:.0f} s", f"{r['eval_time_s']:.1f} s"]
        for r in results["runs"]
    ]
    header = ["variant", "seed", *(t for _, t in COLUMNS), "train (incl. compile)", "eval"]
    return document(
        "Translation invariance: baseline, AugShift, BlurPool",
        settings,
        table(results),
        markdown_table(header, runs),
        figures,
        results,
    )


CAPTIONS = {
    "accuracy_vs_shift.png": (
        "Test accuracy (%) against a horizontal (left) or vertical (right) shift of the image "
        "by up to {m} px, the other axis centred, one colour per variant: the mean over {n} "
        "seed(s) with its 95 % t-interval (band); dashed: chance (1/{classes} classes)."
    ),
    "training_curves.png": (
        "Training cross-entropy and accuracy, and the held-out curves where logged, against "
        "training step, one colour per variant: the mean over the {n} seed(s) still training at "
        "that step (line) and their range (band); dashed: chance (1/{classes} classes)."
    ),
}


def _chance(results) -> float:
    """Chance accuracy: 1/classes."""
    return results.get("chance", {}).get("object", 1 / results["dataset"]["num_classes"])


def _caption(results, name) -> str:
    n = sorted({s["n"] for s in results["summary"]})
    return CAPTIONS[name].format(
        m=results["config"]["shift"]["max_shift"],
        n="–".join(map(str, sorted({n[0], n[-1]}))),
        classes=round(1 / _chance(results)),
    )


def figures(results, workdir) -> list:
    return [
        save_figure(
            shift(results),
            workdir,
            "accuracy_vs_shift.png",
            _caption(results, "accuracy_vs_shift.png"),
        ),
        curves_figure(
            results,
            workdir,
            lambda r: r["variant"],
            chance=_chance(results),
            title="Training curves by variant (colour)",
            caption=_caption(results, "training_curves.png"),
        ),
    ]


@styled
def shift(results):
    """Test accuracy against horizontal and vertical shift (the other axis centred), per
    variant: the mean over seeds and its 95 % t-interval."""
    grid = np.asarray(results["shift_grid"])
    m = results["config"]["shift"]["max_shift"]
    groups = {}
    for r in results["runs"]:
        groups.setdefault(r["variant"], []).append(r["accuracy_per_offset"])
    palette = colours(groups)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0), sharey=True, layout="constrained")
    for axis, (ax, name) in enumerate(zip(axes, ("horizontal", "vertical"), strict=True)):
        line = grid[:, 1 - axis] == m  # the other coordinate centred
        shifts = grid[line, axis] - m
        for variant, accs in groups.items():
            accs = np.asarray(accs)[:, line]
            mean, low, high = np.transpose([interval_percent(stats.describe(a)) for a in accs.T])
            ax.plot(shifts, mean, marker="o", color=palette[variant], label=variant)
            ax.fill_between(shifts, low, high, color=palette[variant], alpha=0.2)
        chance_line(ax, _chance(results))
        ax.set(
            title=f"{name} shift ({'vertical' if axis == 0 else 'horizontal'} centred)",
            xlabel=f"{name} shift (px)",
            ylabel="test accuracy (%)",
            ylim=(0, 102),
        )
        ax.yaxis.set_tick_params(labelleft=True)
    n = max(len(a) for a in groups.values())
    fig.suptitle(
        f"Test accuracy against shift, by variant (mean ± 95 % t-interval over {n} seed(s))"
    )
    legend_below(fig, columns=6)
    return fig
