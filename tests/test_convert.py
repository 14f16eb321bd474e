"""Tests of `gpj.convert`: PyTorch ResNet and DeepLabv3 weights give the same outputs in gpj.

The PyTorch models are re-created here with torch.nn under torchvision's and VainF's
DeepLabV3Plus-Pytorch's module names (so their state-dict keys are the published ones), filled
with random weights and random BatchNorm running statistics, and compared in eval mode.
"""

import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from conftest import ROOT, assert_bad_configs_fail_fast, gpj_command

from gpj import engine
from gpj.configs.attack import get_config
from gpj.convert import __main__ as cli
from gpj.convert import store, torch_layout
from gpj.errors import CheckpointError, ConfigError
from gpj.experiments import runner
from gpj.models import build_model, build_segmentation_model

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

# --- PyTorch re-creations -----------------------------------------------------------------------


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (gpj also dilates it, which torchvision refuses)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: the 3x3 conv is strided)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """torchvision's ResNet; without `num_classes` it stops at layer4, as IntermediateLayerGetter.

    `dilate` is torchvision's `replace_stride_with_dilation`; `width` scales every stage.
    """

    def __init__(self, block, layers, num_classes=None, width=1.0, dilate=(False,) * 3, in_ch=3):
        super().__init__()
        self.inplanes, self.dilation = round(64 * width), 1
        self.conv1 = nn.Conv2d(in_ch, self.inplanes, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, round(64 * width), layers[0])
        for i, name in enumerate(("layer2", "layer3", "layer4")):
            planes = round(64 * 2 ** (i + 1) * width)
            setattr(self, name, self._make_layer(block, planes, layers[i + 1], 2, dilate[i]))
        if num_classes:
            self.fc = nn.Linear(self.inplanes, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        previous_dilation = self.dilation  # torchvision: the first block keeps the old dilation
        if dilate:
            self.dilation, stride = self.dilation * stride, 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, previous_dilation, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def conv_bn_relu(cin, cout, kernel=1, dilation=1):
    return [
        nn.Conv2d(
            cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    ]


class ASPPPooling(nn.Sequential):
    def forward(self, x):
        y = super().forward(x)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """VainF's ASPP: convs.0 1x1, convs.1-3 dilated 3x3, convs.4 image pooling; project."""

    def __init__(self, cin, rates, cout=256):
        super().__init__()
        branches = [nn.Sequential(*conv_bn_relu(cin, cout))]
        branches += [nn.Sequential(*conv_bn_relu(cin, cout, 3, rate)) for rate in rates]
        branches.append(ASPPPooling(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(cin, cout)))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(*conv_bn_relu(len(branches) * cout, cout), nn.Dropout(0.1))

    def forward(self, x):
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class DeepLabHead(nn.Module):
    def __init__(self, cin, num_classes, rates, features=256):
        super().__init__()
        self.classifier = nn.Sequential(
            ASPP(cin, rates, features),
            *conv_bn_relu(features, features, 3),
            nn.Conv2d(features, num_classes, 1),
        )

    def forward(self, x):
        return self.classifier(x)


class DeepLabV3(nn.Module):
    """VainF's deeplabv3_resnet50: dilated ResNet-50 backbone, DeepLabHead, bilinear upsampling."""

    def __init__(self, num_classes, output_stride=16, width=1.0, in_ch=3):
        super().__init__()
        dilate = (False, False, True) if output_stride == 16 else (False, True, True)
        self.backbone = ResNet(Bottleneck, (3, 4, 6, 3), None, width, dilate, in_ch)
        rates = torch_layout.ASPP_RATES[output_stride]
        self.classifier = DeepLabHead(
            self.backbone.inplanes, num_classes, rates, round(256 * width)
        )

    def forward(self, x):
        y = self.classifier(self.backbone.features(x))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


def randomised(model, in_ch=3, seed=0):
    """`model` in eval mode with random weights and random BatchNorm running statistics.

    Running statistics are first measured on a random batch, then perturbed, and BN scales and
    biases drawn at random; the last BN of each residual branch scales by 0.2-0.5, so that
    activations keep a scale near 1 through 16 residual additions.
    """
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.randn(4, in_ch, 64, 64))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean += 0.1 * torch.randn_like(m.running_mean)
                m.running_var *= torch.empty_like(m.running_var).uniform_(0.7, 1.3)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.momentum = 0.1
        for block in model.modules():
            if isinstance(block, (BasicBlock, Bottleneck)):
                last = block.bn3 if isinstance(block, Bottleneck) else block.bn2
                last.weight.uniform_(0.2, 0.5)
    return model.eval()


def torch_output(model, x):
    """The PyTorch model's output for NHWC numpy `x`, as NHWC (or N, classes) numpy."""
    with torch.no_grad():
        y = model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


def gpj_output(model, variables, x):
    logits, _ = jax.jit(functools.partial(model.apply, train=False))(variables, x)
    return np.asarray(logits)


def normal_input(shape, seed=1):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def assert_close(actual, expected):
    """Agreement to 1e-4, relative to the output's scale (kept near 1 by `randomised`)."""
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, atol=1e-4 * scale, rtol=0)


