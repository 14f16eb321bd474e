"""Position probe: GAPNet vs PermuteNet on the location and object canvas tasks.

  python -m gpj.main --config=configs/probe.py                    # embedded digits, 4-6 min on 2 CPU cores
  python -m gpj.main --config=configs/probe.py:tiny               # smoke test, < 1 min
  python -m gpj.main --config=configs/probe.py:cifar10 \\
      --config.data.data_dir=~/tensorflow_datasets                 # the paper's setting (GPU/TPU)
  python -m gpj.main --config=configs/probe.py:imagenette         # ImageNet images (GPU/TPU)
  python -m gpj.main --config=configs/probe.py:vgg16
  python -m gpj.main --config=configs/probe.py:controls           # + PermuteNet's two controls
  python -m gpj.main --config=configs/probe.py:controls,circular  # ... without border cues
  python -m gpj.main --config=configs/probe.py:controls,converged  # each run until its
                                    # validation accuracy stops rising (<= the official steps)
  python -m gpj.main --config=configs/probe.py:shuffle_depth --config.model.shuffle_layer=3
                                                                  # claim 2 at one shuffle depth
  python -m gpj.main --config=configs/probe.py:official_length    # 20,822 steps, as the official code

Any field can be overridden, e.g. `--config.model.padding=reflect --config.data.grid_size=4`.
"""

import ml_collections

from gpj.configs import evals, sections
from gpj.configs.presets import apply_presets


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.experiment = "probe"  # what gpj.main runs (gpj.experiments)
    c.seed = 0  # the first seed; a run's seeds are seed, seed + 1, ...
    c.num_seeds = 2  # seeds of every run
    # Each run is "head:task", tasks location/object; heads gapnet, permutenet and its controls
    # fixedperm (one fixed permutation: a linear read-out of ordered channels) and sum
    # (logit_k = a_k * sum of the pooled channels + b_k, all that a layer-5 PermuteNet can read).
    c.runs = ("gapnet:location", "gapnet:object", "permutenet:location", "permutenet:object")
    # What each trained run is measured with (gpj.evaluators), each evaluator's settings under
    # its name: every_cell accuracy and the position scores (skipped for PermuteNet, whose
    # channel order is random at every pass).
    c.evals = ml_collections.ConfigDict()
    c.evals.every_cell = evals.no_settings()  # accuracy, overall and per cell
    c.evals.scores = evals.no_settings()  # every latent channel's position scores

    c.data = sections.data()
    c.data.grid_size = 3  # the canvas is grid_size * image_size pixels wide

    c.model = sections.model()
    c.model.shuffle_layer = 5  # PermuteNet: permute before ResNet stage 1-4, or 5 = after GAP
    c.model.blur_filter = 0  # 0 = plain strided downsampling; 1-5 = BlurPool with that filter

    c.optim = sections.optim()
    c.train = sections.train(num_epochs=8)

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 120  # test images per evaluation step, all devices together

    return apply_presets(c, arg, PRESETS)


def _tiny(c):
    sections.use_tiny(c)


def _cifar10(c):
    sections.use_cifar10(c)
    c.model.stem = "paper"
    c.train.num_epochs = 20
    c.train.batch_size = 48
    c.eval.batch_size = 96


def _imagenette(c):
    """Imagenette (10 ImageNet classes; `python -m gpj.prepare imagenette`), central squares at
    64×64 on the 3×3 grid: 192×192 canvases, full-width ResNet-18."""
    c.data.update(name="imagenette", image_size=64, channels=3, data_dir="~/tensorflow_datasets")
    c.model.width = 1.0
    c.train.update(num_epochs=20, batch_size=48, log_every=100, checkpoint_every=2000)
    c.eval.batch_size = 96


def _vgg16(c):
    c.model.name = "vgg16"


def _controls(c):
    """PermuteNet beside its two controls (fixed permutation, channel sum) and GAPNet, on both
    tasks: what a PermuteNet can read without channel order, and what it could with it."""
    c.runs = tuple(
        f"{head}:{task}"
        for head in ("gapnet", "permutenet", "fixedperm", "sum")
        for task in ("location", "object")
    )


def _circular(c):
    """Circular padding: no border, so no permutation-invariant location cue from the total
    activation near a border."""
    c.model.padding = "circular"


def _shuffle_depth(c):
    """Claim 2 at the shuffle depth `model.shuffle_layer` (1-4: before that ResNet stage; 5:
    after global pooling): PermuteNet beside the fixed permutation at the same depth, both tasks,
    3 seeds, each run trained until converged (`converged`), with what the depth leaves readable
    (`readable`). Design and predictions: docs/probe.md, "Claim 2 by shuffle depth: design"."""
    c.runs = tuple(f"{h}:{t}" for h in ("permutenet", "fixedperm") for t in ("location", "object"))
    c.evals = ml_collections.ConfigDict()
    c.evals.every_cell = evals.no_settings()
    c.evals.readable = evals.no_settings()  # what the shuffle leaves readable in the logits
    c.num_seeds = 3
    converged(c)


OFFICIAL_STEPS = 20_834  # the official code: 20 epochs of CIFAR-10's 50,000 images at batch 48
# The embedded digits with a 20 % validation split: 1,149 training images, 23 steps of 48 per
# epoch, so 906 epochs make 20,838 steps, the first whole epoch at or past OFFICIAL_STEPS.
CONVERGED_CAP_EPOCHS = 906


def converged(c):
    """Train until the validation accuracy stops rising (`gpj.engine.val_plateaued`: the later
    half of the steps gains less than 2 binomial standard errors over the earlier half), on a
    validation split of 20 % of the training digits (the same for every seed and head), checked
    every 8 epochs; at most CONVERGED_CAP_EPOCHS, the official step count. Never the test set."""
    c.data.val_fraction = 0.2
    c.train.update(
        num_epochs=CONVERGED_CAP_EPOCHS,
        eval_every_epochs=8,
        stop_on_plateau=True,
        plateau_on="val_accuracy",
        plateau_gain_se=2.0,
        checkpoint_every=1000,
    )


def _official_length(c):
    """PermuteNet and the fixed permutation on the object task at the official code's length
    (OFFICIAL_STEPS): 718 epochs of the embedded digits at 29 steps of 48 make 20,822 steps. One
    seed each, the test curve every 24 epochs, no plateau stop: the curve shows whether the
    shorter runs stopped early."""
    c.runs = ("permutenet:object", "fixedperm:object")
    c.evals = ml_collections.ConfigDict()
    c.evals.every_cell = evals.no_settings()
    c.evals.readable = evals.no_settings()
    c.num_seeds = 1
    c.train.update(num_epochs=718, eval_every_epochs=24, checkpoint_every=1000)


def _pytorch_init(c):
    """PyTorch's layer defaults for every conv and dense layer, as the official code."""
    c.model.param_init = "pytorch"


PRESETS = {
    "tiny": _tiny,
    "cifar10": _cifar10,
    "imagenette": _imagenette,
    "vgg16": _vgg16,
    "controls": _controls,
    "circular": _circular,
    "pytorch_init": _pytorch_init,
    "shuffle_depth": _shuffle_depth,
    "converged": converged,
    "official_length": _official_length,
}
