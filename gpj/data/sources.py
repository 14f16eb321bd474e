"""Image datasets as normalised numpy arrays: the embedded digits or a prepared tfds dataset."""

import dataclasses
import os

import jax
import numpy as np

from gpj.errors import DataError

# tfds name and test split of each tfds dataset. Imagenette (10 easy ImageNet classes, shorter
# side 160 px, images of different sizes) is centre-cropped to a square before resizing.
TFDS_NAMES = {
    "cifar10": ("cifar10", "test"),
    "cifar100": ("cifar100", "test"),
    "mnist": ("mnist", "test"),
    "fashion_mnist": ("fashion_mnist", "test"),
    "imagenette": ("imagenette/160px-v2", "validation"),
}
DATASETS = ("digits", *TFDS_NAMES)

# ITU-R BT.601 luma weights, as in PIL's convert("L") and tf.image.rgb_to_grayscale.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclasses.dataclass(frozen=True)
class ImageDataset:
    """Train, test and (optionally) validation splits, normalised with the train split's
    per-channel statistics. The validation split is carved from the training data, so that
    stopping rules never read the test split."""

    name: str
    train_images: np.ndarray  # (N, H, W, C) float32
    train_labels: np.ndarray  # (N,) int32
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    mean: np.ndarray  # (C,) per-channel mean of the [0, 1]-scaled train pixels
    std: np.ndarray  # (C,) per-channel standard deviation of the same
    val_images: np.ndarray | None = None  # None: no validation split (`val_fraction=0`)
    val_labels: np.ndarray | None = None


