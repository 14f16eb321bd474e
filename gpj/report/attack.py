"""The attack experiment's report: ranked vs random tables, the region-specific attack, figures."""

import matplotlib.pyplot as plt
import numpy as np

from gpj.report.common import document, interval_note, markdown_table, pct_ci, save_figure
from gpj.report.scores import histogram_figure, score_table, tuning_maps_figure

REGIONS = ("all", "left", "right", "center")
MODEL_NAMES = {
    "segmentation": "DeepLabv3 segmentation",
    "segmentation-position_needed": "DeepLabv3, position-needed labels",
    "segmentation-shape_only": "DeepLabv3, shape-only labels (control B)",
    "gapnet-location": "GAPNet location",
    "gapnet-object": "GAPNet object",
}
CLASSIFIERS = ("gapnet-location", "gapnet-object")
_MAX_CLASS = 20  # the example figure's colour scale: digit canvases with sides, Cityscapes' 19

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
    return [m for m in MODEL_NAMES if m.startswith("segmentation") and _rows(results, m, "clean")]


def _rows(results, model, curve) -> dict:
    return {s["n"]: s for s in results["summary"] if s["model"] == model and s["curve"] == curve}


def _points(described, signed=True) -> str:
    """A `stats.describe` of a difference of fractions, in points with its interval."""
    sign = "+" if signed else ""
    text = f"{100 * described['mean']:{sign}.1f}"
    if described.get("ci95"):
        low, high = described["ci95"]
        text += f" [{100 * low:{sign}.1f}, {100 * high:{sign}.1f}]"
    return text


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
            _points(effects[n]["overall_vs_random"]),
        ]
        if sided:
            row += [pct_ci(ranked[n]["side_confusion"]), pct_ci(random[n]["side_confusion"])]
        rows.append(row)
    return (
        f"**{MODEL_NAMES[model]}**: whole-image mIoU (%)"
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
                    MODEL_NAMES[e["model"]],
                    where,
                    e["n"],
                    _points(e[f"{prefix}left_excess"]),
                    _points(e[f"{prefix}right_excess"]),
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
        f"{MODEL_NAMES[m]} {kind}" for m in models for kind in ("top-N", "random-N")
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
    s, m, a = c["segmentation"], c["model"], c["attack"]
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
    }[a.get("rank_on", "test")]
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
            MODEL_NAMES[r["model"]],
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
        f"Top channels of {MODEL_NAMES[r['model']]} (seed {r['seed']}):\n\n"
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


def figures(results, workdir) -> list:
    first = _first_seed(results)
    named = {MODEL_NAMES[r["model"]]: r["scores"] for r in first}
    names = [
        _curves_figure(results, workdir),
        histogram_figure(named, workdir, "score_histograms.png"),
    ]
    grids = {k: v for k, v in named.items() if "eta2" in v}
    if grids:
        names.append(tuning_maps_figure(grids, workdir, "tuning_maps.png"))
    examples = [r for r in first if "example" in r]
    if examples:
        names.append(_example_figure(examples[0]["example"], workdir))
    return names


def _curves_figure(results, workdir) -> str:
    """Metric vs N: ranked channels (per ranking) and random channels (mean ± std band)."""
    panels = [
        (m, f"miou_{r}", f"{MODEL_NAMES[m]}:\nmIoU {r}")
        for m in segmentation_models(results)
        for r in ("all", "left", "right")
    ]
    panels += [
        (m, "accuracy", f"{MODEL_NAMES[m]} accuracy")
        for m in CLASSIFIERS
        if _rows(results, m, "clean")
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.4), squeeze=False)
    for ax, (model, metric, title) in zip(axes[0], panels, strict=True):
        clean = _rows(results, model, "clean")[0][metric]["mean"]
        for curve in ("overall", "left", "right", "sym_left", "sym_right"):
            rows = _rows(results, model, curve)
            if rows:
                ax.plot(list(rows), [r[metric]["mean"] for r in rows.values()], "o-", label=curve)
        random = _rows(results, model, "random")
        n = np.asarray(list(random))
        mean = np.asarray([r[metric]["mean"] for r in random.values()])
        std = np.asarray([r[metric]["draw_std"] for r in random.values()])
        ax.plot(n, mean, "k--", label="random")
        ax.fill_between(n, mean - std, mean + std, color="k", alpha=0.15)
        ax.axhline(clean, color="gray", lw=0.8, label="clean")
        ax.set(xscale="log", xlabel="channels ablated N", ylim=(0, 1))
        ax.set_xticks(n, [str(k) for k in n])
        ax.minorticks_off()
        ax.set_title(title, fontsize=8)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, workdir, "attack_curves.png")


def _example_figure(example, workdir) -> str:
    """One test canvas: input, ground truth, and predictions clean and under each attack."""
    panels = [("input", example["image"], "gray"), ("ground truth", example["label"], "tab20")]
    panels += [
        (f"{name}" + ("" if name == "clean" else f" (N={example['n']})"), pred, "tab20")
        for name, pred in example["predictions"].items()
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.5))
    for ax, (title, image, cmap) in zip(axes, panels, strict=True):
        kwargs = {} if cmap == "gray" else {"vmin": 0, "vmax": _MAX_CLASS}
        image = np.asarray(image)
        if cmap != "gray":  # ignored pixels (255) are left blank
            image = np.ma.masked_greater(image, _MAX_CLASS)
        ax.imshow(image, cmap=cmap, interpolation="nearest", **kwargs)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, workdir, "segmentation_example.png")
