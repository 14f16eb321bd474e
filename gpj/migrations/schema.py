"""Brings every experiment's result file that an older gpj wrote up to the current schema
(`gpj.results.SCHEMA`), in a folder and its subfolders, one version at a time:

  python -m gpj.migrations.schema results   # run once over results/; the files are committed

1 -> 2 stamps the schema. 2 -> 3 turns each config's `evals` list into the map of evaluator
names to settings: the attack's `attack.*` go under `evals.attack`, and `eval.shift_step`,
`eval.consistency_*`, `eval.probe_grid` and `eval.probe_seed` under `evals.shift` and
`evals.position_probe` (`gpj.configs.evals.MOVED`, which the command line's one-line errors for
the old spellings read too); nothing else changes. A file of a later schema is
left alone and named; a rerun finds nothing left to do.
"""

import glob
import json
import os
import sys

from gpj import results as results_file
from gpj.configs.evals import MOVED


def evals_to_map(config: dict) -> None:
    """Schema 2 -> 3 in place, in `config` and every config inside it (a paper's parts, the
    attack's `classifier.probe`): each `evals` list becomes {name: settings}."""
    for value in list(config.values()):
        if isinstance(value, dict):
            evals_to_map(value)
    if not isinstance(config.get("evals"), list):
        return
    entries = {name: {} for name in config["evals"]}
    for old, new in MOVED.items():
        *parents, key = old.split(".")
        section = config
        for parent in parents:
            section = section.get(parent, {})
        if key not in section:
            continue
        value = section.pop(key)  # a moved field of an evaluator not listed was never read
        _, name, *setting = new.split(".")
        if name in entries and setting:
            entries[name][setting[0]] = value
        elif name in entries:
            entries[name] = value
    config["evals"] = entries


def migrate(path: str) -> bool:
    """Brings one result file up to the current schema; True if it changed."""
    with open(path) as f:
        results = json.load(f)
    if not isinstance(results, dict) or not isinstance(results.get("experiment"), str):
        return False  # not an experiment's results (a benchmark, the captions)
    found = results.get("schema", 1)
    if found > results_file.SCHEMA:
        print(f"{path}: schema {found} is newer than this gpj's {results_file.SCHEMA}; left alone")
        return False
    if found == results_file.SCHEMA:
        return False
    if found < 3:
        evals_to_map(results["config"])
    results_file.write(results, path)
    return True


def main(argv) -> int:
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: python -m gpj.migrations.schema RESULTS_DIR", file=sys.stderr)
        return 2
    for path in sorted(glob.glob(os.path.join(argv[0], "**", "*.json"), recursive=True)):
        if migrate(path):
            print(f"{path}: schema {results_file.SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
