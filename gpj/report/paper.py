"""The paper experiment's report: the claims scorecard (`scorecard.md`), linking each part's report."""

import os

import matplotlib.pyplot as plt
import numpy as np

from gpj import results as results_file
from gpj.analysis.claims import EQUIVALENCE_MARGIN, INCONCLUSIVE, SMALL_DROP
from gpj.report.common import (
    BOUNDS_NOTE,
    RATE,
    chance_line,
    environment_line,
    figure_links,
    interval_percent,
    legend_below,
    markdown_table,
    pct_ci,
    pct_difference,
    save_figure,
    styled,
)

REPORT_NAME = "scorecard.md"
R2 = (float("-inf"), 1.0)  # a share of variance explained: at most 1, unbounded below
CLAIMS = {
    1: "Position survives global pooling, encoded channel-wise",
    2: "Semantics are largely not channel-order dependent",
    3: "AugShift improves translation invariance",
    4: "Segmentation relies on the overall position channels",
    5: "A region-specific attack degrades one region",
}


def _difference(name: str, described: dict, tested: bool) -> str:
    """A difference with its interval at the row's level (bold if tested, against the boundary;
    its smallest detectable effect when it ended inconclusive); in results from before every
    difference got the row's level, the context ones at 95 %."""
    if "interval" not in described:
        return f"{name}: {pct_difference(described)}"
    text = f"{name}: {pct_difference(described, 'interval')}"
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
    """The shuffle-depth table (unless `depth` is False), then the scorecard, a section per
    claim: what it measures, a table of its settings (with each run of `beside`, {name: another
    paper run's results}, verdict beside the row's), its paper-scale commands; then the rule."""
    beside = beside or {}
    elsewhere = {
        name: dict(zip(_keys(other), other["claims"], strict=True))
        for name, other in beside.items()
    }
    sections = {}  # claim -> (measured, rows, commands)
    for key, row in zip(_keys(results), results["claims"], strict=True):
        tested = {t["difference"] for t in row.get("tests", ())} or {  # older rows: no tests
            k for k, v in row["differences"].items() if "interval" in v
        }
        numbers = "<br>".join(_difference(k, v, k in tested) for k, v in row["differences"].items())
        verdict = _verdict(row) + (f"<br>{row['cpu']}, jax {row['jax']}" if "cpu" in row else "")
        cells = [row["setting"], numbers, verdict]
        if beside:
            cells.append(
                "<br>".join(
                    f"`{name}`: "
                    + (
                        _elsewhere(found, other)
                        if (found := elsewhere[name].get(key))
                        else "not run"
                    )
                    for name, other in beside.items()
                )
            )
        measured, rows, commands = sections.setdefault(row["claim"], ({}, [], {}))
        measured[row["measured"]] = commands[row["command"]] = None
        rows.append(cells)
    header = ["setting", "difference, points [interval]", "verdict"]
    header += ["in the other runs"] if beside else []
    scorecard = "".join(
        f"**Claim {claim}: {CLAIMS[claim]}.** Measured: {'; '.join(measured)}.\n\n"
        f"{markdown_table(header, rows)}\n\n"
        f"At paper scale: {', '.join(f'`{c}`' for c in commands)}.\n\n"
        for claim, (measured, rows, commands) in sorted(sections.items())
    )
    return (_depth_table(results) if depth else "") + scorecard + _rule(results)


def headline(runs: dict) -> str:
    """The front page's table: per claim, its first row in the first of `runs` ({name: (paper
    results, link to them)}, the current design first) that has the claim, with its verdict,
    tested differences (n, and each seed's value for n ≤ 3), how firm it is, and its run."""
    rows, first = {}, next(iter(runs))
    for name, (results, link) in runs.items():
        for row in results["claims"]:
            if row["claim"] in rows:
                continue
            tests = [t["difference"] for t in row.get("tests", ())]
            effect = "<br>".join(
                f"{t}: {pct_difference(row['differences'][t], 'interval')} "
                f"(n = {row['differences'][t]['n']})"
                for t in tests
            )
            firm = (
                f"stage {row['stage']} of {row['stages']}, {100 * row['confidence']:.2f} % interval"
            )
            if row.get("convergence"):
                firm += f"; {row['convergence'].removesuffix(', the rest at the budget')}"
            earlier = "" if name == first else " (earlier design)"
            rows[row["claim"]] = [
                f"{row['claim']}. {CLAIMS[row['claim']]}",
                f"**{row['verdict']}**",
                effect,
                f"{firm}; {row['cpu']}",
                f"[`{name}`]({link}){earlier}",
            ]
    header = ["claim", "verdict", "effect, points [interval]", "how firm", "run"]
    return markdown_table(header, [rows[claim] for claim in sorted(rows)])


