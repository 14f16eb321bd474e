"""Cityscapes semantic segmentation from a prepared tfds dataset, in the 19 evaluation classes.

gpj reads tfds' `cityscapes/semantic_segmentation` (fine annotations): its train split (2,975
images) for training and its validation split (500) for testing, since the test split's labels
are not public. The label images hold the 34 raw label ids; they are mapped to the 19 train ids
of the official labels table, every other id to the ignore label 255. Images are resized
bilinearly (antialiased) and labels by nearest neighbour to `image_size`, and images are
normalised with the ImageNet mean and std, the statistics ImageNet-pretrained backbones expect.
"""

import os

import numpy as np

from gpj.data.segmentation import IGNORE_LABEL, SegmentationData, Uint8Rows
from gpj.data.sources import import_tfds, prepare_command, prepared_builder
from gpj.errors import DataError

TFDS_NAME = "cityscapes/semantic_segmentation"
# The official archives the tfds builder reads, from https://www.cityscapes-dataset.com/downloads/
MANUAL_FILES = ("leftImg8bit_trainvaltest.zip", "gtFine_trainvaltest.zip")
FULL_SIZE = (1024, 2048)  # height, width of every Cityscapes image
SPLITS = {"train": "train", "test": "validation"}  # gpj split -> tfds split
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

# The official labels table (cityscapesScripts, helpers/labels.py): raw id, name, train id.
# Train id 255 marks the classes that are not evaluated.
LABELS = (
    (0, "unlabeled", 255),
    (1, "ego vehicle", 255),
    (2, "rectification border", 255),
    (3, "out of roi", 255),
    (4, "static", 255),
    (5, "dynamic", 255),
    (6, "ground", 255),
    (7, "road", 0),
    (8, "sidewalk", 1),
    (9, "parking", 255),
    (10, "rail track", 255),
    (11, "building", 2),
    (12, "wall", 3),
    (13, "fence", 4),
    (14, "guard rail", 255),
    (15, "bridge", 255),
    (16, "tunnel", 255),
    (17, "pole", 5),
    (18, "polegroup", 255),
    (19, "traffic light", 6),
    (20, "traffic sign", 7),
    (21, "vegetation", 8),
    (22, "terrain", 9),
    (23, "sky", 10),
    (24, "person", 11),
    (25, "rider", 12),
    (26, "car", 13),
    (27, "truck", 14),
    (28, "bus", 15),
    (29, "caravan", 255),
    (30, "trailer", 255),
    (31, "train", 16),
    (32, "motorcycle", 17),
    (33, "bicycle", 18),
)
CLASS_NAMES = tuple(name for _, name, train_id in LABELS if train_id != IGNORE_LABEL)
NUM_CLASSES = len(CLASS_NAMES)  # 19

# Raw label id (a uint8 pixel) -> train id; ids outside the table are ignored too.
TRAIN_IDS = np.full(256, IGNORE_LABEL, np.uint8)
for _id, _, _train_id in LABELS:
    TRAIN_IDS[_id] = _train_id


def manual_instructions(data_dir: str, manual_dir: str | None = None) -> str:
    """How to get the official archives and build the tfds dataset into `data_dir` (one line)."""
    manual_dir = manual_dir or os.path.join(data_dir, "downloads", "manual")
    return (
        f"register at https://www.cityscapes-dataset.com/downloads/, download "
        f"{' and '.join(MANUAL_FILES)} into {manual_dir}/, then run: "
        + prepare_command("cityscapes", TFDS_NAME, data_dir, f" --manual_dir={manual_dir}")
    )


def load(
    *, data_dir: str | None, image_size: tuple[int, int], max_examples: int = 0
) -> SegmentationData:
    """Loads the prepared Cityscapes train and validation splits as `SegmentationData`.

    Args:
      data_dir: tfds data directory holding the prepared dataset; None uses tfds' default
        (~/tensorflow_datasets).
      image_size: (height, width) of the output, at most the full (1024, 2048).
      max_examples: if positive, only the first this many examples of each split (smoke runs).

    Returns:
      `SegmentationData` with 19 classes and ignore label 255; train = tfds train, test = tfds
      validation. Pixels stay uint8 on the host (`Uint8Rows`) and read as ImageNet-normalised
      float32, labels as int32 train ids.

    Raises:
      DataError: tensorflow-datasets is not installed, the dataset is not prepared, or an
        argument is out of range.
    """
    height, width = image_size
    if not (0 < height <= FULL_SIZE[0] and 0 < width <= FULL_SIZE[1]):
        raise DataError(
            f"Cityscapes image_size={tuple(image_size)} must lie between (1, 1) and {FULL_SIZE}"
        )
    if max_examples < 0:
        raise DataError(f"Cityscapes max_examples={max_examples} must be 0 (all) or positive")
    tf, tfds = import_tfds("cityscapes")
    builder = prepared_builder(
        tfds,
        TFDS_NAME,
        data_dir,
        "Cityscapes",
        lambda where: (
            f"{manual_instructions(where)}; or use the embedded segmentation.dataset=digits."
        ),
    )
    arrays = {}
    for split, tfds_split in SPLITS.items():
        if max_examples:
            tfds_split = f"{tfds_split}[:{max_examples}]"
        images, labels = _read_split(tf, builder, tfds_split, (height, width))
        arrays[f"{split}_images"] = Uint8Rows(images, np.float32, IMAGENET_MEAN, IMAGENET_STD)
        arrays[f"{split}_labels"] = Uint8Rows(labels, np.int32)
    return SegmentationData(name="cityscapes", num_classes=NUM_CLASSES, **arrays)


def _read_split(tf, builder, split: str, size: tuple[int, int]):
    """(N, H, W, 3) uint8 images and (N, H, W) uint8 train ids of one split, in stored order."""
    count = builder.info.splits[split].num_examples
    images = np.empty((count, *size, 3), np.uint8)
    labels = np.empty((count, *size), np.uint8)

    def resize(example):
        image, label = example["image_left"], example["segmentation_label"]
        if size != FULL_SIZE:
            image = tf.image.resize(image, size, method="bilinear", antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
            label = tf.image.resize(label, size, method="nearest")
        return image, label[..., 0]

    data = builder.as_dataset(split=split, shuffle_files=False)
    data = data.map(resize, num_parallel_calls=tf.data.AUTOTUNE).batch(16).prefetch(2)
    start = 0
    for image, label in data.as_numpy_iterator():
        images[start : start + len(image)] = image
        labels[start : start + len(label)] = TRAIN_IDS[label]
        start += len(image)
    return images, labels
