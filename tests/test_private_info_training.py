"""Small training runs on the private-information settings: overlapping priors (against the
mechanism-design bounds) and one-sided offers with a two-type retailer (against its perfect
Bayesian equilibrium)."""

from __future__ import annotations

import jax

from eqx_jax.evaluate import evaluate_policies
from eqx_jax.pbe_evaluate import compare_with_pbe
from eqx_jax.ppo import PPOConfig, make_train, resolve_policy, seed_params
from eqx_jax.train import load_config_file

OVERLAP = {"supplier_low": 2000, "supplier_high": 8000, "retailer_low": 2000,
           "retailer_high": 8000}


def _mechanisms(cfg: PPOConfig) -> dict:
    runner, _ = make_train(cfg)(jax.random.key(0))
    ev = evaluate_policies(cfg, seed_params(runner.params), jax.random.key(1), 4000)
    return ev["greedy"]["mechanisms"]


def test_overlapping_priors_learn_to_trade_like_the_second_best():
    # The default training (configs/overlapping.yaml's game); one update of it is the baseline.
    trained = _mechanisms(PPOConfig(env=OVERLAP))
    baseline = _mechanisms(PPOConfig(env=OVERLAP, total_timesteps=2048 * 8))
    assert baseline["gains_over_second_best"] < 0.7
    assert trained["gains_over_second_best"] > 0.9
    assert trained["trade_rate_without_gains"] < 0.02
    assert trained["trade_rate_with_gains"] > baseline["trade_rate_with_gains"] + 0.2


def test_one_sided_training_learns_to_screen_the_high_type():
    d = load_config_file("configs/one-sided.yaml")
    d["total_timesteps"] = 256 * 32 * 60
    cfg = PPOConfig.from_dict(d)
    runner, _ = make_train(cfg)(jax.random.key(0))
    params = seed_params(runner.params)
    policies = tuple(resolve_policy(cfg, params, "ppo", role, True, None)
                     for role in ("supplier", "retailer"))
    c = compare_with_pbe(jax.random.key(1), cfg.env_params, policies, n=256)
    # The untrained supplier opens near max_price / 2 (both types accept); trained, it asks
    # more than the low type's value, and the high type accepts in round 2, as in the
    # equilibrium.
    first = c["high"]["offers"][0]
    assert first["round"] == 1 and first["price"] > 7000.0
    assert c["high"]["accept_round"] == c["high"]["pbe_accept_round"] == 2
    assert c["pbe"]["price_path"][0] == 7380.0
