"""The attack experiment's report: ranked vs random tables, the region-specific attack, figures."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from gpj.report.common import (
    chance_line,
    colours,
    document,
    interval_note,
    interval_percent,
    legend_below,
    markdown_table,
    pct_ci,
    pct_difference,
    save_figure,
    styled,
)
from gpj.report.scores import histogram_figure, score_table, tuning_maps_figure

RUN_LABELS = {
    "segmentation": "DeepLabv3 segmentation",
    "segmentation-position_needed": "DeepLabv3, position-needed labels",
    "segmentation-shape_only": "DeepLabv3, shape-only labels (control B)",
    "gapnet-location": "GAPNet location",
    "gapnet-object": "GAPNet object",
}
CLASSIFIERS = ("gapnet-location", "gapnet-object")

PREDICTIONS = """**What the paper's hypothesis predicts** (written before the runs; the decision rules are \
those of the tables below):

- *Claim 4, segmentation relies on the position channels*: on the position-needed labels, \
ablating the top-N overall channels lowers the whole-image mIoU more than N random channels \
(interval of top − random below 0) and raises the k-left ↔ k-right confusion more than random \
channels do. On the shape-only labels (control B: the same images, no label needs the side) the \
top − random gap should be smaller, and may vanish.
- *Claim 5, a region-specific attack degrades one region*: with channels ranked on the \
calibration split (every digit on the left, so a channel's signed flip score tells its side), \
the 'left' attack's asymmetry (Δ mIoU left − Δ mIoU right) lies below random's and the 'right' \
attack's above (side-specific). Ranked on the symmetric calibration split (control C: digits \
equally on both sides, so the signed score has no side to find), neither should."""


def segmentation_models(results) -> list:
    return [m for m in RUN_LABELS if m.startswith("segmentation") and _rows(results, m, "clean")]


def _rows(results, model, curve) -> dict:
    return {s["n"]: s for s in results["summary"] if s["model"] == model and s["curve"] == curve}


def _random(entry, metric) -> str:
    """Random-N: mean of the per-seed draw means [interval over seeds] (mean std of the draws)."""
    return f"{pct_ci(entry[metric])} (draws ± {100 * entry[metric]['draw_std']:.1f})"


def segmentation_table(results, model) -> str:
    clean = _rows(results, model, "clean")[0]
    ranked, random = _rows(results, model, "overall"), _rows(results, model, "random")
    effects = {e["n"]: e for e in results.get("effects", []) if e["model"] == model}
    sided = "side_confusion" in clean
    header = ["N ablated", "mIoU top-N", "mIoU random-N", "top − random (points)"]
    header += ["k-left ↔ k-right confusion: top-N", "random-N"] if sided else []
    rows = [["0 (clean)", pct_ci(clean["miou_all"]), "", ""]]
    rows[0] += [pct_ci(clean["side_confusion"]), ""] if sided else []
    for n in ranked:
        row = [
            n,
            pct_ci(ranked[n]["miou_all"]),
            _random(random[n], "miou_all"),
            pct_difference(effects[n]["overall_vs_random"]),
        ]
        if sided:
            row += [pct_ci(ranked[n]["side_confusion"]), pct_ci(random[n]["side_confusion"])]
        rows.append(row)
    return (
        f"**{RUN_LABELS[model]}**: whole-image mIoU (%)"
        + (
            " and the share of digit pixels given the same digit on the other side (%)"
            if sided
            else ""
        )
        + " with the top-N channels (by flip_abs) or N random channels ablated.\n\n"
        + markdown_table(header, rows)
    )


def region_table(results) -> str:
    header = ["model", "ranked on", "N", "'left' attack: asymmetry − random", "'right' attack"]
    header.append("side-specific?")
    rows = []
    for e in results.get("effects", []):
        for prefix, where in (("", "calibration"), ("sym_", "symmetric calibration (control C)")):
            if f"{prefix}left_excess" not in e:
                continue
            decided = e[f"{prefix}side_specific"]
            rows.append(
                [
                    RUN_LABELS[e["model"]],
                    where,
                    e["n"],
                    pct_difference(e[f"{prefix}left_excess"]),
                    pct_difference(e[f"{prefix}right_excess"]),
                    "one seed: undecided" if decided is None else ("yes" if decided else "no"),
                ]
            )
    return (
        "**Region-specific attack**: the asymmetry Δ mIoU(left half) − Δ mIoU(right half), in "
        "points, when the top-N 'left' channels (largest flip_signed) or 'right' channels "
        "(smallest) are ablated, minus the asymmetry of N random channels, per seed. An N is "
        "side-specific when the 'left' interval lies wholly below 0 and the 'right' wholly "
        "above.\n\n" + markdown_table(header, rows)
    )


def classifier_table(results) -> str:
    models = [m for m in CLASSIFIERS if _rows(results, m, "clean")]
    header = ["N ablated"] + [
        f"{RUN_LABELS[m]} {kind}" for m in models for kind in ("top-N", "random-N")
    ]
    clean = {m: _rows(results, m, "clean")[0] for m in models}
    rows = [["0 (clean)"] + [pct_ci(clean[m]["accuracy"]) for m in models for _ in (0, 1)]]
    sizes = sorted({n for m in models for n in _rows(results, m, "overall")})
    for n in sizes:
        row = [n]
        for m in models:
            ranked, random = _rows(results, m, "overall"), _rows(results, m, "random")
            row += (
                [pct_ci(ranked[n]["accuracy"]), _random(random[n], "accuracy")]
                if n in ranked
                else ["—", "—"]
            )
        rows.append(row)
    return (
        "**Classification**: test accuracy (%) with every test image at every cell, with the "
        "top-N GAP channels (by flip_abs) ablated, beside N random channels.\n\n"
        + markdown_table(header, rows)
    )


def table(results: dict) -> str:
    segmentation = segmentation_models(results)
    parts = [segmentation_table(results, m) for m in segmentation]
    if segmentation:
        parts.append(region_table(results))
    if any(_rows(results, m, "clean") for m in CLASSIFIERS):
        parts.append(classifier_table(results))
    n = max(s["seeds"] for s in results["summary"])
    return "\n\n".join(parts) + (
        f"\n\nEvery value: {interval_note(n)} (one trained model per seed; random-N rows "
        "average each seed's random sets first)."
    )


def markdown(results: dict, figures) -> str:
    c = results["config"]
    s, m, a = c["segmentation"], c["model"], c["evals"]["attack"]
    if "segmentation_data" in results and s["dataset"] == "cityscapes":
        d = results["segmentation_data"]
        data = (
            f"Cityscapes: {d['num_train']} train / {d['num_test']} validation images resized to "
            f"{d['image_shape'][0]}×{d['image_shape'][1]} px, {d['num_classes']} classes "
            f"(label {d['ignore_label']} ignored), ImageNet-normalised."
        )
    else:
        data = (
            f"{s['num_train']} train / {s['num_test']} test canvases of "
            f"{s['canvas_size']}×{s['canvas_width']} px, {s['digits_per_canvas']} digits each, "
            f"each wholly in one half outside a {s['dead_zone']}-px midline band, "
            f"{100 * s['left_fraction']:.0f}% on the left"
            + (", mirrored at random" if s["mirror_digits"] else "")
            + ("; training mirrors canvases (relabelled)" if s["hflip"] else "")
            + f". Calibration splits ({s['num_calibration']} canvases each, train digits): "
            f"{100 * s['calibration_left_fraction']:.0f}% of digits on the left, and "
            + (
                "a symmetric one drawn per seed with exactly half of its digits on each side "
                "(control C)."
                if results.get("segmentation_data", {}).get("symmetric_calibration")
                else "one with digits on either side at random (control C), the same for every "
                "seed."
            )
        )
    ranked_on = {
        "calibration": "on the calibration split (no labels are used)",
        "test": "on the test images (no labels are used), as in the official code",
    }[a["rank_on"]]
    settings = (
        f"Segmentation data: {data} Model: DeepLabv3 "
        f"(`{m['name']}` width {m['width']}, output stride {m['output_stride']}, ASPP rates "
        f"{tuple(m['aspp_rates'])}). Channels are ablated ({a['fill']} fill) at the backbone "
        f"output; {a['num_random']} random channel sets per N. Channels are ranked "
        f"{ranked_on}."
        if s["enabled"]
        else ""
    )
    runs = [
        [
            RUN_LABELS[r["model"]],
            r["seed"],
            r["num_channels"],
            r["num_scored_images"],
            f"{r.get('train_time_s', 0):.0f} s",
            r["run_dir"],
        ]
        for r in results["runs"]
    ]
    header = ["model", "seed", "channels", "scored images", "train", "run folder"]
    scores = "\n\n".join(
        f"Top channels of {RUN_LABELS[r['model']]} (seed {r['seed']}):\n\n"
        + score_table(r["scores"])
        for r in _first_seed(results)
    )
    return document(
        "Position-channel attack",
        settings,
        (PREDICTIONS + "\n\n" if segmentation_models(results) else "")
        + table(results)
        + "\n\n## Channel scores\n\n"
        + scores,
        markdown_table(header, runs),
        figures,
        results,
    )


def _first_seed(results) -> list:
    seen, first = set(), []
    for r in results["runs"]:
        if r["model"] not in seen:
            seen.add(r["model"])
            first.append(r)
    return first


# The ranked curves of the attack figure: legend label ({n}: the N), colour, line, marker.
CURVES = {
    "overall": ("top-{n} by flip_abs", "C0", "-", "o"),
    "left": ("top-{n} 'left' (largest flip_signed)", "C1", "-", "s"),
    "right": ("top-{n} 'right' (smallest flip_signed)", "C2", "-", "^"),
    "sym_left": ("top-{n} 'left', ranked on the symmetric split (control C)", "C1", "-.", "s"),
    "sym_right": ("top-{n} 'right', ranked on the symmetric split (control C)", "C2", "-.", "^"),
}
METRIC_LABELS = {
    "miou_all": "mIoU, whole image (%)",
    "miou_left": "mIoU, left half (%)",
    "miou_right": "mIoU, right half (%)",
    "accuracy": "test accuracy (%)",
}
CAPTIONS = {
    "attack_curves.png": (
        "{measured} with the top-N channels of the {where} ablated ({fill} fill), ranked by "
        "their flip scores on the {ranked_on}, beside N random channels ({draws} random sets "
        "per N), one colour per ranking and one row per model: the mean over {n} seed(s) with "
        "its 95 % t-interval (error bars; the grey band for random channels{band_note}); "
        "grey line: the clean model{chance}{example}."
    ),
    "segmentation_example.png": (
        "The first test canvas of {model} (seed {seed}): its input, ground truth and "
        "predicted classes, clean and with the top N = {n} channels of each ranking "
        "ablated{plotted}; the colour bar names every class shown."
    ),
}
EXAMPLE_TITLES = {  # the example figure's panel per ranking ({n}: its N)
    "overall": "top-{n} by flip_abs ablated",
    "left": "top-{n} 'left' ablated",
    "right": "top-{n} 'right' ablated",
    "sym_left": "top-{n} 'left' (control C) ablated",
    "sym_right": "top-{n} 'right' (control C) ablated",
}
EXAMPLE_STYLE = {"color": "0.3", "linestyle": ":", "linewidth": 1.2}


def figures(results, workdir) -> list:
    first = _first_seed(results)
    named = {RUN_LABELS[r["model"]]: r["scores"] for r in first}
    names = [
        save_figure(attack_curves(results), workdir, "attack_curves.png", _curves_caption(results)),
        histogram_figure(named, workdir, "score_histograms.png"),
    ]
    grids = {k: v for k, v in named.items() if "eta2" in v}
    if grids:
        names.append(tuning_maps_figure(grids, workdir, "tuning_maps.png"))
    if _example_run(results):
        names.append(
            save_figure(
                segmentation_example(results),
                workdir,
                "segmentation_example.png",
                _example_caption(results),
            )
        )
    return names


def _example_run(results) -> dict | None:
    """The first seed's run of the first model with an example canvas, if any."""
    return next((r for r in _first_seed(results) if "example" in r), None)


def _seeds(results) -> int:
    return max(s["seeds"] for s in results["summary"])


def classifier_chance(results, model) -> float:
    """Chance accuracy of a GAPNet classifier: 1/G² (G×G grid cells) for location, 1/classes
    for object."""
    if model == "gapnet-location":
        return 1 / results["config"]["classifier"]["probe"]["data"]["grid_size"] ** 2
    return 1 / results["dataset"]["num_classes"]


def _sizes(results) -> list:
    return sorted({s["n"] for s in results["summary"] if s["curve"] == "random"})


def _curves_caption(results) -> str:
    a = results["config"]["evals"]["attack"]
    segmentation = segmentation_models(results)
    classifiers = [m for m in CLASSIFIERS if _rows(results, m, "clean")]
    measured = " and ".join(
        (["Whole-image, left-half and right-half mIoU (%)"] if segmentation else [])
        + (["test accuracy (%)" if segmentation else "Test accuracy (%)"] if classifiers else [])
    )
    where = " and ".join(
        (["segmentation backbone's output"] if segmentation else [])
        + (["classifiers' GAP latent"] if classifiers else [])
    )
    chance = ""
    if classifiers:
        chance = (
            "; dashed: chance ("
            + ", ".join(
                f"{RUN_LABELS[m]} {pct_value(classifier_chance(results, m))} %" for m in classifiers
            )
            + ")"
        )
    run = _example_run(results)
    example = ""
    if run and segmentation:
        example = (
            f"; the vertical dotted line marks N = {run['example']['n']}, the example figure's"
        )
    ranked_on = {
        "calibration": "calibration split (not the images measured)",
        "test": "test images",
    }[a["rank_on"]]
    return CAPTIONS["attack_curves.png"].format(
        measured=measured,
        where=where,
        fill=a["fill"],
        ranked_on=ranked_on,
        draws=a["num_random"],
        n=_seeds(results),
        band_note="" if _seeds(results) > 1 else ": ± the std of the random sets, one seed",
        chance=chance,
        example=example,
    )


def pct_value(fraction: float) -> str:
    return f"{100 * fraction:.1f}"


def _example_caption(results) -> str:
    run = _example_run(results)
    n = run["example"]["n"]
    sizes = _sizes(results)
    plotted = (
        ""
        if n in sizes
        else f" (not one of the attack curves' N, {', '.join(map(str, sizes))}: the curves mark "
        "it with a dotted line)"
    )
    return CAPTIONS["segmentation_example.png"].format(
        model=RUN_LABELS[run["model"]], seed=run["seed"], n=n, plotted=plotted
    )


@styled
def attack_curves(results):
    """Metric against N: one row per segmentation model (mIoU whole image, left and right half)
    and one for the classifiers (accuracy); each ranked curve and the random channels with
    their 95 % t-intervals over seeds."""
    rows = [
        [(m, f"miou_{r}") for r in ("all", "left", "right")] for m in segmentation_models(results)
    ]
    classifiers = [m for m in CLASSIFIERS if _rows(results, m, "clean")]
    if classifiers:
        rows.append([(m, "accuracy") for m in classifiers])
    columns = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows),
        columns,
        figsize=(3.6 * max(columns, 2) + 0.4, 3.0 * len(rows) + 1.4),
        squeeze=False,
        layout="constrained",
    )
    run = _example_run(results)
    for axes_row, panels in zip(axes, rows, strict=True):
        for ax in axes_row[len(panels) :]:
            fig.delaxes(ax)
        for ax, (model, metric) in zip(axes_row, panels, strict=False):
            _attack_panel(ax, results, model, metric)
            if run and metric != "accuracy":
                ax.axvline(run["example"]["n"], label="N of the example figure", **EXAMPLE_STYLE)
    fig.suptitle(
        "Channel attack: the top-N ranked channels (colour: ranking) or N random channels "
        f"ablated, by model (row); mean ± 95 % t-interval over {_seeds(results)} seed(s)"
    )
    legend_below(fig, columns=3)
    return fig


