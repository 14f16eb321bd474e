"""The paper experiment's report: the claims scorecard (`scorecard.md`), linking each part's report."""

import matplotlib.pyplot as plt
import numpy as np

from gpj.analysis.claims import EQUIVALENCE_MARGIN, INCONCLUSIVE, SMALL_DROP
from gpj.report.common import (
    environment_line,
    figure_links,
    markdown_table,
    pct_ci,
    save_figure,
)

REPORT_NAME = "scorecard.md"
CLAIMS = {
    1: "Position survives global pooling, encoded channel-wise",
    2: "Semantics are largely not channel-order dependent",
    3: "AugShift improves translation invariance",
    4: "Segmentation relies on the overall position channels",
    5: "A region-specific attack degrades one region",
}


def _points(described, key: str = "ci95") -> str:
    text = f"{100 * described['mean']:+.1f}"
    if described.get(key):
        low, high = described[key]
        text += f" [{100 * low:+.1f}, {100 * high:+.1f}]"
    return text


def _difference(name: str, described: dict, tested: bool) -> str:
    """A difference with its interval at the row's level (bold if tested, against the boundary;
    its smallest detectable effect when it ended inconclusive); in results from before every
    difference got the row's level, the context ones at 95 %."""
    if "interval" not in described:
        return f"{name}: {_points(described)}"
    text = f"{name}: {_points(described, 'interval')}"
    if not tested:
        return text
    text = f"**{text}** (n = {described['n']})"
    if described.get("detectable") is not None:
        text += f", detectable ±{100 * described['detectable']:.1f} from the boundary"
    return text


def _verdict(row: dict) -> str:
    text = f"**{row['verdict']}**"
    leans = {row["differences"][t["difference"]].get("leans") for t in row.get("tests", ())}
    if row["verdict"] == INCONCLUSIVE and len(leans) == 1 and None not in leans:
        text += f", leaning {leans.pop()} the claim"
    if "stage" in row:
        margin = any("margin" in t for t in row.get("tests", ()))
        bound = f"margin ±{100 * row['boundary']:.0f}" if margin else "boundary"
        bound += "" if margin else f" {100 * row['boundary']:+.0f}"
        text += (
            f"<br>stage {row['stage']} of {row['stages']}, "
            f"{100 * row['confidence']:.2f} % interval, {bound}"
        )
    if row.get("convergence"):
        text += f"<br>({row['convergence']})"
    return text


def table(results: dict, beside: dict | None = None, depth: bool = True) -> str:
    """The shuffle-depth table (unless `depth` is False), then the scorecard: one row per claim
    and setting, and its rule; with `beside` ({name: another paper run's results}), each run's
    verdicts in a column of their own."""
    beside = beside or {}
    elsewhere = {
        name: dict(zip(_keys(other), other["claims"], strict=True))
        for name, other in beside.items()
    }
    rows = []
    for key, row in zip(_keys(results), results["claims"], strict=True):
        tested = {t["difference"] for t in row.get("tests", ())} or {  # older rows: no tests
            k for k, v in row["differences"].items() if "interval" in v
        }
        numbers = "<br>".join(_difference(k, v, k in tested) for k, v in row["differences"].items())
        cells = [
            f"{row['claim']}. {CLAIMS[row['claim']]}",
            row["setting"],
            row["measured"],
            numbers,
            _verdict(row) + (f"<br>{row['cpu']}, jax {row['jax']}" if "cpu" in row else ""),
        ]
        for name, other in beside.items():
            found = elsewhere[name].get(key)
            cells.append(_elsewhere(found, other) if found else "not in that run")
        cells.append(f"`{row['command']}`")
        rows.append(cells)
    header = ["claim", "setting", "measured", "difference, points [interval]", "verdict"]
    header += [f"verdict in `{name}`" for name in beside]
    header.append("paper-scale command")
    scorecard = markdown_table(header, rows) + "\n\n" + _rule(results)
    return (_depth_table(results) if depth else "") + scorecard


# The parts of the scorecard rows, in order, of result files from before rows named their part.
_UNNAMED_ROW_PARTS = (
    "probe",
    "probe_circular",
    "probe",
    "probe_circular",
    *(f"shuffle_layer_{k}" for k in range(1, 6)),
    "invariance",
    "attack",
    "attack",
)


