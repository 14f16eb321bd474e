"""Renderings of per-channel position scores: top-channel table, tuning maps, histograms."""

import matplotlib.pyplot as plt
import numpy as np

from gpj.report.common import colours, legend_below, markdown_table, save_figure, styled


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


CAPTIONS = {
    "tuning_maps": (
        "Mean GAP activation at each cell of the {g}×{g} canvas grid of the top {top} channels "
        "by flip_abs, one row per model (its first seed), each map with its own colour scale; "
        "η² is the share of the channel's variance the cell explains."
    ),
    "histograms": (
        "How the GAP channels' flip scores are distributed, one colour per model (its first "
        "seed): flip_abs (left) measures how much a channel changes when the image is flipped, "
        "flip_signed (right) on which side it fires more."
    ),
}


def tuning_maps_figure(named_scores: dict, workdir: str, name: str, top: int = 8) -> str:
    """Saves `tuning_maps(named_scores, top)` as `name` (and its SVG), with its caption."""
    grid = np.asarray(next(iter(named_scores.values()))["cell_mean"]).shape[0]
    caption = CAPTIONS["tuning_maps"].format(g=grid, top=top)
    return save_figure(tuning_maps(named_scores, top), workdir, name, caption)


@styled
def tuning_maps(named_scores: dict, top: int = 8):
    """Per model (a row, titled with its name): the G×G mean-activation maps of its `top`
    channels by flip_abs, each with its colour bar."""
    fig = plt.figure(
        figsize=(1.45 * top + 0.6, 2.0 * len(named_scores) + 0.6), layout="constrained"
    )
    rows = fig.subfigures(len(named_scores), 1, squeeze=False)[:, 0]
    for sub, (label, scores) in zip(rows, named_scores.items(), strict=True):
        maps = np.asarray(scores["cell_mean"])
        g = maps.shape[0]
        channels = scores["rank_flip_abs"][:top]
        axes = sub.subplots(1, top)
        for ax, d in zip(axes, channels, strict=False):
            image = ax.imshow(maps[..., d], cmap="magma")
            ax.set_title(f"channel {d}\nη² = {scores['eta2'][d]:.2f}", fontsize=8)
            ax.set_xticks(range(g), [str(k + 1) for k in range(g)], fontsize=7)
            ax.set_yticks(range(g), [str(k + 1) for k in range(g)], fontsize=7)
            ax.set_xlabel("column", fontsize=7)
            ax.set_ylabel("row", fontsize=7)
            bar = sub.colorbar(image, ax=ax, shrink=0.75, aspect=12)
            bar.ax.tick_params(labelsize=6)
        for ax in axes[len(channels) :]:
            sub.delaxes(ax)
        sub.suptitle(f"{label}: mean activation (a.u.) per grid cell", fontsize=9)
    fig.suptitle(f"The top {top} GAP channels by flip_abs, by model (rows)")
    return fig


def histogram_figure(named_scores: dict, workdir: str, name: str) -> str:
    """Saves `histograms(named_scores)` as `name` (and its SVG), with its caption."""
    return save_figure(histograms(named_scores), workdir, name, CAPTIONS["histograms"])


@styled
def histograms(named_scores: dict):
    """Histograms of flip_abs and flip_signed over the channels, one colour per model."""
    fig, (ax_abs, ax_signed) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    palette = colours(named_scores)
    for label, scores in named_scores.items():
        for ax, key in ((ax_abs, "flip_abs"), (ax_signed, "flip_signed")):
            ax.hist(
                scores[key], bins=30, histtype="step", lw=1.5, color=palette[label], label=label
            )
    ax_abs.set(
        title="flip_abs: how much a channel changes under a flip",
        xlabel="mean |z(x) − z(flip x)| (activation units)",
        ylabel="channels (count)",
    )
    ax_signed.set(
        title="flip_signed: which side a channel prefers",
        xlabel="mean z(x) − z(flip x) (activation units)",
        ylabel="channels (count)",
    )
    ax_signed.axvline(0, color="0.5", lw=0.8)
    fig.suptitle("Flip scores of the GAP channels, by model (colour)")
    legend_below(fig, columns=3)
    return fig
