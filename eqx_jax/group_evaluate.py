"""Trained agents of the group game (N parties) against the truth: greedy and stochastic play,
the N-party outcome metrics, the distance from the exact SPE on a complete-information
scenario, and the exploitability of each seat by a PPO best response.

Plain-Python orchestration around jitted JAX (:func:`eqx_jax.simulate.play_group_batch`);
returns JSON-ready dicts. ``params``: one run's parameters dict (network name -> params), the
network of each seat given by ``config.network_for(party)`` (self-play: one shared network).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from eqx_jax.checks import check_number
from eqx_jax.games.group import GROUP_OBS_INDEX, solve_group_scenario_spe
from eqx_jax.games.group_metrics import group_metrics
from eqx_jax.negotiators import Policy
from eqx_jax.ppo import (
    PPOConfig,
    best_response_config,
    make_policy,
    make_train_chunked,
    warm_start,
)
from eqx_jax.references import mi_mean_surplus
from eqx_jax.simulate import play_group_batch, role_policy


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


def by_seat(policies: list[Policy]) -> Policy:
    """One policy that plays ``policies[i]`` for the party in seat i (the observation's
    ``role`` field)."""
    return role_policy(policies, GROUP_OBS_INDEX["role"])


def _seat_entry(seat: int, br_recs: list[dict], trained: dict, metrics: dict, party: str,
                surplus: float) -> dict[str, Any]:
    """One seat's entry of :func:`group_exploitability`: the seed whose best response
    evaluates best (its mean reward in seat ``seat``) against the trained seat on the same
    episodes; ``br_recs`` one record per seed, ``trained`` the all-trained record."""
    rewards = [float(r["rewards"][:, seat].mean()) for r in br_recs]
    best = int(np.argmax(rewards))
    rec = br_recs[best]
    trained_reward = float(trained["rewards"][:, seat].mean())
    gain = rewards[best] - trained_reward
    curve = np.asarray(metrics[f"return_{party}"][best])
    return {
        "best_response_reward": rewards[best], "trained_reward": trained_reward,
        "gain": gain, "gain_share": gain / surplus if surplus > 0 else math.nan,
        "best_response_deal_rate": float(rec["deal"].mean()),
        "trained_deal_rate": float(trained["deal"].mean()),
        "best_response_utility": float(rec["utilities"][:, seat].mean()),
        "trained_utility": float(trained["utilities"][:, seat].mean()),
        "best_response_mean_steps": float(rec["round"].mean()),
        "best_response_seed_rewards": rewards,
        "best_response_train_return": float(curve[-max(1, curve.size // 10):].mean()),
    }


def group_exploitability(config: PPOConfig, params: dict, key: jax.Array,
                         total_timesteps: int | None = None, *, num_episodes: int = 10_000,
                         num_seeds: int = 1, deterministic: bool = True,
                         br_init: str = "incumbent") -> dict[str, Any]:
    """How much a PPO best response in each seat gains against the other seats' frozen
    trained policies (the two-party :func:`eqx_jax.evaluate.exploitability`, per seat).

    For every seat i at once (one run, :func:`eqx_jax.ppo.best_response_config`: N
    equal blocks of envs, in block i a fresh network plays seat i): the trained policies
    of every seat, frozen (greedy if ``deterministic``), play the other seats; a PPO network
    learns seat i for ``total_timesteps`` env steps, starting from seat i's trained weights
    (``br_init="incumbent"``, the default) or fresh (``"fresh"``;
    :func:`eqx_jax.ppo.warm_start`); ``num_seeds`` runs train at once
    and per seat the best-evaluating one is kept. Evaluation: seat i's best response (greedy)
    with the frozen others against the all-trained table on the *same* ``num_episodes``
    episodes (same key). ``gain`` = mean reward difference in seat i (reward units) and
    ``gain_share`` = gain / the mean available surplus (:func:`eqx_jax.references.
    mi_mean_surplus` of the seated scenario: ``utility_scale`` times the largest joint gain
    over the reservation values, reward units before the reward model).

    Returns ``{"total_timesteps", "num_episodes", "num_seeds", "deterministic",
    "mean_available_surplus", "seats": {party: {...}}, "max_gain", "max_gain_share"}``. A PPO
    best response is a lower bound on the true exploitability (a local optimiser with a finite
    budget; it can come out negative when undertrained).
    """
    n = int(check_number("num_episodes", num_episodes, 1, integer=True))
    env, p = config.make_env(), config.env_params
    frozen = seat_policies(config, params, deterministic)
    br_cfg = best_response_config(config, total_timesteps, num_seeds)
    k_train, k_eval = jax.random.split(key)
    init, train_chunk = make_train_chunked(br_cfg, opponent_policy=by_seat(frozen))
    runner = warm_start(init(k_train), config, params, br_init)
    runner, metrics = train_chunk(runner, br_cfg.num_updates)

    def tables(br_params):  # seat i: its best response, the others frozen
        return [play_group_batch(k_eval, p, frozen[:i] + [make_policy(
            br_params[party], br_cfg, deterministic=True)] + frozen[i + 1:], n, env)
            for i, party in enumerate(env.agents)]

    br, trained = jax.jit(lambda bp: (jax.vmap(tables)(bp),
                                      play_group_batch(k_eval, p, frozen, n, env)))(
        runner.params)
    br = jax.tree.map(np.asarray, br)
    trained = jax.tree.map(np.asarray, trained)
    surplus = mi_mean_surplus(env.scenario, float(p.utility_scale))
    seats = {party: _seat_entry(i, [{k: v[s] for k, v in br[i].items()}
                                    for s in range(num_seeds)], trained, metrics, party, surplus)
             for i, party in enumerate(env.agents)}
    max_gain = max(x["gain"] for x in seats.values())
    return {"total_timesteps": br_cfg.total_timesteps // len(env.agents), "num_episodes": n,
            "num_seeds": num_seeds, "deterministic": bool(deterministic), "br_init": br_init,
            "mean_available_surplus": surplus, "seats": seats, "max_gain": max_gain,
            "max_gain_share": max_gain / surplus if surplus > 0 else math.nan}