def load_dataset(
    name: str,
    *,
    image_size: int,
    channels: int,
    data_dir: str | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    val_fraction: float = 0.0,
) -> ImageDataset:
    """Loads a dataset, resized to `image_size`² with `channels` channels and normalised.

    Args:
      name: one of `DATASETS`; "digits" ships with scikit-learn, the others must be prepared tfds
        datasets in `data_dir` (nothing is ever downloaded).
      image_size: output height and width in pixels (imagenette: of each image's central square).
      channels: 1 (grayscale) or 3 (RGB).
      data_dir: tfds data directory; None uses tfds' default (~/tensorflow_datasets).
      test_fraction: share of digits held out for testing (tfds sets have their own test split;
        imagenette's is its validation split).
      split_seed: seed of the stratified digits train/test split and of the validation split.
      val_fraction: share of the training images held out, stratified by class, as the
        validation split (0: none); the same images whatever the run's seed.

    Returns:
      An `ImageDataset` whose images are float32 and normalised with the train split's
      per-channel mean and standard deviation (the image is normalised before it is pasted onto a
      zero canvas, as in the official code).

    Raises:
      DataError: for an unknown name, invalid arguments, or a tfds dataset that is unavailable.
    """
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if image_size < 1:
        raise DataError(f"data.image_size must be at least 1, got {image_size}.")
    if channels not in (1, 3):
        raise DataError(f"data.channels must be 1 or 3, got {channels}.")
    if name == "digits":
        if not 0 < test_fraction < 1:
            raise DataError(f"data.test_fraction must lie in (0, 1), got {test_fraction}.")
        splits, num_classes = _digits(test_fraction, split_seed)
    else:
        splits, num_classes = _tfds(name, data_dir, image_size)
    if not 0 <= val_fraction < 1:
        raise DataError(f"data.val_fraction must lie in [0, 1), got {val_fraction}.")
    (train_x, train_y), (test_x, test_y) = splits
    train_x, test_x = (_format(x, image_size, channels) for x in (train_x, test_x))
    val = None
    if val_fraction:
        train, held = _stratified(train_y, val_fraction, split_seed)
        val = train_x[held], train_y[held]
        train_x, train_y = train_x[train], train_y[train]
    mean = train_x.mean(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    std = train_x.std(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
    return ImageDataset(
        name=name,
        train_images=(train_x - mean) / std,
        train_labels=train_y.astype(np.int32),
        test_images=(test_x - mean) / std,
        test_labels=test_y.astype(np.int32),
        num_classes=num_classes,
        mean=mean,
        std=std,
        val_images=None if val is None else (val[0] - mean) / std,
        val_labels=None if val is None else val[1].astype(np.int32),
    )


def _stratified(labels: np.ndarray, fraction: float, seed: int) -> tuple:
    """(kept, held-out) indices of `labels`, `fraction` of each class held out."""
    from sklearn.model_selection import train_test_split

    return train_test_split(
        np.arange(len(labels)), test_size=fraction, random_state=seed, stratify=labels
    )


def _digits(test_fraction: float, split_seed: int):
    """scikit-learn's 1797 8×8 handwritten digits in [0, 1], split stratified by class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]  # pixel values are 0..16
    train, test = _stratified(digits.target, test_fraction, split_seed)
    return ((images[train], digits.target[train]), (images[test], digits.target[test])), 10


def import_tfds(name: str):
    """(tensorflow, tensorflow_datasets), with TensorFlow kept off the GPUs; DataError if absent."""
    try:
        import tensorflow as tf
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError(
            f"Dataset {name!r} needs tensorflow-datasets: pip install -e '.[tfds]'; the embedded "
            f"default data.name=digits needs nothing ({e})."
        ) from e
    # TensorFlow only reads files here; keep it off the GPUs so it does not take JAX's memory.
    if tf.config.get_visible_devices("GPU"):
        tf.config.set_visible_devices([], "GPU")
    return tf, tfds


def prepared_builder(tfds, tfds_name: str, data_dir: str | None, what: str, advice):
    """The tfds builder of a dataset already prepared in `data_dir`; gpj never downloads.

    Raises:
      DataError: it is not prepared; the message ends with `advice(data_dir_root)`.
    """
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    if not builder.is_prepared():
        where = builder.data_dir_root
        raise DataError(
            f"{what} is not prepared in {where} (no dataset_info.json in {builder.data_path}); "
            f"gpj never downloads. {advice(where)}"
        )
    return builder


def prepare_command(name: str, tfds_name: str, data_dir: str, extra: str = "") -> str:
    """The commands that build a tfds dataset into `data_dir`, for error messages."""
    return (
        f"python -m gpj.prepare {name} --data_dir={data_dir}{extra} (or tfds build {tfds_name} "
        f"--data_dir={data_dir}{extra}; the tfds command line also needs pip install apache-beam)"
    )


def _tfds(name: str, data_dir: str | None, image_size: int):
    """Train and test splits of a prepared tfds dataset in [0, 1]; refuses to download."""
    tf, tfds = import_tfds(name)
    tfds_name, test_split = TFDS_NAMES[name]
    builder = prepared_builder(
        tfds,
        tfds_name,
        data_dir,
        f"Dataset {name!r}",
        lambda where: (
            f"Prepare it on a machine with internet: {prepare_command(name, tfds_name, where)}, "
            "then copy that folder here; or use the embedded default data.name=digits."
        ),
    )
    fixed_size = builder.info.features["image"].shape[0] is not None
    splits = []
    for split in ("train", test_split):
        if fixed_size:
            data = builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
        else:
            data = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
            data = data.map(
                lambda image, label: (_square(tf, image, image_size), label),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            data = data.batch(builder.info.splits[split].num_examples)
            data = data.get_single_element()
        images, labels = tfds.as_numpy(data)
        splits.append((images.astype(np.float32) / 255.0, labels))
    return tuple(splits), builder.info.features["label"].num_classes


def _square(tf, image, size: int):
    """The central square of an image of any size, resized to size² (bilinear, antialiased)."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    image = tf.image.crop_to_bounding_box(
        image, (height - side) // 2, (width - side) // 2, side, side
    )
    # Rounded back to uint8 so that every dataset reaches the [0, 1] scaling the same way.
    image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _format(images: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """(N, H, W, C) in [0, 1] -> (N, image_size, image_size, channels) float32."""
    # Fewer channels before resizing and more after, so the resize touches as few as possible.
    if images.shape[-1] == 3 and channels == 1:
        images = images @ _LUMA[:, None]
    if images.shape[1:3] != (image_size, image_size):
        # Bilinear with jax's default antialiasing: a no-op when enlarging (digits 8 -> 32) and
        # keeps shrinking (e.g. CIFAR 32 -> 16) free of aliasing. One-off host work, so on the CPU.
        with jax.default_device(jax.devices("cpu")[0]):
            shape = (len(images), image_size, image_size, images.shape[-1])
            images = np.asarray(jax.image.resize(images, shape, method="bilinear"))
    if images.shape[-1] == 1 and channels == 3:
        images = np.repeat(images, 3, axis=-1)
    return images.astype(np.float32, copy=False)


def from_config(data) -> ImageDataset:
    """The dataset a `config.data` section describes."""
    return load_dataset(
        data.name,
        image_size=data.image_size,
        channels=data.channels,
        data_dir=os.path.expanduser(data.data_dir) or None,
        test_fraction=data.test_fraction,
        split_seed=data.split_seed,
        val_fraction=data.val_fraction,
    )


def summary(dataset, **extra) -> dict:
    """What a results file records of a dataset (any with train and test labels): its name, split
    sizes and class count, and `extra`."""
    return {
        "name": dataset.name,
        "num_train": len(dataset.train_labels),
        "num_test": len(dataset.test_labels),
        "num_classes": dataset.num_classes,
        **extra,
    }
