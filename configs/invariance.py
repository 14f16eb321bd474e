"""Translation invariance: baseline vs AugShift vs BlurPool vs both, on shifted images.

  python -m gpj.main --config=configs/invariance.py              # embedded digits, ~6 min on 2 CPU cores
  python -m gpj.main --config=configs/invariance.py:tiny         # smoke test, < 1 min
  python -m gpj.main --config=configs/invariance.py:cifar10 \\
      --config.data.data_dir=~/tensorflow_datasets                # paper scale (GPU/TPU)

Each training image is shown at random translations (`shift.mode`: on a larger zero canvas, or
as a crop of a padded image). AugShift shows two translations of each image and adds
`augshift.weight` * MSE between their global-pooled latents to the two cross-entropies.
"""

import ml_collections

from gpj.presets import apply_presets


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.experiment = "invariance"
    c.seed = 0
    c.num_seeds = 2
    # baseline | two_view (AugShift with weight 0) | augshift | blurpool | augshift_blurpool
    c.variants = ("baseline", "augshift", "blurpool", "augshift_blurpool")

    c.data = ml_collections.ConfigDict()
    c.data.name = "digits"
    c.data.data_dir = ""
    c.data.image_size = 16
    c.data.channels = 1
    c.data.test_fraction = 0.2
    c.data.split_seed = 0

    c.shift = ml_collections.ConfigDict()
    c.shift.mode = "canvas"  # canvas: image on a (size + 2 max_shift) zero canvas | crop
    c.shift.max_shift = 8  # pixels in each direction
    c.shift.pad_mode = "zero"  # crop mode only: zero | reflect

    c.augshift = ml_collections.ConfigDict()
    c.augshift.weight = 1.0  # lambda of the latent MSE term
    c.blurpool = ml_collections.ConfigDict()
    c.blurpool.filter_size = 3  # binomial filter size 1-5 for the blurpool variants

    c.model = ml_collections.ConfigDict()
    c.model.name = "resnet18"
    c.model.width = 0.25
    c.model.stem = "paper"
    c.model.padding = "zero"
    c.model.bn_momentum = 0.9

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.optim.b1 = 0.5
    c.optim.b2 = 0.999
    c.optim.momentum = 0.9
    c.optim.weight_decay = 0.0
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 0

    c.train = ml_collections.ConfigDict()
    c.train.num_epochs = 5
    c.train.batch_size = 48
    c.train.log_every = 20
    c.train.checkpoint_every = 500
    c.train.keep_checkpoints = 2

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 120
    c.eval.shift_step = 4  # accuracy at every offset of this grid of shifts (pixels)
    c.eval.consistency_pairs = 5  # seeded pairs of random shifts per test image
    c.eval.consistency_seed = 0
    c.eval.probe_grid = 3  # the position probe predicts which of grid x grid offset cells
    c.eval.probe_seed = 0

    return apply_presets(c, arg, PRESETS)


def _tiny(c):
    c.num_seeds = 1
    c.variants = ("baseline", "augshift_blurpool")
    c.data.image_size = 8
    c.shift.max_shift = 4
    c.model.width = 0.125
    c.train.num_epochs = 1
    c.train.batch_size = 32
    c.train.log_every = 10
    c.train.checkpoint_every = 20
    c.eval.batch_size = 200
    c.eval.shift_step = 4
    c.eval.consistency_pairs = 2


def _cifar10(c):
    c.data.name = "cifar10"
    c.data.image_size = 32
    c.data.channels = 3
    c.data.data_dir = "~/tensorflow_datasets"
    c.shift.mode = "crop"
    c.shift.max_shift = 8
    c.shift.pad_mode = "reflect"
    c.model.width = 1.0
    c.model.stem = "cifar"
    c.train.num_epochs = 30
    c.train.batch_size = 128
    c.train.log_every = 100
    c.train.checkpoint_every = 2000
    c.optim.name = "sgd"
    c.optim.learning_rate = 0.1
    c.optim.weight_decay = 5e-4
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 390
    c.eval.batch_size = 200
    c.eval.shift_step = 4
    c.eval.consistency_pairs = 5


PRESETS = {"tiny": _tiny, "cifar10": _cifar10}
