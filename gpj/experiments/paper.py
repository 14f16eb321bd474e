"""The paper's five claims at embedded scale: the probe (zero and circular padding, and by
shuffle depth), invariance and attack experiments run as parts, each in its own folder of the
workdir with its own results and report, then decided in a scorecard (`gpj.analysis.claims`).
"""

import functools
import json
import os
import re
import time

import jax
from absl import logging

from gpj import report
from gpj.analysis import claims, sequential
from gpj.configs.paper import HEADLINE_LAYER, PARTS, SHUFFLE_LAYERS, SHUFFLE_PARTS
from gpj.errors import BudgetReached, ConfigError
from gpj.provenance import environment
from gpj.validation import check_range

EXPECTED = {
    "probe": "probe",
    "probe_circular": "probe",
    "invariance": "invariance",
    "attack": "attack",
    **{name: "probe" for name in SHUFFLE_PARTS},
}
COMMANDS = {  # the paper-scale command of each claim (GPU/TPU; the data prepared once)
    "probe": "python -m gpj.main --config=configs/probe.py:cifar10,controls "
    "--config.data.data_dir=~/tensorflow_datasets",
    "invariance": "python -m gpj.main --config=configs/invariance.py:cifar10 "
    "--config.data.data_dir=~/tensorflow_datasets",
    "probe_circular": "python -m gpj.main --config=configs/probe.py:cifar10,controls,circular "
    "--config.data.data_dir=~/tensorflow_datasets",
    "attack": "python -m gpj.main --config=configs/attack.py:cityscapes",
    **{
        name: "python -m gpj.main --config=configs/probe.py:cifar10,shuffle_depth "
        f"--config.model.shuffle_layer={layer} --config.data.data_dir=~/tensorflow_datasets"
        for name, layer in SHUFFLE_LAYERS.items()
    },
}


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
        if part.get("experiment") != EXPECTED[name]:
            raise ConfigError(
                f"{name}.experiment={part.get('experiment')!r} must be {EXPECTED[name]!r}"
            )
        found.append((name, part))
    return found


def validate(config) -> None:
    """The sequential design's fields: `stages`, `alpha`, `max_minutes`."""
    try:
        sequential.check_stages(config.stages)
    except ValueError as e:
        raise ConfigError(f"stages={e}") from None
    check_range(config, "alpha", 1e-6, 0.5)
    check_range(config, "max_minutes", 0.0, float("inf"))


def declare(config) -> list:
    """Every part's run kinds; a part's config error names the part (`probe.model.padding=...`)."""
    from gpj.experiments import EXPERIMENTS

    validate(config)
    declared = []
    for name, part in parts(config):
        try:
            declared += EXPERIMENTS[part.experiment].declare(part)
        except ConfigError as e:
            field = re.match(r"[a-z_][a-z_.]*[=:]", str(e))
            raise ConfigError(f"{name}.{e}" if field else f"{name}: {e}") from e
    return declared


