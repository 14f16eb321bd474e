"""Names the part of each claim row in paper scorecards written before rows named it, so that
the renderers read every row's part from the row itself:

  python -m gpj.migrations.row_parts results   # run once over results/; the files are committed

Such a scorecard's rows are in the order of `ORDER` among the parts it ran (the order the paper
experiment then wrote them in). Nothing else in a file changes.
"""

import glob
import json
import os
import sys

from gpj.report.common import write_json

ORDER = (  # the parts of an unnamed scorecard's rows, in the order they were written
    "probe",
    "probe_circular",
    "probe",
    "probe_circular",
    *(f"shuffle_layer_{k}" for k in range(1, 6)),
    "invariance",
    "attack",
    "attack",
)


def name_parts(results: dict) -> bool:
    """Sets `part` on every claim row of a scorecard whose rows have none; whether it did.

    Raises:
      ValueError: some rows name their part and others do not, or the row count does not match
        the parts the scorecard ran.
    """
    rows = results["claims"]
    named = sum("part" in row for row in rows)
    if named == len(rows):
        return False
    order = [part for part in ORDER if part in results["parts"]]
    if named or len(order) != len(rows):
        raise ValueError(
            f"{named} of {len(rows)} rows name their part, and the parts run give {len(order)} "
            "rows: not a layout this migration knows"
        )
    for row, part in zip(rows, order, strict=True):
        row["part"] = part
    return True


def main(argv) -> int:
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: python -m gpj.migrations.row_parts RESULTS_DIR", file=sys.stderr)
        return 2
    for path in sorted(glob.glob(os.path.join(argv[0], "**", "*.json"), recursive=True)):
        with open(path) as f:
            results = json.load(f)
        if results.get("experiment") == "paper" and name_parts(results):
            write_json(results, path)
            print(f"{path}: its rows name their parts")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
