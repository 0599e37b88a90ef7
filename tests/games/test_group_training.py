"""The same PPO trains N parties of the group game in self-play (one shared network for every
seat, or one network per seat; each seat learns from its own decisions, with an A - 1 step
look-ahead bootstrap)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from eqx_jax.ppo import PPOConfig, make_train
from eqx_jax.ppo.plan import (
    advantages_batch,
    bootstrap,
    forward_movers,
    init_one,
    look_steps,
    make_plan,
    movers,
    rollout,
    stack,
)


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


def test_five_parties_of_the_agents_option_run():
    m = _train(scenario="consortium-8p", env_options={"agents": 5}, num_envs=64, num_steps=8,
               total_timesteps=64 * 8 * 2)
    assert np.isfinite(m["value_loss_shared"]).all()
    assert "return_p5" in m and "return_p6" not in m


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


def test_one_network_per_seat_acts_and_learns_for_its_seat_only():
    cfg = PPOConfig(game="group", scenario="supply-chain-3p", shared_network=False, num_envs=64,
                    num_steps=8, total_timesteps=64 * 8 * 2, num_minibatches=2)
    plan = make_plan(cfg)
    assert plan.names == ("supplier", "retailer", "logistics") and plan.n_net == 3
    np.testing.assert_array_equal(np.asarray(plan.agent_net), [0, 1, 2])
    runner = init_one(plan, jax.random.key(1))
    params_l = stack(plan, runner.params)
    mover, obs_m = movers(plan, runner.env_state, runner.obs)
    mover = jax.numpy.arange(64) % 3  # every seat's network on the same observations
    logits, _, value = forward_movers(plan, params_l, obs_m, mover)
    for i, name in enumerate(plan.names):
        own = plan.net.apply(runner.params[name], obs_m)
        rows = np.asarray(mover) == i
        np.testing.assert_array_equal(np.asarray(logits)[rows], np.asarray(own[0])[rows])
        np.testing.assert_array_equal(np.asarray(value)[rows], np.asarray(own[2])[rows])
    m = _train(scenario="supply-chain-3p", shared_network=False, num_envs=64, num_steps=8,
               total_timesteps=64 * 8 * 2, num_minibatches=2)
    for seat in plan.names:  # each network's batch holds all of its seat's decisions
        assert np.isfinite(m[f"value_loss_{seat}"]).all()
        np.testing.assert_array_equal(m[f"dropped_{seat}"], 0.0)


@pytest.mark.parametrize("shared", [True, False])
def test_each_seats_target_is_its_own_return(shared):
    """gamma = lambda = 1: the target of every decision whose episode ends inside the rollout
    is the mover's own reward sum from there to the episode's end (the turn-based credit
    assignment over three seats: no seat is credited with another's reward)."""
    cfg = PPOConfig(game="group", scenario="supply-chain-3p", shared_network=shared,
                    num_envs=32, num_steps=24, total_timesteps=32 * 24, num_minibatches=1,
                    gamma=1.0, gae_lambda=1.0, explore_starts=0.0)
    plan = make_plan(cfg)
    runner = init_one(plan, jax.random.key(2))
    params_l = stack(plan, runner.params)
    start = (runner.env_state, runner.obs, runner.explore_round)
    _, after_look, look, traj = rollout(plan, params_l, start, jax.random.key(3))
    data = advantages_batch(plan, params_l, after_look, look, traj)
    target = np.asarray(data["target"]).reshape(24, 32)
    reward = np.asarray(traj["reward"]) * plan.scale  # (T, A, N)
    done, mover = np.asarray(traj["done"]), np.asarray(traj["ppo"]["mover"])
    decision = np.asarray(traj["ppo"]["decision"])
    checked = 0
    for n in range(32):
        for t in np.flatnonzero(decision[:, n]):
            ends = np.flatnonzero(done[t:, n])
            if not ends.size:
                continue
            end = t + ends[0]
            expected = reward[t:end + 1, mover[t, n], n].sum()
            assert target[t, n] == pytest.approx(expected, rel=1e-5, abs=1e-5), (t, n)
            checked += 1
    assert checked > 200 and len(set(mover[decision].tolist())) == 3
