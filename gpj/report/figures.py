"""Re-renders every figure committed under results/ from its result file, in place (PNG and
its SVG twin):

  python -m gpj.report.figures            # from the repository root; or: ... figures RESULTS_DIR

A committed figure is one of two kinds:

- `COPIES`: a figure of a result file kept as `results/<name>.json`, committed beside it as
  `results/<name>_<figure>.png` (the docs show these). The file's renderer draws its figures into
  a scratch folder, and the one named is copied into place with its `.svg`.
- `WORKDIRS`: a whole run folder kept as it ran (`results/paper30` and its parts). The renderer
  draws its figures into the folder itself, and the figure lines of the folder's report
  (`report.md`, or the paper's `scorecard.md`) are replaced by the new links and captions; no
  other line of the report changes, and no result file is written.

Each figure's caption (what its renderer says under it) is written to `results/captions.json`,
keyed by the figure's path under results/: the docs pages show it under the figure through
`<!-- caption: NAME -->` blocks (`gpj.report.readme`).

Only result files are read, so the figures change only when the figure code does.
"""

import json
import os
import re
import shutil
import sys
import tempfile

from gpj import report
from gpj import results as results_file
from gpj.report.common import figure_links, vector_twin

# results/<committed figure>: (the result file it is drawn from, the figure its renderer writes)
COPIES = {
    "paper_attack_attack_curves.png": ("paper_attack.json", "attack_curves.png"),
    "paper_attack_score_histograms.png": ("paper_attack.json", "score_histograms.png"),
    "paper_attack_segmentation_example.png": ("paper_attack.json", "segmentation_example.png"),
    "paper_invariance_accuracy_vs_shift.png": ("paper_invariance.json", "accuracy_vs_shift.png"),
    "paper_invariance_training_curves.png": ("paper_invariance.json", "training_curves.png"),
    "paper_probe_per_cell_accuracy.png": ("paper_probe.json", "per_cell_accuracy.png"),
    "paper_probe_training_curves.png": ("paper_probe.json", "training_curves.png"),
    "paper_probe_tuning_maps.png": ("paper_probe.json", "tuning_maps.png"),
    "paper_probe_circular_per_cell_accuracy.png": (
        "paper_probe_circular.json",
        "per_cell_accuracy.png",
    ),
    "paper_probe_circular_training_curves.png": (
        "paper_probe_circular.json",
        "training_curves.png",
    ),
    "paper_shuffle_depth.png": ("paper_shuffle_depth.json", "shuffle_depth.png"),
    "paper_shuffle_layer_1_per_cell_accuracy.png": (
        "paper_shuffle_layer_1.json",
        "per_cell_accuracy.png",
    ),
    "paper_shuffle_layer_5_per_cell_accuracy.png": (
        "paper_shuffle_layer_5.json",
        "per_cell_accuracy.png",
    ),
    "paper_shuffle_layer_5_training_curves.png": (
        "paper_shuffle_layer_5.json",
        "training_curves.png",
    ),
    "probe_official_length_curves.png": ("probe_official_length.json", "training_curves.png"),
}
# Run folders under results/ whose every figure is drawn in place from their results.json.
WORKDIRS = (
    "paper30",
    "paper30/probe",
    "paper30/probe_circular",
    "paper30/invariance",
    *(f"paper30/shuffle_layer_{k}" for k in range(1, 5)),
)
CAPTIONS = "captions.json"  # results/<this>: every committed figure's caption, by its path
FIGURE_LINE = re.compile(r"^!\[[^\]]*\]\([^)]*\.png\)$")  # what `figure_links` writes
CAPTION_LINE = re.compile(r"^(\*.*\* )?\(\[vector: [^\]]*\]\([^)]*\.svg\)\)$")


def load(path: str) -> dict:
    return results_file.read(path)


def draw(results: dict, workdir: str, parts: str) -> list:
    """The renderer's figures of `results`, drawn into `workdir`; a paper scorecard's chance
    levels come from its parts' result files in `parts`."""
    renderer = report.RENDERERS[results["experiment"]]
    if results["experiment"] == "paper":
        return renderer.figures(results, workdir, parts=parts)
    return renderer.figures(results, workdir)


def relink(text: str, figures) -> str:
    """`text` (a report) with its block of figure lines (image links, captions, blank lines
    between them) replaced by `figure_links(figures)`.

    Raises:
      ValueError: the report has no figure lines, or other text among them.
    """
    lines = text.split("\n")
    marked = {
        i for i, line in enumerate(lines) if FIGURE_LINE.match(line) or CAPTION_LINE.match(line)
    }
    if not marked:
        raise ValueError("the report has no figure lines")
    first, last = min(marked), max(marked)
    if any(lines[i].strip() and i not in marked for i in range(first, last + 1)):
        raise ValueError("the report's figure lines are not one block")
    return "\n".join([*lines[:first], figure_links(figures), *lines[last + 1 :]])


def copy_figures(root: str, captions: dict) -> list:
    """Draws every figure of `COPIES` and copies it (and its SVG twin) into place; their
    captions go into `captions`."""
    written = []
    sources = {}
    for target, (source, figure) in COPIES.items():
        sources.setdefault(source, []).append((target, figure))
    for source, targets in sources.items():
        with tempfile.TemporaryDirectory() as scratch:
            drawn = draw(load(os.path.join(root, source)), scratch, parts=root)
            for target, figure in targets:
                if figure not in drawn:
                    raise ValueError(f"{source} draws no {figure} (it draws {drawn})")
                captions[target] = drawn[drawn.index(figure)].caption
                for name, into in ((figure, target), (vector_twin(figure), vector_twin(target))):
                    shutil.copyfile(os.path.join(scratch, name), os.path.join(root, into))
                    written.append(os.path.join(root, into))
    return written


def draw_workdirs(root: str, captions: dict) -> list:
    """Draws every figure of each `WORKDIRS` folder in place and relinks its report; the
    figures' captions go into `captions`."""
    written = []
    for folder in WORKDIRS:
        workdir = os.path.join(root, folder)
        results = load(os.path.join(workdir, "results.json"))
        drawn = draw(results, workdir, parts=workdir)
        written += [os.path.join(workdir, n) for f in drawn for n in (f, vector_twin(f))]
        captions.update({f"{folder}/{f}": f.caption for f in drawn})
        path = report.path(results, workdir)
        with open(path) as f:
            text = f.read()
        relinked = relink(text, drawn)
        if relinked != text:
            with open(path, "w") as f:
                f.write(relinked)
            written.append(path)
    return written


def unproduced(root: str, written) -> list:
    """The PNGs under `root` that no result file here draws."""
    found = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(root)
        for name in names
        if name.endswith(".png")
    ]
    return sorted(set(found) - set(written))


def main(argv) -> int:
    if len(argv) > 1 or (argv and not os.path.isdir(argv[0])):
        print("usage: python -m gpj.report.figures [RESULTS_DIR]", file=sys.stderr)
        return 2
    root = argv[0] if argv else "results"
    captions = {}
    written = copy_figures(root, captions) + draw_workdirs(root, captions)
    with open(os.path.join(root, CAPTIONS), "w") as f:
        json.dump(dict(sorted(captions.items())), f, indent=1, ensure_ascii=False)
        f.write("\n")
    written.append(os.path.join(root, CAPTIONS))
    for path in written:
        print(path)
    for path in unproduced(root, written):
        print(f"{path}: no result file draws it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
