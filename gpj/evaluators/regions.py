"""mIoU of a segmentation model over the whole image and its left, right and center columns."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gpj import engine, tasks
from gpj.analysis import segmentation_metrics as seg_metrics
from gpj.data.batches import this_process_batches
from gpj.evaluators.base import Evaluator


def region_eval(state, batch, rng, ablation=None, *, num_classes: int, ignore_label: int):
    """Confusion matrices of the whole image and its left, right and center columns."""
    del rng
    logits, _ = state.apply_fn(state.variables, batch["image"], train=False, ablation=ablation)
    confusion = seg_metrics.region_confusions(
        batch["label"],
        jnp.argmax(logits, -1),
        num_classes,
        ignore_label=ignore_label,
        valid=batch["mask"],
    )
    return {"confusion": confusion}


class RegionMIoU(Evaluator):
    """`miou`: mIoU (from one confusion matrix per region) of the test split."""

    tasks = (tasks.Segmentation,)

    def __init__(self, kind, settings, shapes, mesh):
        del settings, shapes
        self.kind, self.mesh = kind, mesh
        self.step = engine.compile_eval_step(
            functools.partial(
                region_eval,
                num_classes=kind.data.num_classes,
                ignore_label=kind.task.ignore_label,
            ),
            mesh,
        )

    def measure(self, state, data, ablation) -> dict:
        """{"miou_<region>"} with `ablation` applied, and on data with side classes the
        `side_confusion` (`seg_metrics.side_confusion`)."""
        test = {"image": data.test_images, "label": data.test_labels}
        batches = this_process_batches(test, self.kind.config.eval.batch_size)
        sums = engine.evaluate(
            state, self.step, batches, self.mesh, jax.random.PRNGKey(0), ablation
        )
        confusion = np.asarray(sums["confusion"], np.int64)
        regions = seg_metrics.region_scores(confusion)
        metrics = {f"miou_{r}": regions[r]["miou"] for r in seg_metrics.REGIONS}
        side_classes = getattr(self.kind.data, "side_classes", 0)
        if side_classes:
            all_columns = confusion[seg_metrics.REGIONS.index("all")]
            metrics["side_confusion"] = seg_metrics.side_confusion(all_columns, side_classes)
        return metrics

    def run(self, state, data, *, seed) -> dict:
        del seed
        return self.measure(state, data, None)
