"""Rules of the JAX env (docs/rules.md), hand-computed rewards, and property tests."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqx_jax.env import (
    ACCEPT,
    AGENTS,
    COUNTER,
    OBS_INDEX,
    WALK_AWAY,
    BargainingEnv,
    make_params,
)

ENV = BargainingEnv()
STEP_ENV = jax.jit(ENV.step_env)
STEP = jax.jit(ENV.step)
RESET = jax.jit(ENV.reset)


def fixed_game(v_s=5000.0, v_r=8000.0, **kw):
    return make_params(supplier_low=v_s, supplier_high=v_s, retailer_low=v_r, retailer_high=v_r,
                       **kw)


def act(action_type, price=0.0):
    return {"action_type": jnp.int32(action_type), "price": jnp.float32(price)}


def play(params, moves, key=0):
    """Apply (action_type, price) moves by the mover, same action for both agents (only the
    mover's is used). Returns the list of (state, rewards, done, info) after each step."""
    _, state = RESET(jax.random.key(key), params)
    out = []
    for a_type, price in moves:
        state, rewards, done, info = STEP_ENV(state, {a: act(a_type, price) for a in AGENTS},
                                              params)
        out.append((state, {a: float(r) for a, r in rewards.items()}, bool(done), info))
    return out


# ------------------------------------------------------------------------------------ reset
def test_reset_draws_valuations_within_priors_and_observes_only_own():
    params = make_params()
    keys = jax.random.split(jax.random.key(1), 2000)
    obs, state = jax.vmap(ENV.reset, (0, None))(keys, params)
    v = np.stack([state.supplier_value, state.retailer_value], axis=1)
    assert (v[:, 0] >= 4000).all() and (v[:, 0] <= 6000).all()
    assert (v[:, 1] >= 7000).all() and (v[:, 1] <= 9000).all()
    assert abs(v[:, 0].mean() - 5000) < 60 and abs(v[:, 1].mean() - 8000) < 60
    o_s, o_r = np.asarray(obs["supplier"]), np.asarray(obs["retailer"])
    np.testing.assert_allclose(o_s[:, OBS_INDEX["own_value"]] * 10000, v[:, 0], rtol=1e-6)
    np.testing.assert_allclose(o_r[:, OBS_INDEX["own_value"]] * 10000, v[:, 1], rtol=1e-6)
    # Nothing in the supplier's observation depends on the retailer's valuation.
    assert np.ptp(np.delete(o_s, OBS_INDEX["own_value"], axis=1), axis=0).max() == 0
    assert ENV.obs_size == o_s.shape[1] == 18


def test_fixed_valuations_and_initial_observation():
    obs, state = RESET(jax.random.key(0), fixed_game())
    assert [float(state.supplier_value), float(state.retailer_value)] == [5000.0, 8000.0]
    o = obs["supplier"]
    assert o[OBS_INDEX["has_offer"]] == 0 and o[OBS_INDEX["mask_accept"]] == 0
    assert o[OBS_INDEX["my_turn"]] == 1 and obs["retailer"][OBS_INDEX["my_turn"]] == 0
    # With fixed valuations the prior about the opponent is exact: mean = value, std = 0.
    assert o[OBS_INDEX["belief_mean"]] == pytest.approx(0.8)
    assert o[OBS_INDEX["belief_std"]] == 0


# -------------------------------------------------------------------------------- the rules
def test_counter_then_accept_seed_reward_by_hand():
    (s1, r1, d1, _), (s2, r2, d2, info) = play(fixed_game(), [(COUNTER, 7000), (ACCEPT, 0)])
    assert not d1 and r1 == {"supplier": 0.0, "retailer": 0.0}
    assert float(s1.history[0]) == 7000 and int(s1.t) == 1
    # Deal in round 2 of 10: discount (1 - 2/10)^2 = 0.64, speed bonus 5 (2 < 3).
    assert d2 and bool(info["deal"]) and float(info["price"]) == 7000
    assert r2["supplier"] == pytest.approx(2000 * 0.64 + 5)
    assert r2["retailer"] == pytest.approx(1000 * 0.64 + 5)
    assert int(info["round"]) == 2 and float(info["surplus"]) == 3000


def test_no_bonus_from_round_3_when_T_is_10():
    # Round 3 is the supplier accepting the retailer's round-2 counter; 3 < 0.3 * 10 is false.
    *_, (_, r, d, info) = play(fixed_game(), [(COUNTER, 7000), (COUNTER, 6000), (ACCEPT, 0)])
    assert d and int(info["round"]) == 3
    assert r["supplier"] == pytest.approx(1000 * 0.49)
    assert r["retailer"] == pytest.approx(2000 * 0.49)


def test_deal_in_round_T_beats_timeout():
    moves = [(COUNTER, 7000)] * 9 + [(ACCEPT, 0)]
    *_, (_, r, d, info) = play(fixed_game(), moves)
    assert d and bool(info["deal"]) and not bool(info["timeout"])
    assert r == {"supplier": 0.0, "retailer": 0.0}  # (1 - 10/10)^2 = 0 and no bonus


def test_walk_away_and_walk_away_in_round_T():
    (_, r, d, info), = play(fixed_game(), [(WALK_AWAY, 0)])
    assert d and bool(info["walk_away"]) and r == {"supplier": -10.0, "retailer": -10.0}
    *_, (_, r, d, info) = play(fixed_game(), [(COUNTER, 7000)] * 9 + [(WALK_AWAY, 0)])
    assert d and bool(info["walk_away"]) and not bool(info["timeout"])
    assert r == {"supplier": -10.0, "retailer": -10.0}


def test_timeout_after_T_counters():
    steps = play(fixed_game(max_rounds=4), [(COUNTER, 7000)] * 4)
    assert [d for _, _, d, _ in steps] == [False, False, False, True]
    _, r, _, info = steps[-1]
    assert bool(info["timeout"]) and not bool(info["deal"])
    assert r == {"supplier": -5.0, "retailer": -5.0}


def test_illegal_accept_in_round_1_is_a_counter_at_the_submitted_price():
    (s, r, d, info), = play(fixed_game(), [(ACCEPT, 6500)])
    assert not d and bool(info["illegal_accept"]) and float(s.history[0]) == 6500
    assert int(s.t) == 1 and r == {"supplier": 0.0, "retailer": 0.0}


def test_price_clipping_and_action_type_clipping():
    (s, *_), = play(fixed_game(), [(COUNTER, -100.0)])
    assert float(s.history[0]) == 0.0
    (s, *_), = play(fixed_game(), [(COUNTER, 1e12)])
    assert float(s.history[0]) == 10000.0
    (s, *_), = play(fixed_game(), [(COUNTER, float("inf"))])
    assert float(s.history[0]) == 10000.0
    (_, _, d, info), = play(fixed_game(), [(7, 0.0)])  # clipped to WALK_AWAY
    assert d and bool(info["walk_away"])
    *_, (_, _, d, info) = play(fixed_game(), [(COUNTER, 7000), (-3, 0.0)])  # clipped to ACCEPT
    assert d and bool(info["deal"])


def test_nan_price_rule():
    (s, *_), = play(fixed_game(), [(COUNTER, float("nan"))])
    assert float(s.history[0]) == 5000.0  # round 1: opens at own valuation
    *_, (s, r, _, _) = play(fixed_game(), [(COUNTER, 7000), (COUNTER, float("nan"))])
    assert float(s.history[0]) == 7000.0  # repeats the standing offer
    assert all(math.isfinite(v) for v in r.values())
    assert np.isfinite([float(s.supplier_belief_mean), float(s.retailer_belief_mean)]).all()


def test_discounted_reward_model_by_hand():
    params = fixed_game(reward_model="discounted", discount=(0.9, 0.8),
                        walk_payoff=(-1.0, -2.0), timeout_payoff=(-3.0, -4.0))
    *_, (_, r, _, _) = play(params, [(COUNTER, 7000), (COUNTER, 6000), (ACCEPT, 0)])
    assert r["supplier"] == pytest.approx(1000 * 0.9**3, rel=1e-6)
    assert r["retailer"] == pytest.approx(2000 * 0.8**3, rel=1e-6)
    (_, r, _, _), = play(params, [(WALK_AWAY, 0)])
    assert r == {"supplier": -1.0, "retailer": -2.0}
    *_, (_, r, _, _) = play(params.replace(max_rounds=2), [(COUNTER, 7000)] * 2)
    assert r == {"supplier": -3.0, "retailer": -4.0}


def test_belief_update_momentum_and_history_in_observations():
    params = make_params(retailer_low=7000.0, retailer_high=9000.0,
                         supplier_low=4000.0, supplier_high=6000.0)
    _, state = RESET(jax.random.key(3), params)
    prior_var = 2000.0**2 / 12
    offers = [9000.0, 5000.0, 8500.0, 5600.0]
    for price in offers:
        state, *_ = STEP_ENV(state, {a: act(COUNTER, price) for a in AGENTS}, params)
    obs = ENV.get_obs(state, params)
    # Retailer's belief about the supplier: prior 5000, updated by the supplier's 9000 and 8500.
    mu_r = 5000 + 0.3 * (9000 - 5000)
    mu_r = mu_r + 0.3 * (8500 - mu_r)
    mu_s = 8000 + 0.3 * (5000 - 8000)
    mu_s = mu_s + 0.3 * (5600 - mu_s)
    np.testing.assert_allclose([state.supplier_belief_mean, state.retailer_belief_mean],
                               [mu_s, mu_r], rtol=1e-6)
    np.testing.assert_allclose(np.square([state.supplier_belief_std, state.retailer_belief_std]),
                               [prior_var * 0.81] * 2, rtol=1e-5)
    o_s, o_r = obs["supplier"], obs["retailer"]
    # Supplier's turn (round 5): the opponent (retailer) moved 5000 -> 5600: momentum +0.06.
    assert float(o_s[OBS_INDEX["momentum"]]) == pytest.approx(0.06, abs=1e-6)
    # The retailer's opponent (supplier) moved 9000 -> 8500: momentum -0.05.
    assert float(o_r[OBS_INDEX["momentum"]]) == pytest.approx(-0.05, abs=1e-6)
    np.testing.assert_allclose(np.asarray(o_s[len(OBS_INDEX):]) * 10000,
                               offers[::-1], rtol=1e-6)
    assert float(o_s[OBS_INDEX["deal_zone"]]) == pytest.approx(abs(5600 - mu_s) / 1e4, rel=1e-5)
    assert float(o_s[OBS_INDEX["round"]]) == pytest.approx(0.4)
    assert float(o_s[OBS_INDEX["mask_accept"]]) == 1 and float(o_r[OBS_INDEX["mask_accept"]]) == 0


def test_auto_reset_returns_new_episode_and_terminal_info():
    params = make_params()
    obs, state = RESET(jax.random.key(0), params)
    obs, state, _, _, _ = STEP(jax.random.key(1), state, {a: act(COUNTER, 7000) for a in AGENTS},
                               params)
    old_values = np.array([state.supplier_value, state.retailer_value])
    obs, state, rewards, dones, info = STEP(
        jax.random.key(2), state, {a: act(ACCEPT, 0) for a in AGENTS}, params)
    assert bool(dones["__all__"]) and bool(dones["supplier"]) and bool(info["deal"])
    assert int(state.t) == 0 and float(obs["supplier"][OBS_INDEX["has_offer"]]) == 0
    assert not np.allclose([state.supplier_value, state.retailer_value], old_values)
    assert float(info["supplier_value"]) == pytest.approx(old_values[0])
    assert float(rewards["supplier"]) != 0


def test_game_settings_are_vmappable():
    """A batch of different games (T, reward model) in one vmapped call."""
    base = fixed_game()
    batch = jax.tree.map(lambda *x: jnp.stack(x), base.replace(max_rounds=4),
                         base.replace(max_rounds=10, reward_model=1))
    _, state = jax.vmap(ENV.reset)(jax.random.split(jax.random.key(0), 2), batch)
    both = {a: {"action_type": jnp.array([COUNTER, COUNTER]), "price": jnp.array([7000.0] * 2)}
            for a in AGENTS}
    accept = {a: {"action_type": jnp.array([ACCEPT, ACCEPT]), "price": jnp.zeros(2)}
              for a in AGENTS}
    step = jax.vmap(ENV.step_env)
    state, *_ = step(state, both, batch)
    _, rewards, done, _ = step(state, accept, batch)
    assert done.tolist() == [True, True]
    # T = 4: no bonus in round 2 (2 < 0.3 * 4 is false).
    assert float(rewards["supplier"][0]) == pytest.approx(2000 * (1 - 2 / 4) ** 2)
    assert float(rewards["supplier"][1]) == pytest.approx(2000 * 0.95**2, rel=1e-6)


def test_make_params_validation_names_field_and_range():
    with pytest.raises(ValueError, match=r"max_rounds must be an integer in \[1, 1000\]"):
        make_params(max_rounds=0)
    with pytest.raises(ValueError, match=r"supplier_high must be in \[5000"):
        make_params(supplier_low=5000.0, supplier_high=4000.0)
    with pytest.raises(ValueError, match=r"discount\[retailer\] must be in \(0, 1\], got 1.5"):
        make_params(discount=(0.9, 1.5))
    with pytest.raises(ValueError, match="reward_model must be one of"):
        make_params(reward_model="nash")
    with pytest.raises(ValueError, match="unknown game setting"):
        make_params(rounds=3)
    with pytest.raises(ValueError, match=r"retailer_high must be in"):
        make_params(retailer_high=float("nan"))


# ------------------------------------------------------------------------ property tests
action_st = st.tuples(st.integers(-1, 3), st.one_of(
    st.floats(-1e5, 1e5, allow_nan=False), st.just(float("nan")), st.just(float("inf"))))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), moves=st.lists(action_st, min_size=1, max_size=14),
       rounds=st.integers(1, 12), model=st.sampled_from(["seed", "discounted"]))
