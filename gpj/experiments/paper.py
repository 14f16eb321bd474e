"""The paper's five claims at embedded scale: the probe (zero and circular padding, and by
shuffle depth), invariance and attack experiments run as parts, each in its own folder of the
workdir with its own results and report, then decided in a scorecard (`gpj.analysis.claims`).
"""

import os
import re
import time

import jax

from gpj import report
from gpj.analysis import claims, sequential
from gpj.analysis.claims import ROWS
from gpj.configs.paper import HEADLINE_LAYER, PART_EXPERIMENTS, PARTS
from gpj.errors import BudgetReached, ConfigError
from gpj.experiments import runner
from gpj.experiments.part_times import PartTimes
from gpj.provenance import environment
from gpj.validation import check_range


def parts(config) -> list:
    """(name, config) of every part in `parts`, checked to be of the experiment its claims need."""
    names = tuple(config.get("parts") or ())
    if not names:
        raise ConfigError(f"parts is empty; give some of: {', '.join(PARTS)}")
    found = []
    for name in names:
        if name not in PARTS or names.count(name) > 1:
            raise ConfigError(
                f"parts entry {name!r} is "
                + ("repeated" if name in PARTS else "not a part")
                + f"; parts are some of: {', '.join(PARTS)}"
            )
        part = config[name]
        if part.get("experiment") != PART_EXPERIMENTS[name]:
            raise ConfigError(
                f"{name}.experiment={part.get('experiment')!r} must be {PART_EXPERIMENTS[name]!r}"
            )
        found.append((name, part))
    return found


def check_fields(config) -> None:
    """The sequential design's fields, then every part's (`runner.check_fields`)."""
    _each_part(config, runner.check_fields)


def check(config) -> dict:
    """The sequential design's fields, then every part's checks (`runner.check`). Returns
    {part: (its config, its checked kinds)}: each stage sets the config's `num_seeds`, which the
    kinds follow."""
    return _each_part(config, runner.check)


def _each_part(config, check_part) -> dict:
    """Checks `stages`, `alpha` and `max_minutes`, then each part's resolved config with
    `check_part`, an error naming the part (`probe.model.padding=...`); {part: (config, found)}."""
    try:
        sequential.check_stages(config.stages)
    except ValueError as e:
        raise ConfigError(f"stages={e}") from None
    check_range(config, "alpha", 1e-6, 0.5)
    check_range(config, "max_minutes", 0.0, float("inf"))
    checked = {}
    for name, part in parts(config):
        part = part.copy_and_resolve_references()
        try:
            checked[name] = (part, check_part(part))
        except ConfigError as e:
            field = re.match(r"[a-z_][a-z_.]*[=:]", str(e))
            raise ConfigError(f"{name}.{e}" if field else f"{name}: {e}") from e
    return checked


def run(config, workdir: str) -> dict:
    """Checks every part, then runs the group-sequential design (`gpj.analysis.sequential`):
    stage k brings every part with an undecided claim row to `stages[k]` seeds, in
    `<workdir>/<part>` (finished seeds load from their checkpoints; a part that already reached
    those seeds is loaded), then judges its open rows. At `max_minutes` it checkpoints the
    training seeds and stops cleanly, even inside a part; the same command resumes. Writes the
    scorecard."""
    checked = check(config)  # every part's checks before any training
    design = sequential.Design(tuple(config.stages), config.alpha)
    started = time.time()
    deadline = started + 60 * config.max_minutes if config.max_minutes else None
    times = PartTimes(workdir)
    outcome, loaded, judged, stopped = {}, {}, {}, None
    open_rows = [i for i, row in enumerate(ROWS) if row.part in checked]
    for stage, n in enumerate(design.stages, 1):
        todo = [name for name in checked if any(ROWS[i].part == name for i in open_rows)]
        if not todo:
            break
        times.announce(stage, design.stages, todo)
        for name in todo:
            part, declared = checked[name]
            part.num_seeds = n
            results = runner.finished(part, os.path.join(workdir, name))
            if results is not None:
                loaded.setdefault(name, []).append(stage)
                times.record(name, results["config"]["num_seeds"], results["wall_time_s"], False)
            else:
                begun = time.time()
                try:
                    results = runner.run(part, os.path.join(workdir, name), deadline, declared)
                except BudgetReached:
                    times.record(name, n, time.time() - begun)
                    stopped = {"stage": stage, "part": name}
                    break
                times.record(name, n, results["wall_time_s"])
            outcome[name] = runner.at_seeds(results, n)
            for i in [i for i in open_rows if ROWS[i].part == name]:
                judged[i], done = sequential.judge(ROWS[i].decide(outcome[name]), stage, design)
                if done:
                    open_rows.remove(i)
        if stopped:
            break
    rows = claims.scorecard(outcome, judged, open_rows)
    results = {
        "experiment": "paper",
        "config": config.to_dict(),
        "environment": environment(),
        "design": sequential.operating_characteristics(
            design, tuple(len(row["tests"]) for row in rows)
        ),
        "complete": stopped is None,
        "stopped": stopped,
        "parts": {name: f"{name}/results.json" for name in outcome},
        "part_wall_time_s": {name: times.total([name]) for name in outcome},
        "loaded_parts": loaded,
        "claims": rows,
        "shuffle_depth": claims.shuffle_depth(outcome),
        "headline_layer": HEADLINE_LAYER,
        # The parts' own times (a loaded part's from its run): what the scorecard took to make.
        "wall_time_s": times.total(outcome),
        "elapsed_s": time.time() - started,
    }
    if jax.process_index() == 0:
        report.write(results, workdir)
        if stopped:
            print(
                f"Stopped at the budget (max_minutes={config.max_minutes}) in stage "
                f"{stopped['stage']}'s part {stopped['part']}, its runs checkpointed; the same "
                "command resumes."
            )
    return results
