"""A small PPO run learns the price-quantity game (complete information): it reaches deals in
the equilibrium's round at nearly the efficient quantity, far from where it starts."""

from __future__ import annotations

import jax

from eqx_jax.evaluate import evaluate_game_policies
from eqx_jax.ppo import PPOConfig, make_train, seed_params
from eqx_jax.train import load_config_file


def test_ppo_learns_price_quantity():
    d = load_config_file("configs/price-quantity.yaml")
    d["total_timesteps"] = 300_000
    config = PPOConfig.from_dict(d)
    runner, metrics = jax.jit(make_train(config))(jax.random.key(0))
    first = {k: float(metrics[k][0, 0]) for k in ("deal_rate", "efficiency")}
    ev = evaluate_game_policies(config, seed_params(runner.params, 0), jax.random.key(1), 1000)
    g = ev["greedy"]
    assert first["deal_rate"] < 0.5  # where it starts
    assert g["deal_rate"] >= 0.9 and g["efficiency"] >= 0.9
    assert g["spe_round_match"] >= 0.5  # the deal comes in the SPE's round (2) mostly
    assert g["spe_quantity_rel_error"] <= 0.15
