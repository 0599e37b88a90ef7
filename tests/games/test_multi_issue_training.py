"""PPO learns the multi-issue game (integrative scenario, private weights), and `eqx simulate
--game multi-issue --scenario` plays the classic negotiators on every shipped scenario."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from eqx_jax.evaluate import evaluate_game_policies
from eqx_jax.ppo import PPOConfig, make_train, seed_params


def test_ppo_learns_multi_issue():
    config = PPOConfig(game="multi-issue", scenario="integrative-4", total_timesteps=262_144)
    runner, m = jax.jit(make_train(config))(jax.random.key(0))
    deal = np.asarray(m["deal_rate"][0])
    pareto = np.asarray(m["pareto_optimality"][0])
    assert deal[-3:].mean() > deal[:3].mean() + 0.05  # measured: 0.25 -> 0.32
    assert pareto[-3:].mean() > pareto[:3].mean()
    ev = evaluate_game_policies(config, seed_params(runner.params, 0), jax.random.key(1), 500)
    assert ev["mean_available_surplus"] > 0 and 0 <= ev["greedy"]["deal_rate"] <= 1
    assert "pareto_optimality" in ev["greedy"] and "nash_optimality" in ev["greedy"]


@pytest.mark.parametrize("scenario", ["distributive-2", "integrative-4", "supply-chain-4"])
def test_simulate_multi_issue_scenarios(scenario):
    out = subprocess.run([sys.executable, "-m", "eqx_jax.cli", "simulate", "--game",
                          "multi-issue", "--scenario", scenario, "--supplier", "linear",
                          "--retailer", "linear", "--episodes", "200", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    m = json.loads(out.stdout)["metrics"]
    assert m["deal_rate"] == 1.0 and m["pareto_optimality"] > 0.9


def test_bad_scenario_is_named():
    out = subprocess.run([sys.executable, "-m", "eqx_jax.cli", "simulate", "--game",
                          "multi-issue", "--scenario", "nope"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "scenario" in out.stderr and "integrative-4" in out.stderr
