"""The paper's five claims at embedded scale: the probe (zero and circular padding), invariance
and attack experiments run as parts, each in its own folder of the workdir with its own results
and report, then decided in a scorecard (`gpj.analysis.claims`).
"""

import os
import re
import time

import jax

from gpj import report
from gpj.analysis import claims
from gpj.configs.paper import PARTS
from gpj.errors import ConfigError
from gpj.provenance import environment

EXPECTED = {
    "probe": "probe",
    "probe_circular": "probe",
    "invariance": "invariance",
    "attack": "attack",
}
COMMANDS = {  # the paper-scale command of each claim (GPU/TPU; the data prepared once)
    "probe": "python -m gpj.main --config=configs/probe.py:cifar10,controls "
    "--config.data.data_dir=~/tensorflow_datasets",
    "invariance": "python -m gpj.main --config=configs/invariance.py:cifar10 "
    "--config.data.data_dir=~/tensorflow_datasets",
    "attack": "python -m gpj.main --config=configs/attack.py:cityscapes",
}


def parts(config) -> list:
    """(name, config) of every part, checked to be of the experiment its claims need."""
    found = []
    for name in PARTS:
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


def run(config, workdir: str) -> dict:
    """Checks every part, runs each in `<workdir>/<part>`, then writes the scorecard."""
    from gpj.experiments import EXPERIMENTS, check

    check(config)  # every part's checks before any training
    started = time.time()
    outcome = {}
    for name, part in parts(config):
        outcome[name] = EXPERIMENTS[part.experiment].run(part, os.path.join(workdir, name))
    results = {
        "experiment": "paper",
        "config": config.to_dict(),
        "environment": environment(),
        "parts": {name: f"{name}/results.json" for name in outcome},
        "part_wall_time_s": {name: r["wall_time_s"] for name, r in outcome.items()},
        "claims": scorecard(outcome),
        "wall_time_s": time.time() - started,
    }
    if jax.process_index() == 0:
        report.write(results, workdir)
    return results


def scorecard(outcome: dict) -> list:
    """One row per claim and setting: what was measured, the differences, the verdict."""
    probe, circular = outcome["probe"], outcome["probe_circular"]
    rows = [
        (1, "zero padding: tests the claim", claims.channel_wise_position(probe), "probe"),
        (
            1,
            "circular padding: no border, no absolute position",
            claims.channel_wise_position(circular),
            "probe",
        ),
        (2, "zero padding: the paper's setting", claims.order_free_semantics(probe), "probe"),
        (2, "circular padding: no border cue", claims.order_free_semantics(circular), "probe"),
        (3, "two-view control", claims.augshift_invariance(outcome["invariance"]), "invariance"),
        (
            4,
            "position-needed task, control B",
            claims.position_channels_needed(outcome["attack"]),
            "attack",
        ),
        (
            5,
            "calibration ranking, control C",
            claims.region_specific_attack(outcome["attack"]),
            "attack",
        ),
    ]
    return [
        {"claim": claim, "setting": setting, **decided, "command": COMMANDS[part]}
        for claim, setting, decided, part in rows
    ]