# --- checkpoints in each layout -----------------------------------------------------------------

TINY_SEG = {"width": 0.125, "in_ch": 1, "num_classes": 11, "output_stride": 8}


@pytest.fixture(scope="module")
def resnet18():
    return randomised(ResNet(BasicBlock, (2, 2, 2, 2), 1000))


@pytest.fixture(scope="module")
def resnet18_file(resnet18, tmp_path_factory):
    """torchvision's published layout: a bare state dict."""
    path = tmp_path_factory.mktemp("torch") / "resnet18.pth"
    torch.save(resnet18.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def tiny_deeplab_dir(tmp_path_factory):
    """A converted width-0.125, one-channel DeepLabv3 with the digit canvases' 11 classes."""
    model = randomised(DeepLabV3(**TINY_SEG), in_ch=1)
    path = tmp_path_factory.mktemp("torch") / "tiny_deeplab.pth"
    torch.save({"model_state": model.state_dict()}, path)
    out = tmp_path_factory.mktemp("converted") / "tiny-deeplab"
    cli.convert_file(str(path), "deeplabv3_resnet50", str(out), output_stride=8)
    return out, model


def numpy_state_dict(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


# --- outputs match ------------------------------------------------------------------------------


def test_resnet18_bare_state_dict_through_the_cli(resnet18, resnet18_file, tmp_path):
    out = tmp_path / "r18"
    proc = gpj_command(
        "gpj.convert", f"--torch_checkpoint={resnet18_file}", "--arch=resnet18", f"--out={out}"
    )
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert f"--config.model.init_from={out}" in stdout and "--config.model.stem=imagenet" in stdout

    variables, info = store.load(str(out))
    assert json.loads((out / "conversion.json").read_text()) == info
    assert info["arch"] == "resnet18" and info["stored_as"] == "state dict"
    assert info["source"] == str(resnet18_file)
    assert (info["num_classes"], info["input_channels"], info["width"]) == (1000, 3, 1.0)
    # 122 tensors in torchvision's resnet18: 102 weights and 20 BN num_batches_tracked.
    assert (info["num_keys"], info["num_skipped_keys"]) == (102, 20)
    assert info["num_params"] == 11_689_512 == sum(p.numel() for p in resnet18.parameters())
    model = build_model("resnet18", num_classes=1000, head="linear", stem="imagenet")
    x = normal_input((2, 64, 64, 3))
    assert_close(gpj_output(model, variables, x), torch_output(resnet18, x))


def test_resnet50_in_a_state_dict_wrapper_with_the_dataparallel_prefix(tmp_path):
    resnet50 = randomised(ResNet(Bottleneck, (3, 4, 6, 3), 1000))
    wrapped = nn.DataParallel(resnet50)  # keys "module.conv1.weight", …
    path = tmp_path / "resnet50.pth"
    torch.save({"state_dict": wrapped.state_dict(), "epoch": 90}, path)
    info = cli.convert_file(str(path), "resnet50", str(tmp_path / "r50"))
    assert info["stored_as"] == "state dict under 'state_dict', 'module.' prefix removed"
    assert info["num_params"] == 25_557_032  # torchvision's resnet50
    variables, _ = store.load(str(tmp_path / "r50"))
    model = torch_layout.build("resnet50", num_classes=1000)
    x = normal_input((2, 64, 64, 3))
    assert_close(gpj_output(model, variables, x), torch_output(resnet50, x))


def test_deeplabv3_resnet50_from_a_vainf_training_checkpoint(tmp_path):
    """The paper's model: VainF's layout, output stride 16, its training checkpoint's extras."""
    deeplab = randomised(DeepLabV3(19))
    optimizer = torch.optim.SGD(deeplab.parameters(), lr=0.01, momentum=0.9)
    path = tmp_path / "best_deeplabv3_resnet50_cityscapes_os16.pth"
    checkpoint = {
        "cur_itrs": 30000,
        "model_state": deeplab.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "scheduler_state": {"last_epoch": 30000, "power": 0.9},
        "best_score": np.float64(0.72),  # VainF stores the best mIoU as a numpy scalar
    }
    torch.save(checkpoint, path)
    info = cli.convert_file(str(path), "deeplabv3_resnet50", str(tmp_path / "seg"))
    assert info["stored_as"] == "state dict under 'model_state'"
    assert (info["output_stride"], info["aspp_rates"], info["num_classes"]) == (16, [6, 12, 18], 19)
    assert info["num_params"] == sum(p.numel() for p in deeplab.parameters())
    assert info["config"] == {
        "model.name": "resnet50",
        "model.width": 1.0,
        "model.stem": "imagenet",
        "model.padding": "zero",
        "model.output_stride": 16,
        "model.aspp_rates": [6, 12, 18],
        "model.aspp_features": 256,
    }
    variables, _ = store.load(str(tmp_path / "seg"))
    model = build_segmentation_model(
        "resnet50", num_classes=19, stem="imagenet", output_stride=16, aspp_rates=(6, 12, 18)
    )
    x = normal_input((1, 65, 97, 3))  # odd sides: padding, striding and resizing all count
    assert_close(gpj_output(model, variables, x), torch_output(deeplab, x))


def test_torch_builds_an_optimizer_in_a_test_process_that_loaded_tensorflow():
    """With a CUDA build of torch (it ships Triton), this crashed unless conftest loads Triton
    before TensorFlow: the test above, run after a tfds test in the same worker."""
    pytest.importorskip("tensorflow")
    code = (
        "import conftest, tensorflow, torch; "
        "torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=os.path.join(ROOT, "tests"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_deeplabv3_at_output_stride_8_and_reduced_width(tiny_deeplab_dir):
    out, deeplab = tiny_deeplab_dir
    variables, info = store.load(str(out))
    assert (info["width"], info["input_channels"], info["output_stride"]) == (0.125, 1, 8)
    assert info["config"]["model.aspp_features"] == 256  # before width scaling, as gpj's config
    model = torch_layout.build("deeplabv3_resnet50", num_classes=11, width=0.125, output_stride=8)
    x = normal_input((2, 40, 56, 1))
    assert_close(gpj_output(model, variables, x), torch_output(deeplab, x))


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda sd: sd.update({"layer1.0.extra.weight": np.zeros(3), "aux.weight": np.zeros(1)}),
            (
                "2 keys are not part of resnet18 (3 input channels, 1000 classes): "
                "aux.weight, layer1.0.extra.weight"
            ),
        ),
        (
            lambda sd: [sd.pop(k) for k in ("layer2.0.downsample.0.weight", "fc.bias")],
            (
                "2 keys of resnet18 (3 input channels, 1000 classes) are missing: "
                "fc.bias, layer2.0.downsample.0.weight"
            ),
        ),
        (
            lambda sd: sd.update({"layer3.1.conv2.weight": np.zeros((256, 256, 1, 1))}),
            (
                "layer3.1.conv2.weight has shape (256, 256, 1, 1), resnet18 (3 input channels, "
                "1000 classes) needs (256, 256, 3, 3)"
            ),
        ),
    ],
    ids=["unknown", "missing", "shape"],
)
def test_bad_state_dicts_raise_one_error_listing_the_keys(resnet18, edit, message):
    state_dict = numpy_state_dict(resnet18)
    edit(state_dict)
    with pytest.raises(CheckpointError) as e:
        torch_layout.convert(state_dict, "resnet18", source="r18.pth")
    assert str(e.value).startswith("r18.pth: ") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_many_missing_keys_are_abbreviated(resnet18):
    state_dict = {k: v for k, v in numpy_state_dict(resnet18).items() if k.startswith("fc")}
    with pytest.raises(CheckpointError, match=r"100 keys .* are missing: .*, … and 92 more$"):
        torch_layout.convert(state_dict, "resnet18")


