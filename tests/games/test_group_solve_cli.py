"""`eqx solve --game group`: the SPE of the complete-information game, its plan, explained; and
the SPE path replayed in the env pays the solver's payoffs."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.env import ACCEPT, COUNTER
from eqx_jax.games.group import GroupEnv, make_group_params, solve_group_scenario_spe


def _eqx(*args):
    return subprocess.run([sys.executable, "-m", "eqx_jax.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_solve_json_has_the_outcome_agreement_step_and_payoffs():
    out = _eqx("solve", "--game", "group", "--scenario", "supply-chain-3p-fixed", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["game"] == "group" and d["parties"] == ["supplier", "retailer", "logistics"]
    assert d["outcome"] == "deal" and d["step"] == 3
    assert set(d["agreement"]) == {"unit_price", "quantity", "delivery_weeks"}
    assert set(d["payoffs"]) == set(d["utilities"]) == set(d["parties"])
    assert len(d["plans"]) == 12 and d["plans"][0]["move"] == "counter"
    assert any("Step 1: the supplier proposes" in line for line in d["explanation"])
    text = _eqx("solve", "--game", "group", "--scenario", "supply-chain-3p-fixed")
    assert text.returncode == 0 and "Per-step plan" in text.stdout


def test_solve_agents_prior_means_and_errors():
    out = _eqx("solve", "--game", "group", "--scenario", "consortium-8p", "--agents", "3",
               "--at-prior-mean", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["parties"] == ["p1", "p2", "p3"]
    for extra, message in [((), "is drawn from a prior"),
                           (("--agents", "9"), "agents must be an integer in [2, 8]")]:
        out = _eqx("solve", "--game", "group", "--scenario", "consortium-8p", *extra)
        assert out.returncode == 2 and message in out.stderr, out.stderr
    out = _eqx("solve", "--game", "group")
    assert out.returncode == 2 and "--scenario" in out.stderr
    out = _eqx("solve", "--game", "multi-issue", "--scenario", "integrative-4-fixed",
               "--agents", "3")
    assert out.returncode == 2 and "--agents does not apply" in out.stderr


@pytest.mark.parametrize("scenario", ["supply-chain-3p-fixed", "supply-chain-4p-fixed"])
def test_the_spe_path_played_in_the_env_pays_the_solver_payoffs(scenario):
    env, p = GroupEnv(scenario), make_group_params(scenario)
    spe = solve_group_scenario_spe(scenario, p)
    assert spe.outcome == "deal" and spe.step == env.num_agents  # proposed at step 1
    _, state = env.reset(jax.random.key(0), p)
    offer = jnp.asarray(spe.agreement, jnp.float32)
    for step in range(1, spe.step + 1):
        action = env.make_action(jnp.int32(COUNTER if step == 1 else ACCEPT), offer)
        _, state, rewards, dones, info = env.step(jax.random.key(1), state,
                                                  {a: action for a in env.agents}, p)
    assert bool(info["deal"]) and int(info["round"]) == spe.step
    np.testing.assert_allclose([float(rewards[a]) for a in env.agents], spe.payoffs,
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(np.asarray(info["utilities"]), spe.utilities, atol=1e-5)
