"""Tests of the plain-Python reference env, and a step-by-step differential test against JAX."""

from __future__ import annotations

import math
import random

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from pettingzoo.test import parallel_api_test

from baselines.reference_env import (
    ACCEPT,
    AGENTS,
    COUNTER,
    OBS_FIELDS,
    WALK_AWAY,
    ReferenceBargainingEnv,
    time_dependent_action,
)
from eqx_jax.env import BargainingEnv, make_params

IDX = {name: i for i, name in enumerate(OBS_FIELDS)}
V_S, V_R = 5000.0, 8000.0


def play(env, moves, v_s=V_S, v_r=V_R):
    """Reset with fixed valuations and apply the mover's (action_type, price) moves in order.

    Both agents submit the same action (only the mover's is applied). Returns the outputs of the
    last step.
    """
    env.reset(options={"supplier_value": v_s, "retailer_value": v_r})
    out = None
    for a_type, price in moves:
        assert env.agents, "the episode ended before the last move"
        out = env.step({a: {"action_type": a_type, "price": price} for a in env.agents})
    return out


def counters(n, start=6000.0):
    return [(COUNTER, start + 10.0 * i) for i in range(n)]


# --------------------------------------------------------------------------------- PettingZoo API
@pytest.mark.parametrize(
    "kwargs", [{}, {"max_rounds": 1, "num_history": 1}, {"reward_model": "discounted"}]
)
def test_parallel_api(kwargs):
    parallel_api_test(ReferenceBargainingEnv(**kwargs), num_cycles=1000)


def test_spaces_and_final_step_convention():
    env = ReferenceBargainingEnv(num_history=3)
    obs, infos = env.reset(seed=1)
    assert set(obs) == set(infos) == set(AGENTS) == set(env.agents)
    space = env.observation_space("supplier")
    assert space.shape == (len(OBS_FIELDS) + 3,) and space.dtype == np.float32
    assert space.low[IDX["momentum"]] == -1.0
    assert env.action_space("retailer").contains(
        {"action_type": 1, "price": np.array([3.0], np.float32)}
    )
    for o in obs.values():
        assert o.dtype == np.float32 and space.contains(o)
    obs, rew, term, trunc, info = env.step(
        {a: {"action_type": WALK_AWAY, "price": 0.0} for a in AGENTS}
    )
    assert term == {"supplier": True, "retailer": True}
    assert trunc == {"supplier": False, "retailer": False}
    assert env.agents == [] and set(obs) == set(rew) == set(info) == set(AGENTS)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({a: {"action_type": COUNTER, "price": 1.0} for a in AGENTS})


def test_seeded_reset_is_reproducible_and_within_priors():
    env = ReferenceBargainingEnv()
    vals = []
    for _ in range(2):
        env.reset(seed=123)
        vals.append(env._values)
    assert vals[0] == vals[1]
    for seed in range(50):
        env.reset(seed=seed)
        v_s, v_r = env._values
        assert 4000.0 <= v_s <= 6000.0 and 7000.0 <= v_r <= 9000.0
    fixed = ReferenceBargainingEnv(supplier_low=4500.0, supplier_high=4500.0)
    fixed.reset(seed=3)
    assert fixed._values[0] == 4500.0


# ------------------------------------------------------------------------- hand-computed rewards
def test_deal_in_round_2_with_speed_bonus():
    # D(2) = (1 - 2/10)^2 = 0.64, B(2) = 5 since 2 < 0.3 * 10.
    _, rew, term, trunc, info = play(ReferenceBargainingEnv(), [(COUNTER, 6000.0), (ACCEPT, 0.0)])
    assert rew["supplier"] == pytest.approx(1000 * 0.64 + 5)
    assert rew["retailer"] == pytest.approx(2000 * 0.64 + 5)
    assert term["supplier"] and not trunc["supplier"]
    i = info["supplier"]
    assert i["deal"] and not i["timeout"] and i["price"] == 6000.0 and i["round"] == 2
    assert i["surplus"] == 3000.0
    assert i["nash_distance"] == pytest.approx(500 / 6500)
    assert i["pareto_score"] == pytest.approx(1 - 500 / 1500)
    assert i["negotiation_efficiency"] == 1.0  # min(1, 1 - 0.2 + 0.2)
    assert i["supplier_share"] == pytest.approx(1 / 3)
    assert i["retailer_share"] == pytest.approx(2 / 3)


