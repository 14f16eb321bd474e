"""Experiments by name: each `run(config, workdir) -> results dict`."""

from gpj.experiments import attack, invariance, probe

EXPERIMENTS = {"probe": probe.run, "invariance": invariance.run, "attack": attack.run}