def test_a_resnet_is_not_a_deeplab(resnet18):
    with pytest.raises(CheckpointError, match=r"missing: backbone\.bn1\.bias.*not part of"):
        torch_layout.convert(numpy_state_dict(resnet18), "deeplabv3_resnet50")


class Payload:
    """Any class: unpickling it would run code, which weights_only=True refuses."""


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ([torch.zeros(2)], "holds no state dict"),
        ({"optimizer_state": {"lr": 0.1}}, "holds no state dict"),
        ({"model_state": {"w": torch.zeros(1)}, "x": Payload()}, "cannot be read safely"),
        (b"not a checkpoint", r"is not a readable PyTorch checkpoint \((?!Weights only)"),
    ],
    ids=["missing", "list", "no-wrapper", "code", "garbage"],
)
def test_unreadable_checkpoints_raise_one_line(tmp_path, content, message):
    path = tmp_path / "x.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message) as e:
        cli.load_state_dict(str(path))
    assert "\n" not in str(e.value)


def test_cli_errors_are_one_line_without_traceback(resnet18, resnet18_file, tmp_path):
    state_dict = resnet18.state_dict()
    state_dict["extra.weight"] = torch.zeros(1)
    torch.save(state_dict, tmp_path / "extra.pth")
    cases = {
        "unknown key": (
            [f"--torch_checkpoint={tmp_path / 'extra.pth'}", "--arch=resnet18"],
            "1 key is not part of resnet18",
        ),
        "arch": ([f"--torch_checkpoint={resnet18_file}", "--arch=vgg16"], "--arch"),
        "stride": (
            [f"--torch_checkpoint={resnet18_file}", "--arch=resnet18", "--output_stride=8"],
            "--output_stride applies to deeplabv3 only",
        ),
    }
    procs = {
        name: gpj_command("gpj.convert", *args, f"--out={tmp_path / name}")
        for name, (args, _) in cases.items()
    }
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, (name, err)
        assert "Traceback" not in err, (name, err)
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and cases[name][1] in lines[0], (name, err)
        assert not (tmp_path / name).exists()