def test_deal_in_round_3_has_no_bonus():
    # 3 < 0.3 * 10 is false: D(3) = 0.49, no bonus.
    _, rew, *_ = play(ReferenceBargainingEnv(), [*counters(2), (ACCEPT, 0.0)])
    assert rew["supplier"] == pytest.approx((6010 - 5000) * 0.49)
    assert rew["retailer"] == pytest.approx((8000 - 6010) * 0.49)


def test_bonus_boundary_uses_a_margin():
    # 0.3 * 50 is 15.000001 in float32: round 15 of 50 gets no bonus, round 14 does.
    env = ReferenceBargainingEnv(max_rounds=50, reward_model="seed")
    _, rew, *_ = play(env, [*counters(14), (ACCEPT, 0.0)])
    assert rew["supplier"] == pytest.approx((6130 - 5000) * (1 - 15 / 50) ** 2)
    _, rew, *_ = play(env, [*counters(13), (ACCEPT, 0.0)])
    assert rew["retailer"] == pytest.approx((8000 - 6120) * (1 - 14 / 50) ** 2 + 5)


def test_deal_in_last_round_pays_zero_and_beats_timeout():
    _, rew, term, trunc, info = play(ReferenceBargainingEnv(), [*counters(9), (ACCEPT, 0.0)])
    assert rew == {"supplier": 0.0, "retailer": 0.0}
    assert term["retailer"] and not trunc["retailer"]
    assert info["retailer"]["deal"] and not info["retailer"]["timeout"]
    assert info["retailer"]["round"] == 10


def test_walk_in_last_round_beats_timeout():
    _, rew, term, trunc, info = play(ReferenceBargainingEnv(), [*counters(9), (WALK_AWAY, 0.0)])
    assert rew == {"supplier": -10.0, "retailer": -10.0}
    assert term["supplier"] and not trunc["supplier"] and not info["supplier"]["timeout"]


def test_timeout():
    env = ReferenceBargainingEnv()
    _, rew, term, trunc, info = play(env, counters(10))
    assert rew == {"supplier": -5.0, "retailer": -5.0}
    assert trunc == {"supplier": True, "retailer": True} and not term["supplier"]
    assert info["supplier"]["timeout"] and not info["supplier"]["deal"]
    assert info["supplier"]["price"] == 0.0 and info["supplier"]["negotiation_efficiency"] == 0.0
    assert env.agents == []


def test_walk_away():
    _, rew, term, _, info = play(ReferenceBargainingEnv(), [(COUNTER, 6000.0), (WALK_AWAY, 1.0)])
    assert rew == {"supplier": -10.0, "retailer": -10.0}
    assert term["retailer"] and info["retailer"]["walk_away"]


def test_discounted_model_and_custom_payoffs():
    env = ReferenceBargainingEnv(reward_model="discounted", discount=(0.9, 0.8),
                                 walk_payoff=(-1.0, -2.0), timeout_payoff=(-3.0, -4.0))
    # Supplier offers 6000, retailer counters 6500, supplier accepts 6500 in round 3.
    _, rew, *_ = play(env, [(COUNTER, 6000.0), (COUNTER, 6500.0), (ACCEPT, 0.0)])
    assert rew["supplier"] == pytest.approx(1500 * 0.9**3)
    assert rew["retailer"] == pytest.approx(1500 * 0.8**3)
    _, rew, *_ = play(env, [(WALK_AWAY, 0.0)])
    assert rew == {"supplier": -1.0, "retailer": -2.0}
    _, rew, *_ = play(env, counters(10))
    assert rew == {"supplier": -3.0, "retailer": -4.0}
    assert ReferenceBargainingEnv(reward_model=1).reward_model == "discounted"


