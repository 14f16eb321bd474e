"""An embedded segmentation dataset: digits scattered over a zero canvas, labelled per pixel.

Each canvas holds a few digits at random positions; every pixel is labelled with the class of the
digit whose ink covers it (digit d → label d + 1) or 0 for the background. A digit lies on the
"left" with probability `left_fraction`, i.e. its centre is in the left half of the canvas, else
on the "right". left_fraction = 0.5 gives a left/right-symmetric layout (up to the one exactly
centred position, which counts as right); > 0.5 puts more digits on the left, like a scene layout
that is not mirror-symmetric, where a channel's signed flip score can have a side.

`SegmentationData` is the form the attack reads any segmentation dataset in: these canvases
(`digit_data`) or Cityscapes (`gpj.data.cityscapes`).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from gpj.data import canvas
from gpj.data.sources import ImageDataset

NUM_CLASSES = 11  # background and the ten digits
IGNORE_LABEL = 255  # mask value that segmentation metrics do not count
_CHUNK = 512  # canvases composed at a time, to bound the memory of the per-digit layers


@dataclasses.dataclass(frozen=True)
class Uint8Rows:
    """A uint8 array kept on the host, converted only for the rows read (`[index]`, `len`, shape).

    Images (with `mean` and `std`) read as float32 (x / 255 − mean) / std, labels (without) as
    `dtype`. Cityscapes at 512×1024 takes 5.5 GB as uint8 and 22 GB as float32; training and
    evaluation read a batch of rows at a time, so they never need the converted whole.
    """

    values: np.ndarray  # (N, ...) uint8
    dtype: type = np.float32
    mean: np.ndarray | None = None  # (C,) per-channel mean of the [0, 1]-scaled pixels
    std: np.ndarray | None = None

    @property
    def shape(self) -> tuple:
        return self.values.shape

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index) -> np.ndarray:
        rows = self.values[index]
        if self.mean is None:
            return rows.astype(self.dtype)
        return ((rows.astype(np.float32) / 255.0 - self.mean) / self.std).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class SegmentationData:
    """Train and test images with per-pixel labels: everything the segmentation attack reads.

    Images read as (n, H, W, C) float32 normalised arrays and labels as (n, H, W) int32 in
    [0, num_classes) or `ignore_label` (not counted by the loss and the metrics); each split is a
    numpy array or a `Uint8Rows`.
    """

    name: str
    train_images: np.ndarray | Uint8Rows
    train_labels: np.ndarray | Uint8Rows
    test_images: np.ndarray | Uint8Rows
    test_labels: np.ndarray | Uint8Rows
    num_classes: int
    ignore_label: int = IGNORE_LABEL


def digit_canvases(
    key: jax.Array,
    images: jax.Array,
    labels: jax.Array,
    *,
    num_canvases: int,
    canvas_size: int,
    digits_per_canvas: int,
    left_fraction: float,
    threshold: float = 0.5,
    label_radius: int = 0,
) -> tuple[jax.Array, jax.Array]:
    """Scatters random digits over zero canvases and labels every pixel; deterministic in `key`.

    Each digit is drawn uniformly with replacement. Its top-left row is uniform in
    [0, canvas_size − h]; it goes left with probability `left_fraction`, and its top-left column
    is then uniform over the columns c whose digit centre c + w/2 lies in that half
    (< canvas_size/2 for left, ≥ for right). Digits are combined by the pixel-wise maximum of
    their ink. For the labels only, each digit's ink (mean over channels) is first dilated by a
    max filter of side 2 * label_radius + 1, so that a digit labels its strokes and their
    surroundings (a blob, as objects are at the scale of a segmentation network's output stride).
    At each pixel the digit with the most (dilated) ink wins, ties going to the digit drawn first;
    the pixel's label is that digit's class + 1 if its ink exceeds `threshold`, else 0.

    Args:
      key: a `jax.random` key.
      images: (M, h, w, C) digits with ink in [0, 1] (not normalised).
      labels: (M,) integer classes of the digits.
      num_canvases: N, canvases to draw; static.
      canvas_size: S, canvas height and width; static.
      digits_per_canvas: digits on each canvas; static.
      left_fraction: probability that a digit lies in the left half, in [0, 1].
      threshold: ink above which a pixel belongs to its digit.
      label_radius: dilation of each digit's ink for its label mask, in pixels; static.

    Returns:
      (N, S, S, C) float32 canvases in [0, 1] and (N, S, S) int32 masks in [0, max label + 1].

    Raises:
      ValueError: if an argument is out of range or the canvas has no column for a digit's side.
    """
    _, h, w, _ = images.shape
    if num_canvases < 1:
        raise ValueError(f"num_canvases must be at least 1, got {num_canvases}")
    if canvas_size < max(h, w):
        raise ValueError(
            f"canvas_size must be at least the digit size {max(h, w)}, got {canvas_size}"
        )
    if digits_per_canvas < 1:
        raise ValueError(f"digits_per_canvas must be at least 1, got {digits_per_canvas}")
    if not 0 <= left_fraction <= 1:
        raise ValueError(f"left_fraction must lie in [0, 1], got {left_fraction}")
    if label_radius < 0:
        raise ValueError(f"label_radius must be at least 0, got {label_radius}")
    if left_fraction > 0 and canvas_size == w:
        raise ValueError(
            f"canvas_size must exceed the digit width {w} when left_fraction > 0 (no column puts "
            f"a digit's centre in the left half), got {canvas_size}"
        )
    return _digit_canvases(
        key,
        jnp.asarray(images, jnp.float32),
        jnp.asarray(labels, jnp.int32),
        left_fraction,
        threshold,
        num_canvases=num_canvases,
        canvas_size=canvas_size,
        digits_per_canvas=digits_per_canvas,
        label_radius=label_radius,
    )


@functools.partial(
    jax.jit, static_argnames=("num_canvases", "canvas_size", "digits_per_canvas", "label_radius")
)
def _digit_canvases(
    key,
    images,
    labels,
    left_fraction,
    threshold,
    *,
    num_canvases,
    canvas_size,
    digits_per_canvas,
    label_radius,
):
    """`digit_canvases` after the argument checks; see there."""
    _, h, w, _ = images.shape
    shape = (num_canvases, digits_per_canvas)
    key_index, key_row, key_side, key_col = jax.random.split(key, 4)
    index = jax.random.randint(key_index, shape, 0, images.shape[0])
    rows = jax.random.randint(key_row, shape, 0, canvas_size - h + 1)
    left = jax.random.bernoulli(key_side, left_fraction, shape)
    # Column c puts the centre c + w/2 left of S/2 iff 2c + w < S, i.e. iff c < (S − w + 1) // 2.
    split = (canvas_size - w + 1) // 2
    low = jnp.where(left, 0, split)
    high = jnp.where(left, split, canvas_size - w + 1)
    cols = jax.random.randint(key_col, shape, low, high)
    corners = jnp.stack([rows, cols], axis=-1)

    def compose(drawn):
        index, corners = drawn  # (D,), (D, 2) of one canvas
        layers = canvas.paste_at(images[index], corners, (canvas_size, canvas_size))
        side = 2 * label_radius + 1
        ink = jax.lax.reduce_window(
            layers.mean(axis=-1), -jnp.inf, jax.lax.max, (1, side, side), (1, 1, 1), "SAME"
        )
        winner = jnp.argmax(ink, axis=0)  # the first of equal maxima
        mask = jnp.where(ink.max(axis=0) > threshold, labels[index][winner] + 1, 0)
        return layers.max(axis=0), mask.astype(jnp.int32)

    return jax.lax.map(compose, (index, corners), batch_size=_CHUNK)


def make_splits(
    dataset: ImageDataset,
    *,
    seed: int,
    num_train: int,
    num_test: int,
    canvas_size: int,
    digits_per_canvas: int,
    left_fraction: float,
    threshold: float = 0.5,
    label_radius: int = 0,
) -> dict[str, np.ndarray]:
    """Train and test segmentation canvases, each from its own split's digits only.

    The dataset's images are un-normalised to ink in [0, 1] for `digit_canvases`, and the
    canvases normalised again with the dataset's mean and std, so the background is the
    normalised zero as on the probe canvases.

    Args:
      dataset: a normalised `ImageDataset` with 10 classes, e.g. the embedded digits.
      seed: seed of the draw; the train split uses fold_in(key, 0), the test split fold_in(key, 1).
      num_train: canvases in the train split.
      num_test: canvases in the test split.
      canvas_size: S, canvas height and width.
      digits_per_canvas: digits on each canvas.
      left_fraction: probability that a digit lies in the left half, in [0, 1].
      threshold: ink above which a pixel belongs to its digit.
      label_radius: dilation of each digit's ink for its label mask, in pixels.

    Returns:
      {"train_images", "test_images"}: (N, S, S, C) float32 normalised canvases, and
      {"train_masks", "test_masks"}: (N, S, S) int32 labels in [0, NUM_CLASSES).

    Raises:
      ValueError: if an argument is out of range.
    """
    if dataset.num_classes != NUM_CLASSES - 1:
        raise ValueError(
            f"dataset must have {NUM_CLASSES - 1} classes, got {dataset.num_classes} "
            f"({dataset.name})"
        )
    for name, count in (("num_train", num_train), ("num_test", num_test)):
        if count < 1:
            raise ValueError(f"{name} must be at least 1, got {count}")
    key = jax.random.PRNGKey(seed)
    splits = {}
    for i, (split, count) in enumerate((("train", num_train), ("test", num_test))):
        ink = np.clip(getattr(dataset, f"{split}_images") * dataset.std + dataset.mean, 0, 1)
        canvases, masks = digit_canvases(
            jax.random.fold_in(key, i),
            ink,
            getattr(dataset, f"{split}_labels"),
            num_canvases=count,
            canvas_size=canvas_size,
            digits_per_canvas=digits_per_canvas,
            left_fraction=left_fraction,
            threshold=threshold,
            label_radius=label_radius,
        )
        splits[f"{split}_images"] = (np.asarray(canvases) - dataset.mean) / dataset.std
        splits[f"{split}_masks"] = np.asarray(masks)
    return splits


def digit_data(dataset: ImageDataset, **kwargs) -> SegmentationData:
    """The canvases of `make_splits(dataset, **kwargs)` as `SegmentationData`."""
    splits = make_splits(dataset, **kwargs)
    return SegmentationData(
        name=f"{dataset.name} canvases",
        train_images=splits["train_images"],
        train_labels=splits["train_masks"],
        test_images=splits["test_images"],
        test_labels=splits["test_masks"],
        num_classes=NUM_CLASSES,
    )
