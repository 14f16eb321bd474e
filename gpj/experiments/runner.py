"""The one runner of the probe, invariance and attack experiments: it checks a config, declares
its run kinds, trains and evaluates them through `gpj.driver`, and writes the results and the
report. An experiment module exports plain declarations:

- `EVALS`: the evaluators whose results its report shows (`config.evals` must hold them);
- `check(config)`: cheap checks of its own fields (the shared ones are `gpj.checks`');
- `declare(config)`: its run kinds (`gpj.kinds.Kind`);
- `fields(config, kinds)`: what its results say of the data beside the runs;
- `derived(runs)`: the results' fields computed from the runs (summaries over seeds).

A finished run's results are found again (`finished`), also at fewer seeds (`at_seeds`).
"""

import json
import os
import time

import jax

from gpj import checks, driver, engine, report
from gpj import results as results_file
from gpj.experiments import attack, invariance, probe
from gpj.provenance import environment

EXPERIMENTS = {"probe": probe, "invariance": invariance, "attack": attack}


def check_fields(config) -> None:
    """Every field's check, before any data is read: the shared fields, the evaluators the
    report needs, the experiment's own fields.

    Raises:
      ConfigError: one line naming the field and what would be valid.
    """
    module = EXPERIMENTS[config.experiment]
    checks.check_shared(config)
    checks.check_evals(config, module.EVALS)
    module.check(config)


def declare(config) -> list:
    """The config's run kinds, its fields checked first."""
    check_fields(config)
    return EXPERIMENTS[config.experiment].declare(config)


def check(config) -> list:
    """Every check a run of `config` makes before any training (the fields, the data, the
    models' shapes, the evaluators' settings); returns the declared kinds."""
    declared = declare(config)
    checks.check_kinds(declared, engine.make_mesh())
    return declared


def run(config, workdir: str, deadline: float | None = None, declared=None) -> dict:
    """Trains and evaluates every kind and seed of `config` (`declared`: its kinds, already
    checked); writes results.json, report.md and the figures. Past `deadline` (a `time.time()`)
    the training seeds are checkpointed and `BudgetReached` is raised; the same call resumes."""
    module = EXPERIMENTS[config.experiment]
    declared = declare(config) if declared is None else declared
    started = time.time()
    runs = driver.run(declared, workdir, engine.make_mesh(), deadline)
    results = {
        "experiment": config.experiment,
        "config": config.to_dict(),
        "environment": environment(),
        **module.fields(config, declared),
        "seeds": [config.seed + i for i in range(config.num_seeds)],
        "runs": runs,
        **module.derived(runs),
        "wall_time_s": time.time() - started,
    }
    if jax.process_index() == 0:
        report.write(results, workdir)
    return results


def finished(config, workdir: str) -> dict | None:
    """The results of a run that already went to the end in `workdir` with `config`, or with it
    and more seeds (those results, restricted to the config's seeds: `at_seeds`); else None
    (then it runs, its finished seeds loaded from their checkpoints)."""
    if not os.path.isfile(os.path.join(workdir, results_file.FILE)):
        return None
    results = results_file.read(workdir)
    wanted = json.loads(json.dumps(config.to_dict()))
    ran = results.get("config", {})
    same = {**ran, "num_seeds": wanted["num_seeds"]} == wanted
    return (
        at_seeds(results, config.num_seeds)
        if same and ran["num_seeds"] >= config.num_seeds
        else None
    )


def at_seeds(results: dict, n: int) -> dict:
    """Results restricted to their first `n` seeds, the fields derived from the runs recomputed
    by their experiment: what the run would have given with `n` seeds."""
    seeds = results["seeds"][:n]
    runs = [r for r in results["runs"] if r["seed"] in seeds]
    derived = EXPERIMENTS[results["experiment"]].derived(runs)
    return {**results, "seeds": seeds, "runs": runs, **derived}
