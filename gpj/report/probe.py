"""The probe experiment's report: the paper's table, per-run table, per-cell heat maps."""

import matplotlib.pyplot as plt
import numpy as np

from gpj.report.common import (
    curves_figure,
    document,
    interval_note,
    markdown_table,
    pct,
    pct_ci,
    save_figure,
    stopped,
)
from gpj.report.scores import score_table, tuning_maps_figure

HEAD_NAMES = {
    "gapnet": "GAPNet",
    "permutenet": "PermuteNet",
    "fixedperm": "fixed permutation",
    "sum": "channel sum",
}


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
        "`python -m gpj.main --config=configs/paper.py` trains them beside the controls until "
        "their validation accuracy stops rising (at most the official code's 20,834 steps), "
        "and decides it in its `scorecard.md`."
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


def figures(results, workdir) -> list:
    names = [
        _per_cell_figure(results, workdir),
        curves_figure(
            results, workdir, lambda r: f"{HEAD_NAMES[r['head']]} {r['task']} s{r['seed']}"
        ),
    ]
    if _scored(results):
        names.append(tuning_maps_figure(_scored(results), workdir, "tuning_maps.png"))
    return names


def _per_cell_figure(results, workdir) -> str:
    """Heat maps of per-cell test accuracy (mean over seeds), one per run kind."""
    groups = {}
    for r in results["runs"]:
        groups.setdefault((r["head"], r["task"]), []).append(np.asarray(r["per_cell_accuracy"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.2), squeeze=False)
    for ax, ((head, task), maps) in zip(axes[0], groups.items(), strict=True):
        acc = np.mean(maps, axis=0)
        ax.imshow(acc, vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(acc):
            color = "white" if v < 0.5 else "black"
            ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", color=color, fontsize=9)
        ax.set_title(f"{HEAD_NAMES[head]} {task}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("test accuracy (%) per grid cell")
    return save_figure(fig, workdir, "per_cell_accuracy.png")
