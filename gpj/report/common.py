"""Pieces every report uses: atomic JSON, markdown tables, percentages, figures."""

import functools
import json
import os

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on servers and in CI
import matplotlib.pyplot as plt
import numpy as np


def write_json(data, path: str) -> None:
    """Atomic write: a reader never sees half a file."""
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(path + ".tmp", path)


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(results: dict, leave_out=()) -> str:
    """Benchmark results ({benchmark: {metric: value}}) as markdown: one table per benchmark,
    headed by its name, a row per metric (but those in `leave_out`)."""

    def value(v):
        if isinstance(v, str) and ("<" in v or "|" in v):  # not read as HTML or as a new cell
            return "`" + v.replace("|", "\\|") + "`"
        if not isinstance(v, float):
            return v
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"

    return "\n\n".join(
        markdown_table(
            [f"`{name}`", "value"],
            [[f"`{key}`", value(v)] for key, v in metrics.items() if key not in leave_out],
        )
        for name, metrics in results.items()
    )


RATE, DIFFERENCE = (0.0, 1.0), (-1.0, 1.0)  # the ranges of a fraction and of a difference of two
FEW_SEEDS = 3  # an interval from this many seeds or fewer is shown with the seeds' values


def pct(mean) -> str:
    """A fraction as a percentage, to one decimal."""
    return f"{100 * mean:.1f}"


def pct_ci(described: dict, key: str = "ci95", bounds=RATE, signed: bool = False) -> str:
    """A `stats.describe` summary of fractions in %: the mean and its interval (`key`; none for
    one seed), each end clipped to `bounds` (the metric's range: 0–100 % for a fraction, ±100
    points for a difference) and marked ‡ where clipped; with 2 to `FEW_SEEDS` values, the values
    themselves beside it. `signed` writes a difference's sign."""
    form = "+.1f" if signed else ".1f"
    text = f"{100 * described['mean']:{form}}"
    if described.get(key):
        low, high = (_clipped(end, bounds, form) for end in described[key])
        text += f" [{low}, {high}]"
    values = described.get("values") or ()
    if 1 < len(values) <= FEW_SEEDS:
        text += " (seeds: " + ", ".join(f"{100 * v:{form}}" for v in values) + ")"
    return text


def pct_difference(described: dict, key: str = "ci95") -> str:
    """`pct_ci` of a difference of fractions, in signed points."""
    return pct_ci(described, key, DIFFERENCE, signed=True)


def _clipped(end: float, bounds, form: str) -> str:
    inside = min(max(end, bounds[0]), bounds[1])
    return f"{100 * inside:{form}}" + ("‡" if inside != end else "")


# Every figure is drawn in this style (`styled`), sized for a page: a figure 10 in wide prints
# at page width with 9–10 pt text.
STYLE = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 11,
    "legend.frameon": False,
}
DPI = 150  # the PNG's resolution; the SVG twin is the vector original
CHANCE_STYLE = {"color": "0.35", "linestyle": "--", "linewidth": 1.2, "zorder": 1}


class FigureFile(str):
    """A figure's file name (what `save_figure` returns), carrying its one-sentence caption."""

    caption: str | None = None


def styled(draw):
    """Decorates a function that builds a matplotlib Figure: it draws in `STYLE`."""

    @functools.wraps(draw)
    def wrapped(*args, **kwargs):
        with plt.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapped


def vector_twin(name: str) -> str:
    """The vector file written beside the PNG `name`: `<stem>.svg`."""
    return os.path.splitext(name)[0] + ".svg"


