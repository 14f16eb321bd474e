"""Kinds of run: what all seeds of one run share, declared by the experiments for the driver.

`canvas` builds the canvas-task kinds (GAPNet / PermuteNet on the location or object task) that
both the probe and the attack train; `segmentation` the attack's DeepLabv3 runs.
"""

import dataclasses
import os
from typing import Any

from gpj import models, tasks
from gpj.data import batches, cityscapes, sources
from gpj.data import segmentation as segmentation_data
from gpj.errors import ConfigError

PERMUTED_HEADS = ("permutenet", "fixedperm")  # the heads that take `model.shuffle_layer`
CANVAS_RUNS = tuple(f"{h}:{t}" for h in models.PROBE_HEADS for t in tasks.TARGETS)


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of run: everything its seeds share.

    Attributes:
      name: progress-bar label, and the runs' folder in the workdir unless `folder` is set.
      labels: fields every result row of this kind carries, e.g. {"head": ..., "task": ...}.
      config: the config its runs train with (`seed`, `num_seeds`, data, model, optim, train,
        eval sections).
      data: the dataset (train/test images and labels, `num_classes`).
      task: a `gpj.tasks` task (objective, input shape).
      model: the linen model.
      evals: the evaluators that measure each trained run, name -> settings (`gpj.evaluators`).
      folder: the runs' folder relative to the workdir (default: `name`).
      earlier: a finished earlier workdir (holding `<folder>/seed<seed>`, or one run folder
        holding `checkpoints/`) whose weights are loaded instead of training.
      earlier_field: the config field that named `earlier`, for messages.
      fingerprint: settings beyond the config's model, data and optim that identify a run.
    """

    name: str
    labels: dict
    config: Any
    data: Any
    task: Any
    model: Any
    evals: Any = dataclasses.field(default_factory=dict)
    folder: str = ""
    earlier: str = ""
    earlier_field: str = ""
    fingerprint: dict = dataclasses.field(default_factory=dict)

    @property
    def seeds(self) -> list:
        return [self.config.seed + i for i in range(self.config.num_seeds)]

    @property
    def steps_per_epoch(self) -> int:
        """Steps of one epoch (its last partial batch is dropped)."""
        return batches.steps_per_epoch(len(self.data.train_labels), self.config.train.batch_size)

    @property
    def num_steps(self) -> int:
        """The training budget: `train.num_epochs` in steps."""
        return self.config.train.num_epochs * self.steps_per_epoch

    def run_dir(self, workdir: str, seed: int) -> str:
        return os.path.join(workdir, self.folder or self.name, f"seed{seed}")

    def earlier_run_dir(self, seed: int) -> str:
        """The earlier run folder of `seed`: `earlier` itself if it holds checkpoints/."""
        path = os.path.expanduser(self.earlier)
        if os.path.isdir(os.path.join(path, "checkpoints")):
            return path
        return self.run_dir(path, seed)


def canvas(config, spec: str, dataset, **fields) -> Kind:
    """The runs of one `head:task` of `CANVAS_RUNS` (folder `head-task`) with `config.evals`;
    only the `PERMUTED_HEADS` take `model.shuffle_layer`. `fields` set other `Kind` fields."""
    head, target = spec.split(":")
    task = tasks.Canvas(config.data.grid_size, target)
    shuffle = {} if head in PERMUTED_HEADS else {"shuffle_layer": 5}
    declared = {
        "name": f"{head}-{target}",
        "labels": {"head": head, "task": target},
        "config": config,
        "data": dataset,
        "task": task,
        "model": models.from_config(
            config.model, num_classes=task.num_classes(dataset), head=head, **shuffle
        ),
        "evals": config.evals,
        "fingerprint": {"head": head, "task": target},
    }
    return Kind(**(declared | fields))


DESIGNS = ("position_needed", "shape_only")


def segmentation(config) -> list:
    """The segmentation run kinds of the attack's config: DeepLabv3 on Cityscapes (one kind,
    `segmentation`), or on digit canvases, one kind per `segmentation.designs` entry
    (`segmentation-<design>`), all on the same canvases; loaded from `segmentation.init_workdir`
    when it is set."""
    s = config.segmentation
    if s.dataset == "cityscapes":
        data = cityscapes.load(
            data_dir=os.path.expanduser(s.data_dir) or None,
            image_size=tuple(s.image_size),
            max_examples=s.max_examples,
        )
        return [
            _segmentation_kind(config, "segmentation", data, tasks.Segmentation(data.ignore_label))
        ]
    try:
        data = segmentation_data.digit_data(
            sources.from_config(config.data),
            seed=s.data_seed,
            num_train=s.num_train,
            num_test=s.num_test,
            canvas_size=s.canvas_size,
            canvas_width=s.canvas_width,
            dead_zone=s.dead_zone,
            mirror_digits=s.mirror_digits,
            side_labels=True,
            digits_per_canvas=s.digits_per_canvas,
            left_fraction=s.left_fraction,
            label_radius=s.label_radius,
            calibration={"calibration": (s.num_calibration, s.calibration_left_fraction)},
            seeded_calibration={"symmetric": (s.num_calibration, 0.5)},
        )
    except ValueError as e:
        raise ConfigError(f"segmentation: {e}") from e
    designs = {"position_needed": data, "shape_only": segmentation_data.shape_only(data)}
    return [
        _segmentation_kind(
            config,
            f"segmentation-{design}",
            designs[design],
            tasks.Segmentation(
                data.ignore_label, hflip=s.hflip, side_classes=designs[design].side_classes
            ),
        )
        for design in s.designs
    ]


def _segmentation_kind(config, name, data, task) -> Kind:
    s = config.segmentation
    # Where the data lives does not change the run; what it is does.
    skip = ("init_workdir", "enabled", "data_dir", "designs")
    return Kind(
        name=name,
        labels={"model": name},
        config=config,
        data=data,
        task=task,
        model=models.from_config(config.model, num_classes=data.num_classes, head="deeplab"),
        evals=config.evals,
        earlier=s.init_workdir,
        earlier_field="segmentation.init_workdir",
        fingerprint={
            "segmentation": {k: v for k, v in s.to_dict().items() if k not in skip},
            "labels": name,
        },
    )