# ------------------------------------------------------------------------------------ rule edges
def test_illegal_accept_in_round_1_is_a_counter_at_the_submitted_price():
    env = ReferenceBargainingEnv()
    obs, rew, term, trunc, info = play(env, [(ACCEPT, 7000.0)])
    assert info["supplier"]["illegal_accept"] and not info["supplier"]["deal"]
    assert not term["supplier"] and env.agents == list(AGENTS)
    assert obs["retailer"][IDX["standing_offer"]] == pytest.approx(0.7)
    assert obs["retailer"][IDX["mask_accept"]] == 1.0
    # An illegal accept in the only round of a 1-round game is a counter, hence a timeout.
    _, rew, _, trunc, info = play(ReferenceBargainingEnv(max_rounds=1), [(-4, 7000.0)])
    assert info["supplier"]["illegal_accept"] and trunc["supplier"] and rew["supplier"] == -5.0


def test_nan_inf_prices_and_action_type_clipping():
    env = ReferenceBargainingEnv()
    obs, *_ = play(env, [(COUNTER, math.nan)])  # round 1: opens at the supplier's own value
    assert obs["retailer"][IDX["standing_offer"]] == pytest.approx(0.5)
    obs, *_ = play(env, [(COUNTER, 6000.0), (COUNTER, float("nan"))])  # repeats the standing offer
    assert obs["supplier"][IDX["standing_offer"]] == pytest.approx(0.6)
    obs, *_ = play(env, [(COUNTER, math.inf), (COUNTER, -math.inf)])
    assert obs["supplier"][IDX["standing_offer"]] == 0.0
    assert obs["supplier"][len(OBS_FIELDS) + 1] == 1.0  # the clipped +inf, i.e. max_price
    obs, *_ = play(env, [(COUNTER, 1e12), (COUNTER, -5.0)])
    assert obs["supplier"][len(OBS_FIELDS):].tolist() == [0.0, 1.0, 0.0, 0.0]
    # A NaN-priced ACCEPT / WALK_AWAY never touches the price: the deal is at the standing offer.
    _, rew, _, _, info = play(env, [(COUNTER, 6000.0), (7, math.nan)])
    assert info["supplier"]["walk_away"] and rew["supplier"] == -10.0
    _, rew, _, _, info = play(env, [(COUNTER, 6000.0), (-1, math.nan)])
    assert info["supplier"]["deal"] and info["supplier"]["price"] == 6000.0
    assert all(math.isfinite(r) for r in rew.values())


def test_price_as_length_1_array_and_numpy_scalars():
    env = ReferenceBargainingEnv()
    env.reset(options={"supplier_value": V_S, "retailer_value": V_R})
    obs, *_ = env.step({"supplier": {"action_type": np.int64(1),
                                     "price": np.array([6000.0], np.float32)}})
    assert obs["retailer"][IDX["standing_offer"]] == pytest.approx(0.6)
    obs, *_ = env.step({"retailer": {"action_type": np.array([1]), "price": np.float64(6500.0)},
                        "supplier": {"action_type": 2, "price": 0.0}})  # ignored: not its turn
    assert obs["supplier"][IDX["standing_offer"]] == pytest.approx(0.65)
    with pytest.raises(KeyError, match="supplier"):
        env.step({"retailer": {"action_type": 1, "price": 1.0}})


def test_belief_momentum_and_history_fields():
    env = ReferenceBargainingEnv(num_history=3)
    obs, *_ = play(env, [(COUNTER, 6000.0), (COUNTER, 6500.0), (COUNTER, 6200.0),
                         (COUNTER, 6400.0)])
    o = obs["supplier"]  # supplier's turn in round 5; it has seen the retailer's 6500 and 6400
    mean = 8000.0 + 0.3 * (6500.0 - 8000.0)  # prior: the retailer prior mean
    mean += 0.3 * (6400.0 - mean)
    assert o[IDX["belief_mean"]] == pytest.approx(mean / 1e4)
    assert o[IDX["belief_std"]] == pytest.approx(math.sqrt(2000.0**2 / 12 * 0.9**2) / 1e4)
    assert o[IDX["deal_zone"]] == pytest.approx(abs(6400.0 - mean) / 1e4)
    assert o[IDX["momentum"]] == pytest.approx(-0.01)
    assert o[IDX["my_turn"]] == 1.0 and o[IDX["mask_accept"]] == 1.0
    assert o[IDX["round"]] == pytest.approx(0.4) and o[IDX["time_remaining"]] == pytest.approx(0.6)
    assert o[len(OBS_FIELDS):] == pytest.approx([0.64, 0.62, 0.65])
    r = obs["retailer"]
    assert r[IDX["momentum"]] == pytest.approx(0.02) and r[IDX["mask_accept"]] == 0.0
    assert r[IDX["role"]] == 1.0 and r[IDX["own_value"]] == pytest.approx(0.8)


