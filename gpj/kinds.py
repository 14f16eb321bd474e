"""Kinds of run: what all seeds of one run share, declared by the experiments for the driver.

`canvas` builds the canvas-task kinds (GAPNet / PermuteNet on the location or object task) that
both the probe and the attack train.
"""

import dataclasses
import os
from typing import Any

from gpj import models, tasks
from gpj.data import batches

HEADS = ("gapnet", "permutenet")
CANVAS_RUNS = tuple(f"{h}:{t}" for h in HEADS for t in tasks.TARGETS)


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
      evals: names of the evaluators that measure each trained run (`gpj.evaluators`).
      folder: the runs' folder relative to the workdir (default: `name`).
      earlier: a finished earlier workdir (holding `<folder>/seed<seed>`, or one run folder
        holding `checkpoints/`) whose weights are loaded instead of training.
      earlier_field: the config field that named `earlier`, for messages.
      fingerprint: settings beyond the config's model, data and optim that identify a run.
      settings: the experiment's config, which the evaluators read (default: `config`).
    """

    name: str
    labels: dict
    config: Any
    data: Any
    task: Any
    model: Any
    evals: tuple = ()
    folder: str = ""
    earlier: str = ""
    earlier_field: str = ""
    fingerprint: dict = dataclasses.field(default_factory=dict)
    settings: Any = None

    @property
    def seeds(self) -> list:
        return [self.config.seed + i for i in range(self.config.num_seeds)]

    @property
    def num_steps(self) -> int:
        """Epochs converted to steps (the last partial batch of an epoch is dropped)."""
        steps = batches.steps_per_epoch(len(self.data.train_labels), self.config.train.batch_size)
        return self.config.train.num_epochs * steps

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
    only PermuteNet takes `model.shuffle_layer`. `fields` set other `Kind` fields."""
    head, target = spec.split(":")
    task = tasks.Canvas(config.data.grid_size, target)
    shuffle = {} if head == "permutenet" else {"shuffle_layer": 5}
    declared = {
        "name": f"{head}-{target}",
        "labels": {"head": head, "task": target},
        "config": config,
        "data": dataset,
        "task": task,
        "model": models.from_config(
            config.model, num_classes=task.num_classes(dataset), head=head, **shuffle
        ),
        "evals": tuple(config.evals),
        "fingerprint": {"head": head, "task": target},
    }
    return Kind(**(declared | fields))