def finished(part, workdir: str) -> dict | None:
    """The results of a part that already ran to the end in `workdir` with this config, or with
    it and more seeds (those results, restricted to this config's seeds: `at_seeds`); else None
    (then it runs, its finished seeds loaded from their checkpoints)."""
    path = os.path.join(workdir, "results.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        try:
            results = json.load(f)
        except json.JSONDecodeError as e:
            logging.warning("%s is not valid JSON (%s); the part runs again", path, e)
            return None
    wanted = json.loads(json.dumps(part.to_dict()))
    ran = results.get("config", {})
    same = {**ran, "num_seeds": wanted["num_seeds"]} == wanted
    return (
        at_seeds(results, part.num_seeds) if same and ran["num_seeds"] >= part.num_seeds else None
    )


def at_seeds(results: dict, n: int) -> dict:
    """A part's results restricted to its first `n` seeds, the fields derived from the runs
    recomputed by its experiment: what the part would have given with `n` seeds."""
    from gpj.experiments import EXPERIMENTS

    seeds = results["seeds"][:n]
    runs = [r for r in results["runs"] if r["seed"] in seeds]
    derived = EXPERIMENTS[results["experiment"]].derived(runs)
    return {**results, "seeds": seeds, "runs": runs, **derived}


class _Times:
    """Each part's measured times in `<workdir>/part_times.json`, per seed count it reached
    ({part: {n: seconds}}): what the scorecard took, and the expected time of a later stage."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, "part_times.json")
        self.seconds = {}
        if os.path.isfile(self.path):
            with open(self.path) as f:
                self.seconds = json.load(f)

    def record(self, name: str, n: int, seconds: float, add: bool = True) -> None:
        """Adds `seconds` spent bringing `name` to `n` seeds (a part stopped at a budget and
        resumed adds each share), or with `add=False` sets them if none are recorded yet (a part
        found finished)."""
        times = self.seconds.setdefault(name, {})
        if add or str(n) not in times:
            times[str(n)] = times.get(str(n), 0.0) * add + seconds
        if jax.process_index() == 0:
            report.write_json(self.seconds, self.path)

    def expected(self, name: str, n: int) -> float | None:
        """Seconds to bring part `name` to `n` seeds: its measured time per seed, times the seeds
        it lacks; None before it has run."""
        times = self.seconds.get(name)
        if not times:
            return None
        reached = max(int(k) for k in times)
        return sum(times.values()) / reached * max(0, n - reached)

    def total(self, names) -> float:
        return sum(sum(self.seconds.get(name, {}).values()) for name in names)


def run(config, workdir: str) -> dict:
    """Checks every part, then runs the group-sequential design (`gpj.analysis.sequential`):
    stage k brings every part with an undecided claim row to `stages[k]` seeds, in
    `<workdir>/<part>` (finished seeds load from their checkpoints; a part that already reached
    those seeds is loaded), then judges its open rows. At `max_minutes` it checkpoints the
    training seeds and stops cleanly, even inside a part; the same command resumes. Writes the
    scorecard."""
    from gpj.experiments import EXPERIMENTS, check

    check(config)  # every part's checks before any training
    design = sequential.Design(tuple(config.stages), config.alpha)
    started = time.time()
    deadline = started + 60 * config.max_minutes if config.max_minutes else None
    times, named = _Times(workdir), dict(parts(config))
    outcome, loaded, judged, stopped = {}, {}, {}, None
    open_rows = [i for i, row in enumerate(ROWS) if row[1] in named]
    for stage, n in enumerate(design.stages, 1):
        todo = [name for name in named if any(ROWS[i][1] == name for i in open_rows)]
        if not todo:
            break
        _announce(stage, design, todo, times)
        for name in todo:
            part = named[name].copy_and_resolve_references()
            part.num_seeds = n
            results = finished(part, os.path.join(workdir, name))
            if results is not None:
                loaded.setdefault(name, []).append(stage)
                times.record(name, results["config"]["num_seeds"], results["wall_time_s"], False)
            else:
                begun = time.time()
                try:
                    results = EXPERIMENTS[part.experiment].run(
                        part, os.path.join(workdir, name), deadline
                    )
                except BudgetReached:
                    times.record(name, n, time.time() - begun)
                    stopped = {"stage": stage, "part": name}
                    break
                times.record(name, n, results["wall_time_s"])
            outcome[name] = at_seeds(results, n)
            for i in [i for i in open_rows if ROWS[i][1] == name]:
                judged[i], done = sequential.judge(ROWS[i][3](outcome[name]), stage, design)
                if done:
                    open_rows.remove(i)
        if stopped:
            break
    rows = scorecard(outcome, judged, open_rows)
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
        "shuffle_depth": shuffle_depth(outcome),
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


def _announce(stage: int, design, todo: list, times: _Times) -> None:
    """Prints the stage's parts and their expected time, from their measured time per seed."""
    if jax.process_index() != 0:
        return
    n = design.stages[stage - 1]
    expected = {name: times.expected(name, n) for name in todo}
    known = [s for s in expected.values() if s is not None]
    parts_text = ", ".join(
        f"{name} ({'not measured yet' if s is None else f'~{s / 60:.0f} min'})"
        for name, s in expected.items()
    )
    if not known:
        total = "no part measured yet"
    else:
        total = f"expected ~{sum(known) / 60:.0f} min" + (
            " for the measured parts" if len(known) < len(todo) else ""
        )
    print(
        f"Stage {stage} of {len(design.stages)}: {n} seeds for {parts_text}; {total}",
        flush=True,
    )


def _depth_setting(layer: int) -> str:
    return (
        f"zero padding, shuffle layer {layer} (before ResNet stage {layer}): the layers after it "
        "can read the channel-summed map"
    )


ROWS = (  # (claim, part, setting, decision) in scorecard order
    (1, "probe", "zero padding: tests the claim", claims.channel_wise_position),
    (
        1,
        "probe_circular",
        "circular padding: no border, so no channel-order advantage is predicted (equivalence)",
        claims.no_border_no_advantage,
    ),
    (
        2,
        "probe",
        (
            f"zero padding, shuffle after GAP (layer {HEADLINE_LAYER}, the paper's headline and "
            "the official code's default): PermuteNet can read only the channel sum"
        ),
        claims.order_free_semantics,
    ),
    (
        2,
        "probe_circular",
        (
            f"circular padding, shuffle after GAP (layer {HEADLINE_LAYER}): no border cue; only "
            "the channel sum"
        ),
        claims.order_free_semantics,
    ),
    *(
        (2, name, _depth_setting(layer), claims.order_free_semantics)
        for name, layer in SHUFFLE_LAYERS.items()
    ),
    (
        3,
        "invariance",
        "against the plain baseline: the paper's claim",
        functools.partial(claims.augshift_invariance, control="baseline"),
    ),
    (
        3,
        "invariance",
        "against the two-view control (λ = 0): the consistency loss's own share",
        functools.partial(claims.augshift_invariance, control="two_view"),
    ),
    (4, "attack", "position-needed task, control B", claims.position_channels_needed),
    (5, "attack", "calibration ranking, control C", claims.region_specific_attack),
)


def scorecard(outcome: dict, judged: dict, open_rows: list) -> list:
    """One row per claim and setting whose part ran: what was measured, the differences, the
    verdict with its stage and n (a row still open at a budget stop says so), the CPU and jax
    version of its part's run, and the paper-scale command."""
    rows = []
    for i, (claim, name, setting, _) in enumerate(ROWS):
        if i not in judged:
            continue
        environment = outcome[name]["environment"]
        row = {"claim": claim, "part": name, "setting": setting, **judged[i]}
        row["command"] = COMMANDS[name]
        if i in open_rows:  # stopped at the budget before its next stage
            row["verdict"] = "open"
        row.update(cpu=environment["cpu"], jax=environment["packages"]["jax"])
        rows.append(row)
    return rows


def shuffle_depth(outcome: dict) -> list:
    """The shuffle-depth table's rows (`claims.by_shuffle_depth`) of the shuffle parts that ran,
    the `probe` part giving the last row (layer 5)."""
    layers = {**SHUFFLE_LAYERS, "probe": HEADLINE_LAYER}
    return claims.by_shuffle_depth(
        {layer: outcome[name] for name, layer in layers.items() if name in outcome}
    )