# ---------------------------------------------------------------------------- random agents
def test_random_agents_100_episodes():
    env = ReferenceBargainingEnv()
    rng = random.Random(0)
    space = env.observation_space("supplier")
    ends = {"deal": 0, "walk_away": 0, "timeout": 0}
    for episode in range(100):
        obs, _ = env.reset(seed=episode)
        while env.agents:
            actions = {}
            for a in env.agents:
                mask = obs[a][IDX["mask_accept"]: IDX["mask_walk"] + 1]
                legal = [k for k in range(3) if mask[k] > 0.5]
                # Mostly counters, so that episodes last a few rounds.
                a_type = COUNTER if rng.random() < 0.7 else rng.choice(legal)
                actions[a] = {"action_type": a_type,
                              "price": np.array([rng.uniform(0, 1e4)], np.float32)}
            obs, rew, term, trunc, info = env.step(actions)
            for a in AGENTS:
                assert space.contains(obs[a])
                assert min(obs[a][IDX["standing_offer"]], *obs[a][len(OBS_FIELDS):]) >= 0.0
                assert math.isfinite(rew[a]) and info[a]["price"] >= 0.0
                assert not info[a]["illegal_accept"]
        ends.update({k: ends[k] + info["supplier"][k] for k in ends})
    assert sum(ends.values()) == 100 and all(ends.values())


# ---------------------------------------------------------------- time-dependent negotiator
def test_time_dependent_action():
    env = ReferenceBargainingEnv()
    obs, _ = env.reset(options={"supplier_value": V_S, "retailer_value": V_R})
    # Round 1, linear (exponent 1): tau = 0.1, supplier target 10000 - 0.1 * 5000 = 9500.
    act = time_dependent_action(obs["supplier"], 1e4, 10, 1.0)
    assert act["action_type"] == COUNTER and act["price"][0] == pytest.approx(9500.0)
    assert env.action_space("supplier").contains(act)
    obs, *_ = env.step({"supplier": act})
    # Round 2: retailer target 0.2 ** 0.5 * 8000; it counters (9500 is above its target).
    act = time_dependent_action(obs["retailer"], 1e4, 10, 2.0)
    assert act["action_type"] == COUNTER
    assert act["price"][0] == pytest.approx(0.2**0.5 * 8000, rel=1e-6)
    # A standing offer at least as good as the target is accepted.
    obs, *_ = play(env, [(COUNTER, 7000.0)])  # round 2: targets ~0 (e = 1e-9), ~8000 (e = 1e9)
    assert time_dependent_action(obs["retailer"], 1e4, 10, 1e-9)["action_type"] == COUNTER
    assert time_dependent_action(obs["retailer"], 1e4, 10, 1e9)["action_type"] == ACCEPT
    # Both sides using it always end the episode with a deal or a timeout, never a walk-away.
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        while env.agents:
            obs, _, _, _, info = env.step(
                {a: time_dependent_action(obs[a], 1e4, 10, 1.0) for a in env.agents})
        assert not info["supplier"]["walk_away"]


# --------------------------------------------------------------------- differential vs JAX
# Prices and valuations fed to both envs are float32 numbers, so the only differences left are
# float32 (JAX) vs float64 (reference) arithmetic: tolerances are relative to the price scale.
OBS_TOL = {"rtol": 1e-5, "atol": 1e-5}
_JAX_FNS: dict[int, tuple] = {}


def _jax_fns(num_history: int):
    """jit-ed (reset with forced valuations, step_env + get_obs), compiled once per num_history."""
    if num_history not in _JAX_FNS:
        env = BargainingEnv(num_history)

        def reset(key, params, v_s, v_r):
            _, state = env.reset(key, params)
            state = state.replace(supplier_value=v_s, retailer_value=v_r)
            return env.get_obs(state, params), state

        def step(state, actions, params):
            state, rewards, done, info = env.step_env(state, actions, params)
            return env.get_obs(state, params), state, rewards, done, info

        _JAX_FNS[num_history] = (jax.jit(reset), jax.jit(step))
    return _JAX_FNS[num_history]