def save_figure(fig, workdir: str, name: str, caption: str | None = None) -> str:
    """Writes `fig` as `name` (PNG, `DPI`) and its vector twin `<stem>.svg` beside it, closes it,
    and returns `name` (a `FigureFile`, with `caption` for the report to show under it). Both
    files are cropped to what is drawn (a legend outside the axes included) and byte-stable:
    the SVG has no date and fixed element ids."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    with plt.rc_context({"svg.hashsalt": "gpj", "svg.fonttype": "path"}):
        fig.savefig(os.path.join(workdir, name), dpi=DPI, bbox_inches="tight")
        fig.savefig(
            os.path.join(workdir, vector_twin(name)), bbox_inches="tight", metadata={"Date": None}
        )
    plt.close(fig)
    saved = FigureFile(name)
    saved.caption = caption
    return saved


def colours(labels) -> dict:
    """One distinguishable colour per label (first-seen order), never grey (grey draws chance,
    references and backgrounds) and never repeated: the 10-colour cycle for up to 9 labels,
    tab20 for up to 18, evenly spaced hues beyond."""
    labels = list(dict.fromkeys(labels))
    if len(labels) <= 9:
        palette = [f"C{i}" for i in range(10) if i != 7]
    elif len(labels) <= 18:
        palette = [plt.get_cmap("tab20")(i) for i in range(20) if i not in (14, 15)]
    else:
        palette = [plt.get_cmap("turbo")(x) for x in np.linspace(0.05, 0.95, len(labels))]
    return dict(zip(labels, palette[: len(labels)], strict=True))


def chance_line(ax, chance: float | None) -> None:
    """A dashed horizontal line labelled "chance" at `chance` (a fraction) on a % axis."""
    if chance is not None:
        ax.axhline(100 * chance, label="chance", **CHANCE_STYLE)


def interval_percent(described: dict) -> tuple:
    """(mean, low, high) in % of a `stats.describe` summary of a fraction: its 95 % t-interval
    clipped to 0–100 %, or the mean alone (low = high = mean) for one seed."""
    mean = 100 * described["mean"]
    low, high = described.get("ci95") or (described["mean"], described["mean"])
    return mean, min(max(100 * low, 0.0), 100.0), min(max(100 * high, 0.0), 100.0)


def legend_below(fig, columns: int = 4) -> None:
    """One legend for the whole figure, below its axes (off the data): every labelled artist of
    every axes, each label once, chance last."""
    handles = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if "chance" in handles:  # the reference last
        handles["chance"] = handles.pop("chance")
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncol=min(columns, len(handles)),
        )


def test_metric(run) -> str | None:
    """The test-curve metric logged in a run's history (`test_<metric>`), if any."""
    return next((k for h in run["history"] for k in h if k.startswith("test_")), None)


CURVES_CAPTION = (
    "Training loss and accuracy (and the held-out curves where logged) against training step: "
    "per run kind, the mean over its seeds still training at that step (line) and their range "
    "(band); dashed: chance."
)


def curves_figure(results, workdir, label, row=None, chance=None, title=None, caption=None):
    """Saves `curves(results, label, row, chance, title)` as training_curves.png (and .svg),
    with `caption` (default `CURVES_CAPTION`) for the report."""
    fig = curves(results, label, row, chance, title)
    return save_figure(fig, workdir, "training_curves.png", caption or CURVES_CAPTION)


def _held_out(results) -> list:
    """The held-out curves logged: the validation curve (what a plateau stop reads), the test
    curve."""
    return [
        key
        for key in ("val_accuracy", test_metric_of(results))
        if key and any(key in h for r in results["runs"] for h in r["history"])
    ]


def _metric_name(key: str) -> str:
    if key == "val_accuracy":
        return "validation accuracy (what the plateau stop reads)"
    name = key.removeprefix("test_").replace("_", " ").replace("miou", "mIoU")
    return f"test {name}"


def _groups(runs, label, row) -> dict:
    groups = {}
    for r in runs:
        groups.setdefault((row(r) if row else "", label(r)), []).append(r)
    return groups


def _spread(runs, key) -> tuple:
    """Steps, mean, min and max over the runs of `key` in their histories, at every logged step
    (each from the runs that logged it there)."""
    at = {}
    for r in runs:
        for h in r["history"]:
            if h.get(key) is not None:
                at.setdefault(h["step"], []).append(h[key])
    steps = sorted(at)
    values = [np.asarray(at[s], float) for s in steps]
    return (
        np.asarray(steps),
        np.asarray([v.mean() for v in values]),
        np.asarray([v.min() for v in values]),
        np.asarray([v.max() for v in values]),
    )


