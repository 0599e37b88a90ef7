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
    return {**out, **parse_settings(getattr(a, "set", None))}


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


# ----------------------------------------------------------------------------- eqx solve
def solve_group(a: argparse.Namespace) -> None:
    """``eqx solve --game group --scenario FILE [--agents N] [--at-prior-mean]``: the exact SPE
    of the complete-information game, its per-step plan, explained."""
    from eqx_jax.cli.solve_multi_issue import private_field
    from eqx_jax.games.group import complete_information_group_game
    from eqx_jax.solvers.group import solve_group_spe

    if a.scenario is None:
        raise CliError("--game group needs --scenario FILE|NAME (e.g. supply-chain-3p-fixed)")
    try:
        sc = load_group_scenario(a.scenario, a.agents)
        field = private_field(sc)
        if field is not None and not a.at_prior_mean:
            raise CliError(f"{field} is drawn from a prior: the complete-information game needs "
                           "fixed values (use the scenario's -fixed version, or --at-prior-mean "
                           "to solve at the prior means)")
        fixed = sc.fixed()
        params = get_game("group").params(fixed, **group_settings(a))
        game = complete_information_group_game(fixed, params)
        spe = solve_group_spe(game)
    except ValueError as e:
        raise CliError(str(e)) from None
    d = group_spe_dict(fixed, game, spe, group_params_to_dict(params), a.at_prior_mean)
    if a.json:
        print_json(d)
        return
    print_group_spe(d)


def group_spe_dict(sc, game, spe, settings: dict[str, Any], at_prior_mean: bool
                   ) -> dict[str, Any]:
    """The JSON form of a group SPE: ``outcome``, ``agreement`` (issue values, labels for
    discrete issues), ``offer`` (natural units), ``step``, ``utilities`` / ``payoffs`` (one per
    party), ``plans`` (one per step) and ``explanation``."""
    from eqx_jax.references import mi_issue_values

    parties = list(sc.parties)
    plans = [{"step": pl.step, "mover": pl.mover, "move": pl.move,
              "on_path": pl.step <= spe.step, "offer": None if pl.offer is None else
              [float(x) for x in pl.offer], "offer_values": mi_issue_values(sc, pl.offer),
              "utilities": None if pl.utilities is None else [float(x) for x in pl.utilities],
              "value": dict(zip(parties, (float(x) for x in pl.alt), strict=True))}
             for pl in spe.plans]
    out = {"game": "group", "scenario": sc.name, "parties": parties,
           "at_prior_mean": bool(at_prior_mean), "settings": settings,
           "weights": {p: [float(x) for x in game.weights[i]] for i, p in enumerate(parties)},
           "reservation": {p: float(game.reservation[i]) for i, p in enumerate(parties)},
           "outcome": spe.outcome, "step": spe.step,
           "agreement": mi_issue_values(sc, spe.agreement),
           "offer": None if spe.agreement is None else [float(x) for x in spe.agreement],
           "utilities": None if spe.utilities is None else dict(
               zip(parties, (float(x) for x in spe.utilities), strict=True)),
           "payoffs": dict(zip(parties, (float(x) for x in spe.payoffs), strict=True)),
           "plans": plans}
    out["explanation"] = group_explanation(out)
    return out


def _show(values: dict[str, Any] | None) -> str:
    if values is None:
        return "-"
    return ", ".join(f"{k} {fmt(v, 2) if isinstance(v, float) else v}"
                     for k, v in values.items())


def group_explanation(d: dict[str, Any]) -> list[str]:
    """Plain-English lines: the game, the path of play step by step, the outcome."""
    s, parties, n = d["settings"], d["parties"], len(d["parties"])
    lines = [f"Complete-information group game {d['scenario']}: {n} parties "
             f"({', '.join(parties)}) act in this order, one per step; a deal needs the "
             f"{n - 1} parties after the author to accept in turn. T = {s['max_rounds']} "
             f"steps, {s['reward_model']} reward model (a deal at step t pays "
             f"{s['utility_scale']:g} (u_i - r_i) D_i(t) + B(t)). Backward induction from "
             f"step {s['max_rounds']}: at every step the mover's payoff of not accepting does "
             f"not depend on the standing offer."]
    path = [pl for pl in d["plans"] if pl["on_path"]]
    for pl in path:
        if pl["move"] == "counter":
            u = ", ".join(f"{p} {x:.4f}" for p, x in zip(parties, pl["utilities"], strict=True))
            lines.append(f"Step {pl['step']}: the {pl['mover']} proposes "
                         f"({_show(pl['offer_values'])}), the best outcome for it that every "
                         f"other party accepts in turn (each gets at least its payoff of "
                         f"rejecting); utilities {u}.")
            break
        lines.append(f"Step {pl['step']}: the {pl['mover']} plays {pl['move']} (worth "
                     f"{fmt(pl['value'][pl['mover']], 2)} to it).")
    if d["outcome"] == "deal":
        pays = ", ".join(f"{p} {fmt(x, 2)}" for p, x in d["payoffs"].items())
        lines.append(f"Outcome: deal on ({_show(d['agreement'])}) at step {d['step']} (the "
                     f"others accept at the steps after the proposal); payoffs {pays}.")
    else:
        pays = ", ".join(f"{p} {fmt(x, 2)}" for p, x in d["payoffs"].items())
        lines.append(f"Outcome: no deal ({d['outcome']} at step {d['step']}); payoffs {pays}.")
    return lines


def print_group_spe(d: dict[str, Any]) -> None:
    """The text form of :func:`group_spe_dict`."""
    s = d["settings"]
    where = " at the prior means" if d["at_prior_mean"] else ""
    print(f"Subgame-perfect equilibrium of the complete-information group game "
          f"{d['scenario']}{where} ({len(d['parties'])} parties, T = {s['max_rounds']} steps, "
          f"reward {s['reward_model']}):")
    print(f"  {'outcome':12s} {d['outcome']}")
    print(f"  {'agreement':12s} {_show(d['agreement'])}")
    print(f"  {'step':12s} {d['step']}")
    for key in ("utilities", "payoffs"):
        v = d[key]
        print(f"  {key:12s} " + ("-" if v is None else
                                 "  ".join(f"{p} {fmt(x, 4)}" for p, x in v.items())))
    print("Per-step plan (the mover's move when it does not accept; * = on the path):")
    for pl in d["plans"]:
        mark = "*" if pl["on_path"] else " "
        value = " / ".join(fmt(x, 2) for x in pl["value"].values())
        print(f"  {pl['step']:>4}{mark}  {pl['mover']:10}  {pl['move']:7}  value {value}  "
              f"({_show(pl['offer_values'])})")
    print("Explanation:")
    for line in d["explanation"]:
        print(f"  {line}")
