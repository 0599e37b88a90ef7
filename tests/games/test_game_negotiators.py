"""The classic negotiators in utility space (price-quantity), `eqx simulate --game`, PPO
against a fixed negotiator in a game beyond one price, and NegMAS's exact negotiators by name in
the multi-issue game."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax import simulate
from eqx_jax.games.multi_issue import MultiIssueEnv, make_multi_issue_params
from eqx_jax.games.price_quantity import PQ_OBS_INDEX, PriceQuantityEnv, gains, make_pq_params
from eqx_jax.games.registry import GAMES
from eqx_jax.negotiators import GAME_NEGOTIATORS, game_time_dependent, get_game_negotiator
from eqx_jax.ppo import PPOConfig, make_train

FIXED = {"cost_low": 50, "cost_high": 50, "demand_low": 160, "demand_high": 160}


@pytest.mark.parametrize("gain", [0.0, 500.0, 3000.0, 6000.0])
def test_offer_for_gain_leaves_the_mover_that_gain(gain):
    env, params = PriceQuantityEnv(), make_pq_params(**FIXED)
    obs, _ = env.reset(jax.random.key(0), params)
    for role in env.agents:
        p, q = (float(x) for x in env.offer_for_gain(obs[role], params, jnp.float32(gain)))
        g_s, g_r = gains(p, q, 50.0, 160.0, 1.0)
        own = g_s if role == "supplier" else g_r
        assert own == pytest.approx(gain, abs=1e-2 * max(gain, 1.0))
        assert q == pytest.approx(110.0, abs=1e-3)  # the efficient quantity: best for both


def test_time_dependent_accepts_iff_the_offer_meets_its_target():
    env, params = PriceQuantityEnv(), make_pq_params(**FIXED)
    policy = jax.jit(game_time_dependent(env, 1.0))
    _, state = env.reset(jax.random.key(0), params)
    act = env.make_action(jnp.int32(1), jnp.array([60.0, 110.0]))  # supplier gain 1100
    state, *_ = env.step_env(state, {a: act for a in env.agents}, params)
    obs = env.get_obs(state, params)
    view = env.negotiator_view(obs["retailer"], params)
    target = float(view["best_gain"]) * (1 - 2 / 10)  # linear, the move is round 2
    retailer_gain = 160 * 110 - 0.5 * 110**2 - 60 * 110  # 4950
    out = policy(jax.random.key(1), obs["retailer"], params)
    assert int(out["action_type"]) == (0 if retailer_gain >= target else 1)
    assert float(obs["retailer"][PQ_OBS_INDEX["accept_gain"]]) > 0


def test_every_pairing_plays_and_concession_order_holds():
    env, params = PriceQuantityEnv(), make_pq_params(**FIXED)
    rows = simulate.tournament(jax.random.key(0), params, num_episodes=500, env=env)
    assert len(rows) == len(GAME_NEGOTIATORS) ** 2
    by = {(r["supplier"], r["retailer"]): r for r in rows}
    # a faster concession ends sooner; deals between time-based agents are near-efficient
    assert by["conceder", "conceder"]["mean_rounds"] < by["linear", "linear"]["mean_rounds"]
    assert by["linear", "linear"]["deal_rate"] == 1.0
    assert by["linear", "linear"]["efficiency"] > 0.95
    with pytest.raises(ValueError, match="tit_for_tat"):
        get_game_negotiator("tit_for_tat", env)


def test_ppo_trains_against_a_fixed_negotiator_in_price_quantity():
    cfg = PPOConfig(game="price-quantity", env=FIXED, opponent="linear", ppo_roles="supplier",
                    num_envs=64, num_steps=8, total_timesteps=64 * 8 * 2)
    _, metrics = jax.jit(make_train(cfg))(jax.random.key(0))
    assert np.isfinite(np.asarray(metrics["return_supplier"])).all()
    with pytest.raises(ValueError, match="opponent"):
        PPOConfig(game="price-quantity", opponent="tit_for_tat", ppo_roles="supplier")


def _eqx(*args):
    return subprocess.run([sys.executable, "-m", "eqx_jax.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_eqx_simulate_game_json_and_errors():
    out = _eqx("simulate", "--game", "price-quantity", "--set", "cost_low=45",
               "--set", "demand_slope=1.5", "--supplier", "linear", "--retailer", "conceder",
               "--episodes", "200", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["settings"]["cost_low"] == 45 and r["settings"]["demand_slope"] == 1.5
    assert r["metrics"]["deal_rate"] > 0.5 and r["metrics"]["mean_quantity"] > 0
    bad = _eqx("simulate", "--game", "price-quantity", "--set", "demand_slope=-1")
    assert bad.returncode == 2 and "demand_slope" in bad.stderr
    bad = _eqx("simulate", "--game", "price-quantity", "--set", "oops")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    bad = _eqx("simulate", "--game", "price-quantity", "--supplier", "midpoint")
    assert bad.returncode == 2 and "--supplier" in bad.stderr


def test_negmas_negotiators_by_name_in_the_multi_issue_game_only():
    env, params = MultiIssueEnv("integrative-4"), make_multi_issue_params("integrative-4")
    rows = simulate.tournament(jax.random.key(2), params, names=("negmas_linear", "linear"),
                               num_episodes=200, env=env)
    by = {(r["supplier"], r["retailer"]): r for r in rows}
    # NegMAS's negotiators offer their own worst outcome above the aspiration, blind to the
    # opponent; ours offer the one best for the opponent's estimated utility among those.
    assert by["negmas_linear", "negmas_linear"]["deal_rate"] > 0.9
    assert (by["negmas_linear", "negmas_linear"]["pareto_optimality"]
            < by["linear", "linear"]["pareto_optimality"])
    with pytest.raises(ValueError, match="unknown negotiator"):
        get_game_negotiator("negmas_linear", PriceQuantityEnv())
    with pytest.raises(ValueError, match="NegMAS time-based kind"):
        get_game_negotiator("negmas_hardball", env)


# Two-party play (supplier vs retailer); the group game's seats: tests/games/test_group.py.
@pytest.mark.parametrize("name", sorted(set(GAMES) - {"price", "group"}))
def test_classic_negotiators_play_every_game(name):
    spec = GAMES[name]
    env, params = spec.make_env(), spec.make_params()
    rows = simulate.tournament(jax.random.key(3), params, num_episodes=200, env=env)
    assert {(r["supplier"], r["retailer"]) for r in rows} == {
        (a, b) for a in GAME_NEGOTIATORS for b in GAME_NEGOTIATORS}
    by = {(r["supplier"], r["retailer"]): r for r in rows}
    assert by["linear", "linear"]["deal_rate"] >= 0.9
    assert by["conceder", "conceder"]["mean_rounds"] <= by["boulware", "boulware"]["mean_rounds"]
