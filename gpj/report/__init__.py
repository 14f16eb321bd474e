"""results.json -> report.md (markdown tables) and figures (png) in the workdir."""

import os

from gpj import results as results_file
from gpj.report import attack, invariance, paper, probe

RENDERERS = {"probe": probe, "invariance": invariance, "attack": attack, "paper": paper}


def path(results: dict, workdir: str) -> str:
    """The report's file: `report.md`, or the renderer's own name (the paper's `scorecard.md`)."""
    name = getattr(RENDERERS[results["experiment"]], "REPORT_NAME", "report.md")
    return os.path.join(workdir, name)


def table(results: dict) -> str:
    """The headline table of an experiment's results (markdown)."""
    return RENDERERS[results["experiment"]].table(results)


def write(results: dict, workdir: str) -> None:
    """Writes results.json, report.md and figures into the workdir."""
    renderer = RENDERERS[results["experiment"]]
    results_file.write(results, os.path.join(workdir, results_file.FILE))
    text = renderer.markdown(results, renderer.figures(results, workdir))
    with open(path(results, workdir), "w") as f:
        f.write(text)
