"""Jitted, sharded train and eval steps built around an experiment's functions.

An objective is `objective(params, state, batch, rng) -> (loss, (metrics, batch_stats))`:
the loss to minimise, scalar metrics to log, and the updated BatchNorm statistics.
An eval function is `eval_fn(state, batch, rng, ablation) -> dict of arrays` whose entries
are sums over the batch (masked padding contributes nothing); `evaluate` adds them up.
`ablation` (None, or channel masks for `models.ablate`) is passed on to the model, so one
compiled step evaluates the model with any set of channels ablated.
"""

import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from gpj.engine.parallel import (
    batch_sharding,
    replicated,
    seeds_batch_sharding,
    seeds_sharding,
    shard_batch,
)


def train_step(state, batch, *, objective):
    """One optimizer step; randomness is `fold_in(state.rng, state.step)`."""
    rng = jax.random.fold_in(state.rng, state.step)
    grad_fn = jax.value_and_grad(objective, has_aux=True)
    (loss, (metrics, batch_stats)), grads = grad_fn(state.params, state, batch, rng)
    return state.apply_gradients(grads, batch_stats), {"loss": loss, **metrics}


def compile_train_step(objective, mesh):
    """`train_step` compiled once: state replicated and donated, batch split on `data`."""
    return jax.jit(
        functools.partial(train_step, objective=objective),
        in_shardings=(replicated(mesh), batch_sharding(mesh)),
        out_shardings=(replicated(mesh), replicated(mesh)),
        donate_argnums=0,
    )


def seeds_train_step(states, batches, active, *, objective, seed_mesh):
    """`train_step` of every seed of a stacked state at once; a seed whose `active` is False keeps
    its state (it has stopped, or fills an idle slot).

    The seed axis is split over the mesh's `seeds` axis by `shard_map`, and each shard vmaps over
    its own seeds, its batches split over `data` by the compiler. With one seed per shard the
    vmapped convolutions are plain ones; with several they become grouped convolutions, which
    GPUs and TPUs run well and XLA's CPU backend slowly (see `gpj.bench`'s `seeds`).
    """

    def one(state, batch, on):
        new, metrics = train_step(state, batch, objective=objective)
        return jax.tree.map(lambda a, b: jnp.where(on, a, b), new, state), metrics

    return jax.shard_map(
        jax.vmap(one),
        mesh=seed_mesh,
        in_specs=(P("seeds"), P("seeds"), P("seeds")),
        out_specs=(P("seeds"), P("seeds")),
        axis_names={"seeds"},
        check_vma=False,
    )(states, batches, active)


def compile_seeds_train_step(objective, seed_mesh):
    """`seeds_train_step` compiled once per seed count: states and metrics split on `seeds`,
    batches on `seeds` and `data` (see `parallel.seed_mesh`), states donated."""
    seeds = seeds_sharding(seed_mesh)
    return jax.jit(
        functools.partial(seeds_train_step, objective=objective, seed_mesh=seed_mesh),
        in_shardings=(seeds, seeds_batch_sharding(seed_mesh), seeds),
        out_shardings=(seeds, seeds),
        donate_argnums=0,
    )


def compile_eval_step(eval_fn, mesh):
    return jax.jit(
        eval_fn,
        in_shardings=(replicated(mesh), batch_sharding(mesh), replicated(mesh), replicated(mesh)),
        out_shardings=replicated(mesh),
    )


def evaluate(state, eval_step, batches, mesh, rng, ablation=None) -> dict:
    """Sums `eval_step` over host batches; batch i uses `fold_in(rng, i)`."""
    totals = None
    for i, batch in enumerate(batches):
        sums = eval_step(state, shard_batch(batch, mesh), jax.random.fold_in(rng, i), ablation)
        totals = sums if totals is None else jax.tree.map(jax.numpy.add, totals, sums)
    return jax.device_get(totals)
