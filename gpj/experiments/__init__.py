"""Experiments by name: each module's `declare(config)` gives its run kinds (after checking the
config) and `run(config, workdir)` trains, evaluates and reports them through `gpj.driver`."""

from gpj import driver, engine
from gpj.experiments import attack, invariance, probe

EXPERIMENTS = {"probe": probe, "invariance": invariance, "attack": attack}


def check(config) -> list:
    """Every check a run of `config` makes before any training (the config's fields, the data,
    the models' shapes, the evaluators' settings); returns the declared kinds.

    Raises:
      GpjError: one line naming the field and what would be valid.
    """
    declared = EXPERIMENTS[config.experiment].declare(config)
    driver.check(declared, engine.make_mesh())
    return declared
