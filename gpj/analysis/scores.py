"""Per-channel position scores of a trained network, in one pass over a dataset.

For a network with global-pooled latent z(x) (and optionally the pooled maps of backbone
stages), and, on grid canvases, where every image is shown at every one of the G² cells::

  flip_abs[d]       = mean |z_d(x) − z_d(hflip(x))|   the paper's overall position score
  flip_signed[d]    = mean  z_d(x) − z_d(hflip(x))    its region-specific (left/right) score
  cell_mean[k, d]   the channel's mean activation with the image at cell k (its G×G tuning map)
  eta2[d]           between-cell variance / total variance of z_d (η², 0: blind to the cell,
                    1: determined by it)
  preferred_cell[d] = argmax_k cell_mean[k, d]

Means over images (and cells) are merged batch by batch with Chan et al.'s update, so memory
stays O(cells × channels) and the variance terms do not suffer from cancellation.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from gpj.data import canvas
from gpj.engine.parallel import batch_sharding, replicated, shard_batch

SCORES = ("flip_abs", "flip_signed", "eta2")


def _pooled(out: dict, name: str) -> jax.Array:
    """The global-average-pooled output `name` ("latent" is already pooled)."""
    return out[name] if name == "latent" else out[name].mean(axis=(1, 2))


def _views(images: jax.Array, grid_size: int) -> jax.Array:
    """(B, 2, K, ...) views: every image at each of the K cells (K = 1 without a grid), and
    their horizontal flips. Image-major, so a batch sharded on B stays sharded."""
    if grid_size:
        views = jnp.moveaxis(canvas.paste_every_cell(images, grid_size), 0, 1)
    else:
        views = images[:, None]
    return jnp.stack([views, views[..., ::-1, :]], axis=1)


def _merge(acc: dict, n_b: jax.Array, mean_b: jax.Array, m2_b: jax.Array) -> dict:
    """Chan et al.'s parallel update of (count, mean, sum of squared deviations)."""
    n = acc["count"] + n_b
    frac = jnp.where(n > 0, n_b / jnp.maximum(n, 1.0), 0.0)
    delta = mean_b - acc["cell_mean"]
    return {
        "count": n,
        "cell_mean": acc["cell_mean"] + delta * frac,
        "cell_m2": acc["cell_m2"] + m2_b + delta**2 * acc["count"] * frac,
    }


def sweep_step(acc, variables, batch, rng, *, apply_fn, grid_size: int, outputs):
    """Adds one batch to the accumulators of every output (masked rows count for nothing)."""
    images, weight = batch["image"], batch["mask"].astype(jnp.float32)
    views = _views(images, grid_size)
    b, _, k = views.shape[:3]
    _, out = apply_fn(
        variables, views.reshape(-1, *views.shape[3:]), train=False, rngs={"permute": rng}
    )
    n_b = weight.sum()
    new = {}
    for name in outputs:
        z = _pooled(out, name).astype(jnp.float32).reshape(b, 2, k, -1)
        w = weight[:, None, None]
        safe_n = jnp.maximum(n_b, 1.0)
        diff = z[:, 0] - z[:, 1]
        mean_b = (w * z[:, 0]).sum(0) / safe_n
        m2_b = (w * (z[:, 0] - mean_b) ** 2).sum(0)
        merged = _merge(acc[name], n_b, mean_b, m2_b)
        frac = jnp.where(merged["count"] > 0, n_b / jnp.maximum(merged["count"], 1.0), 0.0)
        for key, batch_mean in (
            ("flip_abs", (w * jnp.abs(diff)).sum(0).mean(0) / safe_n),
            ("flip_signed", (w * diff).sum(0).mean(0) / safe_n),
        ):
            merged[key] = acc[name][key] + (batch_mean - acc[name][key]) * frac
        new[name] = merged
    return new