def f32(lo, hi):
    return st.floats(lo, hi, width=32)


# Action types, out-of-range ones included (clipped to 0 ACCEPT / 2 WALK_AWAY); COUNTER-heavy so
# that deals, walk-aways and timeouts in every round all occur.
_TYPES_MIXED = st.sampled_from([1, 0, 1, 1, 0, 1, -1, 2, 1, 3, -5, 7])
_TYPES_MOSTLY_COUNTER = st.sampled_from([1] * 12 + [0, 0, -2, 2, 4])


@st.composite
def games(draw):
    max_rounds = draw(st.integers(1, 12))
    max_price = draw(st.sampled_from([10000.0, 1000.0, 20000.0, 137.5]))
    kw = {"max_rounds": max_rounds, "max_price": max_price}
    values = []
    for side in ("supplier", "retailer"):
        lo = draw(f32(0.0, max_price))
        hi = lo if draw(st.booleans()) else draw(f32(lo, max_price))  # fixed or random valuation
        kw[f"{side}_low"], kw[f"{side}_high"] = lo, hi
        values.append(draw(f32(lo, hi)))
    bonus_fraction = draw(st.one_of(st.sampled_from([0.0, 0.25, 0.3, 0.5, 1.0]), f32(0.0, 1.0)))
    # Skip the measure-zero settings where the bonus test t + 0.001 < bonus_fraction * T flips
    # between float32 (JAX) and float64 (reference) rounding.
    t32, bf32, eps32 = np.float32(max_rounds), np.float32(bonus_fraction), np.float32(1e-3)
    assume(all((t + 1e-3 < bonus_fraction * max_rounds) == (np.float32(t) + eps32 < bf32 * t32)
               for t in range(1, max_rounds + 1)))
    kw.update(
        reward_model=draw(st.sampled_from([0, 1])),
        speed_bonus=draw(f32(-20.0, 20.0)),
        bonus_fraction=bonus_fraction,
        discount=(draw(f32(0.0625, 1.0)), draw(f32(0.0625, 1.0))),
        walk_payoff=(draw(f32(-100.0, 100.0)), draw(f32(-100.0, 100.0))),
        timeout_payoff=(draw(f32(-100.0, 100.0)), draw(f32(-100.0, 100.0))),
        belief_alpha=draw(f32(0.0, 1.0)),
        belief_beta=draw(f32(0.0, 1.0)),
        # who offers (both; only the supplier; only the retailer) and the retailer's prior (the
        # values are fixed at reset; a prior still sets the supplier's initial belief)
        proposer=draw(st.sampled_from([0, 0, 1, 2])),
        retailer_prior=draw(st.sampled_from([0, 1])),
        retailer_high_prob=draw(f32(0.0, 1.0)),
    )
    num_history = draw(st.sampled_from([1, 4, 6]))
    price = st.one_of(
        f32(0.0, max_price),
        f32(-3 * max_price, 3 * max_price),
        st.sampled_from([math.nan, math.nan, math.inf, -math.inf, 0.0, max_price, 1e30, -1e30]),
    )
    a_type = draw(st.sampled_from([_TYPES_MIXED, _TYPES_MOSTLY_COUNTER]))
    moves = draw(st.lists(st.tuples(a_type, price, a_type, price),
                          min_size=max_rounds, max_size=max_rounds))
    return kw, num_history, tuple(values), moves


def _assert_obs_equal(ref_obs, jax_obs, where, skip=()):
    names = list(OBS_FIELDS) + [f"history[{j}]" for j in range(len(ref_obs) - len(OBS_FIELDS))]
    jax_obs = np.asarray(jax_obs)
    bad = [
        f"{names[i]}: reference {ref_obs[i]!r}, jax {jax_obs[i]!r}"
        for i in range(len(names))
        if names[i] not in skip
        and not np.isclose(ref_obs[i], jax_obs[i], rtol=OBS_TOL["rtol"], atol=OBS_TOL["atol"])
    ]
    assert not bad, f"observation mismatch {where}: " + "; ".join(bad)


def _moves(*mover_moves):
    """Moves where both agents submit the mover's (action_type, price)."""
    return [(a, p, a, p) for a, p in mover_moves]


