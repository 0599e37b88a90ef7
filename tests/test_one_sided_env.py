"""One-sided offers (``proposer: supplier | retailer``) and the two-type retailer prior in the
price game's env (eqx_jax/env.py), by hand-computed cases."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.efficiency import best_welfare, deal_rounds
from eqx_jax.env import (
    ACCEPT,
    COUNTER,
    OBS_INDEX,
    BargainingEnv,
    game_settings,
    make_params,
    params_to_dict,
)

ENV = BargainingEnv()
STEP = jax.jit(ENV.step_env)


def _start(params, v_s=5000.0, v_r=8000.0):
    _, state = ENV.reset(jax.random.key(0), params)
    return state.replace(supplier_value=jnp.float32(v_s), retailer_value=jnp.float32(v_r))


def _move(state, params, a_type, price):
    act = {"action_type": jnp.int32(a_type), "price": jnp.float32(price)}
    return STEP(state, {"supplier": act, "retailer": act}, params)


def test_supplier_proposes_a_rejection_withdraws_the_offer():
    p = make_params(proposer="supplier", reward_model="discounted", discount=(0.9, 0.8),
                    max_rounds=6)
    s = _start(p)
    s, _, done, _ = _move(s, p, COUNTER, 7000.0)  # round 1: the supplier offers
    assert not done and float(s.history[0]) == 7000.0
    belief = float(s.supplier_belief_mean)
    s, _, done, _ = _move(s, p, COUNTER, 1.0)  # round 2: the retailer rejects; 1.0 is ignored
    assert not done and float(s.history[0]) == -1.0 and float(s.history[1]) == 7000.0
    assert float(s.supplier_belief_mean) == belief  # a rejection is not an offer to learn from
    obs = ENV.get_obs(s, p)["supplier"]
    assert obs[OBS_INDEX["has_offer"]] == 0 and obs[OBS_INDEX["mask_accept"]] == 0
    s, _, _, info = _move(s, p, ACCEPT, 0.0)  # round 3: nothing to accept -> an offer (NaN rule
    assert not bool(info["deal"]) and bool(info["illegal_accept"])  # off: price 0 clipped)
    s, _, _, _ = _move(s, p, COUNTER, 0.0)  # round 4: rejected
    s, _, _, _ = _move(s, p, COUNTER, 6500.0)  # round 5: a new offer
    _, rewards, done, info = _move(s, p, ACCEPT, 0.0)  # round 6: accepted
    assert bool(done) and bool(info["deal"]) and float(info["price"]) == 6500.0
    assert int(info["round"]) == 6
    assert float(rewards["supplier"]) == pytest.approx(1500 * 0.9 ** 6, rel=1e-5)
    assert float(rewards["retailer"]) == pytest.approx(1500 * 0.8 ** 6, rel=1e-5)


def test_retailer_proposes_round_one_is_a_pass():
    p = make_params(proposer="retailer", max_rounds=4)
    s = _start(p)
    s, _, done, _ = _move(s, p, COUNTER, 9000.0)  # round 1: the supplier cannot offer
    assert not done and float(s.history[0]) == -1.0
    s, _, _, _ = _move(s, p, COUNTER, 6000.0)  # round 2: the retailer offers
    assert float(s.history[0]) == 6000.0
    _, rewards, done, info = _move(s, p, ACCEPT, 0.0)  # round 3: the supplier accepts
    assert bool(info["deal"]) and int(info["round"]) == 3
    assert float(rewards["supplier"]) == pytest.approx(1000 * (1 - 3 / 4) ** 2, rel=1e-5)


def test_alternate_is_unchanged_and_settings_round_trip():
    p = make_params()
    assert params_to_dict(p)["proposer"] == "alternate"
    q = make_params(proposer="supplier", retailer_prior="two_type", retailer_high_prob=0.3)
    d = params_to_dict(q)
    assert (d["proposer"], d["retailer_prior"]) == ("supplier", "two_type")
    assert make_params(**d) == q
    with pytest.raises(ValueError, match="proposer must be one of .*alternate.*supplier"):
        make_params(proposer="both")
    with pytest.raises(ValueError, match="retailer_prior must be one of"):
        make_params(retailer_prior="normal")
    with pytest.raises(ValueError, match="retailer_high_prob"):
        make_params(retailer_high_prob=1.5)


def test_two_type_prior_draws_two_values_and_starts_the_belief_there():
    p = make_params(retailer_prior="two_type", retailer_low=6000.0, retailer_high=9000.0,
                    retailer_high_prob=0.3)
    keys = jax.random.split(jax.random.key(1), 20_000)
    _, states = jax.vmap(ENV.reset, (0, None))(keys, p)
    v = np.asarray(states.retailer_value)
    assert set(np.unique(v)) == {6000.0, 9000.0}
    assert (v == 9000.0).mean() == pytest.approx(0.3, abs=0.015)
    assert float(states.supplier_belief_mean[0]) == pytest.approx(0.7 * 6000 + 0.3 * 9000)
    assert float(states.supplier_belief_std[0]) == pytest.approx(3000 * np.sqrt(0.21), rel=1e-5)


def test_deal_rounds_and_best_welfare_follow_the_protocol():
    assert list(deal_rounds(7, "alternate")) == [2, 3, 4, 5, 6, 7]
    assert list(deal_rounds(7, "supplier")) == [2, 4, 6]
    assert list(deal_rounds(7, "retailer")) == [3, 5, 7]
    g = game_settings(make_params(proposer="retailer", reward_model="discounted",
                                  discount=(0.9, 0.9)))
    # The earliest deal is in round 3: 3000 * 0.9^3.
    assert best_welfare(5000.0, 8000.0, **g) == pytest.approx(3000 * 0.9 ** 3)
