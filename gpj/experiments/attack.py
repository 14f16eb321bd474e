"""Position-channel attacks (paper, Sec. 5): rank channels by flip scores, ablate them, measure.

Segmentation: a DeepLabv3-style model trained on canvases of scattered digits or on Cityscapes
(or loaded from `segmentation.init_workdir`). Classification: the probe's GAPNets, loaded from
`classifier.probe_workdir` or trained here, through the same driver, in `<workdir>/probe`. The
`attack` evaluator (`gpj.evaluators.attack`) ranks and ablates the channels of each.
"""

from gpj import checks, kinds, models, tasks
from gpj.analysis import attack
from gpj.data import cityscapes, sources
from gpj.errors import ConfigError
from gpj.validation import check_choice, check_positive, check_range

SEGMENTATION_DATASETS = ("digits", "cityscapes")


EVALS = ("attack",)  # what the report shows


def check(config) -> None:
    """Cheap checks of the attack's own fields, before any data is read or compiled."""
    check_choice(config, "model.name", models.RESNET_NAMES)
    check_choice(config, "model.output_stride", models.OUTPUT_STRIDES)
    for path in ("model.aspp_features", "segmentation.canvas_size", "segmentation.num_train"):
        check_positive(config, path)
    for path in ("segmentation.num_test", "segmentation.digits_per_canvas"):
        check_positive(config, path)
    check_range(config, "segmentation.label_radius", 0, config.segmentation.canvas_size)
    check_range(config, "segmentation.left_fraction", 0.0, 1.0)
    check_range(config, "model.dropout_rate", 0.0, 0.99)
    check_choice(config, "segmentation.dataset", SEGMENTATION_DATASETS)
    for path in ("segmentation.num_calibration", "segmentation.canvas_width"):
        check_positive(config, path)
    check_range(config, "segmentation.dead_zone", 0, config.segmentation.canvas_width)
    check_range(config, "segmentation.calibration_left_fraction", 0.0, 1.0)
    designs = tuple(config.segmentation.designs)
    if config.segmentation.dataset == "digits" and (
        not designs or any(d not in kinds.DESIGNS for d in designs)
    ):
        raise ConfigError(
            f"segmentation.designs={designs!r} must name one or more of {kinds.DESIGNS}"
        )
    size = tuple(config.segmentation.image_size)
    if len(size) != 2 or not all(
        isinstance(n, int) and 0 < n <= full for n, full in zip(size, cityscapes.FULL_SIZE)
    ):
        raise ConfigError(
            f"segmentation.image_size={size!r} must be (height, width) with 1 <= height <= "
            f"{cityscapes.FULL_SIZE[0]} and 1 <= width <= {cityscapes.FULL_SIZE[1]}, "
            "e.g. (512, 1024)"
        )
    check_range(config, "segmentation.max_examples", 0, 10**9)
    rates = tuple(config.model.aspp_rates)
    if not rates or any(not isinstance(r, int) or r < 1 for r in rates):
        raise ConfigError(f"model.aspp_rates={rates!r} must be positive integers, e.g. (1, 2, 3)")
    for target in config.classifier.tasks:
        if target not in tasks.TARGETS:
            raise ConfigError(
                f"classifier.tasks entry {target!r} is not valid; choose from {tasks.TARGETS}"
            )
    if not config.segmentation.enabled and not config.classifier.tasks:
        raise ConfigError(
            "nothing to attack: segmentation.enabled is False and classifier.tasks is empty"
        )
    if config.classifier.probe_workdir and config.classifier.tasks:
        checks.check_finished(config.classifier.probe_workdir, "classifier.probe_workdir", "probe")
    if config.segmentation.enabled and config.segmentation.init_workdir and config.model.init_from:
        raise ConfigError(
            "set one of segmentation.init_workdir (an earlier attack's trained model) and "
            "model.init_from (converted weights), not both"
        )


def declare(config) -> list:
    """The run kinds: the segmentation model (unless disabled) and the GAPNets of
    `classifier.tasks`."""
    declared = kinds.segmentation(config) if config.segmentation.enabled else []
    return declared + _classifier_kinds(config)


def derived(runs: list) -> dict:
    """The results' fields computed from the runs: the attack curves over seeds, and the
    segmentation attacks' effects beside random channels."""
    return {"summary": attack.summarise(runs), "effects": attack.effects(runs)}


def fields(config, declared: list) -> dict:
    """The classifiers' data and, with segmentation, the segmentation data."""
    found = {"dataset": sources.summary(declared[-1].data)}
    if config.segmentation.enabled:
        data = declared[0].data
        found["segmentation_data"] = sources.summary(
            data, image_shape=list(data.train_images.shape[1:]), ignore_label=data.ignore_label
        )
        if getattr(data, "seeded_calibration", None):  # control C's split, drawn per seed
            found["segmentation_data"]["symmetric_calibration"] = "per seed, half on each side"
    return found


def _classifier_kinds(config) -> list:
    """GAPNet kinds of `classifier.tasks`: loaded from the probe workdir, or trained in
    `<workdir>/probe` with the `classifier.probe` settings; measured with `config.evals`."""
    c = config.classifier
    if c.probe_workdir:
        field = "classifier.probe_workdir"
        probe_config = checks.check_finished(c.probe_workdir, field, "probe")
        where = {"earlier": c.probe_workdir, "earlier_field": field}
        missing = [t for t in c.tasks if f"gapnet:{t}" not in probe_config.runs]
        if missing:
            raise ConfigError(
                f"classifier.probe_workdir={c.probe_workdir!r} has no GAPNet run of tasks "
                f"{tuple(missing)}"
            )
    else:
        probe_config = c.probe.copy_and_resolve_references()
    dataset = sources.from_config(probe_config.data) if c.tasks else None
    return [
        kinds.canvas(
            probe_config,
            f"gapnet:{target}",
            dataset,
            labels={"model": f"gapnet-{target}"},
            evals=config.evals,
            **(where if c.probe_workdir else {"folder": f"probe/gapnet-{target}"}),
        )
        for target in c.tasks
    ]
