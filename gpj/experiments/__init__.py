"""Experiments by name: the probe, invariance and attack experiments run through one runner
(`gpj.experiments.runner`); the paper runs them as its parts."""

from gpj.experiments import paper, runner

EXPERIMENTS = {**runner.EXPERIMENTS, "paper": paper}


def batch_sizes(config) -> tuple:
    """The train and eval batch sizes of every experiment a config runs (a paper config: of all
    its parts), which the CPU device count must divide."""
    configs = [p for _, p in paper.parts(config)] if config.experiment == "paper" else [config]
    return tuple(b for c in configs for b in (c.train.batch_size, c.eval.batch_size) if b)


def _owner(config):
    return paper if config.experiment == "paper" else runner


def check(config):
    """Every check a run of `config` makes before any training (the config's fields, the data,
    the models' shapes, the evaluators' settings); returns the declared kinds.

    Raises:
      GpjError: one line naming the field and what would be valid.
    """
    return _owner(config).check(config)


def check_fields(config) -> None:
    """Every field's check, before any data is read (a paper config: its parts' too)."""
    _owner(config).check_fields(config)


def run(config, workdir: str) -> dict:
    """Runs `config`'s experiment in `workdir`; returns its results."""
    return _owner(config).run(config, workdir)
