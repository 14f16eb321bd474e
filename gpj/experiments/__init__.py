"""Experiments by name: each module's `declare(config)` gives its run kinds (after checking the
config) and `run(config, workdir)` trains, evaluates and reports them through `gpj.driver`."""

from gpj import driver, engine
from gpj.experiments import attack, invariance, paper, probe

EXPERIMENTS = {"probe": probe, "invariance": invariance, "attack": attack, "paper": paper}


def batch_sizes(config) -> tuple:
    """The train and eval batch sizes of every experiment a config runs (a paper config: of all
    its parts), which the CPU device count must divide."""
    configs = [p for _, p in paper.parts(config)] if config.experiment == "paper" else [config]
    return tuple(b for c in configs for b in (c.train.batch_size, c.eval.batch_size) if b)


def check(config) -> list:
    """Every check a run of `config` makes before any training (the config's fields, the data,
    the models' shapes, the evaluators' settings); returns the declared kinds.

    Raises:
      GpjError: one line naming the field and what would be valid.
    """
    declared = EXPERIMENTS[config.experiment].declare(config)
    driver.check(declared, engine.make_mesh())
    return declared