def _keys(results: dict) -> list:
    """What identifies each scorecard row across runs: (claim, part)."""
    return [(row["claim"], row["part"]) for row in results["claims"]]


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
        return (
            f"Verdicts by one rule, fixed before the runs: {boundary} Seeds: {seeds}. Differences "
            f"in points: {BOUNDS_NOTE}."
        )
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
        f"α = {design['alpha']:g} per row. {_error_rates(design)} {_power(design)} "
        f"Differences in points: {BOUNDS_NOTE}.{status}"
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
        if not value:
            return "—"
        if key == "drop":
            return pct_difference(value)
        return pct_ci(value, bounds=R2 if key == "readable_r2" else RATE)

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
        + "\n\nTest accuracy and differences in %, mean [95 % t-interval] over seeds "
        f"({BOUNDS_NOTE}); layers 1-4 "
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


SHUFFLE_DEPTH_CAPTION = (
    "Test accuracy (%) of PermuteNet (a fresh channel permutation at every pass) and of the "
    "fixed permutation against the layer the channels are permuted at (1–4: before that ResNet "
    "stage, 5: after global pooling), location task left and object task right: the mean over "
    "{n} seed(s) with its 95 % t-interval; dashed: chance ({chance})."
)
DEPTH_HEADS = (
    ("permutenet", "PermuteNet", "C1", "o"),
    ("fixedperm", "fixed permutation", "C2", "s"),
)


def figures(results, workdir, parts: str | None = None) -> list:
    """Accuracy against shuffle depth, PermuteNet beside the fixed permutation, per task;
    chance from the parts' result files in `parts` (default: the workdir)."""
    if not results.get("shuffle_depth"):
        return []
    chance = part_chance(results, parts or workdir)
    caption = SHUFFLE_DEPTH_CAPTION.format(
        n=_depth_seeds(results["shuffle_depth"]),
        chance=", ".join(f"{task} {100 * c:.1f} %" for task, c in chance.items()),
    )
    return [save_figure(shuffle_depth(results, chance), workdir, "shuffle_depth.png", caption)]


def part_files(results, folder: str) -> dict:
    """{part: its results} of the paper run `results`, for each part whose result file is in
    `folder`: `<part>/results.json` as the run wrote it, or `paper_<part>.json` as results/
    keeps them."""
    found = {}
    for name, relative in results["parts"].items():
        for candidate in (relative, f"paper_{name}.json"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                found[name] = results_file.read(path)
                break
    return found


def part_chance(results, folder: str) -> dict:
    """Chance accuracy per task ({task: fraction}) as the first probe part's result file in
    `folder` states it (`part_files`); without one, location's from the shuffle-depth parts'
    grid size (1/G²)."""
    for part in part_files(results, folder).values():
        if part.get("experiment") == "probe":
            return dict(part["chance"])
    grids = [
        results["config"][name]["data"]["grid_size"]
        for name in results["parts"]
        if name.startswith("shuffle_layer") and name in results["config"]
    ]
    return {"location": 1 / grids[0] ** 2} if grids else {}


def _depth_seeds(depth) -> int:
    return max(v["n"] for r in depth for task in r["accuracy"].values() for v in task.values())


@styled
def shuffle_depth(results, chance: dict | None = None):
    """The shuffle-depth figure: per task, accuracy against shuffle layer for PermuteNet and
    the fixed permutation, mean and 95 % t-interval over seeds; `chance`: {task: fraction}."""
    depth = results["shuffle_depth"]
    chance = chance or {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0), sharey=True, layout="constrained")
    for ax, task in zip(axes, ("location", "object"), strict=True):
        for i, (head, label, colour, marker) in enumerate(DEPTH_HEADS):
            rows = [r for r in depth if head in r["accuracy"].get(task, {})]
            if not rows:
                continue
            mean, low, high = np.transpose(
                [interval_percent(r["accuracy"][task][head]) for r in rows]
            )
            ax.errorbar(
                np.asarray([r["layer"] for r in rows]) + 0.08 * (2 * i - 1),  # side by side
                mean,
                yerr=[mean - low, high - mean],
                label=label,
                color=colour,
                marker=marker,
                capsize=3,
            )
        chance_line(ax, chance.get(task))
        ax.set(
            title=f"{task} task",
            xlabel="shuffle layer (1–4: before ResNet stage k; 5: after GAP)",
            ylabel="test accuracy (%)",
            xticks=range(1, 6),
            ylim=(0, 102),
        )
        ax.yaxis.set_tick_params(labelleft=True)
    fig.suptitle(
        "Claim 2 by shuffle depth: PermuteNet against the fixed permutation "
        f"(mean ± 95 % t-interval over {_depth_seeds(depth)} seed(s))"
    )
    legend_below(fig, columns=3)
    return fig
