"""Specifications of gpj.data.segmentation and gpj.analysis.segmentation_metrics."""

import hashlib

import jax
import numpy as np
import pytest
import sklearn.metrics

from gpj.analysis import segmentation_metrics as metrics
from gpj.data import segmentation, sources

# --- digit_canvases -------------------------------------------------------------------------------

H, W = 5, 4  # digit size of the synthetic tests: non-square catches row/column mix-ups
S = 12  # canvas side: top-left columns 0..3 are left (centre c + 2 < 6), 4..8 right


def _framed_digits(count):
    """Digits with a full frame of ink 1, so that a digit's ink bounding box is its placement,
    and a fainter interior whose value identifies the digit: 0 to 0.5, the default threshold."""
    images = np.ones((count, H, W, 1), np.float32)
    interior = np.linspace(0, 0.5, count, dtype=np.float32)
    images[:, 1:-1, 1:-1] = interior[:, None, None, None]
    labels = np.arange(count, dtype=np.int32) % 10
    return images, labels


def _canvases(key=0, images=None, labels=None, left_fraction=0.5, threshold=0.5, **layout):
    if images is None:
        images, labels = _framed_digits(7)
    # One shape for most tests, so that they share one compilation.
    args = {"num_canvases": 600, "canvas_size": S, "digits_per_canvas": 1}
    canvases, masks = segmentation.digit_canvases(
        jax.random.PRNGKey(key),
        images,
        labels,
        segmentation.Layout(**(args | layout)),
        left_fraction=left_fraction,
        threshold=threshold,
    )
    return np.asarray(canvases), np.asarray(masks)


def _placements(canvases):
    """(N, 2) top-left corners of single framed digits, from the bounding box of their ink."""
    corners = []
    for ink in canvases[..., 0]:
        rows, cols = np.nonzero(ink > 0)
        corners.append((rows.min(), cols.min()))
        assert rows.max() - rows.min() + 1 == H and cols.max() - cols.min() + 1 == W
    return np.array(corners)


def test_shapes_dtypes_and_determinism():
    canvases, masks = _canvases()
    assert canvases.shape == (600, S, S, 1) and canvases.dtype == np.float32
    assert masks.shape == (600, S, S) and masks.dtype == np.int32
    assert canvases.min() >= 0 and canvases.max() <= 1
    again, again_masks = _canvases()
    np.testing.assert_array_equal(canvases, again)
    np.testing.assert_array_equal(masks, again_masks)
    other, _ = _canvases(key=1)
    assert not np.array_equal(canvases, other)


def test_single_digit_is_copied_exactly_and_labelled_above_the_threshold():
    images, labels = _framed_digits(7)
    canvases, masks = _canvases(images=images, labels=labels)
    for canvas, mask, (row, col) in zip(canvases, masks, _placements(canvases), strict=True):
        crop = canvas[row : row + H, col : col + W]
        # The crop is one of the digits, exactly; its interior tells which.
        (digit,) = np.flatnonzero((images == crop).all(axis=(1, 2, 3)))
        outside = np.ones((S, S), bool)
        outside[row : row + H, col : col + W] = False
        assert not canvas[outside].any() and not mask[outside].any()
        # The frame (ink 1) is labelled; the interior (ink ≤ 0.5) and the background are not.
        expected = np.where(images[digit, ..., 0] > 0.5, labels[digit] + 1, 0)
        np.testing.assert_array_equal(mask[row : row + H, col : col + W], expected)


@pytest.mark.parametrize("radius", [1, 2])
def test_label_radius_labels_the_pixels_near_the_ink(radius):
    images, labels = _framed_digits(7)
    canvases, masks = _canvases(images=images, labels=labels, label_radius=radius)
    for canvas, mask in zip(canvases[:50], masks[:50], strict=True):
        ink = np.pad(canvas[..., 0], radius, constant_values=0)
        near = np.zeros((S, S))  # an independent max filter of side 2 * radius + 1
        for dy in range(2 * radius + 1):
            for dx in range(2 * radius + 1):
                near = np.maximum(near, ink[dy : dy + S, dx : dx + S])
        label = mask[mask > 0]
        assert len(np.unique(label)) == 1  # one digit per canvas
        np.testing.assert_array_equal(mask > 0, near > 0.5)


