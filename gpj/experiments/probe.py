"""The position probe (paper, Table 1): GAPNet vs PermuteNet on canvas tasks.

Each image is pasted into one cell of a G x G zero canvas. The *location* task predicts the cell,
the *object* task the image's class. GAPNet keeps channel order after global pooling; PermuteNet
shuffles it at every forward pass, so a location read-out that needs channel order collapses.
Evaluators (`config.evals`, default: every-cell accuracy and the GAPNets' position scores)
measure every trained run.
"""

from gpj import kinds
from gpj.analysis import stats
from gpj.data import sources
from gpj.errors import ConfigError
from gpj.validation import check_positive, check_range

EVALS = ("every_cell",)  # what the report shows


def check(config) -> None:
    """Cheap checks of the probe's own fields, before any data is read or compiled."""
    check_range(config, "model.shuffle_layer", 1, 5)
    check_range(config, "model.blur_filter", 0, 5)
    if config.model.name.startswith("vgg") and config.model.shuffle_layer != 5:
        raise ConfigError(
            f"model.shuffle_layer={config.model.shuffle_layer} needs a ResNet; "
            f"model.name={config.model.name!r} supports only 5 (after GAP)"
        )
    check_positive(config, "data.grid_size")
    if config.data.grid_size < 2 and any(r.endswith(":location") for r in config.runs):
        raise ConfigError(
            f"data.grid_size={config.data.grid_size} leaves one cell: the location "
            "task needs data.grid_size >= 2"
        )
    if not config.runs:
        raise ConfigError("runs is empty; give at least one of e.g. 'gapnet:location'")
    for spec in config.runs:
        if spec not in kinds.CANVAS_RUNS:
            raise ConfigError(
                f"runs entry {spec!r} is not valid; entries are head:task, one of: "
                f"{', '.join(kinds.CANVAS_RUNS)}"
            )


def declare(config) -> list:
    """The run kinds: one per `runs` entry (head:task), on the canvases of `config.data`."""
    dataset = sources.from_config(config.data)
    return [kinds.canvas(config, spec, dataset) for spec in config.runs]


def derived(runs: list) -> dict:
    """The results' fields computed from the runs: accuracy per head and task over seeds."""
    return {"summary": stats.summarise(runs, ("head", "task"), ("accuracy",))}


def fields(config, declared: list) -> dict:
    """The canvases' data and each task's chance accuracy."""
    dataset = declared[0].data
    canvas = list(declared[0].task.input_shape(dataset)[1:])
    return {
        "dataset": sources.summary(dataset, canvas=canvas),
        "chance": {"location": 1.0 / config.data.grid_size**2, "object": 1.0 / dataset.num_classes},
    }