def test_random_action_sequences_respect_invariants(seed, moves, rounds, model):
    params = make_params(max_rounds=rounds, reward_model=model)
    _, state = RESET(jax.random.key(seed), params)
    ended_at = None
    for i, (a_type, price) in enumerate(moves):
        state, rewards, done, info = STEP_ENV(
            state, {a: act(a_type, price) for a in AGENTS}, params)
        # Prices are never negative; -1 marks "no offer made" (e.g. a round-1 walk-away).
        assert all(float(h) >= 0 or float(h) == -1 for h in state.history)
        assert np.isfinite(np.asarray(state.history)).all()
        assert all(np.isfinite(float(r)) for r in rewards.values())
        assert np.isfinite([state.supplier_belief_mean, state.retailer_belief_mean]).all()
        if not bool(done):
            assert all(float(r) == 0 for r in rewards.values())
        if bool(done):
            ended_at = i + 1
            break
    # An episode never outlives T rounds.
    assert ended_at is not None or len(moves) < rounds
    if ended_at is not None:
        assert ended_at <= rounds


_PARAMS = make_params()
_BATCH_STEP = jax.jit(jax.vmap(lambda k, s, a: ENV.step(k, s, a, _PARAMS)))
_BATCH_RESET = jax.jit(jax.vmap(lambda k: ENV.reset(k, _PARAMS)))
_SINGLE_STEP = jax.jit(lambda k, s, a: ENV.step(k, s, a, _PARAMS))