NAN = math.nan


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(games())
# Hand-picked cases, always run: the NaN rule in round 1 (own valuation) and later (standing
# offer); a deal exactly at t = bonus_fraction * T (no bonus); a deal / walk-away in round T; an
# illegal accept with a NaN price; the discounted model.
@example(({}, 4, (5000.0, 8000.0), _moves((COUNTER, NAN), (COUNTER, NAN), (ACCEPT, NAN))))
@example(({"retailer_low": 5500.0}, 4, (4500.0, 7500.0),
          _moves((ACCEPT, NAN), (COUNTER, 7000.0), (COUNTER, NAN), (ACCEPT, 1.0))))
@example(({"max_rounds": 4, "bonus_fraction": 0.5}, 1, (4000.0, 9000.0),
          _moves((COUNTER, 6000.0), (ACCEPT, 0.0))))
@example(({"max_rounds": 3}, 4, (4000.0, 9000.0),
          _moves((COUNTER, 6000.0), (COUNTER, 6500.0), (ACCEPT, 0.0))))
@example(({"max_rounds": 3, "walk_payoff": (-1.0, -2.0)}, 4, (4000.0, 9000.0),
          _moves((COUNTER, 6000.0), (COUNTER, 6500.0), (WALK_AWAY, 0.0))))
@example(({"max_rounds": 12, "reward_model": 1, "discount": (0.9, 0.8)}, 6, (4000.0, 9000.0),
          _moves(*[(COUNTER, 6000.0 + 37.0 * i) for i in range(11)], (ACCEPT, 0.0))))
@example(({"proposer": 1, "reward_model": 1, "retailer_prior": 1, "retailer_high_prob": 0.3,
            "max_rounds": 8}, 4, (5000.0, 9000.0),
          _moves((COUNTER, 8000.0), (COUNTER, 1.0), (ACCEPT, 0.0), (COUNTER, NAN),
                 (COUNTER, 7000.0), (COUNTER, 0.0), (COUNTER, 6500.0), (ACCEPT, 0.0))))
@example(({"proposer": 2, "max_rounds": 5}, 4, (5000.0, 9000.0),
          _moves((COUNTER, 9000.0), (COUNTER, 6000.0), (COUNTER, 1.0), (COUNTER, 6200.0),
                 (ACCEPT, 0.0))))
def test_differential_against_jax(game):
    kw, num_history, (v_s, v_r), moves = game
    params = make_params(**kw)
    jax_reset, jax_step = _jax_fns(num_history)
    ref = ReferenceBargainingEnv(**kw, num_history=num_history)
    max_price = params.max_price
    # float32 rounding of gains x discount is at worst ~2e-7 x max_price (2e-3 at 10000).
    price_tol = {"rtol": 1e-5, "atol": 3e-7 * max_price}

    ref_obs, _ = ref.reset(options={"supplier_value": v_s, "retailer_value": v_r})
    jax_obs, state = jax_reset(jax.random.PRNGKey(0), params, np.float32(v_s), np.float32(v_r))
    for a in AGENTS:
        _assert_obs_equal(ref_obs[a], jax_obs[a], f"at reset ({a})")

    for rnd, (s_type, s_price, r_type, r_price) in enumerate(moves, start=1):
        where = f"after round {rnd} (settings {kw}, values {(v_s, v_r)})"
        acts = {"supplier": (s_type, s_price), "retailer": (r_type, r_price)}
        jax_actions = {a: {"action_type": np.int32(t), "price": np.float32(p)}
                       for a, (t, p) in acts.items()}
        ref_actions = {a: {"action_type": t, "price": p} for a, (t, p) in acts.items()}
        jax_obs, state, jax_rew, jax_done, jax_info = jax.device_get(
            jax_step(state, jax_actions, params))
        ref_obs, ref_rew, term, trunc, ref_info = ref.step(ref_actions)

        info = ref_info["supplier"]
        assert ref_info["retailer"] == info
        assert set(info) == set(jax_info), f"info keys differ {where}"
        for key in ("done", "deal", "walk_away", "timeout", "illegal_accept", "round"):
            assert info[key] == jax_info[key].item(), f"info[{key!r}] differs {where}"
        for key in ("price", "surplus", "supplier_value", "retailer_value"):
            assert np.isclose(info[key], jax_info[key], **price_tol), \
                f"info[{key!r}]: reference {info[key]}, jax {jax_info[key]} {where}"
        for key in set(info) - {"done", "deal", "walk_away", "timeout", "illegal_accept",
                                "round", "price", "surplus", "supplier_value", "retailer_value"}:
            assert np.isclose(info[key], jax_info[key], rtol=1e-5, atol=1e-5), \
                f"info[{key!r}]: reference {info[key]}, jax {jax_info[key]} {where}"

        done = bool(jax_done)
        for a in AGENTS:
            assert term[a] == (info["deal"] or info["walk_away"]) and trunc[a] == info["timeout"]
            assert (term[a] or trunc[a]) == done, f"done flags differ {where}"
            assert np.isclose(ref_rew[a], jax_rew[a], **price_tol), \
                f"reward[{a}]: reference {ref_rew[a]}, jax {jax_rew[a]} {where}"
            _assert_obs_equal(ref_obs[a], jax_obs[a], f"({a}) {where}")
        assert (ref.agents == []) == done
        if done:
            end = next(k for k in ("deal", "walk_away", "timeout") if info[k])
            event(f"episode ends with {end}" + (" (illegal accept)" if info["illegal_accept"]
                                                else ""))
            event(f"episode ends in the last round: {rnd == params.max_rounds}")
            break
    assert ref.agents == [], "the episode must end by round max_rounds"


