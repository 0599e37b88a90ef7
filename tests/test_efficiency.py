"""Honest efficiency (eqx_jax/efficiency.py): the largest achievable welfare against a brute
force over every outcome, the batch figures on hand cases, and their place in summarize."""

from __future__ import annotations

import itertools
import math

import jax
import numpy as np
import pytest

from eqx_jax.efficiency import (
    best_welfare,
    efficiency_summary,
    episode_efficiency,
    mechanism_benchmarks,
)
from eqx_jax.env import game_settings, make_params
from eqx_jax.equilibrium import spe_price_batch
from eqx_jax.metrics import summarize
from eqx_jax.payoffs import deal_factors
from eqx_jax.simulate import play

SEED_GAME = game_settings(make_params())


def _brute_best(vs: float, vr: float, game: dict, prices: int = 201) -> float:
    """Every outcome the rules allow: a deal at each price of a grid (with both ends) in each
    round 2..T, a walk-away, a timeout."""
    g = dict(game)
    t_max = g.pop("max_rounds")
    best = max(sum(g["walk_payoff"]), sum(g["timeout_payoff"]))
    for t, p in itertools.product(range(2, t_max + 1), np.linspace(0, g["max_price"], prices)):
        d_s, d_r, b = deal_factors(g["reward_model"], t, t_max, g["speed_bonus"],
                                   g["bonus_fraction"], g["discount"])
        best = max(best, (p - vs) * d_s + (vr - p) * d_r + 2 * b)
    return best


def test_best_welfare_is_a_round_2_deal_in_the_default_game():
    # (8000 - 5000) * (1 - 2/10)^2 + 2 * 5 = 1930 reward units.
    assert best_welfare(5000.0, 8000.0, **SEED_GAME) == pytest.approx(1930.0)


@pytest.mark.parametrize("overrides", [
    {},
    {"reward_model": "discounted", "discount": (0.9, 0.8)},
    {"reward_model": "discounted", "discount": (0.7, 0.95), "max_rounds": 6},
    {"max_rounds": 4, "speed_bonus": 50.0, "timeout_payoff": (20.0, -5.0)},
])
def test_best_welfare_matches_a_brute_force_over_every_outcome(overrides):
    game = game_settings(make_params(**overrides))
    rng = np.random.default_rng(0)
    vs, vr = rng.uniform(0, 10000, 40), rng.uniform(0, 10000, 40)
    got = best_welfare(vs, vr, **game)
    want = [_brute_best(a, b, game) for a, b in zip(vs, vr, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_no_gains_best_is_a_last_round_deal_worth_nothing():
    # V_s > V_r: any deal loses (V_r - V_s) D(t) except in round T, where D(T) = 0: sum 0 beats
    # the timeout's -10 and the walk-away's -20.
    assert best_welfare(8000.0, 7000.0, **SEED_GAME) == pytest.approx(0.0)


def test_efficiency_summary_on_hand_cases():
    vs, vr = np.array([5000.0, 5000.0]), np.array([8000.0, 8000.0])
    # Episode 1 deals in round 2 (all of 1930), episode 2 in round 4: 3000 * 0.36 + 0 = 1080.
    rewards = {"supplier": np.array([1000.0, 580.0]), "retailer": np.array([930.0, 500.0])}
    out = efficiency_summary(vs, vr, rewards, SEED_GAME)
    assert out["welfare_efficiency"] == pytest.approx((1930 + 1080) / 3860)
    assert out["mean_best_welfare"] == pytest.approx(1930.0)
    spe = spe_price_batch(5000.0, 8000.0, 10)
    assert out["supplier_spe_reward"] == pytest.approx(float(spe["supplier_payoff"]))
    assert out["supplier_price_of_private_information"] == pytest.approx(
        float(spe["supplier_payoff"]) - 790.0)
    assert out["retailer_reward_over_spe"] == pytest.approx(715.0 / float(spe["retailer_payoff"]))
    assert out["spe_welfare_efficiency"] == pytest.approx(1.0)  # the SPE trades in round 2


def test_episode_efficiency_of_one_session():
    e = episode_efficiency(5000.0, 8000.0, {"supplier": 600.0, "retailer": 400.0},
                           {"supplier": 1000.0, "retailer": 930.0}, SEED_GAME)
    assert e["welfare_efficiency"] == pytest.approx(1000.0 / 1930.0)
    assert e["price_of_private_information"] == {"supplier": 400.0, "retailer": 530.0}
    none = episode_efficiency(8000.0, 7000.0, {"supplier": -5.0, "retailer": -5.0},
                              {"supplier": -5.0, "retailer": -5.0}, SEED_GAME)
    assert none["welfare_efficiency"] is None  # nothing positive was achievable


def test_summarize_adds_them_and_a_late_deal_is_not_full_efficiency():
    p = make_params()
    rec = play(jax.random.key(0), p, "boulware", "boulware", 2000)
    plain = summarize(rec)
    assert "welfare_efficiency" not in plain
    s = summarize(rec, game_settings(p))
    # Boulware pairs deal late: every deal counts in surplus_captured, little in efficiency.
    assert s["surplus_captured"] > 0.9 and s["welfare_efficiency"] < 0.1
    assert math.isclose(s["welfare_efficiency"],
                        (rec["supplier_reward"] + rec["retailer_reward"]).sum()
                        / best_welfare(rec["supplier_value"], rec["retailer_value"],
                                       **game_settings(p)).sum(), rel_tol=1e-6)


def test_mechanism_benchmarks_on_chatterjee_samuelsons_uniform_case():
    # Both valuations U[2000, 8000] (U[0, 1] scaled by 6000): first best 6000 / 6 = 1000;
    # the linear double auction trades iff V_r - V_s >= 6000 / 4 and reaches 6000 * 9 / 64,
    # which is also the second best.
    rng = np.random.default_rng(0)
    n = 400_000
    vs, vr = rng.uniform(2000, 8000, n), rng.uniform(2000, 8000, n)
    cs_deal = vr - vs >= 1500.0
    b = mechanism_benchmarks(vs, vr, cs_deal, (2000.0, 8000.0, 2000.0, 8000.0))
    assert b["first_best_gains"] == pytest.approx(1000.0)
    assert b["second_best_gains"] == pytest.approx(843.75, rel=1e-9)
    assert b["chatterjee_samuelson_gains"] == pytest.approx(843.75)
    assert b["chatterjee_samuelson_valid"] and b["supports_overlap"]
    assert b["gains_over_second_best"] == pytest.approx(1.0, abs=0.01)  # sampling error only
    assert b["gains_over_first_best"] == pytest.approx(0.84375, abs=0.01)
    assert b["trade_rate_without_gains"] == 0.0
    assert b["trade_rate_with_gains"] == pytest.approx(0.5625, abs=0.01)  # (3/4)^2 / (1/2)
    # Trading exactly when there are gains reaches the first best, beyond the second best
    # (possible for agents who know both values; not for any mechanism under private values).
    fb = mechanism_benchmarks(vs, vr, vr > vs, (2000.0, 8000.0, 2000.0, 8000.0))
    assert fb["gains_over_first_best"] == pytest.approx(1.0, abs=0.01)
    assert fb["trade_rate_with_gains"] == 1.0
