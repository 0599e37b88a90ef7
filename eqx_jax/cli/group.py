"""``eqx simulate --game group`` and ``eqx solve --game group``: N parties at one table."""

from __future__ import annotations

import argparse
from typing import Any

import jax
import numpy as np

from eqx_jax import simulate
from eqx_jax.cli.common import CliError, fmt, print_json
from eqx_jax.games.group import GroupEnv, group_params_to_dict, load_group_scenario
from eqx_jax.games.group_metrics import group_metrics
from eqx_jax.games.registry import get_game
from eqx_jax.negotiators import GAME_NEGOTIATORS

#: The negotiators a seat can be given (the classic ones and NegMAS's exact copies).
GROUP_NEGOTIATORS = tuple(GAME_NEGOTIATORS) + ("negmas_boulware", "negmas_linear",
                                               "negmas_conceder")
DEFAULT_SCENARIO = "supply-chain-3p"


def group_settings(a: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line: ``--rounds`` and ``--reward`` where they differ
    from their defaults (10, seed: the scenario's own settings otherwise, as ``eqx solve --game
    multi-issue`` reads them), ``--set KEY=VALUE`` (per-party fields as lists)."""
    from eqx_jax.cli.games import parse_settings

    if tuple(a.discount) != (0.95, 0.95):
        raise CliError("--discount takes two numbers; in the group game give one per party "
                       "with --set discount=[0.9,0.9,0.9]")
    out: dict[str, Any] = {}
    if a.rounds != 10:
        out["max_rounds"] = a.rounds
    if a.reward != "seed":
        out["reward_model"] = a.reward
    return {**out, **parse_settings(a.set)}


def group_env_and_params(a: argparse.Namespace) -> tuple[GroupEnv, Any]:
    """The env and validated params of ``--scenario`` (default supply-chain-3p) and
    ``--agents``; a bad value is a :class:`CliError` naming the field."""
    scenario = a.scenario or DEFAULT_SCENARIO
    spec = get_game("group")
    try:
        sc = load_group_scenario(scenario, a.agents)
        return spec.env(sc), spec.params(sc, **group_settings(a))
    except ValueError as e:
        raise CliError(str(e)) from None


def seat_negotiators(spec: str | None, env: GroupEnv) -> list[str]:
    """``--negotiators NAME[,NAME...]``: one name for every seat, or one per seat."""
    names = (spec or "linear").split(",")
    if len(names) == 1:
        names = names * env.num_agents
    if len(names) != env.num_agents:
        raise CliError(f"--negotiators must be one name or {env.num_agents} names (one per "
                       f"party: {', '.join(env.agents)}), got {len(names)}")
    for x in names:
        if x not in GROUP_NEGOTIATORS:
            raise CliError(f"--negotiators: {x!r} is not one of {', '.join(GROUP_NEGOTIATORS)}")
    return names


def simulate_group(a: argparse.Namespace) -> None:
    """Play one negotiator per seat over ``--episodes`` episodes; print the N-party metrics."""
    if a.tournament:
        raise CliError("--tournament pairs two negotiators; in the group game choose one per "
                       "seat with --negotiators NAME[,NAME...]")
    env, params = group_env_and_params(a)
    names = seat_negotiators(a.negotiators, env)
    try:
        rec = simulate.play_group(jax.random.key(a.seed), params, names, a.episodes, env)
    except ValueError as e:
        raise CliError(str(e)) from None
    m = group_metrics(env.scenario, rec["utilities"], rec["deal"], rec["weights"],
                      rec["reservation"])
    m.pop("per_episode")
    deal = rec["deal"]
    summary = {**m, "mean_steps": float(rec["round"].mean()),
               "mean_steps_of_deals": float(rec["round"][deal].mean()) if deal.any() else None,
               "walk_rate": float(rec["walk_away"].mean()),
               "timeout_rate": float(rec["timeout"].mean()),
               "mean_reward": rec["rewards"].mean(axis=0).tolist()}
    if a.json:
        print_json({"game": "group", "scenario": env.scenario.name, "parties": env.agents,
                    "negotiators": names, "settings": group_params_to_dict(params),
                    "metrics": summary})
        return
    print(f"{env.scenario.name}: {env.num_agents} parties "
          f"({', '.join(f'{p}={n}' for p, n in zip(env.agents, names, strict=True))}), "
          f"{a.episodes:,} episodes, T = {params.max_rounds} steps")
    for k, v in summary.items():
        if isinstance(v, list):
            v = "  ".join(f"{p} {fmt(x)}" for p, x in zip(env.agents, v, strict=True))
        print(f"  {k:26s} {v if isinstance(v, str) else fmt(v)}")


def weights_summary(env: GroupEnv) -> dict[str, Any]:
    """The complete-information game's fixed values (the prior means), per party."""
    sc = env.scenario.fixed()
    w = sc.weight_low / sc.weight_low.sum(axis=1, keepdims=True)
    return {p: {"weights": np.round(w[i], 6).tolist(), "reservation": float(
        sc.reservation_low[i])} for i, p in enumerate(env.agents)}
