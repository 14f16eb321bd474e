"""Evaluators: plug-ins that measure a trained run, built once per run kind.

Each is a class constructed as `Evaluator(kind, shapes, mesh)` (its programs wrapped in `jax.jit`
once, so every seed reuses them; `shapes` are the model's output shapes, for checks that need
them) with `run(state, data, *, seed) -> dict` of result fields. `tasks` names the tasks it can
measure; an optional `applies(kind)` skips kinds it has nothing to say about (the channel scores
and attacks skip PermuteNet, whose channel order is random). An experiment lists its evaluators in
`config.evals`; any of them works on any experiment's models of a task it measures.
"""

from gpj import tasks
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
    return cls(kind, shapes, mesh)


def check_names(names) -> None:
    """`config.evals` entries must name evaluators."""
    for name in names:
        if name not in EVALUATORS:
            raise ConfigError(
                f"evals entry {name!r} is not valid; choose from: {', '.join(EVALUATORS)}"
            )


def build(kind, shapes: dict, mesh) -> list:
    """The evaluators of `kind.evals` that apply to the kind, checked against its shapes.

    Raises:
      ConfigError: an unknown evaluator, one that cannot measure this kind's task, or settings
        that do not fit the model (e.g. more attacked channels than it has).
    """
    check_names(kind.evals)
    built = []
    for name in kind.evals:
        cls = EVALUATORS[name]
        if not isinstance(kind.task, cls.tasks):
            measured = ", ".join(t.__name__.lower() for t in cls.tasks)
            raise ConfigError(
                f"evals entry {name!r} measures {measured} tasks, but the {kind.name} runs "
                f"learn a {type(kind.task).__name__.lower()} task; remove it from evals"
            )
        if getattr(cls, "applies", lambda kind: True)(kind):
            built.append(cls(kind, shapes, mesh))
    return built
