"""The probe experiment's report: the paper's table, per-run table, per-cell heat maps."""

import matplotlib.pyplot as plt
import numpy as np

from gpj.models import HEAD_NAMES
from gpj.report.common import (
    curves_figure,
    document,
    interval_note,
    markdown_table,
    pct,
    pct_ci,
    save_figure,
    stopped,
    styled,
)
from gpj.report.scores import score_table, tuning_maps_figure


def table(results: dict) -> str:
    """The paper's table: rows GAPNet / PermuteNet (and its controls), columns location / object."""
    summary = {(s["head"], s["task"]): s for s in results["summary"]}
    tasks = [t for t in ("location", "object") if any(k[1] == t for k in summary)]
    heads = [h for h in HEAD_NAMES if any(k[0] == h for k in summary)]
    header = ["model"] + [f"{t} (chance {pct(results['chance'][t])})" for t in tasks]
    rows = [
        [HEAD_NAMES[h]]
        + [pct_ci(summary[h, t]["accuracy"]) if (h, t) in summary else "—" for t in tasks]
        for h in heads
    ]
    n = max(s["n"] for s in results["summary"])
    return (
        markdown_table(header, rows)
        + f"\n\nTest accuracy in %, {interval_note(n)}."
        + _unconverged_note(results)
    )


def _unconverged_note(results) -> str:
    """Where PermuteNet's object runs ended at their budget, not on a plateau: claim 2 needs
    converged runs, and this says where they are."""
    budget = [
        r
        for r in results["runs"]
        if (r["head"], r["task"]) == ("permutenet", "object") and stopped(r) == "budget"
    ]
    if not budget:
        return ""
    return (
        f" PermuteNet's object runs ended at their budget ({budget[0]['steps']} steps), not on a "
        "plateau. Claim 2 (semantics without channel order) needs converged runs: "
        "`python -m gpj.main --config=configs/paper.py` trains them beside the controls for the "
        "official code's length (20,838 steps, the first whole epoch past its 20,834), with "
        "curves on a validation split, and decides it in its `scorecard.md`."
    )


def markdown(results: dict, figures) -> str:
    c, d = results["config"], results["dataset"]
    g, m = c["data"]["grid_size"], c["model"]
    shuffle = f", PermuteNet shuffle layer {m['shuffle_layer']}" if m["shuffle_layer"] != 5 else ""
    settings = (
        f"Data: `{d['name']}`, {d['num_train']} train / {d['num_test']} test images on "
        f"{d['canvas'][0]}×{d['canvas'][1]} canvases ({g}×{g} grid). Model: `{m['name']}` "
        f"(width {m['width']}, `{m['stem']}` stem, `{m['padding']}` padding{shuffle}), "
        f"{_budget(c['train'])}, batch {c['train']['batch_size']}, "
        f"{c['optim']['name']} lr {c['optim']['learning_rate']}. Every test image is evaluated "
        f"at every cell ({d['num_test'] * g * g} canvases per run)."
    )
    runs = [
        [
            f"{HEAD_NAMES[r['head']]} {r['task']}",
            r["seed"],
            pct(r["accuracy"]),
            f"{r['steps']} / {r.get('budget_steps', r['steps'])} ({stopped(r)})",
            f"{r['train_time_s']:.0f} s",
            f"{r['eval_time_s']:.1f} s",
        ]
        for r in results["runs"]
    ]
    header = ["run", "seed", "accuracy %", "steps / budget", "train (incl. compile)", "eval"]
    return document(
        "Position probe: GAPNet vs PermuteNet",
        settings,
        table(results) + _scores_section(results),
        markdown_table(header, runs),
        figures,
        results,
    )


def _budget(train: dict) -> str:
    """The training length in words: epochs, or a plateau stop within a budget of epochs."""
    if not train.get("stop_on_plateau"):
        return f"{train['num_epochs']} epochs"
    if train.get("plateau_on") == "val_accuracy":
        return (
            "until the validation accuracy stops rising (checked every "
            f"{train['eval_every_epochs']} epochs: the later half of the steps gains less than "
            f"{train['plateau_gain_se']:g} standard errors over the earlier half), at most "
            f"{train['num_epochs']} epochs"
        )
    if train.get("plateau_on") == "test_accuracy":  # results from before issue 30's rule
        return (
            f"until the test curve plateaus (every {train['eval_every_epochs']} epochs; no point "
            f"more than {train['plateau_min_delta']} above the best earlier one for "
            f"{train['plateau_patience']} points), at most {train['num_epochs']} epochs"
        )
    return (
        f"until the training loss plateaus (no window of {train['eval_every_epochs']} epochs "
        f"{train['plateau_min_delta']} nats below the best earlier one for "
        f"{train['plateau_patience']} windows), at most {train['num_epochs']} epochs"
    )


def _scored(results) -> dict:
    """The first seed's channel scores of every scored (GAPNet) run kind."""
    scored, kinds = {}, set()
    for r in results["runs"]:
        if "scores" in r and (r["head"], r["task"]) not in kinds:
            kinds.add((r["head"], r["task"]))
            scored[f"{HEAD_NAMES[r['head']]} {r['task']} (seed {r['seed']})"] = r["scores"]
    return scored