def test_converted_weights_are_not_overwritten_unless_asked(tiny_deeplab_dir):
    out, _ = tiny_deeplab_dir
    variables, info = store.load(str(out))
    with pytest.raises(CheckpointError, match="already holds converted weights"):
        store.save(str(out), variables, info)
    store.save(str(out), variables, {**info, "note": "again"}, overwrite=True)
    assert store.load(str(out))[1]["note"] == "again"


# --- starting models from converted weights -----------------------------------------------------

RNGS = {"params": jax.random.key(0), "permute": jax.random.key(1), "dropout": jax.random.key(2)}


def variable_shapes(model, channels=3):
    x = jax.ShapeDtypeStruct((1, 64, 64, channels), jnp.float32)
    return jax.eval_shape(functools.partial(model.init, train=False), RNGS, x)


@pytest.fixture(scope="module")
def resnet18_variables(resnet18):
    return torch_layout.convert(numpy_state_dict(resnet18), "resnet18")[0]


@pytest.mark.parametrize(
    "head, num_classes, stem, loaded, fresh, unused",
    [
        ("linear", 1000, "imagenet", ["backbone", "head_dense"], [], []),
        ("linear", 10, "imagenet", ["backbone"], ["head_dense"], []),
        # The paper's stem has the same weights, without the max-pool.
        ("gapnet", 9, "paper", ["backbone"], ["head_conv"], ["head_dense"]),
    ],
)
def test_merge_takes_the_backbone_and_every_head_that_fits(
    resnet18_variables, head, num_classes, stem, loaded, fresh, unused
):
    model = build_model("resnet18", num_classes=num_classes, head=head, stem=stem)
    target = variable_shapes(model)
    merged, summary = store.merge(target, resnet18_variables)
    assert summary == {"loaded": loaded, "fresh": fresh, "unused": unused}
    assert jax.tree.structure(merged) == jax.tree.structure(target)
    converted_bn = resnet18_variables["batch_stats"]["backbone"]["layer2_0"]["downsample_bn"]
    assert (
        merged["batch_stats"]["backbone"]["layer2_0"]["downsample_bn"]["var"] is converted_bn["var"]
    )
    for name in fresh:
        assert merged["params"][name]["kernel"] is target["params"][name]["kernel"]


@pytest.mark.parametrize(
    "name, width, message",
    [
        (
            "resnet34",
            1.0,
            "params/backbone/layer1_2/bn1/bias is missing from the converted weights",
        ),
        (
            "resnet18",
            0.5,
            (
                "params/backbone/bn1/bias has shape (64,) in the converted weights, "
                "(32,) in this model"
            ),
        ),
    ],
)
def test_merge_refuses_a_backbone_that_does_not_fit(resnet18_variables, name, width, message):
    target = variable_shapes(build_model(name, num_classes=10, width=width))
    with pytest.raises(CheckpointError, match="the converted backbone does not fit") as e:
        store.merge(target, resnet18_variables)
    assert message in str(e.value)


