"""Tests of channel ablation, the dilated ResNet and the DeepLabv3 segmentation model."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gpj.models import OUTPUT_STRIDES, build_model, build_segmentation_model, channel_ablation
from gpj.models.conv import PaddedConv
from gpj.models.resnet import BasicBlock, ResNet18, stage_schedule

RNGS = {"params": jax.random.key(0), "permute": jax.random.key(1), "dropout": jax.random.key(2)}
STAGES = ("stem", "stage1", "stage2", "stage3", "stage4")


def host_variables(model, x, seed=0):
    """Variables of `model` for input `x`, filled with numpy instead of `model.init`.

    Random init compiles one XLA program per parameter shape, which dominates small CPU tests.
    Kernels are He-normal; BN scales, biases and running statistics are random too, so that
    eval-mode BN is no near-identity.
    """
    shapes = jax.eval_shape(functools.partial(model.init, train=False), RNGS, x)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            scale = np.sqrt(2.0 / np.prod(leaf.shape[:-1]))
            return (scale * rng.normal(size=leaf.shape)).astype(np.float32)
        if name in ("scale", "var"):
            return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
        return (0.1 * rng.normal(size=leaf.shape)).astype(np.float32)  # bias, mean

    return jax.tree_util.tree_map_with_path(fill, shapes)


def normal_input(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# --- channel_ablation ---------------------------------------------------------------------------


def test_channel_ablation_masks():
    entry = channel_ablation(5, [3, 1])
    assert entry["keep"].dtype == entry["fill"].dtype == np.float32
    np.testing.assert_array_equal(entry["keep"], [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(entry["fill"], np.zeros(5))

    entry = channel_ablation(3, np.array([2]), fill=[0.5, -1.0, 2.0])
    np.testing.assert_array_equal(entry["keep"], [1, 1, 0])
    np.testing.assert_array_equal(entry["fill"], [0.5, -1.0, 2.0])

    np.testing.assert_array_equal(channel_ablation(4, [])["keep"], np.ones(4))


@pytest.mark.parametrize(
    "channels, fill, message",
    [
        ([4], None, r"channel 4 is outside \[0, 4\)"),
        ([0, -1], None, r"channel -1 is outside"),
        ([1, 2, 1], None, "channel 1 is listed more than once"),
        ([0], [0.0, 0.0, 0.0], r"fill has shape \(3,\), expected \(4,\)"),
        ([0.5], None, "integers"),
        ([[0, 1]], None, "integers"),
    ],
)
def test_channel_ablation_rejects_bad_channels_and_fill(channels, fill, message):
    with pytest.raises(ValueError, match=message):
        channel_ablation(4, channels, fill)


# --- ablating classifier models -----------------------------------------------------------------


@functools.cache
def classifier(name, head="gapnet"):
    """(model, variables, x, jitted eval apply, un-ablated (logits, out)) of a width-0.125 model."""
    model = build_model(name, num_classes=5, head=head, width=0.125)
    x = normal_input((2, 32, 32, 3))
    variables = host_variables(model, x)
    apply = jax.jit(functools.partial(model.apply, train=False))
    return model, variables, x, apply, apply(variables, x)


@pytest.fixture
def gapnet():
    return classifier("resnet18")


FEATURE_CHANNELS = [0, 5, 17, 63]


def test_ablation_with_the_wrong_channel_count_raises(gapnet):
    model, variables, x, _, _ = gapnet
    with pytest.raises(ValueError, match="stage1"):
        model.apply(variables, x, train=False, ablation={"stage1": channel_ablation(9, [0])})


def test_zeroing_features_channels_matches_the_head_on_zeroed_features(gapnet):
    _, variables, x, apply, (logits, out) = gapnet
    ablation = {"features": channel_ablation(64, FEATURE_CHANNELS)}
    ablated_logits, ablated = apply(variables, x, ablation=ablation)

    assert np.all(np.asarray(ablated["latent"])[:, FEATURE_CHANNELS] == 0.0)
    others = np.setdiff1d(np.arange(64), FEATURE_CHANNELS)
    np.testing.assert_allclose(ablated["latent"][:, others], out["latent"][:, others], atol=1e-6)
    # "features" is the backbone output: the backbone's own intermediates are untouched.
    np.testing.assert_array_equal(ablated["stage4"], out["stage4"])

    zeroed = np.array(out["features"])
    zeroed[..., FEATURE_CHANNELS] = 0.0
    head = PaddedConv(5, 3, use_bias=True)
    expected = head.apply({"params": variables["params"]["head_conv"]}, zeroed).mean(axis=(1, 2))
    np.testing.assert_allclose(ablated_logits, expected, atol=1e-5, rtol=1e-5)
    assert not np.allclose(ablated_logits, logits, atol=1e-3)


def test_linear_head_sees_the_ablated_latent():
    _, variables, x, apply, (_, out) = classifier("resnet18", "linear")
    ablated_logits, ablated = apply(
        variables, x, ablation={"features": channel_ablation(64, FEATURE_CHANNELS)}
    )
    latent = np.array(out["features"]).mean(axis=(1, 2))
    latent[:, FEATURE_CHANNELS] = 0.0
    dense = variables["params"]["head_dense"]
    np.testing.assert_allclose(ablated["latent"], latent, atol=1e-6)
    np.testing.assert_allclose(
        ablated_logits, latent @ dense["kernel"] + dense["bias"], atol=1e-5, rtol=1e-5
    )


def test_mean_fill_replaces_channels_by_their_mean(gapnet):
    _, variables, x, apply, (_, out) = gapnet
    mean = np.asarray(out["features"]).mean(axis=(0, 1, 2))  # each channel's mean over the data
    ablation = {"features": channel_ablation(64, FEATURE_CHANNELS, fill=mean)}
    _, ablated = apply(variables, x, ablation=ablation)
    filled = np.asarray(ablated["features"])[..., FEATURE_CHANNELS]
    np.testing.assert_array_equal(filled, np.broadcast_to(mean[FEATURE_CHANNELS], filled.shape))
    np.testing.assert_allclose(
        ablated["latent"][:, FEATURE_CHANNELS],
        np.tile(mean[FEATURE_CHANNELS], (2, 1)),
        rtol=1e-6,
    )
    assert not np.allclose(out["latent"][:, FEATURE_CHANNELS], mean[FEATURE_CHANNELS], rtol=1e-3)


@pytest.mark.parametrize(
    "name, stages, channels",
    [
        ("resnet18", STAGES, 16),
        ("vgg11", ("stage1", "stage2", "stage3", "stage4", "stage5"), 16),
    ],
)
def test_stage_ablation_changes_later_outputs_only(name, stages, channels):
    _, variables, x, apply, (logits, out) = classifier(name)
    ablated_logits, ablated = apply(
        variables, x, ablation={"stage2": channel_ablation(channels, [2, 9])}
    )
    position = stages.index("stage2")
    for stage in stages[:position]:
        np.testing.assert_array_equal(ablated[stage], out[stage], err_msg=stage)
    stage2 = np.asarray(ablated["stage2"])
    assert np.all(stage2[..., [2, 9]] == 0.0) and np.any(np.asarray(out["stage2"])[..., 2] != 0.0)
    np.testing.assert_array_equal(stage2[..., 3], out["stage2"][..., 3])
    for stage in (*stages[position + 1 :], "latent"):
        assert not np.allclose(ablated[stage], out[stage], atol=1e-4), stage
    assert not np.allclose(ablated_logits, logits, atol=1e-4)


def test_keep_all_ablation_is_bit_identical(gapnet):
    _, variables, x, apply, (logits, out) = gapnet
    widths = {"stem": 8, "stage1": 8, "stage2": 16, "stage3": 32, "stage4": 64, "features": 64}
    ablation = {name: channel_ablation(c, [], fill=np.full(c, 7.0)) for name, c in widths.items()}
    kept_logits, kept = apply(variables, x, ablation=ablation)
    np.testing.assert_array_equal(kept_logits, logits)
    for key in out:
        np.testing.assert_array_equal(kept[key], out[key], err_msg=key)


def test_changing_the_ablated_channels_does_not_retrace(gapnet):
    model, variables, x, _, _ = gapnet
    traces = []

    @jax.jit
    def run(variables, ablation):
        traces.append(None)
        return model.apply(variables, x, train=False, ablation=ablation)

    _, first = run(variables, {"stage3": channel_ablation(32, [1, 2])})
    _, second = run(variables, {"stage3": channel_ablation(32, [7], fill=np.ones(32))})
    assert len(traces) == 1 and run._cache_size() == 1
    np.testing.assert_array_equal(np.asarray(first["stage3"])[..., [1, 2]], 0.0)
    np.testing.assert_array_equal(np.asarray(second["stage3"])[..., 7], 1.0)
    assert np.any(np.asarray(second["stage3"])[..., [1, 2]] != 0.0)


# --- dilated ResNet -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stem, output_stride, expected",
    [
        # The paper stem has stride 2, so the plain ResNet already has output stride 16.
        ("paper", 0, [(1, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1)]),
        ("paper", 16, [(1, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1)]),
        ("paper", 8, [(1, 1, 1), (2, 1, 1), (2, 1, 1), (1, 1, 2)]),
        ("paper", 4, [(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4)]),
        # torchvision's deeplabv3_resnet50: replace_stride_with_dilation=[False, True, True].
        ("imagenet", 8, [(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4)]),
        ("imagenet", 16, [(1, 1, 1), (2, 1, 1), (2, 1, 1), (1, 1, 2)]),
        ("cifar", 8, [(1, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1)]),
        ("cifar", 2, [(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4)]),
    ],
)
def test_stage_schedule(stem, output_stride, expected):
    assert stage_schedule(stem, output_stride) == expected


@pytest.mark.parametrize("stem, output_stride", [("imagenet", 2), ("paper", 12), ("cifar", 16)])
def test_unreachable_output_stride_raises(stem, output_stride):
    with pytest.raises(ValueError, match="output_stride"):
        stage_schedule(stem, output_stride)
    model = ResNet18(width=0.125, stem=stem, output_stride=output_stride)
    with pytest.raises(ValueError, match="not reachable"):
        jax.eval_shape(functools.partial(model.init, train=False), RNGS, jnp.zeros((1, 64, 64, 3)))


@pytest.mark.parametrize(
    "output_stride, sides", [(8, [32, 32, 16, 8, 8]), (16, [32, 32, 16, 8, 4])]
)
def test_dilated_resnet_keeps_params_and_reaches_the_output_stride(output_stride, sides):
    x = jnp.zeros((2, 64, 64, 3))

    def init_shapes(model):
        return jax.eval_shape(functools.partial(model.init_with_output, train=False), RNGS, x)

    (features, out), variables = init_shapes(ResNet18(width=0.125, output_stride=output_stride))
    assert features.shape == (2, 64 // output_stride, 64 // output_stride, 64)
    assert [out[stage].shape[1] for stage in STAGES] == sides
    _, plain = init_shapes(ResNet18(width=0.125))
    assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, plain)


def reference_conv(x, kernel, dilation=1):
    """Stride-1 conv with torch's padding `dilation * (k - 1) // 2`, written with lax directly."""
    pad = dilation * (kernel.shape[0] - 1) // 2
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(1, 1),
        padding=[(pad, pad), (pad, pad)],
        rhs_dilation=(dilation, dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def reference_basic_block(x, params, stats, dilation):
    """Eval-mode BasicBlock at stride 1 with both 3x3 convs dilated by `dilation`."""

    def bn(y, name):
        p, s = params[name], stats[name]
        return (y - s["mean"]) / np.sqrt(s["var"] + 1e-5) * p["scale"] + p["bias"]

    y = jax.nn.relu(bn(reference_conv(x, params["conv1"]["kernel"], dilation), "bn1"))
    y = bn(reference_conv(y, params["conv2"]["kernel"], dilation), "bn2")
    if "downsample_conv" in params:
        x = bn(reference_conv(x, params["downsample_conv"]["kernel"]), "downsample_bn")
    return jax.nn.relu(y + x)


@pytest.fixture(scope="module")
def dilated_blocks():
    """Variables, named outputs and BasicBlock outputs of an imagenet-stem ResNet-18 at stride 8."""
    model = ResNet18(width=0.125, stem="imagenet", output_stride=8)
    x = normal_input((2, 64, 64, 3))
    variables = host_variables(model, x)
    (_, out), state = model.apply(
        variables,
        x,
        train=False,
        capture_intermediates=lambda module, _: isinstance(module, BasicBlock),
        mutable=["intermediates"],
    )
    blocks = {name: value["__call__"][0] for name, value in state["intermediates"].items()}
    return variables, out, blocks


@pytest.mark.parametrize(
    "block, block_input, dilation",
    [
        ("layer3_0", "stage2", 1),
        ("layer3_1", "layer3_0", 2),
        ("layer4_0", "stage3", 2),
        ("layer4_1", "layer4_0", 4),
    ],
)
def test_dilated_basic_block_matches_lax_reference(dilated_blocks, block, block_input, dilation):
    variables, out, blocks = dilated_blocks
    x = out[block_input] if block_input in out else blocks[block_input]
    params = variables["params"][block]
    stats = variables["batch_stats"][block]
    # Stride 1 everywhere: the first block of a dilated stage keeps its (stride-1) projection.
    assert blocks[block].shape == x.shape[:3] + (params["conv2"]["kernel"].shape[-1],)
    assert ("downsample_conv" in params) == block.endswith("_0")
    expected = reference_basic_block(x, params, stats, dilation)
    np.testing.assert_allclose(blocks[block], expected, atol=1e-5, rtol=1e-5)
    wrong = reference_basic_block(x, params, stats, 2 * dilation)
    assert not np.allclose(blocks[block], wrong, atol=1e-3)


# --- DeepLabv3 ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deeplab():
    model = build_segmentation_model("resnet18", num_classes=4, width=0.125)
    variables = host_variables(model, jnp.zeros((2, 48, 48, 3)))
    return model, variables


def torch_bilinear(y, height, width):
    """numpy upsampling as torch's `interpolate(mode="bilinear", align_corners=False)`."""

    def weights(size_in, size_out):
        source = np.maximum((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0.0)
        low = np.minimum(np.floor(source).astype(int), size_in - 1)
        high = np.minimum(low + 1, size_in - 1)
        frac = source - low
        matrix = np.zeros((size_out, size_in))
        np.add.at(matrix, (np.arange(size_out), low), 1.0 - frac)
        np.add.at(matrix, (np.arange(size_out), high), frac)
        return matrix

    rows, cols = weights(y.shape[1], height), weights(y.shape[2], width)
    return np.einsum("ph,qw,nhwc->npqc", rows, cols, np.asarray(y, np.float64))


@pytest.mark.parametrize("height, width", [(48, 48), (40, 56)])
def test_deeplab_logits_are_the_bilinear_upsampled_classifier_output(deeplab, height, width):
    model, variables = deeplab
    x = normal_input((2, height, width, 3))
    (logits, out), state = model.apply(
        variables,
        x,
        train=False,
        capture_intermediates=lambda module, _: module.name == "classifier",
        mutable=["intermediates"],
    )
    assert logits.shape == (2, height, width, 4) and logits.dtype == jnp.float32
    assert set(out) == {*STAGES, "features", "latent", "aspp"}
    assert out["features"].shape == (2, height // 8, width // 8, 64)
    assert out["aspp"].shape == (2, height // 8, width // 8, 32)
    np.testing.assert_allclose(out["latent"], out["features"].mean(axis=(1, 2)), atol=1e-6)
    low_res = state["intermediates"]["classifier"]["__call__"][0]
    assert low_res.shape == (2, height // 8, width // 8, 4)
    np.testing.assert_allclose(logits, torch_bilinear(low_res, height, width), atol=1e-5, rtol=1e-5)


def test_deeplab_upsampling_keeps_a_constant_map_constant(deeplab):
    model, variables = deeplab
    bias = np.array([1.5, -2.0, 0.25, 3.0], np.float32)
    params = {
        **variables["params"],
        "classifier": {"kernel": np.zeros((1, 1, 32, 4), np.float32), "bias": bias},
    }
    logits, _ = model.apply({**variables, "params": params}, normal_input((2, 40, 56, 3)), False)
    np.testing.assert_allclose(logits, np.broadcast_to(bias, logits.shape), rtol=1e-6)


def test_deeplab_dropout_is_active_only_in_training(deeplab):
    model, variables = deeplab
    x = normal_input((2, 48, 48, 3))

    @jax.jit
    def train_logits(seed):
        (logits, _), _ = model.apply(
            variables,
            x,
            train=True,
            rngs={"dropout": jax.random.key(seed)},
            mutable=["batch_stats"],
        )
        return logits

    a, a_again, b = train_logits(0), train_logits(0), train_logits(1)
    np.testing.assert_array_equal(a, a_again)
    assert not np.allclose(a, b, atol=1e-4)
    evaluate = jax.jit(functools.partial(model.apply, train=False))
    eval_a, _ = evaluate(variables, x)
    eval_b, _ = evaluate(variables, x)
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(eval_a, a, atol=1e-4)


def test_deeplab_features_ablation(deeplab):
    model, variables = deeplab
    x = normal_input((2, 48, 48, 3))
    _, out = model.apply(variables, x, train=False)
    _, ablated = model.apply(
        variables, x, train=False, ablation={"features": channel_ablation(64, [3, 4])}
    )
    np.testing.assert_array_equal(np.asarray(ablated["latent"])[:, [3, 4]], 0.0)
    np.testing.assert_array_equal(ablated["stage4"], out["stage4"])
    assert not np.allclose(ablated["aspp"], out["aspp"], atol=1e-4)


# --- build_segmentation_model -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        (
            "vgg11",
            {},
            r"name='vgg11' is not one of \('resnet10', 'resnet18', 'resnet34', 'resnet50'\)",
        ),
        ("resnet18", {"output_stride": 4}, "output_stride"),
        ("resnet18", {"output_stride": 32}, "output_stride"),
        ("resnet18", {"stem": "cifar", "output_stride": 16}, "output_stride"),
        ("resnet18", {"width": 0.0}, "width"),
        ("resnet18", {"width": -1.0}, "width"),
        ("resnet18", {"num_classes": 0}, "num_classes"),
        ("resnet18", {"stem": "tiny"}, "stem"),
        ("resnet18", {"padding": "same"}, "padding"),
        ("resnet18", {"bn_momentum": 1.0}, "bn_momentum"),
        ("resnet18", {"aspp_rates": ()}, "aspp_rates"),
        ("resnet18", {"aspp_rates": (6, 0)}, "aspp_rates"),
        ("resnet18", {"aspp_rates": (6, 1.5)}, "aspp_rates"),
        ("resnet18", {"aspp_features": 0}, "aspp_features"),
        ("resnet18", {"dropout_rate": 1.0}, "dropout_rate"),
    ],
)
def test_build_segmentation_model_rejects_bad_arguments(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_segmentation_model(name, **{"num_classes": 3, **kwargs})


def test_build_segmentation_model_scales_the_aspp_width():
    assert OUTPUT_STRIDES == (8, 16)
    model = build_segmentation_model("resnet50", num_classes=3, width=0.25, output_stride=16)
    assert model.aspp_features == 64 and model.backbone.output_stride == 16
