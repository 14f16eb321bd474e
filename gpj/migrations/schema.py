"""Stamps `"schema": 2` (`gpj.results.SCHEMA`) on every experiment's result file that an older
gpj wrote (schema 1: no `schema` field), in a folder and its subfolders, changing nothing else:

  python -m gpj.migrations.schema results   # run once over results/; the files are committed

A file of a later schema is left alone and named; a rerun finds nothing left to do.
"""

import glob
import json
import os
import sys

from gpj import results as results_file


def migrate(path: str) -> bool:
    """Stamps the schema on one result file; True if it changed."""
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
