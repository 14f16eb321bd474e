"""The attack experiment's report: ranked vs random tables, the region-specific attack, figures."""

import matplotlib.pyplot as plt
import numpy as np

from gpj.report.common import document, markdown_table, pct, save_figure, seeds_note
from gpj.report.scores import histogram_figure, score_table, tuning_maps_figure

REGIONS = ("all", "left", "right", "center")
MODEL_NAMES = {
    "segmentation": "DeepLabv3 segmentation",
    "gapnet-location": "GAPNet location",
    "gapnet-object": "GAPNet object",
}


def _rows(results, model, curve) -> dict:
    return {s["n"]: s for s in results["summary"] if s["model"] == model and s["curve"] == curve}


def _fmt(entry, metric) -> str:
    return pct(entry[metric]["mean"], entry[metric]["std"] if entry["seeds"] > 1 else None)


def _random(entry, metric) -> str:
    """Random-N: mean over draws (and seeds) ± std over the random draws."""
    return pct(entry[metric]["mean"], entry[metric]["draw_std"])


def segmentation_table(results) -> str:
    clean = _rows(results, "segmentation", "clean")[0]
    ranked, random = (
        _rows(results, "segmentation", "overall"),
        _rows(results, "segmentation", "random"),
    )
    header = ["N ablated"] + [f"{r} {kind}" for r in REGIONS for kind in ("top-N", "random-N")]
    rows = [["0 (clean)"] + [_fmt(clean, f"miou_{r}") for r in REGIONS for _ in (0, 1)]]
    for n in ranked:
        rows.append(
            [n]
            + [
                cell
                for r in REGIONS
                for cell in (_fmt(ranked[n], f"miou_{r}"), _random(random[n], f"miou_{r}"))
            ]
        )
    return (
        "**Segmentation**: mIoU (%) of the whole image and of its left / right / center columns "
        "with the top-N channels of the backbone output (by flip_abs) ablated, beside N random "
        "channels (mean ± std over the random draws).\n\n" + markdown_table(header, rows)
    )


def region_table(results) -> str:
    effects = results["region_effects"]
    header = [
        "N",
        "left channels: Δ left",
        "left channels: Δ right",
        "right channels: Δ left",
        "right channels: Δ right",
        "random-N: Δ left − Δ right",
        "side-specific?",
    ]
    keys = ("left_attack_left", "left_attack_right", "right_attack_left", "right_attack_right")
    rows = [
        [e["n"]]
        + [f"{100 * e[k]:+.1f}" for k in keys]
        + [f"{100 * e['random_asymmetry']:+.1f} ± {100 * e['random_asymmetry_std']:.1f}"]
        + ["yes" if e["appeared"] else "no"]
        for e in effects
    ]
    appeared = [e["n"] for e in effects if e["appeared"]]
    verdict = (
        f"The region-specific effect appeared at N = {', '.join(map(str, appeared))}."
        if appeared
        else "The region-specific effect did not appear at any N."
    )
    return (
        "**Region-specific attack**: change in mIoU (points) of the left and right halves when "
        "the top-N 'left' channels (largest flip_signed) or 'right' channels (smallest) are "
        "ablated. An N counts as side-specific when each attack lowers its own side's mIoU and "
        "its left − right asymmetry lies more than two standard deviations beyond that of N "
        "random channels (mean ± std over the random draws).\n\n"
        + markdown_table(header, rows)
        + "\n\n"
        + verdict
    )


def classifier_table(results) -> str:
    models = [m for m in ("gapnet-location", "gapnet-object") if _rows(results, m, "clean")]
    header = ["N ablated"] + [
        f"{MODEL_NAMES[m]} {kind}" for m in models for kind in ("top-N", "random-N")
    ]
    clean = {m: _rows(results, m, "clean")[0] for m in models}
    rows = [["0 (clean)"] + [_fmt(clean[m], "accuracy") for m in models for _ in (0, 1)]]
    sizes = sorted({n for m in models for n in _rows(results, m, "overall")})
    for n in sizes:
        row = [n]
        for m in models:
            ranked, random = _rows(results, m, "overall"), _rows(results, m, "random")
            row += (
                [_fmt(ranked[n], "accuracy"), _random(random[n], "accuracy")]
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
    models = {r["model"] for r in results["runs"]}
    parts = []
    if "segmentation" in models:
        parts += [segmentation_table(results), region_table(results)]
    if models - {"segmentation"}:
        parts.append(classifier_table(results))
    n = max(s["seeds"] for s in results["summary"])
    return "\n\n".join(parts) + f"\n\nTop-N and clean rows: {seeds_note(n)}."


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
            f"{s['canvas_size']}×{s['canvas_size']} px, {s['digits_per_canvas']} digits each, "
            f"{100 * s['left_fraction']:.0f}% of them centred in the left half."
        )
    settings = (
        f"Segmentation data: {data} Model: DeepLabv3 "
        f"(`{m['name']}` width {m['width']}, output stride {m['output_stride']}, ASPP rates "
        f"{tuple(m['aspp_rates'])}). Channels are ablated ({a['fill']} fill) at the backbone "
        f"output; {a['num_random']} random channel sets per N. Scores are computed on the test "
        "images (no labels are used), as in the official code."
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
        table(results) + "\n\n## Channel scores\n\n" + scores,
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
    panels = []
    if _rows(results, "segmentation", "clean"):
        panels += [("segmentation", f"miou_{r}", f"mIoU {r}") for r in REGIONS]
    panels += [
        (m, "accuracy", f"{MODEL_NAMES[m]} accuracy")
        for m in ("gapnet-location", "gapnet-object")
        if _rows(results, m, "clean")
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.2), squeeze=False)
    for ax, (model, metric, title) in zip(axes[0], panels, strict=True):
        clean = _rows(results, model, "clean")[0][metric]["mean"]
        for curve in ("overall", "left", "right"):
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
        ax.set(xscale="log", xlabel="channels ablated N", title=title, ylim=(0, 1))
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
        kwargs = {} if cmap == "gray" else {"vmin": 0, "vmax": 19}
        image = np.asarray(image)
        if cmap != "gray":  # ignored pixels (255) are left blank
            image = np.ma.masked_greater(image, 19)
        ax.imshow(image, cmap=cmap, interpolation="nearest", **kwargs)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, workdir, "segmentation_example.png")
