"""Specifications of gpj.data: dataset sources, grid canvases and host-side batching."""

import collections
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

from gpj.data import batches, canvas, sources
from gpj.errors import DataError, GpjError

# --- sources: the embedded digits -----------------------------------------------------------------


def _raw_digits(dataset, split):
    """Undoes normalisation of an 8×8 single-channel digits split: back to integer pixels 0..16."""
    images = getattr(dataset, f"{split}_images") * dataset.std + dataset.mean
    return np.rint(images * 16).astype(np.int64)[..., 0]


def _multiset(images, labels):
    return collections.Counter(zip((im.tobytes() for im in images), labels.tolist()))


def test_digits_shapes_dtypes_and_stratified_split():
    data = sources.load_dataset("digits", image_size=32, channels=3)
    assert data.train_images.shape == (1437, 32, 32, 3)
    assert data.test_images.shape == (360, 32, 32, 3)
    assert data.train_images.dtype == data.test_images.dtype == np.float32
    assert data.train_labels.dtype == data.test_labels.dtype == np.int32
    assert data.num_classes == 10 and data.mean.shape == data.std.shape == (3,)
    assert set(data.train_labels) == set(data.test_labels) == set(range(10))
    # Three channels are the grayscale digit repeated.
    np.testing.assert_array_equal(data.train_images[..., 0], data.train_images[..., 2])
    # Stratified: each class keeps its share of the test split up to rounding.
    per_class = np.bincount(load_digits().target)
    assert np.all(np.abs(np.bincount(data.test_labels) - 0.2 * per_class) <= 1)


def test_digits_split_is_a_deterministic_partition_of_all_1797_images():
    data = sources.load_dataset("digits", image_size=8, channels=1, split_seed=3)
    again = sources.load_dataset("digits", image_size=8, channels=1, split_seed=3)
    other = sources.load_dataset("digits", image_size=8, channels=1, split_seed=4)
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(data, field), getattr(again, field))
    assert not np.array_equal(data.test_labels, other.test_labels)

    digits = load_digits()
    train, test = _raw_digits(data, "train"), _raw_digits(data, "test")
    assert train.min() >= 0 and train.max() <= 16
    # Multisets, because the digits contain a few duplicate images: equality with the full data
    # means train and test together hold every image once and nothing else.
    split = _multiset(train, data.train_labels) + _multiset(test, data.test_labels)
    assert split == _multiset(digits.images.astype(np.int64), digits.target)
    assert len(train) + len(test) == 1797


def test_digits_normalised_with_train_statistics():
    data = sources.load_dataset("digits", image_size=16, channels=1)
    np.testing.assert_allclose(data.train_images.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(data.train_images.std(axis=(0, 1, 2)), 1, atol=1e-4)
    # The test split reuses the train statistics, so its own are close but not exact.
    assert abs(data.test_images.mean()) < 0.1 and abs(data.test_images.std() - 1) < 0.1
    # Bilinear enlarging keeps the mean brightness of [0, 1] pixels (digits are ~0.3 on average).
    native = sources.load_dataset("digits", image_size=8, channels=1)
    np.testing.assert_allclose(data.mean, native.mean, atol=0.01)
    np.testing.assert_allclose(native.mean, load_digits().images.mean() / 16, atol=0.01)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "imagenet", "image_size": 8, "channels": 1},
        {"name": "digits", "image_size": 0, "channels": 1},
        {"name": "digits", "image_size": 8, "channels": 2},
        {"name": "digits", "image_size": 8, "channels": 1, "test_fraction": 1.0},
    ],
)
def test_bad_dataset_arguments_raise_data_error(kwargs):
    with pytest.raises(DataError) as error:
        sources.load_dataset(**kwargs)
    assert isinstance(error.value, GpjError) and "\n" not in str(error.value)


def test_unknown_dataset_message_lists_the_choices():
    with pytest.raises(DataError, match="digits, cifar10, cifar100, mnist, fashion_mnist"):
        sources.load_dataset("imagenet", image_size=8, channels=1)


