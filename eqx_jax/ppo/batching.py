"""Sample bookkeeping of the update: masked means, minibatch shuffles, packing a batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of ``x`` over the entries where ``mask`` holds (0 when none do); any shape."""
    m = mask.astype(jnp.float32)
    return jnp.sum(x * m) / jnp.maximum(jnp.sum(m), 1.0)


def mine_first(perm: jax.Array, mine: jax.Array, capacity: int) -> jax.Array:
    """The first ``capacity`` entries of ``perm`` reordered mine-first (a stable partition:
    ``perm[argsort(~mine, stable=True)]``), by prefix sums and a scatter instead of a sort.

    ``perm``, ``mine``: ``(n,)``; returns ``(capacity,)`` of ``perm``'s dtype."""
    mine = mine.astype(jnp.int32)
    n_mine = jnp.sum(mine)
    target = jnp.where(mine == 1, jnp.cumsum(mine) - 1, n_mine + jnp.cumsum(1 - mine) - 1)
    return jnp.zeros((capacity,), perm.dtype).at[target].set(perm, mode="drop",
                                                              unique_indices=True)


def permutation(key: jax.Array, n: int) -> jax.Array:
    """A random permutation of ``arange(n)``, ``(n,)`` int32: the minibatch shuffles.

    The same method as ``jax.random.permutation`` (sort the elements by random 32-bit keys,
    ties kept in their current order, repeated with fresh keys until the rounds hold at least
    3 log2(n) random bits), 4-6x faster on CPU. There, XLA sorts a (key, index) pair of arrays
    with a comparator callback (8-12 ms for 16,384 elements: the two shuffles would be ~40 % of
    a default PPO update), while a single uint32 array sorts natively (~1 ms). So each round
    packs both into one uint32: ``b = bit_length(n - 1)`` low bits hold the position, the
    ``32 - b`` high bits are random, and ``ceil(3 b / (32 - b))`` rounds keep jax's 3 log2(n)
    bits (2 rounds for 2,048 samples, 3 for 16,384). Beyond ``n = 2**24`` it falls back to
    jax's.
    """
    if n <= 1:
        return jnp.zeros((n,), jnp.int32)
    b = (n - 1).bit_length()
    if b > 24:  # too few random bits per round left: the general method
        return jax.random.permutation(key, n).astype(jnp.int32)
    rounds = -(-3 * b // (32 - b))
    low = jnp.uint32((1 << b) - 1)
    position = jnp.arange(n, dtype=jnp.uint32)
    perm = position
    for k in jax.random.split(key, rounds):
        bits = jax.random.bits(k, (n,), jnp.uint32)
        perm = perm[jnp.sort((bits & ~low) | position) & low]
    return perm.astype(jnp.int32)
