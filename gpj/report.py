"""results.json -> report.md (markdown tables) and figures (png) in the workdir."""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

HEAD_NAMES = {"gapnet": "GAPNet", "permutenet": "PermuteNet"}


def table(results: dict) -> str:
    """The headline table of an experiment's results (markdown)."""
    return probe_table(results)


def write(results: dict, workdir: str) -> None:
    """Writes results.json, report.md and figures into the workdir."""
    write_json(results, os.path.join(workdir, "results.json"))
    figures = [_per_cell_figure(results, workdir), _curves_figure(results, workdir)]
    text = probe_markdown(results, figures)
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write(text)


def write_json(data, path: str) -> None:
    """Atomic write: a reader never sees half a file."""
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(path + ".tmp", path)


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(mean, std=None) -> str:
    return f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def probe_table(results: dict) -> str:
    """The paper's table: rows GAPNet / PermuteNet, columns location / object."""
    summary = {(s["head"], s["task"]): s for s in results["summary"]}
    tasks = [t for t in ("location", "object") if any(k[1] == t for k in summary)]
    heads = [h for h in HEAD_NAMES if any(k[0] == h for k in summary)]
    header = ["model"] + [f"{t} (chance {_pct(results['chance'][t])})" for t in tasks]
    rows = [
        [HEAD_NAMES[h]]
        + [
            _pct(summary[h, t]["mean"], summary[h, t]["std"]) if (h, t) in summary else "—"
            for t in tasks
        ]
        for h in heads
    ]
    n = max(s["n"] for s in results["summary"])
    return (
        markdown_table(header, rows)
        + f"\n\nTest accuracy in %, mean ± std over {n} seed(s) (sample std; 0 for one seed)."
    )


def probe_markdown(results: dict, figures) -> str:
    c, d, env = results["config"], results["dataset"], results["environment"]
    g = c["data"]["grid_size"]
    m = c["model"]
    runs = [
        [
            f"{HEAD_NAMES[r['head']]} {r['task']}",
            r["seed"],
            _pct(r["accuracy"]),
            r["steps"],
            f"{r['train_time_s']:.0f} s",
            f"{r['eval_time_s']:.1f} s",
        ]
        for r in results["runs"]
    ]
    return (
        "\n\n".join(
            [
                "# Position probe: GAPNet vs PermuteNet",
                (
                    f"Data: `{d['name']}`, {d['num_train']} train / {d['num_test']} test images on "
                    f"{d['canvas'][0]}×{d['canvas'][1]} canvases ({g}×{g} grid). Model: `{m['name']}` "
                    f"(width {m['width']}, `{m['stem']}` stem, `{m['padding']}` padding"
                    f"{', PermuteNet shuffle layer ' + str(m['shuffle_layer']) if m['shuffle_layer'] != 5 else ''}"
                    f"), {c['train']['num_epochs']} epochs, batch {c['train']['batch_size']}, "
                    f"{c['optim']['name']} lr {c['optim']['learning_rate']}. Every test image is evaluated at "
                    f"every cell ({d['num_test'] * g * g} canvases per run)."
                ),
                probe_table(results),
                "## Runs",
                markdown_table(
                    ["run", "seed", "accuracy %", "steps", "train (incl. compile)", "eval"], runs
                ),
                "## Figures",
                "\n".join(f"![{os.path.splitext(f)[0]}]({f})" for f in figures),
                (
                    f"Environment: jax {env['packages']['jax']}, flax {env['packages']['flax']}, "
                    f"{env['device_count']} × {env['device_kind']} ({env['platform']}), "
                    f"{env['process_count']} process(es). Total wall time {results['wall_time_s']:.0f} s."
                ),
            ]
        )
        + "\n"
    )


def _per_cell_figure(results, workdir) -> str:
    """Heat maps of per-cell test accuracy (mean over seeds), one per run kind."""
    groups = {}
    for r in results["runs"]:
        groups.setdefault((r["head"], r["task"]), []).append(np.asarray(r["per_cell_accuracy"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.2), squeeze=False)
    for ax, ((head, task), maps) in zip(axes[0], groups.items()):
        acc = np.mean(maps, axis=0)
        ax.imshow(acc, vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(acc):
            ax.text(
                j,
                i,
                f"{100 * v:.0f}",
                ha="center",
                va="center",
                color="white" if v < 0.5 else "black",
                fontsize=9,
            )
        ax.set_title(f"{HEAD_NAMES[head]} {task}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("test accuracy (%) per grid cell")
    fig.tight_layout()
    name = "per_cell_accuracy.png"
    fig.savefig(os.path.join(workdir, name), dpi=100)
    plt.close(fig)
    return name


def _curves_figure(results, workdir) -> str:
    """Training loss and accuracy against step for every run and seed."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in results["runs"]:
        steps = [h["step"] for h in r["history"]]
        label = f"{HEAD_NAMES[r['head']]} {r['task']} s{r['seed']}"
        ax_loss.plot(steps, [h["loss"] for h in r["history"]], label=label)
        ax_acc.plot(steps, [h["accuracy"] for h in r["history"]], label=label)
    ax_loss.set(xlabel="step", ylabel="train loss", yscale="log")
    ax_acc.set(xlabel="step", ylabel="train accuracy", ylim=(0, 1))
    ax_acc.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    name = "training_curves.png"
    fig.savefig(os.path.join(workdir, name), dpi=100)
    plt.close(fig)
    return name