def _scores_section(results) -> str:
    scored = _scored(results)
    if not scored:
        return ""
    counts = {}  # η² > 0.5 channel counts of every seed, per run kind
    for r in results["runs"]:
        if "scores" in r:
            eta2 = np.asarray(r["scores"]["eta2"])
            counts.setdefault((r["head"], r["task"]), []).append(
                f"{(eta2 > 0.5).sum()}/{len(eta2)}"
            )
    lines = [
        f"- {HEAD_NAMES[head]} {task}: {', '.join(c)} (seed by seed)"
        for (head, task), c in counts.items()
    ]
    parts = [
        "## Channel position scores",
        "GAP channels with η² > 0.5 (more than half of their variance explained by the cell):\n\n"
        + "\n".join(lines),
    ]
    parts += [
        f"Top channels of {label} by flip_abs:\n\n{score_table(s)}" for label, s in scored.items()
    ]
    return "\n\n" + "\n\n".join(parts)


PERMUTING = ("permutenet", "fixedperm")  # the heads whose channels are permuted at a layer
CAPTIONS = {
    "per_cell_accuracy.png": (
        "Test accuracy (%) with every test image pasted at each cell of the {g}×{g} canvas "
        "grid, one panel per head (columns) and task (rows), mean over {n} seed(s); the red "
        "mark on each row's colour bar is chance ({chance})."
    ),
    "training_curves.png": (
        "Training loss and accuracy, and the held-out curves where logged, against training "
        "step, one colour per head and one row per task: the mean over the {n} seed(s) still "
        "training at that step (line) and their range (band); dashed: chance ({chance})."
    ),
}


def chance(results) -> dict:
    """Chance accuracy per task: 1/G² for location (G×G grid cells), 1/classes for object, as
    the results state them (else from the config's grid size and the dataset's classes)."""
    g = results["config"]["data"]["grid_size"]
    return {
        "location": 1 / g**2,
        "object": 1 / results["dataset"]["num_classes"],
        **results.get("chance", {}),
    }


def head_name(results, head) -> str:
    """A head's name; a permuting head's with the layer its channels are permuted at."""
    if head not in PERMUTING:
        return HEAD_NAMES[head]
    layer = results["config"]["model"].get("shuffle_layer", 5)
    return f"{HEAD_NAMES[head]}, layer {layer}" + (" (after GAP)" if layer == 5 else "")


def _caption(results, name) -> str:
    levels = chance(results)
    tasks = dict.fromkeys(r["task"] for r in results["runs"])
    n = sorted({s["n"] for s in results["summary"]})
    return CAPTIONS[name].format(
        g=results["config"]["data"]["grid_size"],
        n="–".join(map(str, sorted({n[0], n[-1]}))),
        chance=", ".join(f"{t} {pct(levels[t])} %" for t in tasks),
    )


def figures(results, workdir) -> list:
    names = [
        save_figure(
            per_cell(results),
            workdir,
            "per_cell_accuracy.png",
            _caption(results, "per_cell_accuracy.png"),
        ),
        curves_figure(
            results,
            workdir,
            lambda r: head_name(results, r["head"]),
            row=lambda r: r["task"],
            chance=chance(results),
            title="Training curves by head (colour) and task (row)",
            caption=_caption(results, "training_curves.png"),
        ),
    ]
    if _scored(results):
        names.append(tuning_maps_figure(_scored(results), workdir, "tuning_maps.png"))
    return names


@styled
def per_cell(results):
    """Heat maps of per-cell test accuracy (%, mean over seeds): a row per task, a column per
    head, each row with its colour bar and chance marked on it."""
    groups = {}
    for r in results["runs"]:
        groups.setdefault((r["task"], r["head"]), []).append(np.asarray(r["per_cell_accuracy"]))
    tasks = [t for t in ("location", "object") if any(k[0] == t for k in groups)]
    heads = [h for h in HEAD_NAMES if any(k[1] == h for k in groups)]
    g = results["config"]["data"]["grid_size"]
    levels = chance(results)
    fig, axes = plt.subplots(
        len(tasks),
        len(heads),
        figsize=(2.5 * len(heads) + 1.4, 2.6 * len(tasks) + 1.0),
        squeeze=False,
        layout="constrained",
    )
    for axes_row, task in zip(axes, tasks, strict=True):
        shown = []
        for ax, head in zip(axes_row, heads, strict=True):
            if (task, head) not in groups:
                fig.delaxes(ax)
                continue
            maps = groups[task, head]
            acc = 100 * np.mean(maps, axis=0)
            image = ax.imshow(acc, vmin=0, vmax=100, cmap="viridis")
            for (i, j), v in np.ndenumerate(acc):
                color = "white" if v < 50 else "black"
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", color=color, fontsize=9)
            name = head_name(results, head).replace(", ", "\n")
            ax.set_title(f"{name}\n{task}, n = {len(maps)}")
            ax.set_xticks(range(g), [str(k + 1) for k in range(g)])
            ax.set_yticks(range(g), [str(k + 1) for k in range(g)])
            ax.set(xlabel="grid column (cell)", ylabel="grid row (cell)")
            shown.append(ax)
        bar = fig.colorbar(image, ax=shown, shrink=0.9)
        bar.set_label(f"{task} test accuracy (%)\nchance {pct(levels[task])} % (red)")
        bar.ax.axhline(100 * levels[task], color="red", lw=3, label="chance")
    fig.suptitle("Test accuracy per canvas cell, by head (columns) and task (rows)")
    return fig