@styled
def curves(results, label, row=None, chance=None, title=None):
    """The training curves as a Figure: the training loss (cross-entropy where logged apart)
    and accuracy, the validation curve and the test curve where logged, against step; one line
    per group of runs, `label(run)` naming it (its seeds: the mean, and the range as a band),
    and one row of panels per `row(run)` (e.g. the task; default one row). `chance`: a fraction,
    or {row: fraction}, drawn on every accuracy panel."""
    held_out = _held_out(results)
    groups = _groups(results["runs"], label, row)
    rows = list(dict.fromkeys(key for key, _ in groups))
    palette = colours(name for _, name in groups)
    panels = [("ce", "train cross-entropy (nats, log scale)"), ("accuracy", "train accuracy (%)")]
    panels += [(key, f"{_metric_name(key)} (%)") for key in held_out]
    if not any("ce" in h for r in results["runs"] for h in r["history"]):
        panels[0] = ("loss", "train loss (nats, log scale)")
    fig, axes = plt.subplots(
        len(rows),
        len(panels),
        figsize=(3.4 * len(panels), 2.6 * len(rows) + 0.9),
        squeeze=False,
        layout="constrained",
    )
    for axes_row, row_name in zip(axes, rows, strict=True):
        level = chance.get(row_name) if isinstance(chance, dict) else chance
        for ax, (key, ylabel) in zip(axes_row, panels, strict=True):
            scale = 1 if key in ("ce", "loss") else 100
            for (where, name), runs in groups.items():
                if where != row_name:
                    continue
                steps, mean, low, high = _spread(runs, key)
                if not len(steps):
                    continue
                marker = "." if len(steps) < 12 else None
                ax.plot(steps, scale * mean, color=palette[name], marker=marker, label=name)
                ax.fill_between(steps, scale * low, scale * high, color=palette[name], alpha=0.2)
            if scale == 1:
                ax.set_yscale("log")
            else:
                ax.set_ylim(-2, 102)
                chance_line(ax, level)
            metric = ylabel.split(" (")[0]
            ax.set(
                xlabel="training step",
                ylabel=ylabel,
                title=f"{row_name}: {metric}" if row_name else metric,
            )
    fig.suptitle(title or "Training curves: mean over seeds (line) and their range (band)")
    legend_below(fig, columns=5)
    return fig


def test_metric_of(results) -> str | None:
    """The test-curve metric any run of `results` logged, if any."""
    return next((key for r in results["runs"] if (key := test_metric(r))), None)


def stopped(run) -> str:
    """How a run's training ended: "plateau" (before its budget), "budget" or "loaded"."""
    if run["weights"]["source"] == "earlier_workdir":
        return "loaded"
    return "plateau" if run["steps"] < run.get("budget_steps", run["steps"]) else "budget"


def figure_links(figures) -> str:
    """Markdown for the figure files `figures`: each image link on a line of its own, then, as
    its own paragraph under it, its caption in italics (where `save_figure` gave one) and a link
    to its vector twin."""
    blocks = []
    for name in figures:
        caption = getattr(name, "caption", None)
        twin = vector_twin(name)
        text = (f"*{caption}* " if caption else "") + f"([vector: {twin}]({twin}))"
        blocks.append(f"![{os.path.splitext(name)[0]}]({name})\n\n{text}")
    return "\n\n".join(blocks)


def document(title, settings, headline, runs_table, figures, results) -> str:
    """A report: title, settings, headline table, per-run table, figures, environment."""
    sections = [f"# {title}", settings, headline, "## Runs", runs_table, "## Figures"]
    sections.append(figure_links(figures))
    return "\n\n".join([*sections, environment_line(results)]) + "\n"


def environment_line(results) -> str:
    env = results["environment"]
    return (
        f"Environment: jax {env['packages']['jax']}, flax {env['packages']['flax']}, "
        f"{env['device_count']} × {env['device_kind']} ({env['platform']}), "
        f"{env['process_count']} process(es). Total wall time {results['wall_time_s']:.0f} s."
    )


def interval_note(n: int) -> str:
    if n == 1:
        return "one seed: no interval"
    return f"mean [95 % t-interval] over n = {n} seeds; {BOUNDS_NOTE}"


BOUNDS_NOTE = (
    f"an interval end beyond the metric's range is clipped to it (‡); with n ≤ {FEW_SEEDS}, "
    "each seed's value follows the interval"
)
