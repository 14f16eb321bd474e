"""Specification tests for gpj.models: shapes, parameter counts, padding and BlurPool numerics,
permutation, BN."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gpj.engine import compile_init, make_mesh
from gpj.models import BLUR_FILTERS, HEADS, MODEL_NAMES, PADDINGS, STEMS, build_model
from gpj.models.blurpool import BLUR_PADDINGS, BlurPool, binomial_filter
from gpj.models.conv import CONV_PATHS, PaddedConv
from gpj.models.initialisers import pytorch_defaults

RNGS = {"params": jax.random.key(0), "permute": jax.random.key(1)}


def init_shapes(model, size, batch=2):
    """Abstract (logits, out) and variables of `model.init` on a (batch, size, size, 3) input; no compute."""
    x = jnp.zeros((batch, size, size, 3))
    return jax.eval_shape(lambda: model.init_with_output(RNGS, x, train=False))


def num_params(tree):
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


# --- shapes -------------------------------------------------------------------------------------

# Spatial side and channels of every named output of the width-0.125 models on a 48x48 input.
BASIC_BLOCK_RESNET = {
    "stem": (24, 8),
    "stage1": (24, 8),
    "stage2": (12, 16),
    "stage3": (6, 32),
    "stage4": (3, 64),
}
VGG = {
    "stage1": (24, 8),
    "stage2": (12, 16),
    "stage3": (6, 32),
    "stage4": (3, 64),
    "stage5": (1, 64),
}
EXPECTED_OUTPUTS = {
    "resnet10": BASIC_BLOCK_RESNET,
    "resnet18": BASIC_BLOCK_RESNET,
    "resnet34": BASIC_BLOCK_RESNET,
    "resnet50": {
        "stem": (24, 8),
        "stage1": (24, 32),
        "stage2": (12, 64),
        "stage3": (6, 128),
        "stage4": (3, 256),
    },
    "vgg11": VGG,
    "vgg16": VGG,
}


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_shapes(name, head):
    model = build_model(name, num_classes=9, head=head, width=0.125)
    (logits, out), _ = init_shapes(model, 48)
    expected = EXPECTED_OUTPUTS[name]
    last = list(expected.values())[-1]
    assert logits.shape == (2, 9) and logits.dtype == jnp.float32
    assert set(out) == {*expected, "features", "latent"}
    for key, (side, channels) in expected.items():
        assert out[key].shape == (2, side, side, channels), key
    assert out["features"].shape == (2, last[0], last[0], last[1])
    assert out["latent"].shape == (2, last[1])


@pytest.mark.parametrize(
    "stem, stem_side, feature_side", [("paper", 32, 4), ("cifar", 64, 8), ("imagenet", 16, 2)]
)
def test_stem_downsampling(stem, stem_side, feature_side):
    (_, out), _ = init_shapes(build_model("resnet18", num_classes=4, width=0.125, stem=stem), 64)
    assert out["stem"].shape[1:3] == (stem_side, stem_side)
    assert out["features"].shape[1:3] == (feature_side, feature_side)


def test_bfloat16_model_returns_float32_logits():
    model = build_model(
        "resnet18", num_classes=3, head="permutenet", width=0.125, dtype=jnp.bfloat16
    )
    (logits, out), variables = init_shapes(model, 32)
    assert logits.dtype == jnp.float32
    assert out["features"].dtype == jnp.bfloat16
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables["params"]))


def test_valid_padding_shrinks_maps_and_crops_shortcuts():
    # 224 -> 7x7/2 stem 109 -> four 3x3 convs 101 -> stride-2 conv 50, three convs 44 -> 21, 15 -> 7, 1.
    model = build_model("resnet18", num_classes=3, head="permutenet", width=0.125, padding="valid")
    (_, out), _ = init_shapes(model, 224, batch=1)
    sides = [out[key].shape[1] for key in ("stem", "stage1", "stage2", "stage3", "stage4")]
    assert sides == [109, 101, 44, 15, 1]


def test_too_small_input_raises_instead_of_empty_maps():
    with pytest.raises(ValueError, match="too small"):
        init_shapes(
            build_model("resnet18", num_classes=3, width=0.125, padding="valid"), 160, batch=1
        )


# --- parameter counts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("resnet10", 4_905_792),  # resnet18 minus one BasicBlock per stage, layer by layer
        ("resnet18", 11_176_512),  # torchvision resnet18 minus fc
        ("resnet50", 23_508_032),  # torchvision resnet50 minus fc
        ("vgg11", 9_225_984),  # torchvision vgg11_bn .features
    ],
)
def test_backbone_param_count_matches_torchvision(name, expected):
    _, variables = init_shapes(build_model(name, num_classes=10), 64, batch=1)
    assert num_params(variables["params"]["backbone"]) == expected


def test_head_param_counts():
    _, gap = init_shapes(build_model("resnet18", num_classes=10, head="gapnet"), 64, batch=1)
    _, perm = init_shapes(build_model("resnet18", num_classes=10, head="permutenet"), 64, batch=1)
    _, linear = init_shapes(build_model("resnet18", num_classes=10, head="linear"), 64, batch=1)
    assert num_params(gap["params"]["head_conv"]) == 3 * 3 * 512 * 10 + 10
    assert num_params(perm["params"]["head_dense"]) == 512 * 10 + 10
    assert num_params(linear["params"]["head_dense"]) == 512 * 10 + 10


# --- padding numerics against numpy -------------------------------------------------------------

NUMPY_PAD_MODES = {
    "zero": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}


def numpy_conv(x, kernel, bias, padding, strides, dilation):
    """Direct NHWC convolution with torch-style padding; partial conv counts valid pixels with a mask."""
    k = kernel.shape[0]
    pad = 0 if padding == "valid" else dilation * (k - 1) // 2
    widths = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    xp = np.pad(x, widths, mode=NUMPY_PAD_MODES.get(padding, "constant"))
    maskp = np.pad(np.ones((1, *x.shape[1:3], 1)), widths)
    span = dilation * (k - 1) + 1
    out_h = (xp.shape[1] - span) // strides + 1
    out_w = (xp.shape[2] - span) // strides + 1
    y = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
    valid = np.zeros((1, out_h, out_w, 1))
    for a in range(k):
        for b in range(k):
            rows = slice(a * dilation, a * dilation + strides * (out_h - 1) + 1, strides)
            cols = slice(b * dilation, b * dilation + strides * (out_w - 1) + 1, strides)
            y += xp[:, rows, cols, :] @ kernel[a, b]
            valid += maskp[:, rows, cols, :]
    if padding == "partial":
        y *= k * k / valid
    return y + bias


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", PADDINGS)
def test_padded_conv_matches_numpy(padding, strides, dilation):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 7, 2)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    bias = rng.normal(size=(3,)).astype(np.float32)
    conv = PaddedConv(3, 3, strides=strides, dilation=dilation, padding=padding, use_bias=True)
    y = conv.apply({"params": {"kernel": kernel, "bias": bias}}, x)
    np.testing.assert_allclose(
        y, numpy_conv(x, kernel, bias, padding, strides, dilation), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("kernel_size, strides, side", [(7, 2, 4), (3, 1, 7), (3, 2, 4), (1, 2, 4)])
def test_padded_conv_output_side_matches_torch(kernel_size, strides, side):
    conv = PaddedConv(1, kernel_size, strides=strides)
    y, _ = jax.eval_shape(lambda: conv.init_with_output(jax.random.key(0), jnp.zeros((1, 7, 7, 1))))
    assert y.shape == (1, side, side, 1)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("strides, side", [(2, 7), (2, 8), (3, 7)])
def test_strided_pointwise_matmul_path_matches_numpy_and_conv_path(padding, strides, side):
    """The strided 1x1 path (slice + matmul): values against numpy, values and gradients (input
    and kernel) against XLA's convolution."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, side, side, 3)).astype(np.float32)
    kernel = rng.normal(size=(1, 1, 3, 4)).astype(np.float32)
    bias = rng.normal(size=(4,)).astype(np.float32)
    g = rng.normal(size=(2, -(-side // strides), -(-side // strides), 4)).astype(np.float32)

    def loss_and_grads(path):
        conv = PaddedConv(4, 1, strides=strides, padding=padding, use_bias=True, path=path)

        def loss(x, kernel):
            return jnp.vdot(conv.apply({"params": {"kernel": kernel, "bias": bias}}, x), g)

        return jax.value_and_grad(loss, argnums=(0, 1))(x, kernel)

    (plain, plain_grads), (matmul, matmul_grads) = loss_and_grads("conv"), loss_and_grads("matmul")
    expected = np.vdot(numpy_conv(x, kernel, bias, padding, strides, 1), g)
    np.testing.assert_allclose(matmul, expected, rtol=1e-5)
    np.testing.assert_allclose(matmul, plain, rtol=1e-5)
    for a, b in zip(matmul_grads, plain_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", PADDINGS)
def test_im2col_path_matches_numpy_and_conv_path(padding, strides, dilation):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 7, 7, 2)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    bias = rng.normal(size=(3,)).astype(np.float32)

    def loss_and_grads(path):
        conv = PaddedConv(3, 3, strides, dilation, padding, use_bias=True, path=path)

        def loss(x, kernel):
            y = conv.apply({"params": {"kernel": kernel, "bias": bias}}, x)
            return jnp.sum(jnp.sin(y)), y

        return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(x, kernel)

    ((_, im2col), im2col_grads), ((_, plain), plain_grads) = map(loss_and_grads, ("im2col", "conv"))
    expected = numpy_conv(x, kernel, bias, padding, strides, dilation)
    np.testing.assert_allclose(im2col, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(im2col, plain, atol=1e-5, rtol=1e-5)
    for a, b in zip(im2col_grads, plain_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_conv_path_defaults_to_xla_and_is_checked():
    assert PaddedConv(1, 1).path == CONV_PATHS[0] == "conv"
    with pytest.raises(ValueError, match="path='winograd' is not one of"):
        PaddedConv(1, 1, path="winograd").init(jax.random.key(0), jnp.zeros((1, 4, 4, 1)))


def test_resnet_conv_paths_agree_in_values_and_gradients():
    """A whole train-mode ResNet (three strided 1x1 shortcuts) gives the same loss and gradients
    on every path: the paths differ in float order only."""
    model = build_model("resnet10", num_classes=5, width=0.125)
    x = jax.random.normal(jax.random.key(2), (4, 32, 32, 3))
    variables = model.init(RNGS, x, train=False)

    def loss_and_grads(path):
        m = model.clone(backbone=model.backbone.clone(conv_path=path))

        def loss(params):
            (logits, _), _ = m.apply(
                {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
            )
            return jnp.sum(logits**2)

        return jax.value_and_grad(loss)(variables["params"])

    plain, plain_grads = loss_and_grads("conv")
    for path in ("matmul", "im2col"):
        loss, grads = loss_and_grads(path)
        np.testing.assert_allclose(loss, plain, rtol=1e-5)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4), grads, plain_grads
        )


def test_partial_conv_keeps_constant_input_constant_at_borders():
    conv = PaddedConv(1, 3, padding="partial")
    kernel = np.ones((3, 3, 1, 1), np.float32)
    y = conv.apply({"params": {"kernel": kernel}}, np.full((1, 5, 5, 1), 2.0, np.float32))
    np.testing.assert_allclose(y, 18.0, rtol=1e-6)


# --- permutation --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch():
    return jax.random.normal(jax.random.key(42), (4, 32, 32, 3))


@pytest.mark.parametrize("shuffle_layer", [1, 2, 3, 4, 5])
def test_permutenet_draws_a_fresh_permutation_per_call(shuffle_layer, batch):
    model = build_model(
        "resnet10", num_classes=5, head="permutenet", width=0.125, shuffle_layer=shuffle_layer
    )
    variables = model.init(RNGS, batch, train=False)

    def run(seed, train=False):
        rngs = {"permute": jax.random.key(seed)}
        if train:
            return model.apply(variables, batch, train=True, rngs=rngs, mutable=["batch_stats"])[0]
        return model.apply(variables, batch, train=False, rngs=rngs)

    (a, out_a), (a_again, _), (b, out_b) = run(7), run(7), run(8)
    np.testing.assert_array_equal(a, a_again)
    assert not np.allclose(a, b), "eval mode must permute too"
    assert not np.allclose(run(7, train=True)[0], run(8, train=True)[0]), "train mode must permute"

    # The permutation sits right before stage `shuffle_layer` (5: after global pooling).
    before = (
        "stem"
        if shuffle_layer == 1
        else ("latent" if shuffle_layer == 5 else f"stage{shuffle_layer - 1}")
    )
    np.testing.assert_array_equal(out_a[before], out_b[before])
    if shuffle_layer < 5:
        assert not np.allclose(out_a[f"stage{shuffle_layer}"], out_b[f"stage{shuffle_layer}"])


def test_gapnet_does_not_depend_on_permute_rng(batch):
    model = build_model("resnet18", num_classes=5, width=0.125)
    variables = model.init(RNGS, batch, train=False)
    a, _ = model.apply(variables, batch, train=False, rngs={"permute": jax.random.key(1)})
    b, _ = model.apply(variables, batch, train=False, rngs={"permute": jax.random.key(2)})
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shuffle_layer", [2, 5])
def test_fixed_permutation_is_the_same_at_every_pass_and_reorders_the_channels(
    shuffle_layer, batch
):
    fixed = build_model(
        "resnet10", num_classes=5, head="fixedperm", width=0.125, shuffle_layer=shuffle_layer
    )
    variables = fixed.init(RNGS, batch, train=False)
    apply = jax.jit(fixed.apply, static_argnames="train")
    (a, out), (b, _) = (
        apply(variables, batch, train=False, rngs={"permute": jax.random.key(k)}) for k in (7, 8)
    )
    np.testing.assert_array_equal(a, b)
    # The same parameters in the unpermuted linear head's model (same names, same shapes).
    linear = build_model("resnet10", num_classes=5, head="linear", width=0.125)
    plain, plain_out = jax.jit(linear.apply, static_argnames="train")(variables, batch, train=False)
    head = variables["params"]["head_dense"]
    if shuffle_layer == 5:  # the logits read the pooled channels in one fixed, non-trivial order
        np.testing.assert_array_equal(out["latent"], plain_out["latent"])
        perm = np.asarray(jax.random.permutation(jax.random.PRNGKey(0), out["latent"].shape[-1]))
        assert not np.array_equal(perm, np.arange(len(perm)))
        expected = np.asarray(out["latent"])[:, perm] @ head["kernel"] + head["bias"]
        np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-5)
    else:  # stage 2 reads stage 1's channels in another order
        np.testing.assert_array_equal(out["stage1"], plain_out["stage1"])
        assert not np.allclose(out["stage2"], plain_out["stage2"])
    assert not np.allclose(a, plain)


def test_sum_head_logits_are_an_affine_function_of_the_channel_sum(batch):
    model = build_model("resnet10", num_classes=5, head="sum", width=0.125)
    variables = model.init(RNGS, batch, train=False)
    logits, out = jax.jit(model.apply, static_argnames="train")(variables, batch, train=False)
    head = variables["params"]["head_dense"]
    assert head["kernel"].shape == (1, 5) and head["bias"].shape == (5,)
    total = np.asarray(out["latent"], np.float64).sum(axis=-1, keepdims=True)
    expected = total * np.asarray(head["kernel"][0]) + np.asarray(head["bias"])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


# --- named intermediates ------------------------------------------------------------------------


def test_gapnet_logits_are_spatial_mean_of_head_conv_on_features(batch):
    model = build_model("resnet18", num_classes=5, width=0.125)
    variables = model.init(RNGS, batch, train=False)
    logits, out = model.apply(variables, batch, train=False)
    head = PaddedConv(5, 3, use_bias=True)
    expected = head.apply({"params": variables["params"]["head_conv"]}, out["features"]).mean(
        axis=(1, 2)
    )
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(out["features"], out["stage4"])
    np.testing.assert_allclose(out["latent"], out["features"].mean(axis=(1, 2)), atol=1e-6)


def test_linear_head_is_a_dense_layer_on_the_gap_latent(batch):
    model = build_model("resnet18", num_classes=5, head="linear", width=0.125)
    variables = model.init(RNGS, batch, train=False)
    logits, out = model.apply(variables, batch, train=False)
    dense = variables["params"]["head_dense"]
    assert logits.shape == (4, 5) and out["latent"].shape == (4, 64)
    np.testing.assert_allclose(out["latent"], out["features"].mean(axis=(1, 2)), atol=1e-6)
    np.testing.assert_allclose(
        logits, out["latent"] @ dense["kernel"] + dense["bias"], atol=1e-5, rtol=1e-5
    )


# --- BlurPool -----------------------------------------------------------------------------------

PASCAL_ROWS = {1: [1], 2: [1, 1], 3: [1, 2, 1], 4: [1, 3, 3, 1], 5: [1, 4, 6, 4, 1]}


@pytest.mark.parametrize("size", PASCAL_ROWS)
def test_binomial_filter_is_normalised_outer_pascal_row(size):
    row = np.array(PASCAL_ROWS[size], np.float64)
    taps = binomial_filter(size)
    np.testing.assert_allclose(taps, np.outer(row, row) / row.sum() ** 2, rtol=1e-6)
    np.testing.assert_allclose(taps.sum(), 1.0, rtol=1e-6)


@pytest.mark.parametrize("size", [0, 6])
def test_binomial_filter_rejects_sizes_outside_1_to_5(size):
    with pytest.raises(ValueError, match="filter_size"):
        binomial_filter(size)


def numpy_blurpool(x, taps, padding, strides):
    """Per-channel 2-D correlation with `taps`, padded (k-1)//2 before and k//2 after, subsampled."""
    k = taps.shape[0]
    pads = (0, 0) if padding == "valid" else ((k - 1) // 2, k // 2)
    xp = np.pad(x, ((0, 0), pads, pads, (0, 0)), mode=NUMPY_PAD_MODES.get(padding, "constant"))
    out_h, out_w = xp.shape[1] - k + 1, xp.shape[2] - k + 1
    y = np.zeros((x.shape[0], out_h, out_w, x.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            y[:, i, j, :] = np.einsum("nabc,ab->nc", xp[:, i : i + k, j : j + k, :], taps)
    return y[:, ::strides, ::strides]


@pytest.mark.parametrize("padding", BLUR_PADDINGS)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_blurpool_matches_numpy_and_has_no_params(size, padding):
    x = np.random.default_rng(0).normal(size=(2, 7, 6, 2)).astype(np.float32)
    row = np.array(PASCAL_ROWS[size], np.float64)
    blur = BlurPool(size, strides=2, padding=padding)
    y, variables = blur.init_with_output(jax.random.key(0), x)
    assert variables == {}
    # Padded layers keep torch's ceil(side / strides).
    assert padding == "valid" or y.shape == (2, 4, 3, 2)
    expected = numpy_blurpool(x, np.outer(row, row) / row.sum() ** 2, padding, 2)
    np.testing.assert_allclose(y, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("size", [2, 3, 5])
def test_blurpool_keeps_a_constant_image_constant(size):
    y = BlurPool(size).apply({}, np.full((1, 5, 5, 3), 2.5, np.float32))
    np.testing.assert_allclose(y, 2.5, rtol=1e-6)


@pytest.mark.parametrize("size", [2, 3, 4, 5])
def test_blurpool_removes_the_nyquist_pattern_that_plain_subsampling_aliases(size):
    """A checkerboard at the sampling limit: plain subsampling maps it to +1 or -1 depending on a
    1-pixel shift (the worst case of aliasing); every binomial filter of size >= 2 is zero at that
    frequency, so the blurred output is 0 for both shifts."""
    rows, cols = np.indices((8, 8))
    board = ((-1.0) ** (rows + cols))[None, :, :, None].astype(np.float32)
    shifted = np.roll(board, 1, axis=2)
    np.testing.assert_array_equal(BlurPool(1).apply({}, board), 1.0)
    np.testing.assert_array_equal(BlurPool(1).apply({}, shifted), -1.0)
    np.testing.assert_allclose(BlurPool(size).apply({}, board), 0.0, atol=1e-6)
    np.testing.assert_allclose(BlurPool(size).apply({}, shifted), 0.0, atol=1e-6)


# --- anti-aliased models ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [48, 32, 33])
@pytest.mark.parametrize("name, stem", [("resnet18", "imagenet"), ("vgg11", "paper")])
def test_blur_keeps_every_output_shape_and_param_shape(name, stem, size):
    plain = build_model(name, num_classes=7, width=0.125, stem=stem)
    blurred = build_model(name, num_classes=7, width=0.125, stem=stem, blur_filter=3)
    (logits, out), variables = init_shapes(plain, size)
    (blur_logits, blur_out), blur_variables = init_shapes(blurred, size)
    assert blur_logits.shape == logits.shape
    assert jax.tree.map(jnp.shape, blur_out) == jax.tree.map(jnp.shape, out)
    # Same tree and shapes, so checkpoints load into either model; BlurPool adds no variables.
    assert jax.tree.map(jnp.shape, blur_variables) == jax.tree.map(jnp.shape, variables)


@pytest.mark.parametrize("name, stem", [("resnet18", "imagenet"), ("vgg11", "paper")])
def test_blur_filter_1_reproduces_the_plain_model(name, stem):
    """A 1x1 binomial filter is plain subsampling, so dense layer + BlurPool(1) must equal the
    strided layer: this checks the wiring and the alignment of every blurred downsampling."""
    x = jax.random.normal(jax.random.key(3), (2, 33, 33, 3))
    plain = build_model(name, num_classes=5, width=0.125, stem=stem)
    variables = plain.init(RNGS, x, train=False)
    subsampled = build_model(name, num_classes=5, width=0.125, stem=stem, blur_filter=1)
    np.testing.assert_allclose(
        subsampled.apply(variables, x, train=False)[0],
        plain.apply(variables, x, train=False)[0],
        atol=1e-5,
        rtol=1e-5,
    )


def test_blur_resnet_latent_is_more_stable_under_a_1_pixel_shift():
    """Zhang's claim at the network level: a 1-pixel (circular) shift moves the GAP latent of a
    randomly initialised ResNet-18 much less with blur_filter=3 than without. Over seeds 0-4 the
    relative change was 0.25-0.35 plain and 0.03-0.12 blurred, so half is a safe bound."""
    x = jax.random.normal(jax.random.key(100), (4, 32, 32, 3))
    pair = jnp.concatenate([x, jnp.roll(x, 1, axis=2)])

    def relative_change(blur_filter):
        model = build_model(
            "resnet18", num_classes=5, head="linear", width=0.125, blur_filter=blur_filter
        )
        variables = model.init(RNGS, pair, train=False)
        latent = model.apply(variables, pair, train=False)[1]["latent"]
        return float(jnp.linalg.norm(latent[4:] - latent[:4]) / jnp.linalg.norm(latent[:4]))

    plain, blurred = relative_change(0), relative_change(3)
    assert plain > 0.1 and blurred < 0.5 * plain


# --- argument checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, arg",
    [
        ("resnet99", {}, "name"),
        ("resnet18", {"head": "mlp"}, "head"),
        ("resnet18", {"stem": "tiny"}, "stem"),
        ("resnet18", {"padding": "same"}, "padding"),
        ("resnet18", {"shuffle_layer": 0}, "shuffle_layer"),
        ("resnet18", {"shuffle_layer": 6}, "shuffle_layer"),
        ("vgg11", {"shuffle_layer": 3}, "shuffle_layer"),
        ("resnet18", {"width": 0.0}, "width"),
        ("resnet18", {"num_classes": 0}, "num_classes"),
        ("resnet18", {"bn_momentum": 1.0}, "bn_momentum"),
        ("resnet18", {"blur_filter": 6}, "blur_filter"),
        ("vgg11", {"blur_filter": -1}, "blur_filter"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(name, kwargs, arg):
    kwargs = {"num_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=arg):
        build_model(name, **kwargs)


def test_vgg_shuffle_layer_message_says_resnet_only():
    with pytest.raises(ValueError, match="only supported for ResNet"):
        build_model("vgg16", num_classes=3, shuffle_layer=2)


def test_choice_tuples():
    assert MODEL_NAMES == ("resnet10", "resnet18", "resnet34", "resnet50", "vgg11", "vgg16")
    assert HEADS == ("gapnet", "permutenet", "fixedperm", "sum", "linear")
    assert BLUR_FILTERS == (0, 1, 2, 3, 4, 5)
    assert STEMS == ("paper", "cifar", "imagenet")
    assert PADDINGS == ("zero", "reflect", "replicate", "circular", "valid", "partial")


# --- BatchNorm running statistics ---------------------------------------------------------------


def train_eval_gap(bn_momentum, batch, updates=80):
    """Max |eval - train| logits on `batch` after `updates` batch_stats updates on that batch."""
    model = build_model("resnet18", num_classes=5, width=0.125, bn_momentum=bn_momentum)
    variables = model.init(RNGS, batch, train=False)
    params = variables["params"]

    @jax.jit
    def update(batch_stats):
        (logits, _), new = model.apply(
            {"params": params, "batch_stats": batch_stats},
            batch,
            train=True,
            mutable=["batch_stats"],
        )
        return new["batch_stats"], logits

    batch_stats = variables["batch_stats"]
    for _ in range(updates):
        batch_stats, train_logits = update(batch_stats)
    eval_logits, _ = model.apply({"params": params, "batch_stats": batch_stats}, batch, train=False)
    return float(jnp.max(jnp.abs(eval_logits - train_logits))), float(
        jnp.max(jnp.abs(train_logits))
    )


def test_batchnorm_eval_matches_train_after_running_stats_converge(batch):
    # 0.9**n of the initial (0, 1) statistics is left after n updates and its error compounds through
    # ~20 BN layers: n=30 still leaves ~0.9 on the logits, n=80 ~5e-3. 0.999**80 leaves 92%.
    gap, scale = train_eval_gap(0.9, batch)
    assert scale > 1.0 and gap < 1e-2
    slow_gap, _ = train_eval_gap(0.999, batch)
    assert slow_gap > 1.0


# --- initialisation -----------------------------------------------------------------------------


# A conv with a bias, a BatchNorm, a dense layer and a sum head's 1-input dense layer.
PARAMS = {
    "conv": {"kernel": jnp.zeros((3, 3, 16, 64)), "bias": jnp.zeros(64)},
    "bn": {"scale": jnp.ones(64), "bias": jnp.zeros(64)},
    "head_dense": {"kernel": jnp.zeros((128, 9)), "bias": jnp.zeros(9)},
    "sum_dense": {"kernel": jnp.zeros((1, 9)), "bias": jnp.zeros(9)},
}


def torch_bounds():
    """PyTorch's own bounds for these layers: kaiming_uniform_(a=√5) for weights, 1/√fan_in for
    biases, with fan_in from torch's function on torch layers of the same shapes."""
    import math

    import torch

    gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    layers = {
        "conv": torch.nn.Conv2d(16, 64, 3),
        "head_dense": torch.nn.Linear(128, 9),
        "sum_dense": torch.nn.Linear(1, 9),
    }
    bounds = {}
    for name, layer in layers.items():
        fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(layer.weight)
        bounds[name] = {"kernel": gain * math.sqrt(3 / fan_in), "bias": 1 / math.sqrt(fan_in)}
    return bounds


def test_pytorch_init_draws_every_conv_and_dense_layer_as_torch_does():
    redrawn = pytorch_defaults(PARAMS, jax.random.key(3))
    for name, bounds in torch_bounds().items():
        for leaf, bound in bounds.items():
            value = np.asarray(redrawn[name][leaf])
            assert 0 < np.abs(value).max() <= bound * (1 + 1e-6), (name, leaf)
            if value.size >= 1000:  # uniform: std bound/√3, reaching close to the bound
                assert value.std() == pytest.approx(bound / np.sqrt(3), rel=0.05), name
                assert np.abs(value).max() >= 0.98 * bound, name
    # BatchNorm keeps PyTorch's scale 1 and bias 0; every draw has its own rng.
    assert jax.tree.map(np.array_equal, redrawn["bn"], PARAMS["bn"]) == {
        "scale": True,
        "bias": True,
    }
    again, other = (pytorch_defaults(PARAMS, jax.random.key(k)) for k in (3, 4))
    assert np.array_equal(again["conv"]["kernel"], redrawn["conv"]["kernel"])
    assert not np.array_equal(other["conv"]["kernel"], redrawn["conv"]["kernel"])


def test_a_run_kind_with_pytorch_init_starts_from_it():
    model = build_model("resnet10", num_classes=9, width=0.125)
    tx = optax.adam(1e-3)
    mesh = make_mesh()
    torch_init = compile_init(model, tx, (1, 24, 24, 1), mesh, params_init=pytorch_defaults)(0)
    default = compile_init(model, tx, (1, 24, 24, 1), mesh)(0)
    conv = torch_init.params["backbone"]["conv1"]["kernel"]  # 7x7, 1 input channel, 8 output
    assert np.abs(conv).max() <= 1 / np.sqrt(7 * 7 * 1) and not np.array_equal(
        conv, default.params["backbone"]["conv1"]["kernel"]
    )
    bn = torch_init.params["backbone"]["bn1"]
    assert np.all(bn["scale"] == 1) and np.all(bn["bias"] == 0)
