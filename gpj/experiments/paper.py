"""The paper's five claims at embedded scale: the probe (zero and circular padding, and by
shuffle depth), invariance and attack experiments run as parts, each in its own folder of the
workdir with its own results and report, then decided in a scorecard (`gpj.analysis.claims`).
"""

import json
import os
import re
import time

import jax
from absl import logging

from gpj import report
from gpj.analysis import claims
from gpj.configs.paper import PARTS, SHUFFLE_LAYERS, SHUFFLE_PARTS
from gpj.errors import ConfigError
from gpj.provenance import environment

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
HEADLINE_LAYER = 5  # the official code's default `layer=5`: the depth of the paper's headline


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


def declare(config) -> list:
    """Every part's run kinds; a part's config error names the part (`probe.model.padding=...`)."""
    from gpj.experiments import EXPERIMENTS

    declared = []
    for name, part in parts(config):
        try:
            declared += EXPERIMENTS[part.experiment].declare(part)
        except ConfigError as e:
            field = re.match(r"[a-z_][a-z_.]*[=:]", str(e))
            raise ConfigError(f"{name}.{e}" if field else f"{name}: {e}") from e
    return declared


def finished(part, workdir: str) -> dict | None:
    """The results of a part that already ran to the end with this config in `workdir`, or None
    (then it runs, resuming its runs' checkpoints)."""
    path = os.path.join(workdir, "results.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        try:
            results = json.load(f)
        except json.JSONDecodeError as e:
            logging.warning("%s is not valid JSON (%s); the part runs again", path, e)
            return None
    return results if results.get("config") == json.loads(json.dumps(part.to_dict())) else None


def run(config, workdir: str) -> dict:
    """Checks every part, runs each in `<workdir>/<part>` (a part that already finished there
    with the same config is loaded, not rerun), then writes the scorecard."""
    from gpj.experiments import EXPERIMENTS, check

    check(config)  # every part's checks before any training
    started = time.time()
    outcome, loaded = {}, []
    for name, part in parts(config):
        part_dir = os.path.join(workdir, name)
        outcome[name] = finished(part, part_dir)
        if outcome[name] is None:
            outcome[name] = EXPERIMENTS[part.experiment].run(part, part_dir)
        else:
            loaded.append(name)
            logging.info("part %s finished earlier in %s: loaded, not rerun", name, part_dir)
    part_times = {name: r["wall_time_s"] for name, r in outcome.items()}
    results = {
        "experiment": "paper",
        "config": config.to_dict(),
        "environment": environment(),
        "parts": {name: f"{name}/results.json" for name in outcome},
        "part_wall_time_s": part_times,
        "loaded_parts": loaded,
        "claims": scorecard(outcome),
        "shuffle_depth": shuffle_depth(outcome),
        "headline_layer": HEADLINE_LAYER,
        # The parts' own times (a loaded part's from its run): what the scorecard took to make.
        "wall_time_s": sum(part_times.values()),
        "elapsed_s": time.time() - started,
    }
    if jax.process_index() == 0:
        report.write(results, workdir)
    return results


def _depth_setting(layer: int) -> str:
    if layer == HEADLINE_LAYER:
        return (
            "zero padding, shuffle layer 5 (after GAP; the official code's default, the depth of "
            "the paper's headline): PermuteNet can read only the channel sum"
        )
    return (
        f"zero padding, shuffle layer {layer} (before ResNet stage {layer}): the layers after it "
        "can read the channel-summed map"
    )


ROWS = (  # (claim, part, setting, decision) in scorecard order
    (1, "probe", "zero padding: tests the claim", claims.channel_wise_position),
    (
        1,
        "probe_circular",
        "circular padding: no border, no absolute position",
        claims.channel_wise_position,
    ),
    (
        2,
        "probe",
        "zero padding, shuffle after GAP (layer 5), 12-epoch budget: only the channel sum",
        claims.order_free_semantics,
    ),
    (
        2,
        "probe_circular",
        "circular padding, shuffle after GAP (layer 5): no border cue; only the channel sum",
        claims.order_free_semantics,
    ),
    *(
        (2, name, _depth_setting(layer), claims.order_free_semantics)
        for name, layer in SHUFFLE_LAYERS.items()
    ),
    (3, "invariance", "two-view control", claims.augshift_invariance),
    (4, "attack", "position-needed task, control B", claims.position_channels_needed),
    (5, "attack", "calibration ranking, control C", claims.region_specific_attack),
)


def scorecard(outcome: dict) -> list:
    """One row per claim and setting whose part ran: what was measured, the differences, the
    verdict, and the paper-scale command."""
    return [
        {"claim": claim, "setting": setting, **decision(outcome[part]), "command": COMMANDS[part]}
        for claim, part, setting, decision in ROWS
        if part in outcome
    ]


def shuffle_depth(outcome: dict) -> list:
    """The shuffle-depth table's rows (`claims.by_shuffle_depth`) of the shuffle parts that ran."""
    return claims.by_shuffle_depth(
        {layer: outcome[name] for name, layer in SHUFFLE_LAYERS.items() if name in outcome}
    )
