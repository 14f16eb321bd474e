"""Experiments by name: each `run(config, workdir) -> results dict`."""

from gpj.experiments import probe

EXPERIMENTS = {"probe": probe.run}
