"""One API test for every game of the registry (Pgx style): the env protocol of
eqx_jax/games/spec.py, jit and vmap over episodes and settings, auto-reset, explicit keys,
validated settings, and PettingZoo's own API and seed tests on the adapter."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from eqx_jax.games.registry import GAMES, get_game
from eqx_jax.pettingzoo import game_parallel_env

NAMES = sorted(GAMES)


def _random_actions(env, params, key, n):
    """Random legal-ish actions for n episodes: mostly counters inside the offer bounds."""
    lo, hi = env.offer_bounds(params)
    k1, k2 = jax.random.split(key)
    a_type = jax.random.categorical(k2, jnp.log(jnp.array([0.25, 0.7, 0.05])), shape=(n,))
    offer = lo + jax.random.uniform(k1, (n, env.offer_size)) * (hi - lo)
    act = env.make_action(a_type.astype(jnp.int32), offer)
    return {a: act for a in env.agents}


@pytest.mark.parametrize("name", NAMES)
def test_protocol_shapes_and_masks(name):
    spec = get_game(name)
    env, params = spec.make_env(), spec.make_params()
    obs, state = jax.jit(env.reset)(jax.random.key(0), params)
    assert set(obs) == set(env.agents) and 2 <= len(env.agents) <= 8
    for a in env.agents:
        assert obs[a].shape == (env.obs_size,) and obs[a].dtype == jnp.float32
        mask = np.asarray(obs[a][env.mask_slice])
        assert mask.shape == (3,) and set(np.unique(mask)) <= {0.0, 1.0}
    assert int(env.mover(state)) == 0  # the first agent opens
    lo, hi = env.offer_bounds(params)
    assert lo.shape == hi.shape == (env.offer_size,) and bool(jnp.all(hi > lo))
    e_lo, e_hi = env.explore_bounds(params)
    assert bool(jnp.all(e_lo >= lo)) and bool(jnp.all(e_hi <= hi)) and bool(jnp.all(e_hi > e_lo))
    assert set(env.deal_keys) <= set(env.info_keys)
    assert float(env.gain_scale(params)) > 0


@pytest.mark.parametrize("name", NAMES)
def test_vmapped_play_auto_resets_and_pays_only_at_the_end(name):
    spec = get_game(name)
    env, params = spec.make_env(), spec.make_params()
    n = 64
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(1), n), params)
    step = jax.jit(jax.vmap(env.step, (0, 0, 0, None)))
    ended = 0
    for t in range(3 * int(getattr(params, "max_rounds", 10))):
        k_act, k_step = jax.random.split(jax.random.key(100 + t))
        acts = _random_actions(env, params, k_act, n)
        obs, state, rewards, dones, info = step(jax.random.split(k_step, n), state, acts, params)
        done = np.asarray(dones["__all__"])
        for a in env.agents:
            r = np.asarray(rewards[a])
            assert np.isfinite(r).all() and (r[~done] == 0).all()
        for k in env.info_keys:
            assert info[k].shape == (n,)
        # auto-reset: a finished episode's next state is a fresh episode, first agent to move
        assert (np.asarray(jax.vmap(env.mover)(state))[done] == 0).all()
        ended += done.sum()
    assert ended > 0


@pytest.mark.parametrize("name", NAMES)
def test_same_key_same_episode_and_vmap_over_settings(name):
    spec = get_game(name)
    env, params = spec.make_env(), spec.make_params()
    reset = jax.jit(env.reset)
    o1, s1 = reset(jax.random.key(7), params)
    o2, s2 = reset(jax.random.key(7), params)
    o3, _ = reset(jax.random.key(8), params)
    chex_equal = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), (o1, s1), (o2, s2))
    assert all(jax.tree.leaves(chex_equal))
    # the private values differ for another key (when the priors are not degenerate)
    assert any(not bool(jnp.all(o1[a] == o3[a])) for a in env.agents)
    # a batch of two settings: vmap over params
    both = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * 2), params)
    obs, state = jax.vmap(env.reset)(jax.random.split(jax.random.key(3), 2), both)
    assert obs[env.agents[0]].shape == (2, env.obs_size)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_setting_is_named(name):
    with pytest.raises(ValueError, match="not_a_setting"):
        get_game(name).make_params(not_a_setting=1)


@pytest.mark.parametrize("name", NAMES)
def test_pettingzoo_api_and_seed_tests(name):
    parallel_api_test(game_parallel_env(name), num_cycles=100)
    parallel_seed_test(lambda: game_parallel_env(name))
