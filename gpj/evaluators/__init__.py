"""Evaluators: plug-ins that measure a trained run, built once per run kind.

Each is a `base.Evaluator` constructed as `Evaluator(kind, settings, shapes, mesh)` (its programs
wrapped in `jax.jit` once, so every seed reuses them; `shapes` are the model's output shapes, for
checks that need them) with `run(state, data, *, seed) -> dict` of result fields. `tasks` names
the tasks it can measure; `applies(kind)` skips kinds it has nothing to say about (the channel
scores and attacks skip PermuteNet, whose channel order is random). An experiment's
`config.evals` maps each evaluator's name to its settings (big_vision's shape: defaults in
`gpj.configs.evals`, checked by the evaluator, e.g. `--config.evals.attack.num_channels=(1,4)`);
any evaluator works on any experiment's models of a task it measures.
"""

import ml_collections

from gpj import tasks
from gpj.configs.evals import override
from gpj.errors import ConfigError
from gpj.evaluators.attack import Attack
from gpj.evaluators.every_cell import EveryCell
from gpj.evaluators.position_probe import PositionProbe
from gpj.evaluators.readable import Readable
from gpj.evaluators.regions import RegionMIoU
from gpj.evaluators.scores import Scores
from gpj.evaluators.shift import ShiftAccuracy

EVALUATORS = {
    "every_cell": EveryCell,
    "shift": ShiftAccuracy,
    "position_probe": PositionProbe,
    "scores": Scores,
    "miou": RegionMIoU,
    "attack": Attack,
    "readable": Readable,
}


CURVE_METRICS = {tasks.Canvas: EveryCell, tasks.Segmentation: RegionMIoU}
"""The metric of each task's test curve (`measure(state, data, ablation)`)."""


def settings(name: str, entry) -> ml_collections.ConfigDict:
    """Evaluator `name`'s settings: its defaults, updated with its `config.evals` entry."""
    found = EVALUATORS[name].defaults()
    for key in entry:
        if key not in found:
            raise ConfigError(
                f"evals.{name}.{key} is not a setting of the {name} evaluator; its settings: "
                f"{', '.join(found) or 'none'}"
            )
    found.update(entry)
    return found


def check(config) -> None:
    """`config.evals` must map evaluator names to settings that each evaluator accepts (its own
    cheap checks, before any data is read).

    Raises:
      ConfigError: one line naming the entry or field and what would be valid.
    """
    if not isinstance(config.evals, ml_collections.ConfigDict):
        raise ConfigError(
            f"evals={config.evals!r} must map evaluator names to their settings (entries left "
            f"empty take the defaults), e.g. {override(('every_cell', 'scores'))}"
        )
    for name, entry in config.evals.items():
        if name not in EVALUATORS:
            raise ConfigError(
                f"evals entry {name!r} is not valid; choose from: {', '.join(EVALUATORS)}"
            )
        EVALUATORS[name].check(settings(name, entry), f"evals.{name}.")


def complete(config) -> ml_collections.ConfigDict:
    """A copy of `config` in which every `evals` map (its own, and those of a paper's parts) holds
    each evaluator's full settings, its defaults filling what an entry leaves out."""
    config = config.copy_and_resolve_references()

    def fill(node):
        for key, value in node.items():
            if key == "evals" and isinstance(value, ml_collections.ConfigDict):
                for name, entry in value.items():
                    if name in EVALUATORS:
                        value[name] = settings(name, entry)
            elif isinstance(value, ml_collections.ConfigDict):
                fill(value)

    with config.unlocked():
        fill(config)
    return config


def curve_metric(kind, built: list, shapes: dict, mesh):
    """The evaluator whose `measure` gives the kind's test curve: one of `built` (or an attack's
    metric) when it is of the task's curve class, so its program is compiled once; else a new
    one; None for tasks without a curve metric."""
    cls = CURVE_METRICS.get(type(kind.task))
    if cls is None:
        return None
    for evaluator in built:
        for candidate in (evaluator, getattr(evaluator, "metric", None)):
            if isinstance(candidate, cls):
                return candidate
    return cls(kind, cls.defaults(), shapes, mesh)


def build(kind, shapes: dict, mesh) -> list:
    """The evaluators of `kind.evals` that apply to the kind, built with their settings and
    checked against its shapes.

    Raises:
      ConfigError: an unknown evaluator, one that cannot measure this kind's task, or settings
        that do not fit the model (e.g. more attacked channels than it has).
    """
    built = []
    for name, entry in kind.evals.items():
        cls = EVALUATORS[name]
        if not isinstance(kind.task, cls.tasks):
            measured = ", ".join(t.__name__.lower() for t in cls.tasks)
            raise ConfigError(
                f"evals entry {name!r} measures {measured} tasks, but the {kind.name} runs "
                f"learn a {type(kind.task).__name__.lower()} task; remove it from evals"
            )
        if cls.applies(kind):
            built.append(cls(kind, settings(name, entry), shapes, mesh))
    return built