def test_overlapping_digits_the_most_ink_wins_its_label():
    # Flat digits of distinct ink, channel 1 at half of channel 0, so the mean ink is 0.75 × it.
    count = 12
    ink = np.linspace(0.1, 1.0, count, dtype=np.float32)
    images = np.broadcast_to(np.stack([ink, ink / 2], -1)[:, None, None], (count, H, W, 2)).copy()
    labels = np.arange(count, dtype=np.int32) % 10
    canvases, masks = _canvases(
        images=images, labels=labels, num_canvases=40, digits_per_canvas=6, threshold=0.4
    )
    np.testing.assert_array_equal(canvases[..., 1], canvases[..., 0] / 2)  # maxima per channel
    top = canvases[..., 0]
    digit = np.abs(top[..., None] - ink).argmin(-1)  # which digit's ink tops each pixel
    expected = np.where(0.75 * top > 0.4, labels[digit] + 1, 0)
    np.testing.assert_array_equal(masks, np.where(top > 0, expected, 0))
    assert (masks > 0).any() and ((top > 0) & (masks == 0)).any()  # both cases occur


# Top-left columns whose digit centre c + W/2 is left of S/2: at S = 12 the centre of column 4 is
# exactly S/2 and counts as right; at S = 13 column 4 (centre 6 < 6.5) is the last on the left.
LEFT_COLUMNS = {12: 4, 13: 5}


@pytest.mark.parametrize("size", [12, 13])
@pytest.mark.parametrize("left_fraction", [1.0, 0.0, 0.5])
def test_columns_are_uniform_over_the_side_of_the_digit_centre(size, left_fraction):
    canvases, _ = _canvases(canvas_size=size, left_fraction=left_fraction)
    rows, cols = _placements(canvases).T
    assert set(rows) == set(range(size - H + 1))
    positions, num_left = size - W + 1, LEFT_COLUMNS[size]
    sides = {1.0: range(num_left), 0.0: range(num_left, positions), 0.5: range(positions)}
    assert set(cols) == set(sides[left_fraction])
    # Each side's share spread evenly over its columns.
    share = np.where(
        np.arange(positions) < num_left,
        left_fraction / num_left,
        (1 - left_fraction) / (positions - num_left),
    )
    expected = len(cols) * share
    counts = np.bincount(cols, minlength=positions)
    assert (np.abs(counts - expected) <= 4 * np.sqrt(expected)).all()
    left = cols + W / 2 < size / 2
    assert abs(left.mean() - left_fraction) < 0.07  # binomial sd ≤ 0.02


def test_canvas_as_wide_as_a_digit_only_has_a_right_side():
    images, labels = np.ones((3, H, H, 1), np.float32), np.arange(3)
    canvases, masks = _canvases(images=images, labels=labels, canvas_size=H, left_fraction=0.0)
    np.testing.assert_array_equal(canvases, 1)
    assert (masks == masks[:, :1, :1]).all() and set(np.unique(masks)) == {1, 2, 3}
    with pytest.raises(ValueError, match="canvas_size must exceed the digit width"):
        _canvases(images=images, labels=labels, canvas_size=H, left_fraction=0.1)


def test_position_needed_layout_sides_dead_zone_mirrors_and_labels():
    """Width 20, dead zone 4: left digits (W = 4 wide) start at columns 0..4 (c + 4 <= 8), right
    ones at 12..16; a right digit d is labelled d + 1 + 10; half the digits are mirrored."""
    images, labels = _framed_digits(7)
    images[:, 1:-1, 1] = 0.05  # an asymmetric interior column, to tell a mirrored digit
    canvases, masks = _canvases(
        images=images,
        labels=labels,
        canvas_width=20,
        dead_zone=4,
        mirror_digits=True,
        side_labels=True,
    )
    assert canvases.shape == (600, S, 20, 1)
    cols = _placements(canvases)[:, 1]
    left = cols <= 4
    assert set(cols[left]) == set(range(5)) and set(cols[~left]) == set(range(12, 17))
    assert abs(left.mean() - 0.5) < 0.07
    mirrored = []
    for canvas, mask, col, on_left in zip(canvases[..., 0], masks, cols, left, strict=True):
        digit = canvas[:, col : col + W]
        rows = np.nonzero(digit.max(axis=1) > 0)[0]
        interior = digit[rows.min() + 1 : rows.min() + H - 1]
        mirrored.append(np.isclose(interior[:, W - 2], 0.05).all())
        inked = mask[mask > 0]
        classes = set(inked.tolist())
        assert len(classes) == 1 and (classes.pop() > 10) == (not on_left)
    assert abs(np.mean(mirrored) - 0.5) < 0.07


