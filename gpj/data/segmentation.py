"""An embedded segmentation dataset: digits scattered over a zero canvas, labelled per pixel.

Each canvas holds a few digits at random positions; every pixel is labelled with the class of the
digit whose ink covers it (digit d → label d + 1) or 0 for the background. A digit lies on the
"left" with probability `left_fraction`, i.e. its centre is in the left half of the canvas, else
on the "right". left_fraction = 0.5 gives a left/right-symmetric layout (up to the one exactly
centred position, which counts as right); > 0.5 puts more digits on the left, like a scene layout
that is not mirror-symmetric, where a channel's signed flip score can have a side. The calibration
sets, which rank channels, put exactly that share of their digits on the left (rounded), so that
0.5 is exactly balanced.

The *position-needed* variant (`side_labels`): digits lie wholly in one half, outside a dead zone
at the midline, each mirrored with probability 1/2 (so a digit's chirality does not tell its
side), and a right digit d is labelled d + 1 + NUM_DIGITS: the same shape is "d-left" or
"d-right", so a pixel's class needs the absolute position of its digit.

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

NUM_DIGITS = 10
NUM_CLASSES = NUM_DIGITS + 1  # background and the ten digits
SIDE_CLASSES = 2 * NUM_DIGITS + 1  # background, the digits on the left, the digits on the right
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
    # > 0: classes 1..side_classes are shapes on the left, and class c + side_classes the shape
    # of class c on the right (the position-needed task).
    side_classes: int = 0
    # Extra image sets that rank channels without touching the test split, by name.
    calibration: dict = dataclasses.field(default_factory=dict)
    # The same, drawn afresh for each training seed: {name: function of the seed → images}.
    seeded_calibration: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where `digit_canvases` puts digits and how it labels them: its static settings, one
    hashable value (one compiled program per layout).

    Attributes:
      num_canvases: N, canvases to draw.
      canvas_size: S, canvas height (and width unless `canvas_width`).
      digits_per_canvas: digits on each canvas.
      label_radius: dilation of each digit's ink for its label mask, in pixels.
      canvas_width: W, canvas width (0: S, square).
      dead_zone: None (the centre rule), or the width of the midline band no digit enters.
      mirror_digits: flip each digit left-right with probability 1/2.
      side_labels: label right digits apart from left ones (+ NUM_DIGITS).
      exact_sides: an exact count of left digits instead of independent draws.
    """

    num_canvases: int
    canvas_size: int
    digits_per_canvas: int
    label_radius: int = 0
    canvas_width: int = 0
    dead_zone: int | None = None
    mirror_digits: bool = False
    side_labels: bool = False
    exact_sides: bool = False

    @property
    def width(self) -> int:
        return self.canvas_width or self.canvas_size

    def check(self, h: int, w: int, left_fraction: float) -> None:
        """Raises ValueError if a setting is out of range for h x w digits at `left_fraction`."""
        width = self.width
        if self.num_canvases < 1:
            raise ValueError(f"num_canvases must be at least 1, got {self.num_canvases}")
        if self.canvas_size < max(h, w):
            raise ValueError(
                f"canvas_size must be at least the digit size {max(h, w)}, got {self.canvas_size}"
            )
        if self.digits_per_canvas < 1:
            raise ValueError(f"digits_per_canvas must be at least 1, got {self.digits_per_canvas}")
        if not 0 <= left_fraction <= 1:
            raise ValueError(f"left_fraction must lie in [0, 1], got {left_fraction}")
        if self.label_radius < 0:
            raise ValueError(f"label_radius must be at least 0, got {self.label_radius}")
        if width < w:
            raise ValueError(f"canvas_width must be at least the digit width {w}, got {width}")
        if self.dead_zone is None and left_fraction > 0 and width == w:
            raise ValueError(
                f"canvas_size must exceed the digit width {w} when left_fraction > 0 (no column "
                f"puts a digit's centre in the left half), got {self.canvas_size}"
            )
        if self.dead_zone is not None and (self.dead_zone < 0 or (width - self.dead_zone) // 2 < w):
            raise ValueError(
                f"dead_zone={self.dead_zone} leaves no room for a {w}-pixel-wide digit in each "
                f"half of a {width}-pixel-wide canvas; use 0 <= dead_zone <= {width - 2 * w}"
            )


def digit_canvases(
    key: jax.Array,
    images: jax.Array,
    labels: jax.Array,
    layout: Layout,
    *,
    left_fraction: float,
    threshold: float = 0.5,
) -> tuple[jax.Array, jax.Array]:
    """Scatters random digits over zero canvases and labels every pixel; deterministic in `key`.

    Each digit is drawn uniformly with replacement. Its top-left row is uniform in
    [0, canvas_size − h]; it goes left with probability `left_fraction` (with `exact_sides`: the
    N × digits_per_canvas digits are a random ordering of round(left_fraction × their number)
    left ones and right ones), and its top-left column is then uniform over the columns c whose
    digit centre c + w/2 lies in that half (< W/2 for left, ≥ for right; W = canvas_width). With
    a `dead_zone` the columns are instead those that put the whole digit in its half, at least
    dead_zone / 2 from the midline: c + w ≤ (W − dead_zone) // 2 on the left,
    c ≥ ⌈(W + dead_zone) / 2⌉ on the right. With `mirror_digits` each digit is flipped
    left-right with probability 1/2; with `side_labels` a right digit's label is its class + 1 +
    NUM_DIGITS. Digits are combined by the pixel-wise maximum of their ink. For the labels only,
    each digit's ink (mean over channels) is first dilated by a max filter of side
    2 * label_radius + 1, so that a digit labels its strokes and their surroundings (a blob, as
    objects are at the scale of a segmentation network's output stride). At each pixel the digit
    with the most (dilated) ink wins, ties going to the digit drawn first; the pixel's label is
    that digit's class + 1 if its ink exceeds `threshold`, else 0.

    Args:
      key: a `jax.random` key.
      images: (M, h, w, C) digits with ink in [0, 1] (not normalised).
      labels: (M,) integer classes of the digits.
      layout: the canvases' static settings (`Layout`).
      left_fraction: probability that a digit lies in the left half, in [0, 1].
      threshold: ink above which a pixel belongs to its digit.

    Returns:
      (N, S, W, C) float32 canvases in [0, 1] and (N, S, W) int32 masks in [0, max label + 1]
      (+ NUM_DIGITS with side_labels).

    Raises:
      ValueError: if an argument is out of range or the canvas has no column for a digit's side.
    """
    _, h, w, _ = images.shape
    layout.check(h, w, left_fraction)
    images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
    return _digit_canvases(key, images, labels, left_fraction, threshold, layout)


@functools.partial(jax.jit, static_argnames="layout")
def _digit_canvases(key, images, labels, left_fraction, threshold, layout):
    """`digit_canvases` after the argument checks; see there."""
    _, h, w, _ = images.shape
    size, width = layout.canvas_size, layout.width
    shape = (layout.num_canvases, layout.digits_per_canvas)
    key_index, key_row, key_side, key_col = jax.random.split(key, 4)
    index = jax.random.randint(key_index, shape, 0, images.shape[0])
    rows = jax.random.randint(key_row, shape, 0, size - h + 1)
    if layout.exact_sides:
        order = jnp.arange(shape[0] * shape[1])
        lefts = jnp.round(left_fraction * order.size)
        left = jax.random.permutation(key_side, order < lefts).reshape(shape)
    else:
        left = jax.random.bernoulli(key_side, left_fraction, shape)
    if layout.dead_zone is None:
        # Column c puts the centre c + w/2 left of W/2 iff 2c + w < W, i.e. c < (W − w + 1) // 2.
        left_end = right_start = (width - w + 1) // 2
    else:
        zone = layout.dead_zone
        left_end, right_start = (width - zone) // 2 - w + 1, (width + zone + 1) // 2
    low = jnp.where(left, 0, right_start)
    high = jnp.where(left, left_end, width - w + 1)
    cols = jax.random.randint(key_col, shape, low, high)
    corners = jnp.stack([rows, cols], axis=-1)
    mirrored = jax.random.bernoulli(jax.random.fold_in(key, 4), 0.5 * layout.mirror_digits, shape)
    classes = labels[index] + jnp.where(left | (not layout.side_labels), 0, NUM_DIGITS)

    def compose(drawn):
        index, corners, mirrored, classes = drawn  # (D,), (D, 2), (D,), (D,) of one canvas
        digits = jnp.where(mirrored[:, None, None, None], images[index][:, :, ::-1], images[index])
        layers = canvas.paste_at(digits, corners, (size, width))
        side = 2 * layout.label_radius + 1
        ink = jax.lax.reduce_window(
            layers.mean(axis=-1), -jnp.inf, jax.lax.max, (1, side, side), (1, 1, 1), "SAME"
        )
        winner = jnp.argmax(ink, axis=0)  # the first of equal maxima
        mask = jnp.where(ink.max(axis=0) > threshold, classes[winner] + 1, 0)
        return layers.max(axis=0), mask.astype(jnp.int32)

    return jax.lax.map(compose, (index, corners, mirrored, classes), batch_size=_CHUNK)


def make_splits(
    dataset: ImageDataset,
    *,
    seed: int,
    num_train: int,
    num_test: int,
    left_fraction: float,
    calibration: dict | None = None,
    **canvas,
) -> dict[str, np.ndarray]:
    """Train and test segmentation canvases, each from its own split's digits only, and
    calibration canvases from the train digits.

    The dataset's images are un-normalised to ink in [0, 1] for `digit_canvases`, and the
    canvases scaled by the dataset's std (not shifted by its mean), so that the background is 0:
    the value zero padding pads with, as the background of the probe canvases.

    Args:
      dataset: a normalised `ImageDataset` with 10 classes, e.g. the embedded digits.
      seed: seed of the draw; the train split uses fold_in(key, 0), the test split fold_in(key, 1)
        and the i-th calibration set fold_in(key, 2 + i).
      num_train: canvases in the train split.
      num_test: canvases in the test split.
      left_fraction: probability that a train or test digit lies in the left half, in [0, 1].
      calibration: {name: (canvases, left_fraction)}: sets drawn from the train digits, with
        their own layout and `exact_sides`, that rank channels apart from the test split.
      **canvas: the `Layout`'s canvas_size and digits_per_canvas, and optionally its
        label_radius, canvas_width, dead_zone, mirror_digits and side_labels.

    Returns:
      {"<split>_images"}: (N, S, W, C) float32 canvases (ink / std), and {"<split>_masks"}:
      (N, S, W) int32 labels, for train, test and every calibration set.

    Raises:
      ValueError: if an argument is out of range.
    """
    calibration = calibration or {}
    draws = [("train", num_train, left_fraction), ("test", num_test, left_fraction)]
    draws += [(name, *count_left) for name, count_left in calibration.items()]
    _check(dataset, {name: count for name, count, _ in draws})
    key = jax.random.PRNGKey(seed)
    splits = {}
    for i, (name, count, side_fraction) in enumerate(draws):
        split = _draw(dataset, jax.random.fold_in(key, i), name, count, side_fraction, canvas)
        splits[f"{name}_images"], splits[f"{name}_masks"] = split
    return splits


def _check(dataset: ImageDataset, counts: dict) -> None:
    """Raises ValueError unless `dataset` has the ten digit classes and every split a canvas."""
    if dataset.num_classes != NUM_DIGITS:
        raise ValueError(
            f"dataset must have {NUM_DIGITS} classes, got {dataset.num_classes} ({dataset.name})"
        )
    for name, count in counts.items():
        if count < 1:
            raise ValueError(f"num_{name} must be at least 1, got {count}")


def _draw(dataset, key, name, count, left_fraction, canvas) -> tuple[np.ndarray, np.ndarray]:
    """Split `name`'s (images, masks): the test split of the test digits, any other of the train
    digits, and a calibration set (neither train nor test) with `exact_sides`."""
    digits = "test" if name == "test" else "train"
    ink = np.clip(getattr(dataset, f"{digits}_images") * dataset.std + dataset.mean, 0, 1)
    layout = Layout(num_canvases=count, exact_sides=name not in ("train", "test"), **canvas)
    labels = getattr(dataset, f"{digits}_labels")
    images, masks = digit_canvases(key, ink, labels, layout, left_fraction=left_fraction)
    return np.asarray(images) / dataset.std, np.asarray(masks)


def digit_data(
    dataset: ImageDataset,
    *,
    seed: int,
    calibration: dict | None = None,
    seeded_calibration: dict | None = None,
    **splits,
) -> SegmentationData:
    """The canvases of `make_splits` (same arguments) as `SegmentationData`, with
    `seeded_calibration` {name: (canvases, left_fraction)}: calibration sets drawn afresh for each
    training seed s, as functions of s that give the images; the j-th is drawn from
    fold_in(fold_in(key, 2 + len(calibration) + j), s), key = PRNGKey(seed).

    Raises:
      ValueError: if an argument is out of range.
    """
    calibration, seeded_calibration = calibration or {}, seeded_calibration or {}
    _check(dataset, {name: count for name, (count, _) in seeded_calibration.items()})
    canvas = {
        k: v for k, v in splits.items() if k not in ("num_train", "num_test", "left_fraction")
    }
    splits = make_splits(dataset, seed=seed, calibration=calibration, **splits)
    key = jax.random.PRNGKey(seed)
    side_labels = canvas.get("side_labels", False)
    return SegmentationData(
        name=f"{dataset.name} canvases",
        train_images=splits["train_images"],
        train_labels=splits["train_masks"],
        test_images=splits["test_images"],
        test_labels=splits["test_masks"],
        num_classes=SIDE_CLASSES if side_labels else NUM_CLASSES,
        side_classes=NUM_DIGITS if side_labels else 0,
        calibration={name: splits[f"{name}_images"] for name in calibration},
        seeded_calibration={
            name: functools.partial(
                _seeded_images,
                dataset,
                jax.random.fold_in(key, 2 + len(calibration) + j),
                name,
                *count_left,
                canvas,
            )
            for j, (name, count_left) in enumerate(seeded_calibration.items())
        },
    )


def _seeded_images(dataset, key, name, count, left_fraction, canvas, training_seed) -> np.ndarray:
    """The images of a seeded calibration set (key: the set's) for `training_seed`."""
    split_key = jax.random.fold_in(key, training_seed)
    return _draw(dataset, split_key, name, count, left_fraction, canvas)[0]


def shape_only(data: SegmentationData) -> SegmentationData:
    """The same canvases with the side taken out of the labels: a digit's class wherever it lies
    (the control of the position-needed task)."""
    k = data.side_classes

    def merged(labels):
        return np.where((labels > k) & (labels <= 2 * k), labels - k, labels)

    return dataclasses.replace(
        data,
        train_labels=merged(data.train_labels),
        test_labels=merged(data.test_labels),
        num_classes=k + 1,
        side_classes=0,
    )