# Terminal observations after a deal / walk-away: BargainingEnv.step never returns them (it
# auto-resets) but step_env + get_obs do, and the reference env returns them (no auto-reset).
def _jax_terminal_obs(moves):
    jax_reset, jax_step = _jax_fns(4)
    params = make_params()
    _, state = jax_reset(jax.random.PRNGKey(0), params, np.float32(V_S), np.float32(V_R))
    for a_type, price in moves:
        acts = {a: {"action_type": np.int32(a_type), "price": np.float32(price)} for a in AGENTS}
        obs, state, _, done, _ = jax_step(state, acts, params)
    assert bool(done)
    return {a: np.asarray(o) for a, o in obs.items()}


def test_terminal_obs_after_walk_in_round_1_shows_no_offer():
    # docs/rules.md: "after a round-1 walk-away, the final observation still shows no standing
    # offer". Checked on both implementations.
    obs = _jax_terminal_obs([(WALK_AWAY, 0.0)])
    ref_obs, *_ = play(ReferenceBargainingEnv(), [(WALK_AWAY, 0.0)])
    for a in AGENTS:
        for field in ("has_offer", "standing_offer", "deal_zone", "mask_accept"):
            assert ref_obs[a][IDX[field]] == 0.0, f"reference {field} ({a})"
            assert obs[a][IDX[field]] == 0.0, f"eqx_jax/env.py {field} ({a}) after a round-1 walk"
        _assert_obs_equal(ref_obs[a], obs[a], f"after a round-1 walk-away ({a})")


# Regression: get_obs once picked the opponent's offers by the parity of t, assuming every round
# so far was a COUNTER, which is false on the step that ends with an ACCEPT or a WALK_AWAY.
def test_jax_terminal_obs_momentum_after_deal_is_the_opponents():
    moves = [(COUNTER, 6000.0), (COUNTER, 6500.0), (COUNTER, 6200.0), (COUNTER, 6400.0),
             (ACCEPT, 0.0)]
    obs = _jax_terminal_obs(moves)
    ref_obs, *_ = play(ReferenceBargainingEnv(), moves)
    expected = {"supplier": (6400.0 - 6500.0) / 1e4, "retailer": (6200.0 - 6000.0) / 1e4}
    for a in AGENTS:
        got = obs[a][IDX["momentum"]]
        assert got == pytest.approx(expected[a]), (
            f"eqx_jax/env.py get_obs after offers 6000, 6500, 6200, 6400 and an ACCEPT in round "
            f"5 ({a}): momentum = {got}, expected the opponent's last offer minus its previous "
            f"offer / max_price = {expected[a]} (got the agent's own offers' difference)")
        _assert_obs_equal(ref_obs[a], obs[a], f"after a deal in round 5 ({a})")