def _keys(results: dict) -> list:
    """What identifies each scorecard row across runs: (claim, part). Rows from before they
    named their part are in the order of `_UNNAMED_ROW_PARTS` among the parts that ran."""
    order = [part for part in _UNNAMED_ROW_PARTS if part in results["parts"]]
    rows = results["claims"]
    parts = [r.get("part") for r in rows] if all("part" in r for r in rows) else order
    return [(r["claim"], part) for r, part in zip(rows, parts, strict=True)]


def _elsewhere(row: dict, results: dict) -> str:
    """Another run's verdict on a row, with its stage and where it ran (a row from before the
    sequential design: fixed n, the run's CPU and jax)."""
    env = results["environment"]
    cpu, jax_version = row.get("cpu", env["cpu"]), row.get("jax", env["packages"]["jax"])
    stage = f"stage {row['stage']}" if "stage" in row else "fixed n"
    return f"{row['verdict']} ({stage}, {cpu}, jax {jax_version})"


def _rule(results: dict) -> str:
    """The verdict rule and the design's operating characteristics, as the results state them."""
    design = results.get("design")
    tested = (
        "a tested difference's (bold) t-interval" if design else "the difference's 95 % t-interval"
    )
    boundary = (
        f"**supported** when {tested} (seeds as units, n − 1 degrees of freedom) lies wholly on "
        "the side the paper predicts, **not supported at this scale** when wholly on the other "
        f"side, else {'undecided' if design else '**inconclusive**'} (boundary 0; for claim 2, a "
        f"loss of {100 * SMALL_DROP:.0f} points)."
    )
    if any("margin" in t for row in results["claims"] for t in row.get("tests", ())):
        boundary += (
            f" An equivalence row (claim 1 under circular padding, margin ±"
            f"{100 * EQUIVALENCE_MARGIN:.0f} points, fixed before its runs) is **supported** when "
            "the interval lies wholly inside the margin, **not supported** when wholly outside."
        )
    if not design:  # a fixed-n scorecard from before the sequential design
        config = results["config"]
        seeds = ", ".join(f"{name} {config[name]['num_seeds']}" for name in results["parts"])
        return f"Verdicts by one rule, fixed before the runs: {boundary} Seeds: {seeds}."
    stages = ", ".join(map(str, design["stages"]))
    status = (
        ""
        if results.get("complete", True)
        else (
            f" **Stopped at the budget** before stage {results['stopped']['stage']}'s part "
            f"`{results['stopped']['part']}`; rows marked open continue when the same command "
            "is run again."
        )
    )
    return (
        f"Verdicts by one rule, fixed before the runs: {boundary} Seeds come in stages of "
        f"n = {stages} per part, added only to parts with an undecided row; a row decided at a "
        "stage keeps that verdict, and one undecided after the last stage is **inconclusive** "
        "(with the smallest effect its n could have detected at 80 % power). Each stage's "
        f"interval is at the nominal level 1 − α' = {100 * (1 - design['nominal_alpha']):.2f} "
        f"% ({design['method']}), so that with no effect the chance of any decisive verdict is "
        f"α = {design['alpha']:g} per row. {_error_rates(design)} {_power(design)}{status}"
    )


def _error_rates(design: dict) -> str:
    """The simulated false-verdict rates, each with its Monte Carlo error."""
    if "errors" not in design:  # results from before the rates were stated per family
        null = next(s for s in design["simulated"] if s["effect"] == 0.0)
        return f"In {null['studies']:,} simulated studies, {100 * null['decisive']:.2f} %."
    errors = design["errors"]

    def rate(key):
        return f"{100 * errors[key]['rate']:.2f} ± {100 * errors[key]['se']:.2f} %"

    text = (
        f"Simulated over {errors['studies']:,} studies with every true difference on its "
        "boundary (rate ± Monte Carlo standard error): a one-difference row gives a false "
        f"verdict {rate('row')} of the time, a two-difference row {rate('two_difference_row')}, "
        f"a part with two open rows {rate('part')}, and the scorecard's {errors['rows']} "
        f"row{'s' if errors['rows'] != 1 else ''}, "
        f"taken as independent, {rate('scorecard')}: the rule bounds each row's error, not the "
        "family's (an equivalence row counts as a boundary row at its margin, which bounds its "
        "rate)."
    )
    if len(design["stages"]) > 1:
        text += (
            " No verdict was read before the rule; had stage 1 also been read at a fixed 95 %, "
            f"as the earlier fixed-n scorecard's was, a row would err {rate('earlier')}."
        )
    return text