def _attack_panel(ax, results, model, metric) -> None:
    clean = interval_percent(_rows(results, model, "clean")[0][metric])[0]
    ax.axhline(clean, color="0.5", lw=1, label="clean (nothing ablated)")
    random = _rows(results, model, "random")
    sizes = sorted(random)
    mean, low, high = np.transpose([interval_percent(random[n][metric]) for n in sizes])
    if _seeds(results) == 1:  # no interval over seeds: the spread of the random sets
        spread = 100 * np.asarray([random[n][metric]["draw_std"] for n in sizes])
        low, high = np.clip(mean - spread, 0, 100), np.clip(mean + spread, 0, 100)
    ax.plot(sizes, mean, color="k", marker="x", label="N random channels")
    ax.fill_between(sizes, low, high, color="k", alpha=0.15)
    for i, (curve, (label, colour, style, marker)) in enumerate(CURVES.items()):
        ranked = _rows(results, model, curve)
        if not ranked:
            continue
        ns = sorted(ranked)
        mean, low, high = np.transpose([interval_percent(ranked[n][metric]) for n in ns])
        ax.errorbar(
            np.asarray(ns) * 1.06 ** (i - 2),  # apart, so that the error bars do not overlap
            mean,
            yerr=[mean - low, high - mean],
            color=colour,
            linestyle=style,
            marker=marker,
            markerfacecolor="white" if curve.startswith("sym_") else colour,
            capsize=3,
            label=label.format(n="N"),
        )
    if metric == "accuracy":
        chance_line(ax, classifier_chance(results, model))
    ax.set(
        xscale="log",
        xlabel="channels ablated, N (log scale)",
        ylabel=METRIC_LABELS[metric],
        ylim=(0, 102),
        title=f"{RUN_LABELS[model]}\n{METRIC_LABELS[metric].removesuffix(' (%)')}",
    )
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()