def compile_sweep(apply_fn, mesh, *, grid_size: int = 0, outputs=("latent",)):
    """The jitted sweep step: accumulators and variables replicated, the batch split on `data`."""
    return jax.jit(
        functools.partial(sweep_step, apply_fn=apply_fn, grid_size=grid_size, outputs=outputs),
        in_shardings=(replicated(mesh), replicated(mesh), batch_sharding(mesh), replicated(mesh)),
        out_shardings=replicated(mesh),
        donate_argnums=0,
    )


def position_scores(
    sweep,
    variables,
    batches,
    mesh,
    *,
    channels: dict,
    grid_size: int = 0,
    rng=None,
    num_batches=None,
    desc="position scores",
) -> dict:
    """Reads every batch once and returns the scores of every output's channels.

    Args:
      sweep: from `compile_sweep` (with the same `grid_size` and the outputs of `channels`).
      variables: the model's variables.
      batches: this process's share of the data, e.g. from `batches.eval_batches`: dicts with
        "image" (b, H, W, C) and "mask" (b,); read exactly once, in order.
      mesh: the device mesh.
      channels: output name ("latent", "stage3", ...) -> its number of channels.
      grid_size: G > 0 pastes every image into every cell of a G×G canvas; 0 uses images as is.
      rng: base key of the `permute` stream (batch i uses `fold_in(rng, i)`); unused by models
        that do not permute.
      num_batches: length of `batches`, for the progress bar.
      desc: progress bar label.

    Returns:
      {output: {"count", "mean", "flip_abs", "flip_signed", "cell_mean", "eta2",
      "preferred_cell", "rank_<score>" ...}} as numpy; `count` is the number of images; on a grid
      `cell_mean` is (G, G, C), otherwise (C,) and there is no eta2 or preferred cell.
    """
    cells = grid_size * grid_size if grid_size else 1
    acc = {
        name: {
            "count": jnp.zeros((), jnp.float32),
            "cell_mean": jnp.zeros((cells, c), jnp.float32),
            "cell_m2": jnp.zeros((cells, c), jnp.float32),
            "flip_abs": jnp.zeros((c,), jnp.float32),
            "flip_signed": jnp.zeros((c,), jnp.float32),
        }
        for name, c in channels.items()
    }
    acc = jax.device_put(acc, replicated(mesh))
    rng = jax.random.PRNGKey(0) if rng is None else rng
    bar = tqdm.tqdm(
        batches,
        total=num_batches,
        desc=desc,
        leave=False,
        dynamic_ncols=True,
        disable=jax.process_index() != 0,
    )
    for i, batch in enumerate(bar):
        acc = sweep(acc, variables, shard_batch(batch, mesh), jax.random.fold_in(rng, i))
    return {name: _finalise(a, grid_size) for name, a in jax.device_get(acc).items()}


def _finalise(acc: dict, grid_size: int) -> dict:
    """Scores and rankings from the accumulators of one output."""
    cell_mean, count = np.asarray(acc["cell_mean"], np.float64), float(acc["count"])
    scores = {
        "count": round(count),
        "mean": cell_mean.mean(axis=0),
        "flip_abs": np.asarray(acc["flip_abs"]),
        "flip_signed": np.asarray(acc["flip_signed"]),
    }
    if grid_size:
        between = count * ((cell_mean - cell_mean.mean(axis=0)) ** 2).sum(axis=0)
        total = between + np.asarray(acc["cell_m2"], np.float64).sum(axis=0)
        scores["eta2"] = np.where(total > 0, between / np.where(total > 0, total, 1.0), 0.0)
        scores["preferred_cell"] = cell_mean.argmax(axis=0)
        scores["cell_mean"] = cell_mean.reshape(grid_size, grid_size, -1)
    else:
        scores["cell_mean"] = cell_mean[0]
    for name in SCORES:
        if name in scores:
            scores[f"rank_{name}"] = rank(scores[name])
    return scores


def rank(score: np.ndarray) -> np.ndarray:
    """Channel indices by descending score (stable: ties keep channel order)."""
    return np.argsort(-np.asarray(score), kind="stable")
