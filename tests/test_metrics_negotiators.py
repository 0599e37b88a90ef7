"""Metrics on hand-computed cases, the Nash bargaining solution, and the classic negotiators."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.env import ACCEPT, COUNTER, OBS_INDEX, WALK_AWAY, BargainingEnv, make_params
from eqx_jax.metrics import (
    episode_metrics,
    nash_bargaining_solution,
    nash_distance,
    negotiation_efficiency,
    pareto_score,
    summarize,
)
from eqx_jax.negotiators import NEGOTIATORS, get_negotiator, time_dependent
from eqx_jax.simulate import play, tournament


# ----------------------------------------------------------------------------------- metrics
def test_founding_design_metrics_by_hand():
    # Midpoint of 5000 and 8000 is 6500: 6825 is 5 % above it.
    assert float(nash_distance(6825.0, 5000.0, 8000.0)) == pytest.approx(0.05)
    assert float(nash_distance(6500.0, 5000.0, 8000.0)) == 0.0
    # Pareto score: supplier's share 1500 of 3000 = 50/50 -> 1; 6000 -> 1 - 500/1500.
    assert float(pareto_score(6500.0, 5000.0, 8000.0)) == pytest.approx(1.0)
    assert float(pareto_score(6000.0, 5000.0, 8000.0)) == pytest.approx(2 / 3)
    assert float(pareto_score(8000.0, 5000.0, 8000.0)) == pytest.approx(0.0)
    assert float(pareto_score(8500.0, 5000.0, 8000.0)) == 0.0  # outside [V_s, V_r]
    assert float(pareto_score(5000.0, 5000.0, 5000.0)) == 1.0  # no surplus, exact split
    # Negotiation efficiency: 1 - r/T (+0.2 if r <= 3), capped at 1; 0 without a deal.
    assert float(negotiation_efficiency(2, 10, True)) == pytest.approx(1.0)  # 0.8 + 0.2
    assert float(negotiation_efficiency(3, 10, True)) == pytest.approx(0.9)
    assert float(negotiation_efficiency(6, 10, True)) == pytest.approx(0.4)
    assert float(negotiation_efficiency(6, 10, False)) == 0.0


def test_episode_metrics_shares_and_vectorization():
    m = episode_metrics(jnp.array([True, True, False]), jnp.array([6000.0, 9000.0, 0.0]),
                        jnp.array([2, 4, 10]), jnp.array([5000.0] * 3),
                        jnp.array([8000.0] * 3), 10)
    np.testing.assert_allclose(m["supplier_share"], [1 / 3, 4 / 3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(m["retailer_share"], [2 / 3, -1 / 3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(m["surplus_captured"], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(m["pareto_score"], [2 / 3, 0.0, 0.0], rtol=1e-6)


def test_summarize_averages_over_deals_and_episodes():
    s = summarize({
        "deal": np.array([True, False, True, False]),
        "price": np.array([6500.0, 0.0, 7000.0, 0.0]),
        "round": np.array([2, 10, 4, 1]),
        "supplier_value": np.full(4, 5000.0), "retailer_value": np.full(4, 8000.0),
        "max_rounds": 10,
        "supplier_reward": np.array([1.0, 2.0, 3.0, 4.0]),
    })
    assert s["deal_rate"] == 0.5 and s["mean_rounds"] == pytest.approx(17 / 4)
    assert s["rounds_to_deal"] == 3.0 and s["mean_price"] == 6750.0
    assert s["nash_distance"] == pytest.approx((0 + 500 / 6500) / 2)
    assert s["surplus_captured"] == pytest.approx(0.5)
    assert s["supplier_reward"] == 2.5
    empty = summarize({"deal": np.array([False]), "price": np.zeros(1), "round": np.array([10]),
                       "supplier_value": np.full(1, 5e3), "retailer_value": np.full(1, 8e3),
                       "max_rounds": 10})
    assert np.isnan(empty["nash_distance"]) and empty["deal_rate"] == 0.0


def test_nash_bargaining_solution():
    # Symmetric default game: the midpoint, in the earliest round a deal is possible.
    nbs = nash_bargaining_solution(5000.0, 8000.0, 10)
    assert nbs["outcome"] == "agreement" and nbs["round"] == 2
    assert nbs["price"] == pytest.approx(6500.0)
    assert nbs["supplier_payoff"] == pytest.approx(1500 * 0.64 + 5)
    # Asymmetric disagreement: the side with the worse threat point concedes;
    # p = mid + (c_r/D - c_s/D)/2 with c_i = bonus - d_i, D = 0.64.
    nbs = nash_bargaining_solution(5000.0, 8000.0, 10, disagreement=(-100.0, -5.0))
    assert nbs["price"] == pytest.approx(6500.0 + ((5 + 5) / 0.64 - (5 + 100) / 0.64) / 2)
    # Unequal discount factors move it away from the midpoint, towards the patient side.
    nbs = nash_bargaining_solution(5000.0, 8000.0, 10, reward_model="discounted",
                                   discount=(0.99, 0.8), disagreement=(0.0, 0.0))
    assert nbs["round"] == 2 and nbs["price"] == pytest.approx(6500.0)
    nbs = nash_bargaining_solution(5000.0, 8000.0, 10, reward_model="discounted",
                                   discount=(0.99, 0.8), disagreement=(-50.0, -50.0))
    assert nbs["price"] > 6500.0
    # No gains from trade: no agreement beats disagreement... except where the round-T deal
    # pays 0 > -5 to both (seed model): then the NBS is that deal.
    nbs = nash_bargaining_solution(8000.0, 5000.0, 10, reward_model="discounted")
    assert nbs["outcome"] == "no_agreement"
    with pytest.raises(ValueError, match="reward_model"):
        nash_bargaining_solution(5000.0, 8000.0, reward_model="x")


# ------------------------------------------------------------------------------ negotiators
ENV = BargainingEnv()
PARAMS = make_params(supplier_low=5000.0, supplier_high=5000.0, retailer_low=8000.0,
                     retailer_high=8000.0)


def _obs_after(prices, params=PARAMS):
    _, state = ENV.reset(jax.random.key(0), params)
    for p in prices:
        state, *_ = ENV.step_env(
            state, {a: {"action_type": jnp.int32(COUNTER), "price": jnp.float32(p)}
                    for a in ("supplier", "retailer")}, params)
    return ENV.get_obs(state, params)


def test_time_dependent_targets_by_hand():
    obs = _obs_after([])  # round 1, supplier to move: tau = 1/10
    for e in (0.2, 1.0, 5.0):
        a = time_dependent(e)(jax.random.key(0), obs["supplier"], PARAMS)
        expected = 10000 - 0.1 ** (1 / e) * (10000 - 5000)
        assert int(a["action_type"]) == COUNTER
        assert float(a["price"]) == pytest.approx(expected, rel=1e-5)
    obs = _obs_after([9000.0])  # round 2, retailer: tau = 0.2, target c * V_r
    a = time_dependent(1.0)(jax.random.key(0), obs["retailer"], PARAMS)
    assert float(a["price"]) == pytest.approx(0.2 * 8000, rel=1e-5)
    # AC-next: the retailer accepts an offer at or below its own next target.
    obs = _obs_after([1500.0])
    assert int(time_dependent(1.0)(jax.random.key(0), obs["retailer"], PARAMS)["action_type"]) \
        == ACCEPT


def test_negotiators_never_walk_and_random_respects_the_mask():
    obs = _obs_after([])
    assert obs["supplier"][OBS_INDEX["mask_accept"]] == 0
    keys = jax.random.split(jax.random.key(1), 500)
    types = jax.vmap(lambda k: NEGOTIATORS["random"](k, obs["supplier"], PARAMS)["action_type"])(
        keys)
    assert set(np.unique(np.asarray(types)).tolist()) == {COUNTER, WALK_AWAY}
    rows = tournament(jax.random.key(0), make_params(),
                      ("boulware", "linear", "conceder", "tit_for_tat", "midpoint"), 300)
    for r in rows:
        assert r["walk_rate"] == 0.0, (r["supplier"], r["retailer"])
    with pytest.raises(ValueError, match="unknown negotiator"):
        get_negotiator("nash")


def test_midpoint_pair_splits_the_difference_with_complete_information():
    rec = play(jax.random.key(0), PARAMS, "midpoint", "midpoint", 100)
    assert rec["deal"].all() and (rec["round"] == 2).all()
    np.testing.assert_allclose(rec["price"], 6500.0)


def test_tit_for_tat_mirrors_relative_concessions():
    # Supplier offered 9000 then 8000 (a 1/9 relative drop); the retailer (TFT) last offered
    # 4000, so it raises by the ratio 9000/8000: 4500.
    obs = _obs_after([9000.0, 4000.0, 8000.0])
    a = NEGOTIATORS["tit_for_tat"](jax.random.key(0), obs["retailer"], PARAMS)
    assert int(a["action_type"]) == COUNTER
    assert float(a["price"]) == pytest.approx(4000 * 9000 / 8000, rel=1e-5)


def test_tournament_runs_every_pairing_in_one_call():
    rows = tournament(jax.random.key(0), make_params(), ("linear", "midpoint"), 200)
    assert [(r["supplier"], r["retailer"]) for r in rows] == [
        ("linear", "linear"), ("linear", "midpoint"), ("midpoint", "linear"),
        ("midpoint", "midpoint")]
    single = summarize(play(jax.random.key(5), make_params(), "linear", "midpoint", 200))
    pair = rows[1]
    # Same negotiators, different keys: close but not identical statistics.
    assert pair["deal_rate"] == single["deal_rate"] == 1.0
    assert abs(pair["mean_rounds"] - single["mean_rounds"]) < 0.5
