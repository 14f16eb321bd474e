"""Every figure gpj writes is printable: built from the committed result files, each is read
back as a matplotlib Figure (titles, axis labels, chance lines, colour bars, a legend off the
data), written with its SVG twin, and linked with a caption in the report."""

import copy
import glob
import json
import os

import matplotlib.pyplot as plt
import pytest

from gpj.report import attack, figures, invariance, paper, probe, scores
from gpj.report.common import FigureFile, curves, figure_links, save_figure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "results")
PROBES = (
    "paper_probe.json",
    "paper_probe_circular.json",
    "paper_shuffle_layer_1.json",
    "probe_official_length.json",
    "paper30/shuffle_layer_2/results.json",
)


def load(name: str) -> dict:
    with open(os.path.join(RESULTS, name)) as f:
        return json.load(f)


def colour_bar_axes(fig) -> set:
    return {im.colorbar.ax for ax in fig.axes for im in ax.get_images() if im.colorbar}


def data_axes(fig) -> list:
    bars = colour_bar_axes(fig)
    return [ax for ax in fig.axes if ax not in bars]


def chance_lines(ax) -> list:
    return [line for line in ax.get_lines() if line.get_label() == "chance"]


def check(fig, accuracy_chance: bool = False, map_chance: bool = False) -> None:
    """The checks every figure passes; with `accuracy_chance`, every accuracy axis has a chance
    line; with `map_chance`, every colour bar of the maps marks chance."""
    root = fig.figure  # the top figure of a subfigure's axes too
    assert data_axes(fig)
    for ax in data_axes(fig):
        where = ax.get_figure()
        assert ax.get_title() or root.get_suptitle() or where.get_suptitle(), ax
        assert ax.get_xlabel() or where.get_supxlabel(), ax.get_title()
        assert ax.get_ylabel() or where.get_supylabel(), ax.get_title()
        if accuracy_chance and "accuracy" in ax.get_ylabel():
            assert chance_lines(ax), ax.get_title()
    images = [im for ax in fig.axes for im in ax.get_images()]
    with_bar = [im for im in images if im.colorbar]
    for im in images:  # its own colour bar, or one of an image on the same scale
        assert any(
            other.cmap.name == im.cmap.name
            and (
                other.norm is im.norm
                or (other.norm.vmin, other.norm.vmax) == (im.norm.vmin, im.norm.vmax)
            )
            for other in with_bar
        ), im.axes.get_title()
    if map_chance:
        assert colour_bar_axes(fig) and all(chance_lines(bar) for bar in colour_bar_axes(fig))
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_legend() is None, "a legend inside the axes"
    for legend in fig.legends:  # off the data
        box = legend.get_window_extent()
        assert not any(box.overlaps(ax.get_window_extent()) for ax in data_axes(fig))
    plt.close(fig)


@pytest.mark.parametrize("name", PROBES)
def test_probe_figures(name, tmp_path):
    results = load(name)
    assert results["experiment"] == "probe"
    check(probe.per_cell(results), map_chance=True)
    levels = probe.chance(results)
    assert levels == pytest.approx(
        {"location": 1 / results["config"]["data"]["grid_size"] ** 2, "object": 0.1}
    )
    fig = curves(
        results, lambda r: probe.head_name(results, r["head"]), lambda r: r["task"], levels
    )
    check(fig, accuracy_chance=True)
    if probe._scored(results):
        check(scores.tuning_maps(probe._scored(results)))
    written(probe.figures(results, str(tmp_path)), tmp_path)


def test_per_cell_panels_name_head_layer_and_task():
    results = load("paper_shuffle_layer_1.json")
    fig = probe.per_cell(results)
    titles = [ax.get_title() for ax in data_axes(fig)]
    assert any("PermuteNet" in t and "layer 1" in t and "object" in t for t in titles)
    assert all("n = " in t for t in titles)
    plt.close(fig)


def test_invariance_figures(tmp_path):
    results = load("paper_invariance.json")
    assert results["experiment"] == "invariance"
    check(invariance.shift(results), accuracy_chance=True)
    check(curves(results, lambda r: r["variant"], chance=0.1), accuracy_chance=True)
    written(invariance.figures(results, str(tmp_path)), tmp_path)


def test_training_curves_group_seeds_into_one_line_per_kind():
    results = load("paper_invariance.json")
    fig = curves(results, lambda r: r["variant"], chance=0.1)
    kinds = {r["variant"] for r in results["runs"]}
    first = data_axes(fig)[0]
    assert {line.get_label() for line in first.get_lines()} == kinds
    assert len(first.collections) == len(kinds)  # a band per kind, over its seeds
    plt.close(fig)


