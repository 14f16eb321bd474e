"""The one owner of `results.json`: every experiment's results are written and read here.

A file carries its layout's version in `"schema"`; `read` refuses any other version with one
line naming the migration that brings a file written by an older gpj up to date
(`python -m gpj.migrations.schema DIR`, run once over `results/` and committed).

Schema versions:
  1: no `schema` field (before issue 32).
  2: `schema` stamped by `write`.
  3: the config's `evals` maps each evaluator to its settings (`attack.*` and the shift and
     position-probe fields of `eval.*` moved there).
"""

import json
import os

from gpj.errors import GpjError

SCHEMA = 3
FILE = "results.json"  # in a workdir


class ResultsError(GpjError):
    """A results file is missing, not JSON, or of another schema."""


def write(results: dict, path: str) -> None:
    """Writes `results` to `path` with the current `schema`, atomically: a reader never sees half
    a file, and a killed write leaves the old file whole."""
    stamped = {"experiment": results["experiment"], "schema": SCHEMA}
    stamped.update((key, value) for key, value in results.items() if key != "schema")
    with open(path + ".tmp", "w") as f:
        json.dump(stamped, f, indent=1)
    os.replace(path + ".tmp", path)


def read(path: str) -> dict:
    """The results in `path` (a file, or a workdir holding `results.json`).

    Raises:
      ResultsError: one line: the file is missing, is not JSON, or is of another schema.
    """
    if os.path.isdir(path):
        path = os.path.join(path, FILE)
    try:
        with open(path) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ResultsError(f"cannot read {path} ({e})") from e
    found = results.get("schema", 1) if isinstance(results, dict) else None
    if found != SCHEMA:
        raise ResultsError(
            f"{path} is results schema {found}, and this gpj reads schema {SCHEMA}; bring it up "
            f"to date once with: python -m gpj.migrations.schema {os.path.dirname(path) or '.'}"
        )
    return results
