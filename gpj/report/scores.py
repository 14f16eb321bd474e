"""Renderings of per-channel position scores: top-channel table, tuning maps, histograms."""

import matplotlib.pyplot as plt
import numpy as np

from gpj.report.common import markdown_table, save_figure


def score_table(scores: dict, top: int = 8) -> str:
    """The `top` channels by flip_abs with their other scores (η² and cell on grids only)."""
    order = scores["rank_flip_abs"][:top]
    grid = "eta2" in scores
    header = ["rank", "channel", "flip_abs", "flip_signed"] + (
        ["η²", "preferred cell"] if grid else []
    )
    rows = []
    for i, d in enumerate(order):
        row = [i + 1, d, f"{scores['flip_abs'][d]:.4f}", f"{scores['flip_signed'][d]:+.4f}"]
        if grid:
            row += [f"{scores['eta2'][d]:.3f}", scores["preferred_cell"][d]]
        rows.append(row)
    return markdown_table(header, rows)


def tuning_maps_figure(named_scores: dict, workdir: str, name: str, top: int = 8) -> str:
    """Per model (a row): the G×G mean-activation maps of its `top` channels by flip_abs."""
    fig, axes = plt.subplots(
        len(named_scores), top, figsize=(1.6 * top, 2.1 * len(named_scores)), squeeze=False
    )
    for row, (label, scores) in zip(axes, named_scores.items(), strict=True):
        maps = np.asarray(scores["cell_mean"])
        for ax, d in zip(row, scores["rank_flip_abs"][:top], strict=False):
            ax.imshow(maps[..., d], cmap="magma")
            ax.set_title(f"ch {d}, η² {scores['eta2'][d]:.2f}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(label, fontsize=8)
    fig.suptitle("mean activation per grid cell of the top channels by flip_abs", fontsize=9)
    return save_figure(fig, workdir, name)


def histogram_figure(named_scores: dict, workdir: str, name: str) -> str:
    """Histograms of flip_abs and flip_signed over the channels, one model per line."""
    fig, (ax_abs, ax_signed) = plt.subplots(1, 2, figsize=(10, 3.2))
    for label, scores in named_scores.items():
        ax_abs.hist(scores["flip_abs"], bins=30, histtype="step", label=label)
        ax_signed.hist(scores["flip_signed"], bins=30, histtype="step", label=label)
    ax_abs.set(xlabel="flip_abs = mean |z(x) − z(flip x)|", ylabel="channels")
    ax_signed.set(xlabel="flip_signed = mean z(x) − z(flip x)", ylabel="channels")
    ax_abs.legend(fontsize=7)
    return save_figure(fig, workdir, name)