def test_start_from_converted_loads_and_reports(tiny_deeplab_dir, tmp_path):
    """A segmentation model's backbone starts a GAPNet: its head starts fresh, and says so."""
    out, _ = tiny_deeplab_dir
    model = build_model("resnet50", num_classes=9, width=0.125, stem="paper")
    variables = jax.tree.map(
        lambda leaf: jax.device_put(np.ones(leaf.shape, leaf.dtype)), variable_shapes(model, 1)
    )
    state = engine.TrainState.create(
        apply_fn=model.apply, variables=variables, tx=optax.sgd(0.1), rng=jax.random.key(0)
    )
    config = ml_collections.ConfigDict(
        {"model": {"init_from": str(out), "name": "resnet50", "width": 0.125, "stem": "paper"}}
    )
    started = store.start_from(state, config, str(tmp_path / "run"), train=True)

    converted, _ = store.load(str(out))
    kernel = started.params["backbone"]["layer3_0"]["conv2"]["kernel"]
    np.testing.assert_array_equal(
        kernel, converted["params"]["backbone"]["layer3_0"]["conv2"]["kernel"]
    )
    assert kernel.sharding == state.params["backbone"]["layer3_0"]["conv2"]["kernel"].sharding
    np.testing.assert_array_equal(
        started.params["head_conv"]["kernel"], state.params["head_conv"]["kernel"]
    )
    record = json.loads((tmp_path / "run" / "init_from.json").read_text())
    assert record["arch"] == "deeplabv3_resnet50" and record["path"] == str(out)
    assert (record["loaded"], record["fresh"]) == (["backbone"], ["head_conv"])
    assert record["unused"] == ["aspp", "classifier", "head_bn"]
    assert record["differs"] == {"model.stem": {"converted": "imagenet", "config": "paper"}}

    with pytest.raises(CheckpointError, match="train.num_epochs=0 evaluates .* its head_conv"):
        store.start_from(state, config, str(tmp_path / "run"), train=False)


def test_the_attack_evaluates_a_converted_deeplab_without_training(tiny_deeplab_dir, tmp_path):
    out, _ = tiny_deeplab_dir
    workdir = tmp_path / "attack"
    proc = gpj_command(
        "gpj.main",
        "--config=configs/attack.py:tiny",
        f"--workdir={workdir}",
        "--config.classifier.tasks=()",
        "--config.segmentation.designs=('shape_only',)",  # the converted model's 11 classes
        "--config.model.name=resnet50",
        "--config.model.stem=imagenet",
        f"--config.model.init_from={out}",
        "--config.train.num_epochs=0",
        "--config.segmentation.num_test=16",
        "--config.eval.batch_size=16",
        "--config.evals.attack.num_channels=(4,)",
        "--config.evals.attack.num_random=1",
    )
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    # The tiny preset keeps its ASPP rates (1, 2, 3): allowed, and said.
    assert "model.aspp_rates is [1, 2, 3], converted with [12, 24, 36]" in err
    results = json.loads((workdir / "results.json").read_text())
    (run,) = results["runs"]
    assert (run["model"], run["steps"], run["history"]) == ("segmentation-shape_only", 0, [])
    assert run["weights"] == {"source": "converted", "path": str(out)}
    record = json.loads(
        (workdir / "segmentation-shape_only" / "seed0" / "init_from.json").read_text()
    )
    assert record["loaded"] == ["aspp", "backbone", "classifier", "head_bn", "head_conv"]
    assert record["fresh"] == [] and list(record["differs"]) == ["model.aspp_rates"]
    assert 0.0 <= run["curves"]["clean"]["miou_all"] <= 1.0


def test_init_from_is_checked_before_any_compute(tiny_deeplab_dir, tmp_path):
    out, _ = tiny_deeplab_dir
    assert_bad_configs_fail_fast(
        "configs/attack.py:tiny",
        {"missing": ([f"--config.model.init_from={tmp_path / 'nowhere'}"], "is not a folder")},
    )
    cases = {
        "not converted": ({"model.init_from": str(tmp_path)}, "not a folder written by"),
        "no epochs": (
            {"train.num_epochs": 0},
            "train.num_epochs=0 must be a positive number (0, to evaluate without training, needs",
        ),
        "name": (
            {"model.init_from": str(out)},
            (
                "holds deeplabv3_resnet50 weights, which need model.name='resnet50'; the config "
                "has 'resnet10'"
            ),
        ),
        "both": (
            {
                "model.init_from": str(out),
                "model.name": "resnet50",
                "segmentation.init_workdir": "x",
            },
            "set one of segmentation.init_workdir",
        ),
    }
    for overrides, message in cases.values():
        config = get_config("tiny")
        for path, value in overrides.items():
            section, key = path.split(".")
            config[section][key] = value
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            runner.check_fields(config)
