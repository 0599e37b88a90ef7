"""The same PPO trains on the bundles game (OpenSpiel's bargaining): it runs end to end with
finite metrics, every episode ends by max_turns, and the trained policy plays through the
evaluator. (Learning the SPE of bundles is not claimed: see docs/games.md.)"""

from __future__ import annotations

import jax
import numpy as np

from eqx_jax.evaluate import evaluate_game_policies
from eqx_jax.ppo import PPOConfig, make_train, seed_params


def test_ppo_runs_on_bundles():
    config = PPOConfig(game="bundles", num_envs=256, total_timesteps=256 * 8 * 4)
    runner, m = jax.jit(make_train(config))(jax.random.key(0))
    for k in ("deal_rate", "mean_rounds", "pareto_optimal", "return_supplier"):
        assert np.isfinite(np.asarray(m[k])).all()
    assert (np.asarray(m["mean_rounds"]) <= 10).all()
    ev = evaluate_game_policies(config, seed_params(runner.params, 0), jax.random.key(1), 200)
    assert 0 <= ev["greedy"]["deal_rate"] <= 1 and "pareto_optimal" in ev["greedy"]
