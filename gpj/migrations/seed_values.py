"""Adds the per-seed `values` that `stats.describe` records since issue 31 to result files
written before it, from the files' own runs, without changing any stored number:

  python -m gpj.migrations.seed_values results   # run once over results/; the files are committed

An experiment's summaries are recomputed from its runs (`runner.at_seeds` with all its seeds); a
paper scorecard's claim rows and shuffle-depth rows are recomputed from its parts' result files
(`<part>/results.json` beside it, or `paper_<part>.json` as results/ keeps them). A summary takes
the fresh values only where the fresh one has the same n and mean as the stored one, so a part
file that is not the one the scorecard was made from adds nothing.
"""

import glob
import json
import math
import os
import sys

from gpj.analysis import claims
from gpj.experiments import runner
from gpj.report import paper as report_paper
from gpj.report.common import write_json


def add_values(stored, fresh) -> int:
    """Copies `values` from each summary of `fresh` into the stored summary at the same place with
    the same n and mean; returns how many it filled."""
    if isinstance(stored, list) and isinstance(fresh, list) and len(stored) == len(fresh):
        return sum(add_values(s, f) for s, f in zip(stored, fresh, strict=True))
    if not (isinstance(stored, dict) and isinstance(fresh, dict)):
        return 0
    if {"mean", "n"} <= stored.keys() and "values" not in stored and "values" in fresh:
        same = stored["n"] == fresh.get("n") and math.isclose(
            stored["mean"], fresh.get("mean", math.nan), rel_tol=1e-9, abs_tol=1e-12
        )
        if same:
            stored["values"] = fresh["values"]
            return 1
        return 0
    return sum(add_values(stored[k], fresh[k]) for k in stored.keys() & fresh.keys())


def _scorecard(path: str, results: dict) -> int:
    parts = report_paper.part_files(results, os.path.dirname(path))
    filled = 0
    for row in results["claims"]:
        n = max(d["n"] for d in row["differences"].values())
        for claim, name, _, decision in claims.ROWS:
            if (claim, name) == (row["claim"], row["part"]) and name in parts:
                fresh = decision(runner.at_seeds(parts[name], n))
                filled += add_values(row["differences"], fresh["differences"])
    if results.get("shuffle_depth") and parts:
        seeds = {name: len(part["seeds"]) for name, part in parts.items()}
        outcome = {name: runner.at_seeds(part, seeds[name]) for name, part in parts.items()}
        filled += add_values(results["shuffle_depth"], claims.shuffle_depth(outcome))
    return filled


def migrate(path: str) -> int:
    """Fills the per-seed values of one result file in place; returns how many it filled."""
    with open(path) as f:
        results = json.load(f)
    if results.get("experiment") == "paper":
        filled = _scorecard(path, results)
    elif "runs" in results and "seeds" in results:
        fresh = runner.at_seeds(results, len(results["seeds"]))
        filled = add_values(results, fresh)
    else:
        return 0
    if filled:
        write_json(results, path)
    return filled


def main(argv) -> int:
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: python -m gpj.migrations.seed_values RESULTS_DIR", file=sys.stderr)
        return 2
    for path in sorted(glob.glob(os.path.join(argv[0], "**", "*.json"), recursive=True)):
        print(f"{path}: {migrate(path)} summaries given their values")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