def class_names(results, model) -> list:
    """The name of every class of a segmentation model's labels."""
    if results["config"]["segmentation"]["dataset"] == "cityscapes":
        from gpj.data.cityscapes import CLASS_NAMES

        return list(CLASS_NAMES)
    from gpj.data.segmentation import NUM_DIGITS

    sided = (
        model != "segmentation-shape_only"
        and results.get("segmentation_data", {}).get("num_classes", 0) > NUM_DIGITS + 1
    )
    names = ["background"] + [f"digit {d}" + (", left" if sided else "") for d in range(NUM_DIGITS)]
    return names + ([f"digit {d}, right" for d in range(NUM_DIGITS)] if sided else [])


@styled
def segmentation_example(results):
    """The first test canvas: its input, ground truth and the predicted classes, clean and with
    the top N channels of each ranking ablated; one colour bar names every class shown."""
    run = _example_run(results)
    example, n = run["example"], run["example"]["n"]
    names = class_names(results, run["model"])
    maps = {"ground truth": np.asarray(example["label"])}
    maps |= {
        ("prediction: clean" if k == "clean" else EXAMPLE_TITLES[k].format(n=n)): np.asarray(v)
        for k, v in example["predictions"].items()
    }
    shown = sorted({int(c) for m in maps.values() for c in np.unique(m) if c < len(names)})
    palette = colours(c for c in shown if names[c] != "background")  # background: light grey
    cmap = matplotlib.colors.ListedColormap([palette.get(c, "0.92") for c in shown])
    norm = matplotlib.colors.BoundaryNorm(np.arange(len(shown) + 1) - 0.5, len(shown))
    image = np.asarray(example["image"])
    full = results.get("segmentation_data", {}).get("image_shape", image.shape)
    step = -(-full[1] // image.shape[1])  # the example keeps every step-th pixel
    extent = (
        -0.5 * step,
        (image.shape[1] - 0.5) * step,
        (image.shape[0] - 0.5) * step,
        -0.5 * step,
    )
    columns = 3
    rows = -(-(1 + len(maps)) // columns)
    aspect = image.shape[0] / image.shape[1]
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(10.5, rows * 3.3 * aspect + 1.3),
        squeeze=False,
        layout="constrained",
    )
    axes = list(axes.flat)
    for ax in axes[1 + len(maps) :]:
        fig.delaxes(ax)
    shown_input = axes[0].imshow(image, cmap="gray", interpolation="nearest", extent=extent)
    axes[0].set_title("input")
    fig.colorbar(shown_input, ax=axes[0], label="input (normalised)", shrink=0.8)
    for ax, (title, labels) in zip(axes[1:], maps.items(), strict=False):
        index = np.ma.masked_array(np.searchsorted(shown, labels), labels >= len(names))
        classes = ax.imshow(index, cmap=cmap, norm=norm, interpolation="nearest", extent=extent)
        ax.set_title(title)
    for ax in axes[: 1 + len(maps)]:
        ax.set(xlabel="x (px)", ylabel="y (px)")
    bar = fig.colorbar(classes, ax=axes[1 : 1 + len(maps)], ticks=range(len(shown)), shrink=0.8)
    bar.ax.set_yticklabels([names[c] for c in shown])
    bar.set_label("class")
    fig.suptitle(
        f"{RUN_LABELS[run['model']]} (seed {run['seed']}): one test canvas, clean and with "
        f"N = {n} channels ablated"
    )
    return fig
