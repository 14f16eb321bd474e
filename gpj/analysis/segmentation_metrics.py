"""Segmentation metrics from confusion matrices: mean IoU and pixel accuracy, overall and per
region of columns.

Regions are column ranges of a W-wide image, as the paper's official code measures Cityscapes
(W = 2048: left [0, 1024), right [1024, 2048), center [512, 1536)):

- left = [0, W//2), right = [W//2, W), so an odd width puts the middle column on the right;
- center = [W//4, W − W//4); all = every column.

Confusion matrices are counts, so those of padded, masked evaluation batches can be summed
exactly (on the host in int64 for large totals) before `mean_iou` turns them into scores.
"""

import jax
import jax.numpy as jnp
import numpy as np

REGIONS = ("all", "left", "right", "center")


def region_column_masks(width: int) -> np.ndarray:
    """The columns of each region.

    Args:
      width: W, image width in pixels.

    Returns:
      (len(REGIONS), W) bool, row r True on the columns of REGIONS[r].
    """
    cols = np.arange(width)
    return np.stack(
        [
            np.ones(width, bool),
            cols < width // 2,
            cols >= width // 2,
            (cols >= width // 4) & (cols < width - width // 4),
        ]
    )


def confusion_matrix(
    labels: jax.Array,
    preds: jax.Array,
    num_classes: int,
    *,
    ignore_label: int = 255,
    valid: jax.Array | None = None,
) -> jax.Array:
    """Counts pixels by true and predicted class.

    Args:
      labels: (N, H, W) integer true classes; pixels equal to `ignore_label` or outside
        [0, num_classes) are not counted.
      preds: (N, H, W) integer predicted classes in [0, num_classes).
      num_classes: K; static under jit.
      ignore_label: label of pixels that are not counted.
      valid: optional (N,) bool; images where it is False (batch padding) are not counted.

    Returns:
      (K, K) int32, [true class, predicted class].
    """
    return _column_confusions(labels, preds, num_classes, ignore_label, valid).sum(axis=0)


def region_confusions(
    labels: jax.Array,
    preds: jax.Array,
    num_classes: int,
    *,
    ignore_label: int = 255,
    valid: jax.Array | None = None,
) -> jax.Array:
    """The confusion matrix of each region's columns, in one pass over the pixels.

    Args: as for `confusion_matrix`.

    Returns:
      (len(REGIONS), K, K) int32, in REGIONS order.
    """
    columns = _column_confusions(labels, preds, num_classes, ignore_label, valid)
    masks = jnp.asarray(region_column_masks(labels.shape[-1]), jnp.int32)
    return jnp.einsum("rw,wij->rij", masks, columns)


def _column_confusions(labels, preds, num_classes, ignore_label, valid):
    """(W, K, K) int32 confusion matrix of every column, from one bincount."""
    labels, preds = labels.astype(jnp.int32), preds.astype(jnp.int32)
    width = labels.shape[-1]
    counted = (labels != ignore_label) & (labels >= 0) & (labels < num_classes)
    if valid is not None:
        counted = counted & valid[:, None, None]
    cell = labels * num_classes + preds
    column = jnp.arange(width) * num_classes**2
    index = jnp.where(counted, column + cell, 0)
    counts = jnp.bincount(
        index.ravel(), weights=counted.ravel().astype(jnp.int32), length=width * num_classes**2
    )
    return counts.reshape(width, num_classes, num_classes)


def mean_iou(confusion: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean intersection over union, as in the standard StreamSegMetrics.

    IoU_k = TP / (TP + FP + FN); a class absent from both labels and predictions has no IoU (NaN)
    and is left out of the mean.

    Args:
      confusion: (K, K) counts, [true class, predicted class].

    Returns:
      The mean IoU over the present classes (NaN if none is), and the (K,) per-class IoUs.
    """
    confusion = np.asarray(confusion, np.float64)
    hits = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    per_class = np.full(len(hits), np.nan)
    present = union > 0
    per_class[present] = hits[present] / union[present]
    miou = float(per_class[present].mean()) if present.any() else float("nan")
    return miou, per_class


def pixel_accuracy(confusion: np.ndarray) -> float:
    """Fraction of counted pixels classified correctly (NaN if none was counted)."""
    confusion = np.asarray(confusion, np.float64)
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total > 0 else float("nan")


def region_scores(confusions: np.ndarray) -> dict:
    """Scores of each region from its confusion matrix.

    Args:
      confusions: (len(REGIONS), K, K) counts in REGIONS order, e.g. from `region_confusions`.

    Returns:
      {region: {"miou": float, "pixel_accuracy": float, "per_class_iou": list}}, where a class
      without IoU is None in the list, so that it can be written as JSON.
    """
    scores = {}
    for region, confusion in zip(REGIONS, np.asarray(confusions), strict=True):
        miou, per_class = mean_iou(confusion)
        scores[region] = {
            "miou": miou,
            "pixel_accuracy": pixel_accuracy(confusion),
            "per_class_iou": [None if np.isnan(iou) else float(iou) for iou in per_class],
        }
    return scores


def side_confusion(confusion: np.ndarray, side_classes: int) -> float:
    """The share of shape pixels predicted as the same shape on the other side: with K =
    `side_classes`, classes 1..K are shapes on the left and c + K the shape c on the right; the
    pixels of true class c predicted c ± K, over all pixels of classes 1..2K (0 if none).

    Args:
      confusion: (C, C) counts [true class, predicted class], C >= 2K + 1.
      side_classes: K.
    """
    k = side_classes
    left, right = np.arange(1, k + 1), np.arange(k + 1, 2 * k + 1)
    swapped = confusion[left, right].sum() + confusion[right, left].sum()
    total = confusion[1 : 2 * k + 1].sum()
    return float(swapped / total) if total else 0.0
