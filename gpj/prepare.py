"""Builds a tfds dataset for gpj, once, on a machine with internet; gpj's runs never download.

  python -m gpj.prepare cifar10 --data_dir=~/tensorflow_datasets
  python -m gpj.prepare imagenette --data_dir=~/tensorflow_datasets
  python -m gpj.prepare cityscapes --data_dir=~/tensorflow_datasets [--manual_dir=DIR]

Cityscapes needs registration: put the official leftImg8bit_trainvaltest.zip and
gtFine_trainvaltest.zip in DIR (default <data_dir>/downloads/manual). This runs the same tfds
builders as `tfds build`, whose command line additionally needs apache-beam.
"""

import os
import sys

from absl import app, flags

from gpj.data import cityscapes, sources
from gpj.errors import DataError, GpjError

_DATA_DIR = flags.DEFINE_string("data_dir", "~/tensorflow_datasets", "tfds data directory.")
_MANUAL_DIR = flags.DEFINE_string(
    "manual_dir", None, "Folder of manually downloaded files (default <data_dir>/downloads/manual)."
)

TFDS_NAMES = {name: tfds_name for name, (tfds_name, _) in sources.TFDS_NAMES.items()}
TFDS_NAMES["cityscapes"] = cityscapes.TFDS_NAME


def prepare(name: str, data_dir: str, manual_dir: str | None = None) -> str:
    """Downloads (or reads from `manual_dir`) and prepares dataset `name` in `data_dir`.

    Args:
      name: a gpj dataset name, one of `TFDS_NAMES`.
      data_dir: tfds data directory to build into.
      manual_dir: folder of manually downloaded files; None: `<data_dir>/downloads/manual`.

    Returns:
      The folder of the prepared dataset.

    Raises:
      DataError: an unknown name, a missing package, or missing manual downloads.
    """
    if name not in TFDS_NAMES:
        raise DataError(f"Unknown dataset {name!r}; choose one of {', '.join(TFDS_NAMES)}.")
    _, tfds = sources.import_tfds(name)
    data_dir = os.path.expanduser(data_dir)
    manual_dir = os.path.expanduser(manual_dir or os.path.join(data_dir, "downloads", "manual"))
    if name == "cityscapes":
        missing = [f for f in cityscapes.MANUAL_FILES if not os.path.isfile(f"{manual_dir}/{f}")]
        if missing:
            raise DataError(
                f"{', '.join(missing)} not found in {manual_dir}: "
                + cityscapes.manual_instructions(data_dir, manual_dir)
            )
    builder = tfds.builder(TFDS_NAMES[name], data_dir=data_dir)
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
    except ModuleNotFoundError as e:  # tfds 4.9.10 imports importlib_resources to build, unlisted
        raise DataError(f"building {name!r} needs pip install {e.name}") from e
    return str(builder.data_path)


def main(argv):
    if len(argv) != 2:
        raise app.UsageError(f"give one dataset: {', '.join(TFDS_NAMES)}")
    try:
        path = prepare(argv[1], _DATA_DIR.value, _MANUAL_DIR.value)
    except GpjError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"prepared: {path}")


if __name__ == "__main__":
    app.run(main)
