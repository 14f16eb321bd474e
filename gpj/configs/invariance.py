"""Translation invariance: AugShift against its two-view control and the baseline, on shifted images.

  python -m gpj.main --config=configs/invariance.py              # embedded digits, ~6 min on 2 CPU cores
  python -m gpj.main --config=configs/invariance.py:tiny         # smoke test, < 1 min
  python -m gpj.main --config=configs/invariance.py:cifar10 \\
      --config.data.data_dir=~/tensorflow_datasets                # paper scale (GPU/TPU)

Each training image is shown at random translations (`shift.mode`: on a larger zero canvas, or
as a crop of a padded image). AugShift shows two translations of each image and adds
`augshift.weight` * MSE between their global-pooled latents to the two cross-entropies.
"""

import ml_collections

from gpj.configs import evals, sections
from gpj.configs.presets import apply_presets


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.experiment = "invariance"  # what gpj.main runs (gpj.experiments)
    c.seed = 0  # the first seed; a run's seeds are seed, seed + 1, ...
    c.num_seeds = 5  # seeds of every variant
    # baseline | two_view (AugShift with weight 0) | augshift | blurpool | augshift_blurpool.
    # AugShift against its fair control (two_view: the same two views, no latent term) and the
    # one-view baseline, paired by seed; `:blurpool` adds the BlurPool variants.
    c.variants = ("baseline", "two_view", "augshift")
    # What each trained run is measured with (gpj.evaluators), each evaluator's settings under
    # its name; add "scores" for the latent channels' position scores.
    c.evals = ml_collections.ConfigDict()
    c.evals.shift = evals.shift()  # accuracy at every shift of a grid, and shift consistency
    c.evals.position_probe = evals.position_probe()  # a linear probe of the latents' position

    c.data = sections.data()

    c.shift = ml_collections.ConfigDict()
    c.shift.mode = "canvas"  # canvas: image on a (size + 2 max_shift) zero canvas | crop
    c.shift.max_shift = 8  # pixels in each direction
    c.shift.pad_mode = "zero"  # crop mode only: zero | reflect

    c.augshift = ml_collections.ConfigDict()
    c.augshift.weight = 1.0  # lambda of the latent MSE term
    c.blurpool = ml_collections.ConfigDict()
    c.blurpool.filter_size = 3  # binomial filter size 1-5 for the blurpool variants

    c.model = sections.model()
    c.optim = sections.optim()
    c.train = sections.train(num_epochs=5)

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 120  # test images per evaluation step, all devices together

    return apply_presets(c, arg, PRESETS)


def _tiny(c):
    sections.use_tiny(c)
    c.variants = ("baseline", "augshift_blurpool")
    c.shift.max_shift = 4
    c.evals.shift.consistency_pairs = 2


def _cifar10(c):
    sections.use_cifar10(c)
    c.shift.update(mode="crop", max_shift=8, pad_mode="reflect")
    c.model.stem = "cifar"
    c.train.update(num_epochs=30, batch_size=128)
    c.optim.update(
        name="sgd", learning_rate=0.1, weight_decay=5e-4, schedule="cosine", warmup_steps=390
    )
    c.eval.batch_size = 200


def _blurpool(c):
    c.variants = (*c.variants, "blurpool", "augshift_blurpool")


PRESETS = {"tiny": _tiny, "cifar10": _cifar10, "blurpool": _blurpool}