def test_mirror_relabels_the_sides_and_shape_only_merges_them():
    from gpj import tasks

    labels = np.array([[[0, 1, 12, 255]]], np.int32)  # background, 0-left, 1-right, ignored
    images = np.arange(4, dtype=np.float32).reshape(1, 1, 4, 1)
    task = tasks.Segmentation(hflip=True, side_classes=10)
    flips = {}
    for seed in range(8):
        x, y = task.mirror(images, labels, jax.random.PRNGKey(seed))
        flips[bool(np.asarray(x)[0, 0, 0, 0] == 3)] = np.asarray(y)[0, 0].tolist()
    assert flips == {False: [0, 1, 12, 255], True: [255, 2, 11, 0]}
    data = segmentation.SegmentationData(
        "d", images, labels, images, labels, segmentation.SIDE_CLASSES, side_classes=10
    )
    merged = segmentation.shape_only(data)
    assert merged.test_labels.tolist() == [[[0, 1, 2, 255]]]
    assert (merged.num_classes, merged.side_classes) == (11, 0)


# --- make_splits ----------------------------------------------------------------------------------

SPLIT_ARGS = {
    "num_train": 30,
    "num_test": 30,  # as many as num_train: both splits share one compilation
    "canvas_size": 10,
    "digits_per_canvas": 2,
    "left_fraction": 0.5,
}


@pytest.fixture(scope="module")
def flat_digits():
    """A normalised dataset of flat digits whose ink tells the split: train ≤ 0.7, test ≥ 0.8."""
    train_ink = np.linspace(0.55, 0.7, 10, dtype=np.float32)
    test_ink = np.linspace(0.8, 1.0, 10, dtype=np.float32)
    mean, std = np.array([0.3], np.float32), np.array([0.4], np.float32)

    def images(ink):
        return (np.broadcast_to(ink[:, None, None, None], (10, 4, 4, 1)) - mean) / std

    labels = np.arange(10, dtype=np.int32)
    return sources.ImageDataset(
        "flat", images(train_ink), labels, images(test_ink), labels, 10, mean, std
    )


def test_splits_use_their_own_digits_and_a_zero_background_scaled_like_the_dataset(flat_digits):
    splits = segmentation.make_splits(flat_digits, seed=0, **SPLIT_ARGS)
    for split, ink in (("train", (0.55, 0.7)), ("test", (0.8, 1.0))):
        images, masks = splits[f"{split}_images"], splits[f"{split}_masks"]
        n = SPLIT_ARGS[f"num_{split}"]
        assert images.shape == (n, 10, 10, 1) and images.dtype == np.float32
        assert masks.shape == (n, 10, 10) and masks.dtype == np.int32
        raw = images[..., 0] * flat_digits.std
        background = images[..., 0] == 0  # the zero padding's value, as on the probe canvases
        assert np.isclose(raw[background], 0).all()
        assert background.any() and not masks[background].any()
        assert raw[~background].min() >= ink[0] - 1e-6 and raw[~background].max() <= ink[1] + 1e-6
        # Flat digit d has ink 0.55 + d/60 (train) or 0.8 + d/45 (test) and label d + 1.
        digit = np.rint((raw - ink[0]) / (ink[1] - ink[0]) * 9).astype(int)
        np.testing.assert_array_equal(masks[~background], digit[~background] + 1)


def test_splits_are_deterministic_in_the_seed(flat_digits):
    a = segmentation.make_splits(flat_digits, seed=3, **SPLIT_ARGS)
    b = segmentation.make_splits(flat_digits, seed=3, **SPLIT_ARGS)
    c = segmentation.make_splits(flat_digits, seed=4, **SPLIT_ARGS)
    assert a.keys() == {"train_images", "train_masks", "test_images", "test_masks"}
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["train_masks"], c["train_masks"])


