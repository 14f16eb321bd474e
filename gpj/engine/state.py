"""The training state every experiment shares."""

import functools
from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from gpj.engine.parallel import replicated


class TrainState(flax.struct.PyTreeNode):
    """Parameters, BatchNorm statistics, optimizer state, step and base rng.

    The rng is never split in place: step `s` uses `jax.random.fold_in(rng, s)`,
    so a resumed run replays exactly the randomness of an uninterrupted one.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    apply_fn: Callable[..., Any] = flax.struct.field(pytree_node=False)
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    @classmethod
    def create(cls, *, apply_fn, variables, tx, rng):
        params = variables["params"]
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
            opt_state=tx.init(params),
            rng=rng,
            apply_fn=apply_fn,
            tx=tx,
        )

    @property
    def variables(self):
        return {"params": self.params, "batch_stats": self.batch_stats}

    def apply_gradients(self, grads, batch_stats):
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(
            step=self.step + 1,
            params=optax.apply_updates(self.params, updates),
            batch_stats=batch_stats,
            opt_state=opt_state,
        )

    def checkpoint_items(self):
        """The arrays that a checkpoint holds (functions are rebuilt from config)."""
        return {
            "step": self.step,
            "params": self.params,
            "batch_stats": self.batch_stats,
            "opt_state": self.opt_state,
            "rng": self.rng,
        }

    def from_checkpoint_items(self, items):
        return self.replace(**items)


# The init program runs once per seed, so how fast it compiles matters more than how fast it runs:
# on the CPU, XLA's optimisation level 1 compiles it 2.5-4x faster than the default 2 and gives
# bit-identical states (tests/test_engine.py checks this).
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def compile_init(model, tx, input_shape, mesh, params_init=None):
    """`seed -> TrainState`, compiled once for every seed of a run kind.

    The state is initialised directly into replicated device memory; parameters, the initial
    permutation and the step rngs derive from the seed.

    Args:
      model: a linen module called as `model(x, train=...)` that may draw `permute` rngs.
      tx: the optax optimizer.
      input_shape: shape of one input batch (any batch size; only used for shapes).
      mesh: the device mesh.
      params_init: None, or `(params, rng) -> params` applied after the modules' init (e.g.
        `models.initialisers.pytorch_defaults`), with an rng of its own.
    """
    init = jax.jit(
        functools.partial(
            _init_state,
            model=model,
            tx=tx,
            input_shape=tuple(input_shape),
            params_init=params_init,
        ),
        out_shardings=replicated(mesh),
        compiler_options=INIT_COMPILER_OPTIONS if mesh.devices.flat[0].platform == "cpu" else None,
    )
    return lambda seed: init(jax.random.PRNGKey(seed))


def create_state(model, tx, input_shape, seed: int, mesh) -> TrainState:
    """One seed's initial TrainState (see `compile_init`, which serves many seeds)."""
    return compile_init(model, tx, input_shape, mesh)(seed)


def _init_state(rng, *, model, tx, input_shape, params_init=None):
    k_params, k_permute, k_steps = jax.random.split(rng, 3)
    variables = model.init(
        {"params": k_params, "permute": k_permute}, jnp.zeros(input_shape, jnp.float32), train=False
    )
    if params_init is not None:
        params = params_init(variables["params"], jax.random.fold_in(k_params, 1))
        variables = {**variables, "params": params}
    return TrainState.create(apply_fn=model.apply, variables=variables, tx=tx, rng=k_steps)