def _trajectory(keys, step_keys, types, prices):
    """Play fixed moves in a batch of episodes; ``step_keys[i]`` are the keys of step i."""
    obs, state = _BATCH_RESET(keys)
    traj = []
    for i, (a_type, p) in enumerate(zip(types, prices, strict=True)):
        acts = {a: {"action_type": jnp.full(keys.shape, a_type, jnp.int32),
                    "price": jnp.full(keys.shape, p, jnp.float32)} for a in AGENTS}
        obs, state, rewards, dones, _ = _BATCH_STEP(step_keys[i], state, acts)
        traj.append((np.asarray(obs["supplier"]), np.asarray(obs["retailer"]),
                     np.asarray(rewards["supplier"]), np.asarray(rewards["retailer"]),
                     np.asarray(dones["__all__"])))
    return traj


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1),
       types=st.lists(st.integers(0, 2), min_size=12, max_size=12),
       prices=st.lists(st.floats(0, 10000), min_size=12, max_size=12))
def test_vmap_and_jit_equal_single_episode_and_same_key_same_trajectory(seed, types, prices):
    n = 3
    keys = jax.random.split(jax.random.key(seed), n)
    step_keys = jax.random.split(jax.random.key(seed + 1), (len(types), n))
    batched = _trajectory(keys, step_keys, types, prices)
    again = _trajectory(keys, step_keys, types, prices)
    for x, y in zip(batched, again, strict=True):  # same key, same trajectory
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    # Each episode of the batch, played alone with its own keys, gives the same trajectory.
    for lane in range(n):
        alone = _trajectory(keys[lane:lane + 1], step_keys[:, lane:lane + 1], types, prices)
        for x, y in zip(batched, alone, strict=True):
            for u, v in zip(x, y, strict=True):
                np.testing.assert_allclose(u[lane], v[0], rtol=1e-6, atol=1e-6)


