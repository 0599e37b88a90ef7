"""The price-quantity game's rules (docs/games.md), by hand-computed cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.games.price_quantity import (
    PQ_OBS_INDEX,
    PriceQuantityEnv,
    efficient_quantity,
    make_pq_params,
    pq_params_to_dict,
)

ACCEPT, COUNTER, WALK = 0, 1, 2
FIXED = {"cost_low": 50, "cost_high": 50, "demand_low": 160, "demand_high": 160}


def _play(moves, **settings):
    """Play ``moves`` [(type, price, quantity)] from a reset; returns the final step's
    (rewards, done, info) and every step's observations."""
    env = PriceQuantityEnv(num_history=2)
    params = make_pq_params(**{**FIXED, **settings})
    _, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step_env)
    out, seen = None, []
    for a_type, p, q in moves:
        act = env.make_action(jnp.int32(a_type), jnp.array([p, q], jnp.float32))
        state, rewards, done, info = step(state, {a: act for a in env.agents}, params)
        seen.append(env.get_obs(state, params))
        out = ({k: float(v) for k, v in rewards.items()}, bool(done), info)
    return out, seen


def test_deal_in_round_two_pays_gains_times_the_seed_discount_plus_bonus():
    (rew, done, info), _ = _play([(COUNTER, 100.0, 110.0), (ACCEPT, 0.0, 0.0)])
    assert done and bool(info["deal"]) and int(info["round"]) == 2
    d = (1 - 2 / 10) ** 2
    g_s = (100 - 50) * 110  # 5500
    g_r = 160 * 110 - 0.5 * 110**2 - 100 * 110  # 17600 - 6050 - 11000 = 550
    assert rew["supplier"] == pytest.approx(g_s * d + 5.0, rel=1e-6)
    assert rew["retailer"] == pytest.approx(g_r * d + 5.0, rel=1e-5)
    assert float(info["quantity"]) == 110.0 and float(info["price"]) == 100.0
    assert float(info["efficiency"]) == pytest.approx(1.0)  # q* = 110
    assert float(info["supplier_share"]) == pytest.approx(5500 / 6050, rel=1e-6)


def test_discounted_model_uses_each_agents_factor():
    (rew, _, _), _ = _play([(COUNTER, 80.0, 50.0), (COUNTER, 70.0, 60.0), (ACCEPT, 0, 0)],
                           reward_model="discounted", discount=(0.9, 0.8))
    g_s = (70 - 50) * 60
    g_r = 160 * 60 - 0.5 * 3600 - 70 * 60
    assert rew["supplier"] == pytest.approx(g_s * 0.9**3, rel=1e-5)
    assert rew["retailer"] == pytest.approx(g_r * 0.8**3, rel=1e-5)


def test_walk_timeout_illegal_accept_and_clipping():
    (rew, done, info), _ = _play([(COUNTER, 90, 10), (WALK, 0, 0)])
    assert done and bool(info["walk_away"]) and rew == {"supplier": -10.0, "retailer": -10.0}
    (rew, done, info), _ = _play([(COUNTER, 90, 10)] * 3, max_rounds=3)
    assert done and bool(info["timeout"]) and rew == {"supplier": -5.0, "retailer": -5.0}
    (rew, done, info), obs = _play([(ACCEPT, 1e9, -5.0)])  # no standing offer: a counter
    assert not done and bool(info["illegal_accept"])
    r_obs = obs[0]["retailer"]
    assert float(r_obs[PQ_OBS_INDEX["standing_price"]]) == 1.0  # clipped to max_price
    assert float(r_obs[PQ_OBS_INDEX["standing_quantity"]]) == 0.0  # clipped to 0


def test_nan_rule_repeats_the_standing_offer_or_opens_at_own_value():
    (_, _, _), obs = _play([(COUNTER, np.nan, np.nan)])
    s = obs[0]["supplier"]
    assert float(s[PQ_OBS_INDEX["standing_price"]]) == pytest.approx(50 / 200)
    assert float(s[PQ_OBS_INDEX["standing_quantity"]]) == 0.0
    (_, _, _), obs = _play([(COUNTER, 100, 80), (COUNTER, np.nan, 90)])
    s = obs[1]["supplier"]
    assert float(s[PQ_OBS_INDEX["standing_price"]]) == pytest.approx(0.5)
    assert float(s[PQ_OBS_INDEX["standing_quantity"]]) == pytest.approx(90 / 200)


def test_observation_fields():
    (_, _, _), obs = _play([(COUNTER, 100.0, 110.0)])
    s, r = obs[0]["supplier"], obs[0]["retailer"]
    i = PQ_OBS_INDEX
    assert float(s[i["own_value"]]) == pytest.approx(0.25)
    assert float(r[i["own_value"]]) == pytest.approx(0.8)
    assert float(r[i["my_turn"]]) == 1 and float(r[i["mask_accept"]]) == 1
    assert float(s[i["my_turn"]]) == 0 and float(s[i["mask_accept"]]) == 0
    assert float(r[i["est_quantity"]]) == pytest.approx(110 / 200)
    gain_scale = 200 * 200 / 10
    assert float(r[i["accept_gain"]]) == pytest.approx(550 / gain_scale, rel=1e-5)
    assert float(s[i["accept_gain"]]) == pytest.approx(5500 / gain_scale, rel=1e-6)
    # history: the last offer first, then zeros
    hist = np.asarray(r[len(i):])
    np.testing.assert_allclose(hist, [0.5, 0.55, 0.0, 0.0], rtol=1e-6)


def test_efficient_quantity_is_clipped():
    p = make_pq_params(max_quantity=100.0, **FIXED)
    assert float(efficient_quantity(50.0, 160.0, p)) == 100.0
    assert float(efficient_quantity(170.0, 160.0, p)) == 0.0


@pytest.mark.parametrize("bad, field", [
    ({"max_quantity": 0}, "max_quantity"), ({"cost_high": 30}, "cost_high"),
    ({"demand_slope": -1}, "demand_slope"), ({"max_rounds": 2.5}, "max_rounds"),
    ({"reward_model": "nope"}, "reward_model"), ({"discount": (0.9,)}, "discount"),
    ({"cost_low": "x"}, "cost_low"),
])
def test_bad_settings_name_the_field(bad, field):
    with pytest.raises(ValueError, match=field):
        make_pq_params(**bad)


def test_settings_round_trip_through_plain_data():
    p = make_pq_params(reward_model="discounted", discount=(0.9, 0.8), max_rounds=6.0)
    d = pq_params_to_dict(p)
    assert d["reward_model"] == "discounted" and d["max_rounds"] == 6
    assert make_pq_params(**d) == p
