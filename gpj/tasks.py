"""What a run learns: the canvas, shift and segmentation tasks.

A task is a small frozen (hashable) dataclass: its `objective(params, state, batch, rng) ->
(loss, (metrics, batch_stats))` builds the inputs on the device from raw host images and labels,
`input_shape` gives the model's input for a dataset (`too_small` says what to change when a model
does not fit it), and `score_inputs` and `score_grid` show test images
the way the model sees them (for the position scores). Evaluators read a task's fields (grid, shifts).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gpj.data import canvas, segmentation, shift

TARGETS = ("location", "object")


@dataclasses.dataclass(frozen=True)
class Canvas:
    """Each image pasted into a random cell of a `grid_size`² zero canvas; predict the cell
    (`target="location"`) or the image's class (`"object"`)."""

    grid_size: int
    target: str

    def num_classes(self, data) -> int:
        return self.grid_size**2 if self.target == "location" else data.num_classes

    def input_shape(self, data) -> tuple:
        _, h, w, c = data.train_images.shape
        return (1, self.grid_size * h, self.grid_size * w, c)

    def too_small(self, shape, config) -> tuple:
        """What to say when a model does not fit this task's input `shape`."""
        return (
            (
                f"the {shape[1]}x{shape[2]} canvas (data.grid_size={self.grid_size} x "
                f"data.image_size={config.data.image_size})"
            ),
            "use a larger data.image_size or data.grid_size",
        )

    @property
    def score_grid(self) -> int:
        """The position scores paste every test image at every cell of this grid themselves."""
        return self.grid_size

    def score_inputs(self, images):
        return images

    def objective(self, params, state, batch, rng):
        """Cross-entropy on canvases with each image at a random cell."""
        k_cells, k_permute = jax.random.split(rng)
        cells = canvas.random_cells(k_cells, batch["image"].shape[0], self.grid_size)
        labels = cells if self.target == "location" else batch["label"]
        (logits, _), updates = state.apply_fn(
            {"params": params, "batch_stats": state.batch_stats},
            canvas.paste(batch["image"], cells, self.grid_size),
            train=True,
            rngs={"permute": k_permute},
            mutable=["batch_stats"],
        )
        return _classification(logits, labels, updates)


@dataclasses.dataclass(frozen=True)
class Shift:
    """Images at random translations (`shift.place`); `views` shifted copies of each image go
    through the model in one batch (sharing BatchNorm statistics), and with two views `weight`
    times the MSE of their global-pooled latents is added to the cross-entropies (AugShift)."""

    max_shift: int
    mode: str
    pad_mode: str
    views: int = 1
    weight: float = 0.0

    def num_classes(self, data) -> int:
        return data.num_classes

    def input_shape(self, data) -> tuple:
        _, h, _, c = data.train_images.shape
        size = shift.output_size(h, self.max_shift, self.mode)
        return (1, size, size, c)

    def too_small(self, shape, config) -> tuple:
        return (
            (
                f"the {shape[1]}x{shape[2]} shifted image (data.image_size={config.data.image_size}, "
                f"shift.mode={self.mode!r})"
            ),
            "use a larger data.image_size or shift.mode='canvas'",
        )

    def place(self, images, offsets):
        return shift.place(images, offsets, self.max_shift, self.mode, self.pad_mode)

    score_grid = 0

    def score_inputs(self, images):
        """The images centred."""
        offsets = shift.centred_offsets(images.shape[0], self.max_shift)
        return np.asarray(self.place(jnp.asarray(images), offsets))

    def objective(self, params, state, batch, rng):
        """Sum of the views' cross-entropies, plus `weight` * MSE of two views' GAP latents."""
        images, labels = batch["image"], batch["label"]
        b = images.shape[0]
        x = jnp.concatenate(
            [
                self.place(images, shift.random_offsets(k, b, self.max_shift))
                for k in jax.random.split(rng, self.views)
            ]
        )
        (logits, out), updates = state.apply_fn(
            {"params": params, "batch_stats": state.batch_stats},
            x,
            train=True,
            mutable=["batch_stats"],
        )
        targets = jnp.tile(labels, self.views)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets).reshape(self.views, b)
        loss = ce.mean(axis=1).sum()
        metrics = {"ce": ce.mean(), "accuracy": jnp.mean(jnp.argmax(logits, -1) == targets)}
        if self.views == 2:
            mse = latent_mse(out["latent"][:b], out["latent"][b:])
            loss = loss + self.weight * mse
            metrics["latent_mse"] = mse
        return loss, (metrics, updates["batch_stats"])


def latent_mse(z1, z2):
    """Mean squared difference of two batches of latents (over examples and channels)."""
    return jnp.mean(jnp.square(z1 - z2))


@dataclasses.dataclass(frozen=True)
class Segmentation:
    """Per-pixel classes; pixels labelled `ignore_label` count in neither loss nor metrics.

    With `hflip`, each training image is mirrored with probability 1/2, and with `side_classes`
    K > 0 its labels are relabelled as the mirror moves them: classes 1..K (shapes on the left)
    and K+1..2K (the same shapes on the right) swap, so the training layout is symmetric.
    """

    ignore_label: int = segmentation.IGNORE_LABEL
    hflip: bool = False
    side_classes: int = 0

    def num_classes(self, data) -> int:
        return data.num_classes

    def input_shape(self, data) -> tuple:
        return (1, *data.train_images.shape[1:])

    def too_small(self, shape, config) -> tuple:
        del config
        return f"the {shape[1]}x{shape[2]} segmentation image", "use larger images"

    score_grid = 0

    def score_inputs(self, images):
        return images

    def mirror(self, images, labels, rng):
        """Each image (and its labels, relabelled) mirrored left-right with probability 1/2."""
        flip = jax.random.bernoulli(rng, 0.5, (images.shape[0],))
        k = self.side_classes
        mirrored = labels[:, :, ::-1]
        if k:
            on_left = (mirrored >= 1) & (mirrored <= k)
            on_right = (mirrored > k) & (mirrored <= 2 * k)
            mirrored = jnp.where(on_left, mirrored + k, jnp.where(on_right, mirrored - k, mirrored))
        return (
            jnp.where(flip[:, None, None, None], images[:, :, ::-1], images),
            jnp.where(flip[:, None, None], mirrored, labels),
        )

    def objective(self, params, state, batch, rng):
        """Per-pixel cross-entropy over the labelled pixels."""
        images, labels = batch["image"], batch["label"]
        if self.hflip:
            rng, k_flip = jax.random.split(rng)
            images, labels = self.mirror(images, labels, k_flip)
        (logits, _), updates = state.apply_fn(
            {"params": params, "batch_stats": state.batch_stats},
            images,
            train=True,
            rngs={"dropout": rng},
            mutable=["batch_stats"],
        )
        valid = labels != self.ignore_label
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(valid, labels, 0))
        count = jnp.maximum(valid.sum(), 1)
        accuracy = jnp.sum((jnp.argmax(logits, -1) == labels) & valid) / count
        return jnp.sum(ce * valid) / count, ({"accuracy": accuracy}, updates["batch_stats"])


def _classification(logits, labels, updates):
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return loss, ({"accuracy": accuracy}, updates["batch_stats"])
