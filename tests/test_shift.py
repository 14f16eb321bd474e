"""Specifications of gpj.data.shift (translations) and gpj.analysis.consistency."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gpj.analysis import consistency
from gpj.data import shift

M = 2  # max_shift of most tests: offsets in [0, 4]
# Corners, centre, edges and an asymmetric offset, which catches (dy, dx) swaps.
OFFSETS = np.array([[0, 0], [2 * M, 2 * M], [0, 2 * M], [2 * M, 0], [M, M], [1, 3]], np.int32)

place = jax.jit(shift.place, static_argnums=(2, 3, 4))


def _images(count, seed=0):
    """Non-square images with negative pixels: catch row/column mix-ups and -0.0 "zeros"."""
    return np.asarray(jax.random.normal(jax.random.key(seed), (count, 4, 5, 2)))


def _assert_bit_equal(got, expected):
    got = np.asarray(got)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


# --- place: exact pixels --------------------------------------------------------------------------


def test_canvas_matches_slice_assignment_onto_zeros():
    images = _images(len(OFFSETS))
    b, h, w, c = images.shape
    expected = np.zeros((b, h + 2 * M, w + 2 * M, c), np.float32)
    for i, (dy, dx) in enumerate(OFFSETS):
        expected[i, dy : dy + h, dx : dx + w] = images[i]
    _assert_bit_equal(place(images, OFFSETS, M, "canvas", "zero"), expected)


@pytest.mark.parametrize("pad_mode", ["zero", "reflect"])
def test_crop_matches_numpy_pad_and_slicing(pad_mode):
    images = _images(len(OFFSETS))
    b, h, w, c = images.shape
    numpy_mode = {"zero": "constant", "reflect": "reflect"}[pad_mode]
    padded = np.pad(images, ((0, 0), (M, M), (M, M), (0, 0)), mode=numpy_mode)
    # Content moved by (dy − m, dx − m) is the window starting at (2m − dy, 2m − dx).
    expected = np.stack(
        [
            padded[i, 2 * M - dy : 2 * M - dy + h, 2 * M - dx : 2 * M - dx + w]
            for i, (dy, dx) in enumerate(OFFSETS)
        ]
    )
    assert expected.shape == (b, h, w, c)
    _assert_bit_equal(place(images, OFFSETS, M, "crop", pad_mode), expected)


def test_zero_padded_crop_is_the_centre_of_the_canvas():
    images = _images(len(OFFSETS))
    canvases = np.asarray(place(images, OFFSETS, M, "canvas", "zero"))
    crops = place(images, OFFSETS, M, "crop", "zero")
    _assert_bit_equal(crops, canvases[:, M:-M, M:-M])


@pytest.mark.parametrize(
    "mode,pad_mode", [("canvas", "zero"), ("crop", "zero"), ("crop", "reflect")]
)
def test_centred_offsets_and_max_shift_zero_keep_the_image(mode, pad_mode):
    images = _images(3)
    _assert_bit_equal(place(images, shift.centred_offsets(3, 0), 0, mode, pad_mode), images)
    centred = np.asarray(place(images, shift.centred_offsets(3, M), M, mode, pad_mode))
    inner = centred if mode == "crop" else centred[:, M:-M, M:-M]
    _assert_bit_equal(inner, images)


@pytest.mark.parametrize("mode", shift.SHIFT_MODES)
def test_output_size_is_the_shape_place_returns(mode):
    got = place(_images(len(OFFSETS)), OFFSETS, M, mode, "zero")
    side = shift.output_size(4, M, mode), shift.output_size(5, M, mode)
    assert got.shape[1:3] == side
    assert shift.output_size(32, 4, mode) == (40 if mode == "canvas" else 32)


# --- place: the sign convention -------------------------------------------------------------------


@pytest.mark.parametrize("mode", shift.SHIFT_MODES)
def test_a_bright_pixel_moves_by_offset_minus_max_shift(mode):
    # One bright pixel at (r, c) = (2, 3) of a 6×7 image, m = 2, stays inside both outputs: it
    # lands at (r + dy, c + dx) on the canvas and at (r + dy − m, c + dx − m) in the crop.
    image = np.zeros((6, 7, 1), np.float32)
    image[2, 3] = 1.0
    offsets = np.array([[0, 0], [M, M], [2 * M, 2 * M], [1, 3], [4, 0]], np.int32)
    got = np.asarray(place(np.stack([image] * len(offsets)), offsets, M, mode, "zero"))
    base = 0 if mode == "canvas" else -M
    for out, (dy, dx) in zip(got, offsets):
        expected = np.zeros_like(out)
        expected[2 + dy + base, 3 + dx + base] = 1.0
        np.testing.assert_array_equal(out, expected)


def test_crop_drops_content_moved_out_of_the_window():
    image = np.zeros((1, 6, 7, 1), np.float32)
    image[0, 0, 6] = 1.0  # top-right corner
    up = place(image, np.array([[M - 1, M]], np.int32), M, "crop", "zero")
    right = place(image, np.array([[M, M + 1]], np.int32), M, "crop", "zero")
    down_left = place(image, np.array([[M + 1, M - 1]], np.int32), M, "crop", "zero")
    assert not np.asarray(up).any() and not np.asarray(right).any()
    assert np.asarray(down_left)[0, 1, 5, 0] == 1.0


# --- offsets --------------------------------------------------------------------------------------


def test_random_offsets_uniform_in_range_and_deterministic():
    draw = jax.jit(shift.random_offsets, static_argnums=(1, 2))
    offsets = np.asarray(draw(jax.random.key(0), 2000, M))
    assert offsets.shape == (2000, 2) and offsets.dtype == np.int32
    for axis in (0, 1):
        counts = np.bincount(offsets[:, axis], minlength=2 * M + 1)
        assert len(counts) == 2 * M + 1 and np.all(np.abs(counts - 2000 / 5) < 80)
    np.testing.assert_array_equal(offsets, draw(jax.random.key(0), 2000, M))
    assert not np.array_equal(offsets, draw(jax.random.key(1), 2000, M))
    assert not np.asarray(draw(jax.random.key(0), 10, 0)).any()


def test_centred_offsets_are_all_max_shift():
    offsets = shift.centred_offsets(3, 5)
    assert offsets.dtype == jnp.int32
    np.testing.assert_array_equal(offsets, np.full((3, 2), 5))


def test_shift_grid_every_step_plus_zero_centre_and_extremes():
    np.testing.assert_array_equal(shift.shift_grid(0, 3), [[0, 0]])
    full = shift.shift_grid(1, 1)
    assert full.dtype == np.int32
    np.testing.assert_array_equal(
        full, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [2, 0], [2, 1], [2, 2]]
    )
    # m = 3, step 4: the step gives 0 and 4; the centre 3 and the extreme 6 are added.
    coarse = shift.shift_grid(3, 4)
    axis = [0, 3, 4, 6]
    np.testing.assert_array_equal(coarse, [[dy, dx] for dy in axis for dx in axis])
    # m = 4, step 2 already holds 0, 4 and 8: nothing is duplicated.
    assert (
        len(shift.shift_grid(4, 2)) == 25 and len(np.unique(shift.shift_grid(4, 2), axis=0)) == 25
    )


def test_consistency_pairs_are_seeded_and_in_range():
    pairs = shift.consistency_pairs(50, 3, M, seed=7)
    assert pairs.shape == (50, 3, 2, 2) and pairs.dtype == np.int32
    assert pairs.min() == 0 and pairs.max() == 2 * M
    np.testing.assert_array_equal(pairs, shift.consistency_pairs(50, 3, M, seed=7))
    assert not np.array_equal(pairs, shift.consistency_pairs(50, 3, M, seed=8))
    # The two shifts of a pair are drawn independently, so they differ most of the time.
    assert np.mean(np.any(pairs[:, :, 0] != pairs[:, :, 1], axis=-1)) > 0.8


@pytest.mark.parametrize(
    "max_shift,mode,pad_mode,match",
    [
        (1, "roll", "zero", "mode must be one of canvas, crop, got 'roll'"),
        (1, "crop", "edge", "pad_mode must be one of zero, reflect, got 'edge'"),
        (-1, "canvas", "zero", "max_shift must be non-negative, got -1"),
    ],
)
def test_place_rejects_bad_arguments_by_name(max_shift, mode, pad_mode, match):
    images, offsets = np.zeros((1, 3, 3, 1), np.float32), np.ones((1, 2), np.int32)
    with pytest.raises(ValueError, match=match):
        shift.place(images, offsets, max_shift, mode, pad_mode)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: shift.output_size(8, 1, "pad"), "mode must be one of canvas, crop"),
        (lambda: shift.random_offsets(jax.random.key(0), 4, -2), "max_shift"),
        (lambda: shift.centred_offsets(4, -1), "max_shift"),
        (lambda: shift.shift_grid(-1, 1), "max_shift"),
        (lambda: shift.shift_grid(2, 0), "step must be at least 1, got 0"),
        (lambda: shift.consistency_pairs(4, 2, -1, seed=0), "max_shift"),
    ],
)
def test_other_bad_arguments_raise_value_error_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- consistency ----------------------------------------------------------------------------------


def test_agreement_and_consistency_on_a_hand_computed_example():
    a = jnp.array([1, 2, 3, 4, 5])
    b = jnp.array([1, 0, 3, 4, 0])  # agree at positions 0, 2, 3
    assert int(consistency.agreement(a, b)) == 3
    assert consistency.consistency(consistency.agreement(a, b), 5) == pytest.approx(0.6)
    # Masking out position 2, which agrees, leaves 4 counted pairs of which 0 and 3 agree.
    mask = jnp.array([True, True, False, True, True])
    num_agree = jax.jit(consistency.agreement)(a, b, mask)
    assert num_agree.dtype == jnp.int32 and int(num_agree) == 2
    assert consistency.consistency(num_agree, int(mask.sum())) == pytest.approx(0.5)


def test_agreement_sums_over_batches():
    a, b = jnp.array([0, 1, 2, 3, 4, 5]), jnp.array([0, 1, 9, 3, 9, 9])
    halves = consistency.agreement(a[:3], b[:3]) + consistency.agreement(a[3:], b[3:])
    assert int(halves) == int(consistency.agreement(a, b)) == 3


def test_consistency_without_pairs_raises():
    with pytest.raises(ValueError, match="num_pairs"):
        consistency.consistency(0, 0)