CALIBRATED = {
    "seed": 0,
    "num_train": 30,
    "num_test": 30,
    "canvas_size": 10,
    "canvas_width": 20,
    "dead_zone": 2,  # left digits in columns 0..8, right ones in 11..19
    "mirror_digits": True,
    "side_labels": True,
    "digits_per_canvas": 2,
    "left_fraction": 0.5,
    "calibration": {"calibration": (30, 1.0)},
    "seeded_calibration": {"symmetric": (30, 0.5)},
}


def _left_digits(images):
    """Digits in the left half of canvases of two digits, each wholly in one half: two where only
    the left half has ink, one where both halves have."""
    left, right = (
        (half > 0).any(axis=(1, 2, 3)) for half in (images[:, :, :10], images[:, :, 10:])
    )
    return int((2 * (left & ~right) + (left & right)).sum())


def test_seeded_symmetric_calibration_is_exactly_balanced_and_drawn_per_training_seed(flat_digits):
    data = segmentation.digit_data(flat_digits, **CALIBRATED)
    symmetric = data.seeded_calibration["symmetric"]
    sets = [symmetric(seed) for seed in range(4)]
    for seed, images in enumerate(sets):
        assert images.shape == (30, 10, 20, 1)
        assert _left_digits(images) == 30  # of 60 digits
        np.testing.assert_array_equal(images, symmetric(seed))
        assert not any(np.array_equal(images, other) for other in sets[seed + 1 :])
    assert _left_digits(data.calibration["calibration"]) == 60
    assert set(data.calibration) == {"calibration"}


def test_seeded_calibration_leaves_train_test_and_calibration_canvases_as_drawn_before(flat_digits):
    """The checksum of these splits as drawn before the symmetric set was seeded and balanced."""
    data = segmentation.digit_data(flat_digits, **CALIBRATED)
    digest = hashlib.sha256()
    for split in (
        data.train_images,
        data.train_labels,
        data.test_images,
        data.test_labels,
        data.calibration["calibration"],
    ):
        digest.update(np.ascontiguousarray(split).tobytes())
    assert digest.hexdigest()[:16] == "a98b7e317a5f9d01"


def test_embedded_digits_layout_follows_left_fraction():
    digits = sources.load_dataset("digits", image_size=16, channels=1)
    ink = np.clip(digits.train_images * digits.std + digits.mean, 0, 1)
    fractions = {}
    for left_fraction in (0.5, 0.9):
        _, masks = _canvases(
            images=ink,
            labels=digits.train_labels,
            num_canvases=500,
            canvas_size=32,
            digits_per_canvas=2,
            left_fraction=left_fraction,
        )
        assert set(np.unique(masks)) == set(range(segmentation.NUM_CLASSES))
        fractions[left_fraction] = (np.nonzero(masks)[2] < 16).mean()
    # Symmetric up to the exactly centred position and the digits' own asymmetry.
    assert abs(fractions[0.5] - 0.5) < 0.03
    assert fractions[0.9] > 0.7


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"canvas_size": 3}, "canvas_size"),
        ({"digits_per_canvas": 0}, "digits_per_canvas"),
        ({"left_fraction": -0.1}, "left_fraction"),
        ({"left_fraction": 1.5}, "left_fraction"),
        ({"num_train": 0}, "num_train"),
        ({"num_test": 0}, "num_test"),
    ],
)
def test_bad_split_arguments_raise_value_error_naming_them(flat_digits, change, name):
    with pytest.raises(ValueError, match=f"^{name} must"):
        segmentation.make_splits(flat_digits, seed=0, **SPLIT_ARGS | change)


# --- metrics --------------------------------------------------------------------------------------

K = 5


