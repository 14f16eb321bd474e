"""Position probe: GAPNet vs PermuteNet on the location and object canvas tasks.

  python -m gpj.main --config=configs/probe.py                    # embedded digits, ~3 min on 2 CPU cores
  python -m gpj.main --config=configs/probe.py:tiny               # smoke test, < 1 min
  python -m gpj.main --config=configs/probe.py:cifar10 \\
      --config.data.data_dir=~/tensorflow_datasets                 # the paper's setting (GPU/TPU)
  python -m gpj.main --config=configs/probe.py:vgg16

Any field can be overridden, e.g. `--config.model.padding=reflect --config.data.grid_size=4`.
"""

import ml_collections

from gpj.presets import apply_presets


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.experiment = "probe"
    c.seed = 0
    c.num_seeds = 2
    # Each run is "head:task"; heads gapnet/permutenet, tasks location/object.
    c.runs = ("gapnet:location", "gapnet:object", "permutenet:location", "permutenet:object")

    c.data = ml_collections.ConfigDict()
    c.data.name = "digits"  # digits (embedded) | cifar10 | cifar100 | mnist | fashion_mnist
    c.data.data_dir = ""  # tfds data_dir for the tfds datasets
    c.data.image_size = 16  # side of one image; the canvas is grid_size * image_size
    c.data.channels = 1
    c.data.grid_size = 3
    c.data.test_fraction = 0.2  # digits only: held-out fraction
    c.data.split_seed = 0  # digits only: seed of the train/test split

    c.model = ml_collections.ConfigDict()
    c.model.name = "resnet18"  # resnet18 | resnet34 | resnet50 | vgg11 | vgg16
    c.model.width = 0.25  # channel multiplier (1.0 = 64..512 channels)
    c.model.stem = "paper"  # paper (7x7/2, no max-pool) | cifar | imagenet
    c.model.padding = "zero"  # zero | reflect | replicate | circular | valid | partial
    c.model.bn_momentum = 0.9
    c.model.shuffle_layer = 5  # PermuteNet: permute before ResNet stage 1-4, or 5 = after GAP

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"  # adam | sgd
    c.optim.learning_rate = 1e-3
    c.optim.b1 = 0.5  # the official code's Adam betas (0.5, 0.999)
    c.optim.b2 = 0.999
    c.optim.momentum = 0.9  # sgd only
    c.optim.weight_decay = 0.0
    c.optim.schedule = "constant"  # constant | cosine
    c.optim.warmup_steps = 0

    c.train = ml_collections.ConfigDict()
    c.train.num_epochs = 8
    c.train.batch_size = 48
    c.train.log_every = 20
    c.train.checkpoint_every = 500
    c.train.keep_checkpoints = 2

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 120

    return apply_presets(c, arg, PRESETS)


def _tiny(c):
    c.num_seeds = 1
    c.data.image_size = 8
    c.model.width = 0.125
    c.train.num_epochs = 1
    c.train.batch_size = 32
    c.train.log_every = 10
    c.train.checkpoint_every = 20
    c.eval.batch_size = 200


def _cifar10(c):
    c.data.name = "cifar10"
    c.data.image_size = 32
    c.data.channels = 3
    c.data.data_dir = "~/tensorflow_datasets"
    c.model.width = 1.0
    c.model.stem = "paper"
    c.train.num_epochs = 20
    c.train.batch_size = 48
    c.train.log_every = 100
    c.train.checkpoint_every = 2000
    c.eval.batch_size = 96


def _vgg16(c):
    c.model.name = "vgg16"


PRESETS = {"tiny": _tiny, "cifar10": _cifar10, "vgg16": _vgg16}
