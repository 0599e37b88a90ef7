"""The same PPO trains N parties of the group game in self-play (one shared network plays
every seat; each seat learns from its own decisions, with an A - 1 step look-ahead bootstrap)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from eqx_jax.ppo import PPOConfig, make_train
from eqx_jax.ppo.plan import bootstrap, look_steps, make_plan


def _train(**kw):
    cfg = PPOConfig(game="group", **kw)
    _, metrics = jax.jit(make_train(cfg))(jax.random.key(0))
    return {k: np.asarray(v).reshape(-1) for k, v in metrics.items()}


def test_three_parties_learn_to_agree():
    # Measured: deal rate 0.09 over the first updates, 0.42 over the last ones (320 k steps).
    m = _train(scenario="supply-chain-3p", num_envs=512, num_steps=16,
               total_timesteps=512 * 16 * 40)
    first, last = m["deal_rate"][:3].mean(), m["deal_rate"][-3:].mean()
    assert first < 0.2 and last > first + 0.15, (first, last)
    for seat in ("supplier", "retailer", "logistics"):
        assert f"return_{seat}" in m and f"{seat}_utility" in m


def test_four_parties_and_the_agents_option_run():
    m = _train(scenario="supply-chain-4p", num_envs=64, num_steps=8, total_timesteps=64 * 8 * 2)
    assert np.isfinite(m["value_loss_shared"]).all() and "return_warehouse" in m
    m = _train(scenario="consortium-8p", env_options={"agents": 5}, num_envs=64, num_steps=8,
               total_timesteps=64 * 8 * 2)
    assert "return_p5" in m and "return_p6" not in m


def test_only_self_play_names_the_field():
    with pytest.raises(ValueError, match="opponent must be 'self' in the 'group' game"):
        PPOConfig(game="group", opponent="linear")
    with pytest.raises(ValueError, match="shared_network must be true in the 'group' game"):
        PPOConfig(game="group", shared_network=False)


def test_bootstrap_takes_each_seats_next_decision():
    """Three seats, rollout ends after seat 0 moved: look-ahead steps by seats 1, 2; seat 0's
    next decision is the state after them. A done on the first look-ahead step ends seat 2's
    and seat 0's wait with that step's reward and value 0."""
    import jax.numpy as jnp

    plan = make_plan(PPOConfig(game="group", num_envs=2, num_steps=4, total_timesteps=8,
                               num_minibatches=1))
    assert look_steps(plan) == 2
    look = {"ppo": {"mover": jnp.array([[1, 1], [2, 2]]),
                    "value": jnp.array([[10.0, 10.0], [20.0, 20.0]])},
            "reward": jnp.array([[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]],
                                 [[4.0, 4.0], [5.0, 5.0], [6.0, 6.0]]]),
            "done": jnp.array([[False, True], [False, False]])}
    value, reward = bootstrap(plan, look, jnp.array([30.0, 30.0]))
    s = plan.scale
    # env 0 (no done): seat 0 waits two steps (1 + 4), value after; seat 1 moves first; seat 2
    # waits one step (3) then moves.
    np.testing.assert_allclose(value[:, 0], [30.0, 10.0, 20.0])
    np.testing.assert_allclose(reward[:, 0], [5.0 * s, 0.0, 3.0 * s], rtol=1e-6)
    # env 1 (done at the first look-ahead step, seat 1's move): the others get its reward, 0.
    np.testing.assert_allclose(value[:, 1], [0.0, 10.0, 0.0])
    np.testing.assert_allclose(reward[:, 1], [1.0 * s, 0.0, 3.0 * s], rtol=1e-6)