# --- sources: tfds --------------------------------------------------------------------------------


def test_tfds_without_the_extra_points_to_install_and_digits(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes the import fail
    with pytest.raises(DataError, match=r"pip install -e '\.\[tfds\]'.*data\.name=digits"):
        sources.load_dataset("mnist", image_size=28, channels=1)


def test_tfds_dataset_missing_from_data_dir_says_how_to_build_it(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError) as error:
        sources.load_dataset("mnist", image_size=28, channels=1, data_dir=str(tmp_path))
    message = str(error.value)
    assert f"tfds build mnist --data_dir={tmp_path}" in message and "digits" in message


def _synthetic_mnist_pixels(num_examples, seed):
    """Random uint8 MNIST-shaped images whose label is their top-left pixel modulo 10."""
    return np.random.default_rng(seed).integers(0, 256, (num_examples, 28, 28, 1), np.uint8)


@pytest.fixture(scope="module")
def prepared_mnist(tmp_path_factory):
    """A genuine on-disk tfds `mnist` (the registered builder's name, version and features),
    written by tfds itself from synthetic examples instead of the downloaded files."""
    pytest.importorskip("tensorflow")
    tfds = pytest.importorskip("tensorflow_datasets")

    class SyntheticMnist(tfds.builder_cls("mnist"), skip_registration=True):
        name = "mnist"

        def _split_generators(self, dl_manager):
            return {
                "train": self._generate_examples(40, seed=0),
                "test": self._generate_examples(12, seed=1),
            }

        def _generate_examples(self, num_examples, seed):
            for key, image in enumerate(_synthetic_mnist_pixels(num_examples, seed)):
                yield key, {"image": image, "label": int(image[0, 0, 0]) % 10}

    data_dir = tmp_path_factory.mktemp("tfds")
    SyntheticMnist(data_dir=data_dir).download_and_prepare()
    assert tfds.builder("mnist", data_dir=data_dir).is_prepared()
    return str(data_dir)


def test_tfds_mnist_loads_from_a_prepared_data_dir(prepared_mnist):
    data = sources.load_dataset("mnist", image_size=28, channels=1, data_dir=prepared_mnist)
    assert data.train_images.shape == (40, 28, 28, 1) and data.test_images.shape == (12, 28, 28, 1)
    assert data.train_images.dtype == np.float32 and data.train_labels.dtype == np.int32
    assert data.num_classes == 10
    np.testing.assert_allclose(data.train_images.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(data.train_images.std(axis=(0, 1, 2)), 1, atol=1e-4)
    for split, seed in (("train", 0), ("test", 1)):
        pixels = np.rint((getattr(data, f"{split}_images") * data.std + data.mean) * 255)
        labels = getattr(data, f"{split}_labels")
        # tfds stores examples in shuffled order: compare contents and image-label pairing.
        np.testing.assert_array_equal(pixels[:, 0, 0, 0] % 10, labels)
        expected = _synthetic_mnist_pixels(len(labels), seed)
        assert _multiset(pixels.astype(np.uint8), labels) == _multiset(
            expected, expected[:, 0, 0, 0] % 10
        )


def test_tfds_mnist_resized_to_three_channels(prepared_mnist):
    data = sources.load_dataset("mnist", image_size=14, channels=3, data_dir=prepared_mnist)
    assert data.train_images.shape == (40, 14, 14, 3) and data.test_images.shape == (12, 14, 14, 3)
    np.testing.assert_array_equal(data.test_images[..., 0], data.test_images[..., 1])
    np.testing.assert_allclose(data.train_images.std(axis=(0, 1, 2)), 1, atol=1e-4)


def _imagenette_colour(label):
    return np.array([25 * label, 250 - 25 * label, 100], np.uint8)


def _synthetic_imagenette(num_examples, seed):
    """JPEG-sized images of different shapes: the central square in its label's colour, the
    margins black (so they show if the crop is not central)."""
    rng = np.random.default_rng(seed)
    for key in range(num_examples):
        label = int(rng.integers(10))
        short, long = int(rng.integers(24, 33)), int(rng.integers(64, 81))
        height, width = (short, long) if key % 2 else (long, short)
        image = np.zeros((height, width, 3), np.uint8)
        top, left = (height - short) // 2, (width - short) // 2
        image[top : top + short, left : left + short] = _imagenette_colour(label)
        yield key, {"image": image, "label": label}


@pytest.fixture(scope="module")
def prepared_imagenette(tmp_path_factory):
    """A genuine on-disk tfds `imagenette/160px-v2` written by tfds from synthetic examples."""
    pytest.importorskip("tensorflow")
    tfds = pytest.importorskip("tensorflow_datasets")

    class SyntheticImagenette(tfds.builder_cls("imagenette"), skip_registration=True):
        name = "imagenette"

        def _split_generators(self, dl_manager):
            return {
                "train": _synthetic_imagenette(20, seed=0),
                "validation": _synthetic_imagenette(6, seed=1),
            }

    data_dir = tmp_path_factory.mktemp("tfds")
    SyntheticImagenette(data_dir=data_dir, config="160px-v2").download_and_prepare()
    return str(data_dir)


def test_tfds_imagenette_central_squares_resized(prepared_imagenette):
    data = sources.load_dataset(
        "imagenette", image_size=16, channels=3, data_dir=prepared_imagenette
    )
    assert data.train_images.shape == (20, 16, 16, 3) and data.test_images.shape == (6, 16, 16, 3)
    assert data.num_classes == 10
    np.testing.assert_allclose(data.train_images.std(axis=(0, 1, 2)), 1, atol=1e-4)
    for split in ("train", "test"):
        pixels = (getattr(data, f"{split}_images") * data.std + data.mean) * 255
        colours = np.stack([_imagenette_colour(y) for y in getattr(data, f"{split}_labels")])
        # The output is the central square's colour, none of the black margins (JPEG blurs the
        # colour at the square's edges, so the outermost output pixels are left out).
        expected = np.broadcast_to(colours[:, None, None, :], pixels[:, 1:-1, 1:-1].shape)
        np.testing.assert_allclose(pixels[:, 1:-1, 1:-1], expected, atol=12)


def test_tfds_imagenette_missing_gives_its_config_in_the_command(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError) as error:
        sources.load_dataset("imagenette", image_size=64, channels=3, data_dir=str(tmp_path))
    message = str(error.value)
    assert f"python -m gpj.prepare imagenette --data_dir={tmp_path}" in message
    assert f"tfds build imagenette/160px-v2 --data_dir={tmp_path}" in message


# --- canvas ---------------------------------------------------------------------------------------


def _numpy_paste(images, cells, grid_size):
    """Independent reference: a zero canvas with the image slice-assigned into its cell."""
    b, h, w, c = images.shape
    out = np.zeros((b, grid_size * h, grid_size * w, c), images.dtype)
    for i, cell in enumerate(cells):
        row, col = divmod(int(cell), grid_size)
        out[i, row * h : (row + 1) * h, col * w : (col + 1) * w] = images[i]
    return out


@pytest.mark.parametrize("grid_size", [1, 2, 3])
def test_paste_places_each_image_exactly_in_its_cell(grid_size):
    # Non-square images with negative pixels catch row/column mix-ups and -0.0 "zeros".
    images = np.asarray(jax.random.normal(jax.random.key(0), (2 * grid_size**2, 4, 5, 2)))
    cells = np.concatenate([np.arange(grid_size**2), np.arange(grid_size**2)[::-1]])
    got = np.asarray(
        jax.jit(canvas.paste, static_argnums=2)(images, cells.astype(np.int32), grid_size)
    )
    assert got.shape == (2 * grid_size**2, 4 * grid_size, 5 * grid_size, 2)
    expected = _numpy_paste(images, cells, grid_size)
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_paste_every_cell_matches_paste_per_cell():
    images = jax.random.normal(jax.random.key(1), (3, 4, 5, 2))
    every = jax.jit(canvas.paste_every_cell, static_argnums=1)(images, 3)
    assert every.shape == (9, 3, 12, 15, 2)
    for cell in range(9):
        expected = _numpy_paste(np.asarray(images), np.full(3, cell), 3)
        np.testing.assert_array_equal(np.asarray(every[cell]), expected)


def test_random_cells_are_uniform_deterministic_int32():
    cells = jax.jit(canvas.random_cells, static_argnums=(1, 2))(jax.random.key(0), 4096, 3)
    assert cells.shape == (4096,) and cells.dtype == jnp.int32
    counts = np.bincount(np.asarray(cells), minlength=10)
    assert counts[9] == 0 and np.all(np.abs(counts[:9] - 4096 / 9) < 100)
    np.testing.assert_array_equal(cells, canvas.random_cells(jax.random.key(0), 4096, 3))
    assert not np.array_equal(cells, canvas.random_cells(jax.random.key(1), 4096, 3))


# --- batches --------------------------------------------------------------------------------------


def test_steps_per_epoch_drops_the_remainder():
    assert batches.steps_per_epoch(23, 5) == 4
    with pytest.raises(ValueError):
        batches.steps_per_epoch(4, 5)


def test_train_batches_cover_each_epoch_once_and_reshuffle_per_epoch():
    def epoch(index, seed=0):
        return np.concatenate(
            [
                batches.train_batch_indices(20, 5, seed, step)
                for step in range(4 * index, 4 * index + 4)
            ]
        )

    np.testing.assert_array_equal(np.sort(epoch(0)), np.arange(20))
    np.testing.assert_array_equal(np.sort(epoch(1)), np.arange(20))
    assert not np.array_equal(epoch(0), epoch(1))
    np.testing.assert_array_equal(epoch(2), epoch(2))  # depends only on (seed, step)
    assert not np.array_equal(epoch(0), epoch(0, seed=1))
    # With a remainder, an epoch still never repeats an example.
    drop = np.concatenate([batches.train_batch_indices(23, 5, 0, step) for step in range(4)])
    assert len(np.unique(drop)) == 20


def test_process_shares_concatenate_to_the_global_batch():
    for step in (0, 5, 13):
        whole = batches.train_batch_indices(30, 8, seed=7, step=step)
        shares = [
            batches.train_batch_indices(30, 8, 7, step, process_index=p, process_count=2)
            for p in range(2)
        ]
        assert whole.shape == (8,) and shares[0].shape == (4,)
        np.testing.assert_array_equal(np.concatenate(shares), whole)
    with pytest.raises(ValueError):
        batches.train_batch_indices(30, 9, 0, 0, process_index=0, process_count=2)


@pytest.mark.parametrize("num_examples,process_count", [(23, 1), (17, 2), (16, 2)])
def test_eval_batches_cover_every_example_once_with_static_shapes(num_examples, process_count):
    images = np.arange(num_examples * 6, dtype=np.float32).reshape(num_examples, 1, 2, 3) + 1
    labels = np.arange(num_examples, dtype=np.int32)
    per_process = [
        list(batches.eval_batches({"image": images, "label": labels}, 8, p, process_count))
        for p in range(process_count)
    ]
    assert len({len(b) for b in per_process}) == 1 and len(per_process[0]) == -(-num_examples // 8)
    seen_images, seen_labels = [], []
    for global_batch in zip(*per_process):  # processes' shares, in process order
        for batch in global_batch:
            assert batch["image"].shape == (8 // process_count, 1, 2, 3)
            assert batch["image"].dtype == np.float32 and batch["label"].dtype == np.int32
            assert batch["mask"].dtype == bool
            padding = ~batch["mask"]
            assert not batch["image"][padding].any() and not batch["label"][padding].any()
            seen_images.append(batch["image"][batch["mask"]])
            seen_labels.append(batch["label"][batch["mask"]])
    np.testing.assert_array_equal(np.concatenate(seen_images), images)
    np.testing.assert_array_equal(np.concatenate(seen_labels), labels)
