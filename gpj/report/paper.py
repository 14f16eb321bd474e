"""The paper experiment's report: the claims scorecard (`scorecard.md`), linking each part's report."""

from gpj.analysis.claims import SMALL_DROP
from gpj.report.common import environment_line, markdown_table

REPORT_NAME = "scorecard.md"
CLAIMS = {
    1: "Position survives global pooling, encoded channel-wise",
    2: "Semantics are largely not channel-order dependent",
    3: "AugShift improves translation invariance",
    4: "Segmentation relies on the overall position channels",
    5: "A region-specific attack degrades one region",
}


def _points(described) -> str:
    text = f"{100 * described['mean']:+.1f}"
    if described.get("ci95"):
        low, high = described["ci95"]
        text += f" [{100 * low:+.1f}, {100 * high:+.1f}]"
    return text


def table(results: dict) -> str:
    rows = []
    for row in results["claims"]:
        numbers = "<br>".join(f"{k}: {_points(v)}" for k, v in row["differences"].items())
        verdict = f"**{row['verdict']}**"
        if row.get("convergence"):
            verdict += f"<br>({row['convergence']})"
        rows.append(
            [
                f"{row['claim']}. {CLAIMS[row['claim']]}",
                row["setting"],
                row["measured"],
                numbers,
                verdict,
                f"`{row['command']}`",
            ]
        )
    header = ["claim", "setting", "measured", "difference, points [95 % t-interval]", "verdict"]
    header.append("paper-scale command")
    n = {name: c["num_seeds"] for name, c in results["config"].items() if isinstance(c, dict)}
    seeds = ", ".join(f"{name} {k}" for name, k in n.items())
    return (
        markdown_table(header, rows)
        + "\n\nVerdicts by one rule, fixed before the runs: **supported** when the difference's "
        "95 % t-interval (seeds as units, n − 1 degrees of freedom) lies wholly on the side the "
        "paper predicts, **not supported at this scale** when wholly on the other side, "
        "**inconclusive** when it contains the boundary (0; for claim 2, a loss of "
        f"{100 * SMALL_DROP:.0f} points). Seeds: {seeds}."
    )


def markdown(results: dict, figures) -> str:
    del figures
    links = "\n".join(
        f"- `{name}` ({results['part_wall_time_s'][name] / 60:.1f} min): [report]"
        f"({path.replace('results.json', 'report.md')}), [results]({path})"
        for name, path in results["parts"].items()
    )
    return (
        "\n\n".join(
            [
                "# The paper's claims at embedded scale",
                table(results),
                "## Parts",
                links,
                environment_line(results),
            ]
        )
        + "\n"
    )


def figures(results, workdir) -> list:
    del results, workdir
    return []