def test_attack_figures(tmp_path):
    results = load("paper_attack.json")
    assert results["experiment"] == "attack"
    fig = attack.attack_curves(results)
    check(fig)
    grid = data_axes(fig)[0].get_subplotspec().get_gridspec()
    assert grid.nrows == 2 and grid.ncols == 3  # a row per model: readable at page width
    assert all(ax.get_ylim()[1] > 50 for ax in data_axes(fig))  # percent, not fractions
    fig = attack.segmentation_example(results)
    check(fig)
    n = attack._example_run(results)["example"]["n"]
    assert f"N = {n}" in fig.get_suptitle()
    (classes,) = [bar for bar in colour_bar_axes(fig) if bar.get_ylabel() == "class"]
    assert "background" in [t.get_text() for t in classes.get_yticklabels()]
    plt.close(fig)
    first = attack._first_seed(results)
    check(scores.histograms({attack.RUN_LABELS[r["model"]]: r["scores"] for r in first}))
    names = attack.figures(results, str(tmp_path))
    written(names, tmp_path)
    example = next(f for f in names if f == "segmentation_example.png")
    assert f"N = {n}" in example.caption


def test_attack_classifier_panels_have_chance(tmp_path):
    """Classifier rows (accuracy, chance 1/G² or 1/classes) beside the segmentation rows."""
    results = copy.deepcopy(load("paper_attack.json"))
    for row in [s for s in results["summary"] if s["model"] == "segmentation-position_needed"]:
        for model in attack.CLASSIFIERS:
            results["summary"].append({**row, "model": model, "accuracy": row["miou_all"]})
    results["dataset"]["num_classes"] = 10
    fig = attack.attack_curves(results)
    check(fig, accuracy_chance=True)
    levels = {
        ax.get_title(): chance_lines(ax)[0].get_ydata()[0]
        for ax in data_axes(fig)
        if chance_lines(ax)
    }
    assert sorted(levels.values()) == pytest.approx([10.0, 100 / 9])
    plt.close(fig)


@pytest.mark.parametrize(
    "name, parts", [("paper_shuffle_depth.json", ""), ("paper30/results.json", "paper30")]
)
def test_paper_shuffle_depth_figure(name, parts, tmp_path):
    results = load(name)
    assert results["experiment"] == "paper"
    chance = paper.part_chance(results, os.path.join(RESULTS, parts))
    assert chance == pytest.approx({"location": 1 / 9, "object": 0.1})
    check(paper.shuffle_depth(results, chance), accuracy_chance=True)
    names = paper.figures(results, str(tmp_path), parts=os.path.join(RESULTS, parts))
    written(names, tmp_path)


def written(names, folder) -> None:
    """Each figure file and its SVG twin exist, and the report shows its caption and links the
    twin."""
    links = figure_links(names)
    for name in names:
        stem = os.path.splitext(name)[0]
        assert (folder / name).stat().st_size > 1000
        assert (folder / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
        assert name.caption and f"![{stem}]({name})\n\n*{name.caption}* " in links
        assert f"]({stem}.svg))" in links


def test_save_figure_writes_png_and_svg_and_returns_the_png_name(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    name = save_figure(fig, str(tmp_path), "a.png", "A line.")
    assert name == "a.png" and name.caption == "A line."
    assert (tmp_path / "a.png").is_file() and (tmp_path / "a.svg").is_file()
    assert figure_links([name, "b.png"]) == (
        "![a](a.png)\n\n*A line.* ([vector: a.svg](a.svg))\n\n![b](b.png)\n\n([vector: b.svg](b.svg))"
    )


def test_relink_replaces_only_the_figure_lines():
    old = "# R\n\n## Figures\n\n![a](a.png)\n![b](b.png)\n\nEnvironment: x.\n"
    name = FigureFile("a.png")
    name.caption = "Caption a."
    new = figures.relink(old, [name])
    assert new == "# R\n\n## Figures\n\n" + figure_links([name]) + "\n\nEnvironment: x.\n"
    assert figures.relink(new, [name]) == new  # idempotent
    with pytest.raises(ValueError):
        figures.relink("# R\n\nno figures\n", [name])


def test_every_committed_figure_has_a_source_and_an_svg_twin():
    for target, (source, _) in figures.COPIES.items():
        assert os.path.isfile(os.path.join(RESULTS, source)), source
        assert os.path.isfile(os.path.join(RESULTS, target)), target
    for folder in figures.WORKDIRS:
        assert os.path.isfile(os.path.join(RESULTS, folder, "results.json"))
    for png in glob.glob(os.path.join(RESULTS, "**", "*.png"), recursive=True):
        assert os.path.isfile(png[: -len(".png")] + ".svg"), png
