"""`eqx simulate --game group` (and its errors) end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import numpy as np

from eqx_jax.games.group import GroupEnv, make_group_params
from eqx_jax.simulate import play_group


def _eqx(*args):
    return subprocess.run([sys.executable, "-m", "eqx_jax.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_simulate_one_negotiator_per_seat_json():
    out = _eqx("simulate", "--game", "group", "--scenario", "supply-chain-4p", "--negotiators",
               "conceder,linear,conceder,conceder", "--episodes", "300", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["parties"] == ["supplier", "retailer", "logistics", "warehouse"]
    assert d["settings"]["max_rounds"] == 16 and len(d["settings"]["discount"]) == 4
    m = d["metrics"]
    assert m["episodes"] == 300 and m["deal_rate"] > 0.9
    assert len(m["utility"]) == len(m["share"]) == len(m["mean_reward"]) == 4
    assert sum(m["share"]) == __import__("pytest").approx(1.0)
    for key in ("pareto_optimality", "nash_product_optimality", "welfare", "mean_steps"):
        assert 0 < m[key]


def test_simulate_agents_and_settings():
    out = _eqx("simulate", "--game", "group", "--scenario", "consortium-8p", "--agents", "3",
               "--set", "walk_payoff=[1,2,3]", "--rounds", "9", "--episodes", "100", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["parties"] == ["p1", "p2", "p3"] and d["settings"]["max_rounds"] == 9
    assert d["settings"]["walk_payoff"] == [1.0, 2.0, 3.0]


def test_simulate_errors_name_the_option():
    cases = [(("--agents", "9"), "agents must be an integer in [2, 3]"),
             (("--negotiators", "linear,linear"), "--negotiators must be one name or 3"),
             (("--negotiators", "nope"), "is not one of"),
             (("--set", "discount=[0.9,0.9]"), "discount must be a list of 3 numbers"),
             (("--tournament",), "--negotiators")]
    for extra, message in cases:
        out = _eqx("simulate", "--game", "group", "--episodes", "10", *extra)
        assert out.returncode == 2 and message in out.stderr, (extra, out.stderr)
    out = _eqx("simulate", "--game", "multi-issue", "--agents", "3")
    assert out.returncode == 2 and "--game group" in out.stderr


def test_play_group_records_each_episode_once():
    env, p = GroupEnv("supply-chain-3p"), make_group_params("supply-chain-3p", speed_bonus=0.0)
    rec = play_group(jax.random.key(1), p, ["conceder"] * 3, 64, env)
    assert rec["utilities"].shape == (64, 3) and rec["weights"].shape == (64, 3, 3)
    deal = rec["deal"]
    assert deal.all()
    # A deal's rewards are the seed model's: 100 (u - r) (1 - t/T)^2 (no bonus here).
    d = (1 - rec["round"] / 12.0) ** 2
    np.testing.assert_allclose(rec["rewards"], 100 * (rec["utilities"] - rec["reservation"])
                               * d[:, None], rtol=1e-4, atol=1e-4)


def test_train_and_evaluate_a_group_run(tmp_path):
    run = tmp_path / "g"
    out = _eqx("train", "--game", "group", "--scenario", "supply-chain-3p-fixed",
               "--total-steps", "4096", "--num-envs", "64", "--out", str(run), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["finished"]
    out = _eqx("evaluate", str(run), "--episodes", "200", "--exploitability", "--br-steps",
               "2048", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    e = d["evaluation"]
    assert e["game"] == "group" and e["complete_information"]
    g = e["greedy"]
    assert g["spe"]["step"] == 3 and len(g["spe"]["utilities"]) == 3
    for key in ("deal_rate", "spe_step_match", "mean_steps", "walk_rate"):
        assert key in g and key in e["stochastic"] or key.startswith("spe")
    x = d["exploitability"]
    assert set(x["seats"]) == {"supplier", "retailer", "logistics"}
    assert x["total_timesteps"] == 2048 and x["num_episodes"] == 200
    for s in x["seats"].values():
        assert s["gain"] == s["best_response_reward"] - s["trained_reward"]
    out = _eqx("evaluate", str(run), "--tournament")
    assert out.returncode == 2 and "not available for the group game" in out.stderr
    out = _eqx("evaluate", str(run), "--exploitability", "--br-steps", "0")
    assert out.returncode == 2 and "--br-steps" in out.stderr and "Traceback" not in out.stderr
    out = _eqx("evaluate", str(run), "--exploitability", "--br-steps", "64")
    assert out.returncode == 2 and "--br-steps must be at least 512" in out.stderr
