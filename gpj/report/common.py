"""Pieces every report uses: atomic JSON, markdown tables, percentages, figures."""

import json
import os

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on servers and in CI
import matplotlib.pyplot as plt


def write_json(data, path: str) -> None:
    """Atomic write: a reader never sees half a file."""
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(path + ".tmp", path)


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(results: dict) -> str:
    """Benchmark results ({benchmark: {metric: value}}) as one markdown table."""

    def value(v):
        if not isinstance(v, float):
            return v
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"

    rows = [
        [name, key, value(v)] for name, metrics in results.items() for key, v in metrics.items()
    ]
    return markdown_table(["benchmark", "metric", "value"], rows)


def pct(mean, std=None) -> str:
    """A fraction as a percentage, with ± std when given."""
    return f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def pct_ci(described: dict) -> str:
    """A `stats.describe` summary in %: the mean and its 95 % t-interval, or the mean alone when
    there is no interval (one seed)."""
    low_high = described.get("ci95")
    if not low_high:
        return pct(described["mean"])
    return f"{pct(described['mean'])} [{100 * low_high[0]:.1f}, {100 * low_high[1]:.1f}]"


def save_figure(fig, workdir: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, name), dpi=100)
    plt.close(fig)
    return name


def test_metric(run) -> str | None:
    """The test-curve metric logged in a run's history (`test_<metric>`), if any."""
    return next((k for h in run["history"] for k in h if k.startswith("test_")), None)


def curves_figure(results, workdir, label) -> str:
    """Training loss and accuracy, and the validation curve (what a plateau stop reads) and the
    test curve where logged, against step for every run; `label(run)` names a line."""
    held_out = [
        key
        for key in ("val_accuracy", test_metric_of(results))
        if key and any(key in h for r in results["runs"] for h in r["history"])
    ]
    panels = 2 + len(held_out)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6))
    for r in results["runs"]:
        steps = [h["step"] for h in r["history"]]
        axes[0].plot(steps, [h["loss"] for h in r["history"]], label=label(r))
        axes[1].plot(steps, [h["accuracy"] for h in r["history"]], label=label(r))
        for ax, key in zip(axes[2:], held_out, strict=True):
            points = [(h["step"], h[key]) for h in r["history"] if key in h]
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", label=label(r))
    for ax, key in zip(axes[2:], held_out, strict=True):
        name = "validation accuracy (stopping rule)" if key == "val_accuracy" else key
        ax.set(xlabel="step", ylabel=name.replace("_", " "), ylim=(0, 1))
    axes[0].set(xlabel="step", ylabel="train loss", yscale="log")
    axes[1].set(xlabel="step", ylabel="train accuracy", ylim=(0, 1))
    axes[-1].legend(fontsize=7, loc="lower right")
    return save_figure(fig, workdir, "training_curves.png")


def test_metric_of(results) -> str | None:
    """The test-curve metric any run of `results` logged, if any."""
    return next((key for r in results["runs"] if (key := test_metric(r))), None)


def stopped(run) -> str:
    """How a run's training ended: "plateau" (before its budget), "budget" or "loaded"."""
    if run["weights"]["source"] == "earlier_workdir":
        return "loaded"
    return "plateau" if run["steps"] < run.get("budget_steps", run["steps"]) else "budget"


def figure_links(figures) -> str:
    """Markdown image links to the figure files `figures`, one a line."""
    return "\n".join(f"![{os.path.splitext(n)[0]}]({n})" for n in figures)


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
    return f"mean [95 % t-interval] over n = {n} seeds"
