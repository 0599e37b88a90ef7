"""Trained agents of the group game (N parties) against the truth: greedy and stochastic play,
the N-party outcome metrics, and the distance from the exact SPE on a complete-information
scenario.

Plain-Python orchestration around jitted JAX (:func:`eqx_jax.simulate.play_group_batch`);
returns JSON-ready dicts. ``params``: one run's parameters dict (network name -> params), the
network of each seat given by ``config.network_for(party)`` (self-play: one shared network).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from eqx_jax.games.group import solve_group_scenario_spe
from eqx_jax.games.group_metrics import group_metrics
from eqx_jax.negotiators import Policy
from eqx_jax.ppo import PPOConfig, make_policy
from eqx_jax.simulate import play_group_batch


def seat_policies(config: PPOConfig, params: dict, deterministic: bool) -> list[Policy]:
    """One policy per seat, in seat order: the network that plays that party."""
    env = config.make_env()
    return [make_policy(params[config.network_for(a)], config, deterministic)
            for a in env.agents]


def play_summary(config: PPOConfig, policies: list[Policy], key: jax.Array,
                 num_episodes: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(metrics, the NumPy record) of ``num_episodes`` episodes with ``policies`` per seat."""
    env, p = config.make_env(), config.env_params
    record = jax.jit(lambda k: play_group_batch(k, p, policies, num_episodes, env))(key)
    rec = {k: np.asarray(v) for k, v in record.items()}
    m = group_metrics(env.scenario, rec["utilities"], rec["deal"], rec["weights"],
                      rec["reservation"])
    m.pop("per_episode")
    deal = rec["deal"]
    m.update({"mean_steps": float(rec["round"].mean()),
              "mean_steps_of_deals": float(rec["round"][deal].mean()) if deal.any() else None,
              "walk_rate": float(rec["walk_away"].mean()),
              "timeout_rate": float(rec["timeout"].mean()),
              "mean_reward": rec["rewards"].mean(axis=0).tolist()})
    return m, rec


def spe_distance(config: PPOConfig, rec: dict[str, np.ndarray]) -> dict[str, Any]:
    """The record's distance from the SPE of the complete-information game: ``spe`` (the
    equilibrium's outcome, step, utilities), ``spe_step_match`` (share of episodes ending at the
    SPE's step with its outcome), ``spe_utility_error`` (N,) mean |u_i - u_i*| / u_i* over
    deals, ``spe_within_2pct`` (every party within 2 % and the SPE step, share of episodes)."""
    env, p = config.make_env(), config.env_params
    spe = solve_group_scenario_spe(env.scenario, p)
    deal = rec["deal"]
    out: dict[str, Any] = {"spe": {"outcome": spe.outcome, "step": spe.step,
                                   "utilities": None if spe.utilities is None
                                   else [float(x) for x in spe.utilities],
                                   "payoffs": [float(x) for x in spe.payoffs]}}
    same_outcome = deal if spe.outcome == "deal" else ~deal
    out["spe_step_match"] = float(np.mean(same_outcome & (rec["round"] == spe.step)))
    if spe.utilities is None or not deal.any():
        return out
    target = np.asarray(spe.utilities, float)
    err = np.abs(rec["utilities"] - target) / np.maximum(np.abs(target), 1e-9)
    out["spe_utility_error"] = err[deal].mean(axis=0).tolist()
    within = deal & (rec["round"] == spe.step) & np.all(err <= 0.02, axis=1)
    out["spe_within_2pct"] = float(within.mean())
    return out


def evaluate_group_policies(config: PPOConfig, params: dict, key: jax.Array,
                            num_episodes: int = 10_000) -> dict[str, Any]:
    """Greedy and stochastic self-play of the trained seats; on a complete-information
    scenario also the SPE distances of the greedy play (:func:`spe_distance`)."""
    env = config.make_env()
    k_g, k_s = jax.random.split(key)
    greedy, rec = play_summary(config, seat_policies(config, params, True), k_g, num_episodes)
    stochastic, _ = play_summary(config, seat_policies(config, params, False), k_s,
                                 num_episodes)
    out: dict[str, Any] = {"game": "group", "scenario": env.scenario.name,
                           "parties": list(env.agents), "episodes": num_episodes,
                           "complete_information": env.scenario.complete_information,
                           "greedy": greedy, "stochastic": stochastic}
    if env.scenario.complete_information:
        out["greedy"].update(spe_distance(config, rec))
    return out
