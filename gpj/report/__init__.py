"""results.json -> report.md (markdown tables) and figures (png) in the workdir."""

import os

from gpj.report import attack, invariance, probe
from gpj.report.common import write_json

RENDERERS = {"probe": probe, "invariance": invariance, "attack": attack}


def table(results: dict) -> str:
    """The headline table of an experiment's results (markdown)."""
    return RENDERERS[results["experiment"]].table(results)


def write(results: dict, workdir: str) -> None:
    """Writes results.json, report.md and figures into the workdir."""
    renderer = RENDERERS[results["experiment"]]
    write_json(results, os.path.join(workdir, "results.json"))
    text = renderer.markdown(results, renderer.figures(results, workdir))
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write(text)
