"""Trained (here: hand-written) agents against the perfect Bayesian equilibrium of one-sided
offers with a two-type retailer (eqx_jax/pbe_evaluate.py), and ``eqx solve``'s one-sided path."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import pytest

from eqx_jax.cli import main
from eqx_jax.env import ACCEPT, COUNTER, OBS_INDEX, make_params
from eqx_jax.pbe_evaluate import compare_with_pbe, game_pbe, has_pbe
from eqx_jax.solvers.one_sided import solve_one_sided_pbe

GAME = dict(max_rounds=8, reward_model="discounted", discount=(0.9, 0.9), proposer="supplier",
            supplier_low=5000.0, supplier_high=5000.0, retailer_prior="two_type",
            retailer_low=7000.0, retailer_high=9000.0, retailer_high_prob=0.7,
            timeout_payoff=(0.0, 0.0), walk_payoff=(-100.0, -100.0))
P = make_params(**GAME)


def _supplier(first: float, second: float):
    """Offers ``first`` in round 1 and ``second`` afterwards (never accepts: nothing to)."""
    def policy(key, obs, params):
        t0 = obs[OBS_INDEX["round"]] == 0
        return {"action_type": jnp.int32(COUNTER),
                "price": jnp.where(t0, first, second).astype(jnp.float32)}
    return policy


def _retailer(high_limit: float, low_limit: float):
    """Accepts a standing offer up to its type's limit, else rejects."""
    def policy(key, obs, params):
        value = obs[OBS_INDEX["own_value"]] * params.max_price
        limit = jnp.where(value > 8000.0, high_limit, low_limit)
        standing = obs[OBS_INDEX["standing_offer"]] * params.max_price
        ok = (obs[OBS_INDEX["has_offer"]] > 0) & (standing <= limit + 1e-3)
        return {"action_type": jnp.where(ok, ACCEPT, COUNTER).astype(jnp.int32),
                "price": jnp.float32(0.0)}
    return policy


def test_the_game_and_its_equilibrium():
    assert has_pbe(P) and not has_pbe(make_params())
    pbe = game_pbe(P)
    assert pbe.price_path == pytest.approx((7380.0, 7000.0))  # 9000 - 0.81 * 2000, then v_L
    assert (pbe.high_accept_round, pbe.low_accept_round) == (2, 4)


def test_equilibrium_play_matches_and_other_play_does_not():
    eq = compare_with_pbe(jax.random.key(0), P, (_supplier(7380.0, 7000.0),
                                                  _retailer(7380.0, 7000.0)), n=64)
    assert eq["prices_within_2pct"] and eq["accept_rounds_equal"]
    assert eq["max_price_error"] == pytest.approx(0.0, abs=1e-6)
    assert eq["high"]["accept_round"] == 2 and eq["low"]["accept_round"] == 4
    assert [o["round"] for o in eq["low"]["offers"]] == [1, 3]
    json.dumps(eq)
    # A supplier that asks 9,000 throughout sells only to the high type, in round 2.
    greedy = compare_with_pbe(jax.random.key(0), P, (_supplier(9000.0, 9000.0),
                                                      _retailer(9000.0, 7000.0)), n=64)
    assert not greedy["prices_within_2pct"] and not greedy["accept_rounds_equal"]
    assert greedy["low"]["accept_round"] is None and greedy["low"]["deal_rate"] == 0.0
    assert greedy["price_errors"][0]["rel_error"] == pytest.approx(1620.0 / 7380.0, rel=1e-6)


def test_eqx_solve_one_sided(capsys):
    args = ["solve", "--proposer", "supplier", "--retailer-prior", "two_type", "--reward",
            "discounted", "--rounds", "8", "--retailer-low", "7000", "--retailer-high", "9000",
            "--retailer-high-prob", "0.7", "--discount", "0.9", "0.9", "--timeout-payoff", "0",
            "0", "--walk-payoff", "-100", "-100"]
    assert main([*args, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = solve_one_sided_pbe(5000.0, 7000.0, 9000.0, 0.7, 8, discount=(0.9, 0.9),
                               timeout_payoff=(0.0, 0.0), walk_payoff=(-100.0, -100.0))
    assert got["price_path"] == pytest.approx(list(want.price_path))
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "offers 7,380.00, 7,000.00" in text and "low type in round 4" in text
    assert main(["solve", "--proposer", "supplier"]) == 2
    assert "--retailer-prior two_type --reward discounted" in capsys.readouterr().err
    assert main([*args, "--retailer-high-prob", "2"]) == 2
    assert "--retailer-high-prob" in capsys.readouterr().err
