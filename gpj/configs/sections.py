"""Config sections the experiment configs share, with the official code's defaults.

Each function returns a fresh ConfigDict; keyword arguments override its defaults.
"""

import ml_collections


def data(**overrides) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "digits"  # digits (embedded) | cifar10 | cifar100 | mnist | fashion_mnist | imagenette
    c.data_dir = ""  # tfds data_dir for the tfds datasets
    c.image_size = 16  # side of one image in pixels
    c.channels = 1  # colour channels of an image (1: grey)
    c.test_fraction = 0.2  # digits only: held-out fraction
    c.split_seed = 0  # digits: seed of the train/test split; every dataset: of the validation split
    # Share of the training images held out (stratified, the same for every seed and head) as the
    # validation split that `train.plateau_on="val_accuracy"` reads; 0: no validation split.
    c.val_fraction = 0.0
    c.update(overrides)
    return c


def model(**overrides) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "resnet18"  # resnet18 | resnet34 | resnet50 | vgg11 | vgg16 | resnet10 (smoke tests)
    c.width = 0.25  # channel multiplier (1.0 = 64..512 channels)
    c.stem = "paper"  # paper (7x7/2, no max-pool) | cifar (3x3/1) | imagenet (7x7/2 + max-pool)
    c.padding = "zero"  # zero | reflect | replicate | circular | valid | partial
    c.bn_momentum = 0.9  # BatchNorm running-average momentum (flax convention: PyTorch's 0.1)
    # kaiming: convs kaiming-normal over fan-out (torchvision), dense lecun-normal, biases zero |
    # pytorch: PyTorch's layer defaults, as the official code (every conv and dense layer uniform
    # in ±1/sqrt(fan_in))
    c.param_init = "kaiming"
    # A folder written by `python -m gpj.convert` (PyTorch weights): start from its weights
    # instead of a random init. The backbone must fit; heads are taken where their shapes fit
    # (a classifier for another class count starts fresh). With it, train.num_epochs=0
    # evaluates the loaded model without training.
    c.init_from = ""
    c.update(overrides)
    return c


def optim(**overrides) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = "adam"  # adam | sgd
    c.learning_rate = 1e-3  # the rate, or a schedule's peak after its warmup
    c.b1 = 0.5  # the official code's Adam betas (0.5, 0.999)
    c.b2 = 0.999  # Adam's second beta
    c.momentum = 0.9  # sgd only
    c.weight_decay = 0.0  # coupled L2, as torch's weight_decay
    c.schedule = "constant"  # constant | cosine
    c.warmup_steps = 0  # steps of linear warmup from 0 to learning_rate
    c.update(overrides)
    return c


def train(**overrides) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_epochs = 8  # epochs of training (with stop_on_plateau: the budget)
    c.batch_size = 48  # training images per step, all devices together
    c.log_every = 20  # steps between logged training metrics
    c.checkpoint_every = 500  # steps between checkpoints (a run resumes from the last one)
    c.keep_checkpoints = 2  # checkpoints kept per run, the latest
    # The curves: every this many epochs (and at the end) the task's metric on the first
    # `curve_images` test images is logged as test_<metric>, and on the validation split (if
    # any) as val_<metric> (0: no curves, no plateau stop).
    c.eval_every_epochs = 2
    c.curve_images = 120  # the test curve: on the first this many test images
    # Plateau stop (num_epochs is then the budget): with plateau_on=train_loss, end a run once the
    # mean training loss of each of the last `plateau_patience` curve windows is no more than
    # `plateau_min_delta` below the best window before them.
    c.stop_on_plateau = False
    # Seeds trained side by side in one compiled program: the seed axis split over the devices,
    # vmapped within each device's share. A seed's numbers do not depend on it beyond float
    # summation order. 1: one seed per program (a seed axis of one). On a GPU or TPU use more
    # (docs/performance.md); on 2 CPU cores stacking gains nothing (2 ran 0.95-1.04x per step,
    # steady state, four runs).
    c.seeds_per_program = 1
    c.plateau_patience = 2  # train_loss plateau: the last windows that must all fail to gain
    c.plateau_min_delta = 0.01  # train_loss plateau: the gain (nats) a window needs
    # What plateaus: train_loss (the windows' mean training loss, min_delta in nats) or
    # val_accuracy (canvas tasks, data.val_fraction > 0: stop once the best validation accuracy
    # of the later half of the steps taken is less than `plateau_gain_se` binomial standard
    # errors above that of the earlier half; `gpj.engine.val_plateaued`). Never the test split.
    c.plateau_on = "train_loss"
    c.plateau_gain_se = 2.0  # val_accuracy plateau: the gain, in standard errors, to go on
    c.update(overrides)
    return c


def use_cifar10(c: ml_collections.ConfigDict) -> None:
    """The paper-scale data and model settings both experiments' cifar10 presets share."""
    c.data.update(name="cifar10", image_size=32, channels=3, data_dir="~/tensorflow_datasets")
    c.model.width = 1.0
    c.train.update(log_every=100, checkpoint_every=2000)


def use_tiny(c: ml_collections.ConfigDict) -> None:
    """The smoke-test settings both experiments' tiny presets share."""
    c.num_seeds = 1
    c.data.image_size = 8
    c.model.update(name="resnet10", width=0.125)
    c.train.update(num_epochs=1, batch_size=32, log_every=10, checkpoint_every=20)
    c.eval.batch_size = 200