def _random_segmentation(width, seed=0):
    """Labels with ignored (255) and out-of-range (K, −1) pixels, and correlated predictions."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, (6, 3, width))
    preds = np.where(rng.random(labels.shape) < 0.6, labels, rng.integers(0, K, labels.shape))
    labels[rng.random(labels.shape) < 0.1] = 255
    labels[rng.random(labels.shape) < 0.05] = K
    labels[rng.random(labels.shape) < 0.05] = -1
    valid = np.array([True, True, False, True, False, True])
    return labels, preds, valid


def _sklearn_confusion(labels, preds, valid):
    labels, preds = labels[valid].ravel(), preds[valid].ravel()
    counted = (labels >= 0) & (labels < K)
    return sklearn.metrics.confusion_matrix(labels[counted], preds[counted], labels=range(K))


def test_confusion_matrix_matches_sklearn():
    labels, preds, valid = _random_segmentation(width=9)
    got = np.asarray(metrics.confusion_matrix(labels, preds, K, valid=valid))
    assert got.shape == (K, K) and got.dtype == np.int32
    np.testing.assert_array_equal(got, _sklearn_confusion(labels, preds, valid))
    everything = np.ones(len(labels), bool)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(labels, preds, K), _sklearn_confusion(labels, preds, everything)
    )


def test_region_column_masks():
    masks = metrics.region_column_masks(7)  # odd: the middle column 3 is on the right
    assert masks.shape == (4, 7) and masks.dtype == bool
    expected = {"all": range(7), "left": range(3), "right": range(3, 7), "center": range(1, 6)}
    for region, row in zip(metrics.REGIONS, masks, strict=True):
        assert list(np.nonzero(row)[0]) == list(expected[region])
    # The official Cityscapes evaluation: boundary 1024, center [512, 1536).
    left, right, center = metrics.region_column_masks(2048)[1:]
    assert left.sum() == right.sum() == 1024 and left[1023] and right[1024]
    assert center.sum() == 1024 and center[512] and center[1535] and not center[1536]


@pytest.mark.parametrize("width", [7, 8])
def test_region_confusions_are_the_confusions_of_the_region_columns(width):
    labels, preds, valid = _random_segmentation(width, seed=width)
    got = np.asarray(metrics.region_confusions(labels, preds, K, valid=valid))
    assert got.shape == (4, K, K) and got.dtype == np.int32
    for region, columns in zip(metrics.REGIONS, metrics.region_column_masks(width), strict=True):
        expected = _sklearn_confusion(labels[..., columns], preds[..., columns], valid)
        np.testing.assert_array_equal(got[metrics.REGIONS.index(region)], expected)


def test_confusions_under_jit():
    labels, preds, valid = _random_segmentation(width=8)
    for function in (metrics.confusion_matrix, metrics.region_confusions):
        jitted = jax.jit(function, static_argnames=("num_classes", "ignore_label"))
        np.testing.assert_array_equal(
            jitted(labels, preds, num_classes=K, valid=valid),
            function(labels, preds, K, valid=valid),
        )


def test_mean_iou_and_pixel_accuracy_by_hand():
    confusion = np.array(
        [
            [3, 1, 0, 1],  # class 0: TP 3, FN 2, FP 2 → 3/7
            [2, 4, 0, 0],  # class 1: TP 4, FN 2, FP 1 → 4/7
            [0, 0, 0, 0],  # class 2: absent from labels and predictions → NaN, left out
            [0, 0, 0, 0],  # class 3: predicted once, never true → 0
        ]
    )
    miou, per_class = metrics.mean_iou(confusion)
    np.testing.assert_allclose(per_class[[0, 1, 3]], [3 / 7, 4 / 7, 0.0])
    assert np.isnan(per_class[2])
    assert miou == pytest.approx((3 / 7 + 4 / 7 + 0) / 3)
    assert metrics.pixel_accuracy(confusion) == pytest.approx(7 / 11)
    empty = np.zeros((3, 3), int)
    assert np.isnan(metrics.mean_iou(empty)[0]) and np.isnan(metrics.pixel_accuracy(empty))


def test_region_scores_are_json_ready():
    confusions = np.zeros((4, 2, 2), int)
    confusions[0] = [[2, 0], [0, 0]]  # class 1 absent in "all"
    confusions[1] = [[1, 1], [1, 1]]
    scores = metrics.region_scores(confusions)
    assert list(scores) == list(metrics.REGIONS)
    assert scores["all"] == {"miou": 1.0, "pixel_accuracy": 1.0, "per_class_iou": [1.0, None]}
    assert scores["left"]["per_class_iou"] == [pytest.approx(1 / 3)] * 2
    assert np.isnan(scores["right"]["miou"]) and scores["right"]["per_class_iou"] == [None, None]
