"""PermuteNet's channel permutations: a fresh one at every pass, or, as its control, a fixed one."""

import jax
from flax import linen as nn

FIXED_PERMUTATION_SEED = 0


def channel_permutation(module: nn.Module, size: int, fixed: bool) -> jax.Array:
    """A permutation of `size` channels, one for the whole batch (like torch.randperm upstream).

    Drawn from `module`'s `permute` rng at every call; with `fixed`, the same permutation at every
    call of every run (drawn once, from `FIXED_PERMUTATION_SEED`), which the layers after it can
    learn as if the channels had their own order.
    """
    key = jax.random.PRNGKey(FIXED_PERMUTATION_SEED) if fixed else module.make_rng("permute")
    return jax.random.permutation(key, size)