def _power(design: dict) -> str:
    sims = design.get("power") or [s for s in design["simulated"] if s["effect"]]
    power = "; ".join(
        f"at a true effect of {s['effect']:g} per-seed SD: decided {100 * s['decisive']:.1f} %, "
        f"{s['mean_seeds']:.1f} seeds on average"
        for s in sims
    )
    return f"Power, {power}."


def _depth_table(results: dict) -> str:
    """Claim 2 by shuffle depth as the paper lays it out (rows: shuffle layer), with PermuteNet
    beside the fixed permutation, the paired drop, the readable statistic and the budget count."""
    depth = results.get("shuffle_depth")
    if not depth:
        return ""
    headline = results.get("headline_layer")

    def cell(row, key, task, head=None):
        value = row[key].get(task)
        value = value and (value[head] if head else value)
        return pct_ci(value) if value else "—"

    rows = [
        [
            f"{r['layer']}" + (" (headline)" if r["layer"] == headline else ""),
            cell(r, "accuracy", "location", "permutenet"),
            cell(r, "accuracy", "location", "fixedperm"),
            cell(r, "accuracy", "object", "permutenet"),
            cell(r, "accuracy", "object", "fixedperm"),
            cell(r, "drop", "object"),
            *(
                " / ".join(cell(r, "readable_r2", t, head) for t in ("location", "object"))
                for head in ("permutenet", "fixedperm")
            ),
            f"{r['at_budget']} of {r['runs']}",
        ]
        for r in depth
    ]
    header = [
        "shuffle layer",
        "location: PermuteNet",
        "location: fixed perm.",
        "object: PermuteNet",
        "object: fixed perm.",
        "object drop (paired)",
        "readable R², PermuteNet (location / object)",
        "readable R², fixed perm. (location / object)",
        "runs at budget",
    ]
    return (
        "**Claim 2 by shuffle depth**\n\n"
        + markdown_table(header, rows)
        + "\n\nTest accuracy and differences in %, mean [95 % t-interval] over seeds; layers 1-4 "
        "permute before that ResNet stage, 5 after global pooling. Readable R²: the share of "
        "PermuteNet's test logit variance (averaged over permutation draws) that a ridge "
        "regression on what its shuffle layer leaves readable explains (channel sum at 5, "
        "channel-summed map before it), and the same for the fixed permutation's logits.\n\n"
    )


def markdown(results: dict, figures) -> str:
    links = "\n".join(
        f"- `{name}` ({results['part_wall_time_s'][name] / 60:.1f} min"
        + (
            ", loaded: it ran earlier in this workdir"
            if name in results.get("loaded_parts", ())
            else ""
        )
        + "): [report]"
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
                *([figure_links(figures)] if figures else []),
                environment_line(results),
            ]
        )
        + "\n"
    )


def figures(results, workdir) -> list:
    """Accuracy against shuffle depth, PermuteNet beside the fixed permutation, per task."""
    depth = results.get("shuffle_depth")
    if not depth:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, task in zip(axes, ("location", "object"), strict=True):
        for head, label in (("permutenet", "PermuteNet"), ("fixedperm", "fixed permutation")):
            rows = [r for r in depth if task in r["accuracy"]]
            means = np.array([r["accuracy"][task][head]["mean"] for r in rows])
            ci = [
                r["accuracy"][task][head].get("ci95") or [m, m]
                for r, m in zip(rows, means, strict=True)
            ]
            errors = np.abs(np.array(ci).T - means)
            ax.errorbar(
                [r["layer"] for r in rows],
                100 * means,
                100 * errors,
                label=label,
                marker="o",
                capsize=3,
            )
        ax.set(title=task, xlabel="shuffle layer (5 = after GAP)", xticks=range(1, 6))
    axes[0].set_ylabel("test accuracy % (95 % t-interval)")
    axes[0].set_ylim(0, 102)
    axes[1].legend(fontsize=8)
    return [save_figure(fig, workdir, "shuffle_depth.png")]
