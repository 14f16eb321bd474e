"""Cityscapes: the real tfds builder over archives in the official layout, gpj's loader, the attack.

The archives hold few full-size (1024×2048) images of simple content whose pixels encode their
raw label ids, so every check below has an exact answer.
"""

import io
import json
import sys
import zipfile

import numpy as np
import pytest
from conftest import assert_bad_configs_fail_fast, gpj_command

from gpj.configs.attack import get_config
from gpj.data import cityscapes
from gpj.errors import ConfigError, DataError
from gpj.experiments.runner import check_fields

pytest.importorskip("tensorflow")
PIL = pytest.importorskip("PIL.Image")

HEIGHT, WIDTH = 1024, 2048
SPLIT_SIZES = {"train": 8, "val": 4, "test": 1}
CITIES = {"train": ("aachen", "bochum"), "val": ("frankfurt",), "test": ("berlin",)}
# The raw ids of the 19 evaluated classes, in train-id order (the official labels table).
EVALUATED_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
STRIPE = 60  # the top half holds every raw id 0..33 in a stripe of this many columns


def _raw_labels(index: int) -> np.ndarray:
    """Raw label ids of example `index`: top half, the 34 ids in stripes, rolled by the index
    (so that each example differs); bottom half, car (26) on the left and road (7) on the right."""
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)  # the 8 columns past the stripes: unlabeled
    stripes = (np.arange(34 * STRIPE) // STRIPE + index) % 34
    labels[: HEIGHT // 2, : 34 * STRIPE] = stripes
    labels[HEIGHT // 2 :, : WIDTH // 2] = 26
    labels[HEIGHT // 2 :, WIDTH // 2 :] = 7
    return labels


def _image(labels: np.ndarray, index: int) -> np.ndarray:
    """RGB pixels: red = 7 × raw id, green = 10 × example index, blue = 128."""
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[..., 0] = 7 * labels
    image[..., 1] = 10 * index
    image[..., 2] = 128
    return image


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    PIL.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def write_manual_archives(folder) -> None:
    """leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip in the official layout, holding
    what the tfds builder reads: left images and fine label-id maps of train, val and test."""
    folder.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(folder / "leftImg8bit_trainvaltest.zip", "w") as images,
        zipfile.ZipFile(folder / "gtFine_trainvaltest.zip", "w") as labels,
    ):
        index = 0
        for split, count in SPLIT_SIZES.items():
            for i in range(count):
                city = CITIES[split][i % len(CITIES[split])]
                stem = f"{city}_{i:06d}_000019"
                raw = _raw_labels(index)
                images.writestr(
                    f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", _png(_image(raw, index))
                )
                labels.writestr(f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png", _png(raw))
                index += 1


@pytest.fixture(scope="session")
def cityscapes_dir(tmp_path_factory):
    """A tfds data_dir with cityscapes/semantic_segmentation built by tfds' own builder."""
    from gpj import prepare

    root = tmp_path_factory.mktemp("cityscapes")
    write_manual_archives(root / "manual")
    prepare.prepare("cityscapes", str(root / "tfds"), str(root / "manual"))
    return str(root / "tfds")


def _expected_train_ids(raw: np.ndarray) -> np.ndarray:
    expected = np.full(raw.shape, 255, np.int32)
    for train_id, raw_id in enumerate(EVALUATED_IDS):
        expected[raw == raw_id] = train_id
    return expected


def _pixels(data, split: str) -> np.ndarray:
    """The uint8 pixels back from the normalised images."""
    images = getattr(data, f"{split}_images")[:]
    return np.rint((images * cityscapes.IMAGENET_STD + cityscapes.IMAGENET_MEAN) * 255)


def test_the_labels_table_has_the_19_official_classes():
    assert cityscapes.NUM_CLASSES == 19 and cityscapes.CLASS_NAMES[0] == "road"
    assert cityscapes.CLASS_NAMES[13] == "car" and cityscapes.CLASS_NAMES[18] == "bicycle"
    np.testing.assert_array_equal(
        cityscapes.TRAIN_IDS[:34], _expected_train_ids(np.arange(34, dtype=np.uint8))
    )
    assert np.all(cityscapes.TRAIN_IDS[34:] == 255)


def test_full_resolution_maps_every_raw_id_to_its_train_id(cityscapes_dir):
    data = cityscapes.load(data_dir=cityscapes_dir, image_size=(HEIGHT, WIDTH))
    assert data.name == "cityscapes" and data.num_classes == 19 and data.ignore_label == 255
    assert data.train_images.shape == (8, HEIGHT, WIDTH, 3)  # tfds train split
    assert data.test_images.shape == (4, HEIGHT, WIDTH, 3)  # tfds validation split
    assert data.train_labels.shape == (8, HEIGHT, WIDTH)
    labels = data.test_labels[:]
    assert labels.dtype == np.int32 and data.test_images[:1].dtype == np.float32
    pixels = _pixels(data, "test")
    # tfds stores the examples shuffled: the green channel says which example each one is.
    indices = pixels[:, 0, 0, 1] / 10
    assert sorted(indices) == [8, 9, 10, 11]
    for image, label, index in zip(pixels, labels, indices, strict=True):
        raw = _raw_labels(int(index))
        np.testing.assert_array_equal(image[..., 0], 7 * raw)  # PNG is lossless; no resize
        np.testing.assert_array_equal(label, _expected_train_ids(raw))
    # Spot checks written out: road 7 -> 0, car 26 -> 13, unlabeled 0 -> 255, bicycle 33 -> 18.
    raw = _raw_labels(int(indices[0]))
    for raw_id, train_id in ((7, 0), (26, 13), (0, 255), (33, 18), (9, 255), (23, 10)):
        assert set(np.unique(labels[0][raw == raw_id])) == {train_id}


def test_resized_images_bilinear_labels_nearest_and_max_examples(cityscapes_dir):
    data = cityscapes.load(data_dir=cityscapes_dir, image_size=(64, 128), max_examples=3)
    assert data.train_images.shape == (3, 64, 128, 3) and data.train_labels.shape == (3, 64, 128)
    assert data.test_images.shape == (3, 64, 128, 3)
    pixels, labels = _pixels(data, "train"), data.train_labels[:]
    for image, label in zip(pixels, labels, strict=True):
        index = int(image[0, 0, 1] / 10)
        # 16× smaller: nearest takes input pixel 16 i + 8 (half-pixel centres).
        raw = _raw_labels(index)[8::16, 8::16]
        np.testing.assert_array_equal(label, _expected_train_ids(raw))
        # Bilinear (antialiased): constant regions stay constant away from their borders.
        np.testing.assert_allclose(image[..., 1], 10 * index, atol=1)
        np.testing.assert_allclose(image[..., 2], 128, atol=1)
        np.testing.assert_allclose(image[34:, :62, 0], 7 * 26, atol=1)
        np.testing.assert_allclose(image[34:, 66:, 0], 7 * 7, atol=1)
    # Normalised with the ImageNet mean and std, not with the data's own statistics.
    index = int(pixels[0, 0, 0, 1] / 10)
    expected = np.array([7 * 26, 10 * index, 128]) / 255
    expected = (expected - cityscapes.IMAGENET_MEAN) / cityscapes.IMAGENET_STD
    np.testing.assert_allclose(data.train_images[:1][0, 40, 10], expected, atol=0.02)


def test_missing_dataset_says_where_to_download_and_how_to_build(tmp_path):
    with pytest.raises(DataError) as error:
        cityscapes.load(data_dir=str(tmp_path), image_size=(512, 1024))
    message, manual = str(error.value), tmp_path / "downloads" / "manual"
    assert "\n" not in message
    for part in (
        "https://www.cityscapes-dataset.com/downloads/",
        f"leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip into {manual}",
        f"python -m gpj.prepare cityscapes --data_dir={tmp_path}",
        f"tfds build cityscapes/semantic_segmentation --data_dir={tmp_path} --manual_dir={manual}",
        "segmentation.dataset=digits",
    ):
        assert part in message, part


def test_without_tfds_the_error_points_to_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes the import fail
    with pytest.raises(DataError, match=r"pip install -e '\.\[tfds\]'"):
        cityscapes.load(data_dir=None, image_size=(512, 1024))


def test_prepare_without_the_archives_names_them(tmp_path):
    from gpj import prepare

    with pytest.raises(DataError) as error:
        prepare.prepare("cityscapes", str(tmp_path / "tfds"), str(tmp_path / "zips"))
    message = str(error.value)
    assert message.startswith(
        f"leftImg8bit_trainvaltest.zip, gtFine_trainvaltest.zip not found in {tmp_path}/zips"
    )
    assert "https://www.cityscapes-dataset.com/downloads/" in message and "\n" not in message


def test_attack_runs_on_cityscapes(cityscapes_dir, tmp_path):
    """The cityscapes preset, shrunk: the attack trains, scores and attacks on the tiny data."""
    proc = gpj_command(
        "gpj.main",
        "--config=configs/attack.py:cityscapes",
        f"--workdir={tmp_path}",
        f"--config.segmentation.data_dir={cityscapes_dir}",
        "--config.segmentation.image_size=(64, 128)",
        "--config.model.name=resnet10",
        "--config.model.width=0.125",
        "--config.model.aspp_rates=(1, 2)",
        "--config.optim.warmup_steps=0",
        "--config.train.num_epochs=1",
        "--config.evals.attack.num_channels=(1, 2)",
        "--config.evals.attack.num_random=2",
        "--config.evals.attack.example_channels=2",
    )
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["segmentation_data"] == {
        "name": "cityscapes",
        "num_train": 8,
        "num_test": 4,
        "num_classes": 19,
        "image_shape": [64, 128, 3],
        "ignore_label": 255,
    }
    (run,) = results["runs"]
    assert run["model"] == "segmentation" and run["num_scored_images"] == 4
    assert run["ranked_on"] == "train"  # no calibration split: the first num_test train images
    regions = {"miou_all", "miou_left", "miou_right", "miou_center"}
    assert set(run["curves"]) == {"clean", "overall", "left", "right", "random"}
    assert set(run["curves"]["clean"]) == regions
    for curve in ("overall", "left", "right", "random"):
        assert [row["n"] for row in run["curves"][curve]] == [1, 2]
        assert all(set(row) == {"n"} | regions for row in run["curves"][curve])
    assert all(0 <= v <= 1 for v in run["curves"]["clean"].values())
    assert np.asarray(run["example"]["label"]).shape == (64, 128)
    assert [e["n"] for e in results["effects"]] == [1, 2]
    report = (tmp_path / "report.md").read_text()
    assert "Cityscapes: 8 train / 4 validation images resized to 64×128 px" in report
    assert "**Region-specific attack**" in out


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("dataset", "kitti", "segmentation.dataset='kitti' is not valid; choose one of: digits, "),
        ("image_size", (512, 4096), "segmentation.image_size=(512, 4096) must be (height, width)"),
        ("image_size", (512,), "segmentation.image_size=(512,) must be (height, width)"),
        ("max_examples", -1, "segmentation.max_examples=-1 must be between 0"),
    ],
)
def test_bad_cityscapes_fields_are_named(field, value, message):
    config = get_config("cityscapes")
    config.segmentation[field] = value
    with pytest.raises(ConfigError) as error:
        check_fields(config)
    assert str(error.value).startswith(message)


def test_missing_data_fails_before_compute_with_one_line(tmp_path):
    cases = {
        "missing": (
            [f"--config.segmentation.data_dir={tmp_path}"],
            f"Cityscapes is not prepared in {tmp_path}",
        )
    }
    assert_bad_configs_fail_fast("configs/attack.py:cityscapes", cases)


def test_cityscapes_preset_is_the_papers_deeplabv3_resnet50():
    import jax

    from gpj import models

    c = get_config("cityscapes")
    check_fields(c)
    m = c.model
    assert (m.name, m.width, m.stem, m.output_stride, tuple(m.aspp_rates)) == (
        "resnet50",
        1.0,
        "imagenet",
        16,
        (6, 12, 18),
    )
    assert c.classifier.tasks == () and c.segmentation.data_dir == "~/tensorflow_datasets"
    model = models.build_segmentation_model(
        m.name,
        num_classes=cityscapes.NUM_CLASSES,
        width=m.width,
        stem=m.stem,
        output_stride=m.output_stride,
        aspp_rates=tuple(m.aspp_rates),
    )
    x = jax.ShapeDtypeStruct((1, *c.segmentation.image_size, 3), np.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
    logits, out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
    assert logits.shape == (1, 512, 1024, 19) and out["features"].shape == (1, 32, 64, 2048)