def test_jitted_step_equals_eager_step():
    """The same episode under jit and op-by-op (no jit) agree."""
    params = make_params()
    moves = [(COUNTER, 9000.0), (COUNTER, 5000.0), (COUNTER, 8000.0), (COUNTER, 6000.0),
             (ACCEPT, 0.0), (COUNTER, 7000.0), (WALK_AWAY, 0.0)]
    _, s_jit = RESET(jax.random.key(7), params)
    with jax.disable_jit():
        _, s_eager = ENV.reset(jax.random.key(7), params)
    for i, (a_type, price) in enumerate(moves):
        acts = {a: act(a_type, price) for a in AGENTS}
        key = jax.random.key(100 + i)
        out_jit = _SINGLE_STEP(key, s_jit, acts)
        with jax.disable_jit():
            out_eager = ENV.step(key, s_eager, acts, params)
        for u, v in zip(jax.tree.leaves(out_jit), jax.tree.leaves(out_eager), strict=True):
            np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(v, np.float64),
                                       rtol=1e-5, atol=1e-4)
        s_jit, s_eager = out_jit[1], out_eager[1]


def test_100_episodes_of_random_agents():
    from eqx_jax.simulate import play as play_negotiators

    rec = play_negotiators(jax.random.key(0), make_params(), "random", "random", 100)
    assert rec["deal"].shape == (100,)
    assert (rec["round"] >= 1).all() and (rec["round"] <= 10).all()
    assert (rec["deal"] | rec["walk_away"] | rec["timeout"]).all()
    assert (rec["price"] >= 0).all()
    assert np.isfinite(rec["supplier_reward"]).all() and np.isfinite(rec["retailer_reward"]).all()
