"""Position-channel attack: rank channels by flip scores, ablate the top N beside N random ones.

  python -m gpj.main --config=configs/attack.py              # embedded digits, ~17 min (estimated)
  python -m gpj.main --config=configs/attack.py:tiny         # smoke test, ~1 min
  python -m gpj.main --config=configs/attack.py:cityscapes   # the paper's setting, on a GPU

A DeepLabv3-style model (dilated ResNet, ASPP) learns to segment digits on wide canvases, each
digit wholly in one half outside a dead zone at the midline and mirrored at random. Two designs
train on the same images: `position_needed` labels a digit d on the right apart from d on the
left (so a pixel's class needs absolute position), `shape_only` (control B) labels the digit only;
both train with mirrors that relabel, so the layout is symmetric. Channels are ranked on a
calibration split of train digits, every digit on the left (its signed flip score then tells a
channel's side), and, for control C, on a symmetric calibration split (where it should not):
exactly half of its digits on each side, drawn afresh for each training seed.
GAPNets learn the probe's location and object tasks. All are attacked at the backbone output.
Reuse trained models with
`--config.segmentation.init_workdir=DIR` (an earlier attack workdir) and
`--config.classifier.probe_workdir=DIR` (a finished probe workdir).

`:cityscapes` trains DeepLabv3-ResNet50 (output stride 16) on Cityscapes read from a prepared tfds
dataset (`python -m gpj.prepare cityscapes`, see gpj/prepare.py), at 512×1024 and ImageNet-
normalised; `--config.segmentation.max_examples=16` makes a smoke run of it. The authors' own
model: `python -m gpj.convert --arch=deeplabv3_resnet50 --torch_checkpoint=FILE --out=DIR`, then
`--config.model.init_from=DIR --config.train.num_epochs=0` attacks it without training.
"""

import ml_collections

from gpj.configs import evals, probe, sections
from gpj.configs.presets import apply_presets


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.experiment = "attack"  # what gpj.main runs (gpj.experiments)
    c.seed = 0  # the first seed; a run's seeds are seed, seed + 1, ...
    c.num_seeds = 3  # seeds of every model
    # What each trained model is measured with (gpj.evaluators), each evaluator's settings under
    # its name.
    c.evals = ml_collections.ConfigDict()
    c.evals.attack = evals.attack()  # the channel attacks

    c.data = sections.data()  # the digits scattered over the segmentation canvases

    c.segmentation = ml_collections.ConfigDict()
    c.segmentation.enabled = True  # train and attack the segmentation models
    c.segmentation.dataset = "digits"  # digits (embedded canvases) | cityscapes (prepared tfds)
    # digits only: the designs, each a model trained on the same canvases;
    # position_needed: label = digit + 1 + 10 * [right half]; shape_only: label = digit + 1
    c.segmentation.designs = ("position_needed", "shape_only")
    c.segmentation.canvas_size = 32  # height of a canvas in pixels
    c.segmentation.canvas_width = 64  # width of a canvas in pixels
    c.segmentation.dead_zone = 8  # midline band no digit enters (each digit wholly in one half)
    c.segmentation.mirror_digits = True  # each digit mirrored with probability 1/2
    c.segmentation.hflip = True  # train on mirrored canvases too (labels relabelled)
    c.segmentation.digits_per_canvas = 2  # digits on each canvas
    c.segmentation.left_fraction = 0.5  # share of train and test digits in the left half
    c.segmentation.label_radius = 3  # a digit labels the pixels within this radius of its ink
    c.segmentation.num_train = 2400  # training canvases
    c.segmentation.num_test = 480  # test canvases
    # canvases of each calibration split (train digits; the symmetric one drawn for each seed)
    c.segmentation.num_calibration = 480
    c.segmentation.calibration_left_fraction = 1.0  # the ranking split: every digit on the left
    c.segmentation.data_seed = 0  # seed of the canvases (the same for every training seed)
    # cityscapes only: train = its train split, test = its validation split, 19 classes, 255 ignored
    c.segmentation.data_dir = ""  # tfds data_dir holding cityscapes; empty: ~/tensorflow_datasets
    c.segmentation.image_size = (512, 1024)  # cityscapes: (height, width), at most (1024, 2048)
    c.segmentation.max_examples = 0  # cityscapes: > 0 reads only this many images of each split
    c.segmentation.init_workdir = ""  # load the trained model from here instead of training

    c.model = sections.model()
    c.model.output_stride = 8  # 8 | 16: later ResNet stages dilated instead of strided
    c.model.aspp_rates = (1, 2, 3)  # (12, 24, 36) at output stride 8 on full-size images
    c.model.aspp_features = 256  # scaled by model.width
    c.model.dropout_rate = 0.1  # dropout after the ASPP, in training

    c.optim = sections.optim(learning_rate=3e-3, schedule="cosine")
    c.train = sections.train(num_epochs=20)

    c.classifier = ml_collections.ConfigDict()
    c.classifier.tasks = ("location", "object")  # GAPNets to attack; () for none
    c.classifier.probe_workdir = ""  # a finished probe workdir; empty: train them here
    c.classifier.probe = probe.get_config(None)  # how they are trained when trained here
    c.classifier.probe.num_seeds = 1

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 120  # test images per evaluation step, all devices together

    return apply_presets(c, arg, PRESETS)


def _tiny(c):
    sections.use_tiny(c)
    c.segmentation.update(
        canvas_size=16, canvas_width=24, dead_zone=0, num_train=256, num_test=64, num_calibration=64
    )
    c.classifier.probe = probe.get_config("tiny")
    c.evals.attack.update(num_channels=(1, 4, 16), num_random=2, example_channels=4)
    c.eval.batch_size = 64


def _cityscapes(c):
    """The paper's attack: DeepLabv3-ResNet50 at output stride 16 on Cityscapes, on a GPU."""
    c.segmentation.update(
        dataset="cityscapes", data_dir="~/tensorflow_datasets", image_size=(512, 1024)
    )
    c.model.update(
        name="resnet50", width=1.0, stem="imagenet", output_stride=16, aspp_rates=(6, 12, 18)
    )
    c.optim = sections.optim(
        name="sgd", learning_rate=0.01, weight_decay=1e-4, schedule="cosine", warmup_steps=500
    )
    c.train.update(num_epochs=40, batch_size=8, log_every=50, checkpoint_every=1000)
    c.classifier.tasks = ()  # no GAPNets: the segmentation model only
    c.num_seeds = 1
    c.evals.attack.update(
        num_channels=(1, 4, 16, 64, 256, 1024), num_random=3, example_channels=256
    )
    c.eval.batch_size = 8


PRESETS = {"tiny": _tiny, "cityscapes": _cityscapes}
