"""Shift consistency (Zhang, ICML 2019): how often two shifts of one image get the same class.

`agreement` returns a count rather than a fraction so that padded, masked evaluation batches can
be summed exactly; `consistency` turns the totals into the fraction.
"""

import jax
import jax.numpy as jnp


def agreement(
    predictions_a: jax.Array, predictions_b: jax.Array, mask: jax.Array | None = None
) -> jax.Array:
    """Counts the pairs whose two predicted classes are equal.

    Args:
      predictions_a: (B,) predicted classes under the first shift.
      predictions_b: (B,) predicted classes under the second shift.
      mask: optional (B,) bool; pairs where it is False (batch padding) are not counted.

    Returns:
      Scalar int32, the number of counted pairs that agree.
    """
    agree = predictions_a == predictions_b
    if mask is not None:
        agree = agree & mask
    return jnp.sum(agree, dtype=jnp.int32)


def consistency(num_agree: int | jax.Array, num_pairs: int | jax.Array) -> float:
    """Fraction of pairs that agree, from totals summed over all batches.

    Raises:
      ValueError: if num_pairs is 0.
    """
    if num_pairs == 0:
        raise ValueError("consistency needs at least one pair, got num_pairs=0")
    return float(num_agree) / float(num_pairs)
