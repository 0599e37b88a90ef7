"""``eqx simulate`` and ``eqx solve``: classic negotiators over vectorized episodes, and the
game's exact equilibrium with its plain-English explanation."""

from __future__ import annotations

import argparse
from typing import Any

import jax
import yaml

from eqx_jax import equilibrium, simulate
from eqx_jax.cli import solve_games
from eqx_jax.cli.common import (
    GAME_OPTIONS,
    CliError,
    add_game_args,
    fmt,
    option_error,
    params_from_args,
    positive_int,
    print_json,
    print_table,
)
from eqx_jax.cli.group import simulate_group
from eqx_jax.env import EnvParams, game_settings, params_to_dict, spe_kwargs
from eqx_jax.games.registry import DEFAULT_GAME, GAMES, get_game
from eqx_jax.metrics import nash_bargaining_solution, summarize
from eqx_jax.negotiators import GAME_NEGOTIATORS, NEGOTIATORS


def parse_settings(pairs: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as a settings dict (values parsed as YAML scalars/lists:
    ``--set discount=[0.9,0.8]``); a malformed one is a :class:`CliError`."""
    out: dict[str, Any] = {}
    for item in pairs or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set takes KEY=VALUE (a game setting), got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def game_params_from_args(a: argparse.Namespace) -> Any:
    """Validated settings of a game beyond one price: ``--rounds``, ``--reward``,
    ``--discount`` and every ``--set KEY=VALUE`` (the price game's valuation options are
    refused: the other games have their own private values, set with ``--set``)."""
    price_only = {"--max-price": (a.max_price, 10000.0), "--supplier-low": (a.supplier_low, 4000.0),
                  "--supplier-high": (a.supplier_high, 6000.0),
                  "--retailer-low": (a.retailer_low, 7000.0),
                  "--retailer-high": (a.retailer_high, 9000.0),
                  "--supplier-value": (a.supplier_value, None),
                  "--retailer-value": (a.retailer_value, None)}
    for option, (value, default) in price_only.items():
        if value != default:
            raise CliError(f"{option} is a setting of the price game; with --game {a.game} use "
                           "--set KEY=VALUE with the game's settings (docs/games.md)")
    settings = {"max_rounds": a.rounds, "reward_model": a.reward,
                "discount": tuple(a.discount), **parse_settings(a.set)}
    try:
        return get_game(a.game).params(a.scenario, **settings)
    except ValueError as e:
        raise CliError(str(e)) from None


def _simulate_game(a: argparse.Namespace) -> None:
    """``eqx simulate --game NAME`` for the games beyond one price."""
    params = game_params_from_args(a)
    env = get_game(a.game).env(a.scenario)
    key = jax.random.key(a.seed)
    for side in ("supplier", "retailer"):
        if getattr(a, side) not in GAME_NEGOTIATORS:
            raise CliError(f"--{side} must be one of {', '.join(GAME_NEGOTIATORS)} in the "
                           f"{a.game} game, got {getattr(a, side)!r}")
    settings = get_game(a.game).params_to_dict(params)
    if a.tournament:
        rows = simulate.tournament(key, params, num_episodes=a.episodes, env=env)
        if a.json:
            print_json({"game": a.game, "settings": settings, "episodes_per_pair": a.episodes,
                        "tournament": rows})
            return
        print(f"Tournament of classic negotiators in the {a.game} game: {a.episodes:,} "
              f"episodes per pairing")
        cols = [("supplier", "supplier", 11), ("retailer", "retailer", 11),
                ("deal_rate", "deal", 6), ("mean_rounds", "rounds", 6)]
        cols += [(k, k.replace("mean_", "")[:8], 8) for k in rows[0]
                 if k.startswith("mean_") and k != "mean_rounds" or k == "efficiency"]
        cols += [("supplier_reward", "R_sup", 8), ("retailer_reward", "R_ret", 8)]
        print_table(rows, cols)
        return
    summary = simulate.summarize_game(
        simulate.play(key, params, a.supplier, a.retailer, a.episodes, env), env)
    if a.json:
        print_json({"game": a.game, "settings": settings, "supplier": a.supplier,
                    "retailer": a.retailer, "metrics": summary})
        return
    print(f"{a.supplier} (supplier) vs {a.retailer} (retailer) in the {a.game} game, "
          f"{a.episodes:,} episodes")
    for k, v in summary.items():
        print(f"  {k:24s} {fmt(v)}")


def cmd_simulate(a: argparse.Namespace) -> None:
    """``eqx simulate``: one pairing, or every pairing (``--tournament``) and the equilibrium."""
    positive_int("--episodes", a.episodes, 10_000_000)
    if a.game == "group":
        simulate_group(a)
        return
    if a.agents is not None or a.negotiators is not None:
        raise CliError("--agents and --negotiators are settings of --game group")
    if a.game != DEFAULT_GAME:
        _simulate_game(a)
        return
    if a.set or a.scenario:
        raise CliError("--set KEY=VALUE and --scenario are settings of the games beyond one "
                       "price; the price game has its own options (--rounds, --supplier-low, "
                       "...)")
    params = params_from_args(a)
    positive_int("--episodes", a.episodes, 10_000_000)
    key = jax.random.key(a.seed)
    for side in ("supplier", "retailer"):
        if getattr(a, side) not in NEGOTIATORS:
            raise CliError(f"--{side} must be one of {', '.join(NEGOTIATORS)}, "
                           f"got {getattr(a, side)!r}")
    if a.tournament:
        rows = simulate.tournament(key, params, num_episodes=a.episodes)
        eq = equilibrium_summary(params)
        if a.json:
            print_json({"game": params_to_dict(params), "episodes_per_pair": a.episodes,
                         "tournament": rows, "equilibrium": eq})
            return
        print(f"Tournament of classic negotiators: {a.episodes:,} episodes per pairing, "
              f"{_game_line(params)}\n")
        print_table(rows, [
            ("supplier", "supplier", 11), ("retailer", "retailer", 11),
            ("deal_rate", "deal", 6), ("mean_rounds", "rounds", 6), ("mean_price", "price", 8),
            ("nash_distance", "nash_d", 6), ("pareto_score", "pareto", 6),
            ("surplus_captured", "surplus", 7), ("welfare_efficiency", "welfare", 7),
            ("supplier_reward", "R_sup", 8),
            ("retailer_reward", "R_ret", 8),
        ])
        print()
        print_equilibrium(eq)
        return
    rec = simulate.play(key, params, a.supplier, a.retailer, a.episodes)
    summary = summarize(rec, game_settings(params))
    if a.json:
        print_json({"game": params_to_dict(params), "supplier": a.supplier,
                     "retailer": a.retailer, "metrics": summary})
        return
    print(f"{a.supplier} (supplier) vs {a.retailer} (retailer), {a.episodes:,} episodes, "
          f"{_game_line(params)}")
    for k, v in summary.items():
        print(f"  {k:24s} {fmt(v)}")


def _game_line(p: EnvParams) -> str:
    rm = params_to_dict(p)["reward_model"]
    return (f"T={p.max_rounds}, reward={rm}, supplier U[{p.supplier_low:g}, {p.supplier_high:g}], "
            f"retailer U[{p.retailer_low:g}, {p.retailer_high:g}]")


def equilibrium_summary(params: EnvParams) -> dict:
    """The SPE at the prior means (complete information), the NBS, and the
    incomplete-information references (Chatterjee-Samuelson, Myerson-Satterthwaite)."""
    v_s = (params.supplier_low + params.supplier_high) / 2
    v_r = (params.retailer_low + params.retailer_high) / 2
    game = spe_kwargs(params)
    spe = equilibrium.solve_spe(v_s, v_r, params.max_rounds, **game).to_dict()
    return {
        "supplier_value": v_s, "retailer_value": v_r,
        "spe": spe,
        "nash_bargaining_solution": game_nbs(params, v_s, v_r),
        **incomplete_info_references(params),
    }


def game_nbs(params: EnvParams, v_s: float, v_r: float) -> dict:
    """The Nash bargaining solution of the game ``params`` with valuations ``v_s``, ``v_r``."""
    game = spe_kwargs(params)
    return nash_bargaining_solution(
        v_s, v_r, params.max_rounds, reward_model=game["reward_model"],
        max_price=params.max_price, speed_bonus=params.speed_bonus,
        bonus_fraction=params.bonus_fraction, discount=params.discount,
        disagreement=params.timeout_payoff)


def incomplete_info_references(params: EnvParams) -> dict:
    """Chatterjee-Samuelson and Myerson-Satterthwaite for the priors (None if a prior is a point:
    with a known valuation there is no incomplete-information problem to reference)."""
    priors = (params.supplier_low, params.supplier_high, params.retailer_low, params.retailer_high)
    if params.supplier_low >= params.supplier_high or params.retailer_low >= params.retailer_high:
        return {"chatterjee_samuelson": None, "myerson_satterthwaite": None}
    return {"chatterjee_samuelson": equilibrium.chatterjee_samuelson(*priors),
            "myerson_satterthwaite": equilibrium.myerson_satterthwaite(*priors)}


def print_equilibrium(eq: dict) -> None:
    """The text form of :func:`equilibrium_summary` (SPE, NBS, incomplete-info references)."""
    spe, nbs = eq["spe"], eq["nash_bargaining_solution"]
    where = eq.get("where", "at the prior means")
    print(f"Equilibrium of the complete-information game {where} "
          f"(V_s = {eq['supplier_value']:,.2f}, V_r = {eq['retailer_value']:,.2f}):")
    if spe["outcome"] == "agreement":
        print(f"  subgame-perfect equilibrium: agreement at {spe['price']:,.2f} in round "
              f"{spe['round']}, payoffs supplier {spe['supplier_payoff']:,.2f}, "
              f"retailer {spe['retailer_payoff']:,.2f}")
    else:
        print(f"  subgame-perfect equilibrium: no agreement ({spe['end']} in round "
              f"{spe['round']}), payoffs {spe['supplier_payoff']:g} / {spe['retailer_payoff']:g}")
    for line in spe["explanation"]:
        print(f"    {line}")
    if nbs["outcome"] == "agreement":
        print(f"  Nash bargaining solution: {nbs['price']:,.2f} in round {nbs['round']} "
              f"(the founding design's midpoint: "
              f"{(eq['supplier_value'] + eq['retailer_value']) / 2:,.2f})")
    cs, ms = eq["chatterjee_samuelson"], eq["myerson_satterthwaite"]
    if cs is None or ms is None:
        return
    print("Incomplete information, uniform priors (k = 1/2 double auction references):")
    if cs["equilibrium"] == "posted_price":
        print("  the priors do not overlap, so there are always gains from trade: any single "
              f"posted price between the supports is an efficient equilibrium "
              f"(expected gains {cs['gains']:,.2f} = first best)")
    else:
        print(f"  Chatterjee-Samuelson linear equilibrium: the supplier asks "
              f"{cs['seller_slope']:.4g} V_s + {cs['seller_intercept']:,.2f}, the retailer bids "
              f"{cs['buyer_slope']:.4g} V_r + {cs['buyer_intercept']:,.2f}; trade iff "
              f"V_r - V_s >= {cs['trade_threshold']:,.2f} "
              f"({'valid' if cs['valid'] else 'not an equilibrium here: ' + cs['reason']})")
    ratio = "n/a" if ms["ratio"] is None else f"{ms['ratio']:.4f}"
    print(f"  Myerson-Satterthwaite second best: trade iff V_r - V_s >= {ms['g']:,.2f}, expected "
          f"gains {ms['second_best_gains']:,.2f} of a first best {ms['first_best_gains']:,.2f} "
          f"(ratio {ratio})")


def cmd_solve(a: argparse.Namespace) -> None:
    """``eqx solve``: the exact SPE of the complete-information game, explained (``--game
    price``, the default, here; the other games in :mod:`eqx_jax.cli.solve_games`)."""
    game_name = getattr(a, "game", "price")
    if game_name not in solve_games.SOLVE_GAMES:
        raise CliError(f"eqx solve has no exact solver for --game {game_name} (it solves "
                       f"{', '.join(solve_games.SOLVE_GAMES)})")
    if game_name != "price":
        solve_games.cmd_solve_game(a)
        return
    solve_games.prepare_price_game(a)
    if a.proposer != "alternate":
        solve_one_sided(a)
        return
    v_s = 5000.0 if a.supplier_value is None else a.supplier_value
    v_r = 8000.0 if a.retailer_value is None else a.retailer_value
    # The valuations are the solver's input; the game's priors stay as given (for the
    # incomplete-information references), so do not fold the values into the priors here.
    a.supplier_value = a.retailer_value = None
    params = params_from_args(a)
    game = spe_kwargs(params)
    try:
        spe = equilibrium.solve_spe(v_s, v_r, params.max_rounds, **game)
    except ValueError as e:
        raise option_error(e, GAME_OPTIONS) from None
    d = spe.to_dict()
    d["nash_bargaining_solution"] = game_nbs(params, v_s, v_r)
    if a.json:
        print_json(d)
        return
    print_equilibrium({"where": "with both valuations known",
                       "supplier_value": v_s, "retailer_value": v_r, "spe": d,
                       "nash_bargaining_solution": d["nash_bargaining_solution"],
                       **incomplete_info_references(params)})


def solve_one_sided(a: argparse.Namespace) -> None:
    """``eqx solve --proposer supplier|retailer --retailer-prior two_type --reward
    discounted``: the perfect Bayesian equilibrium with a two-type retailer
    (:func:`eqx_jax.solvers.one_sided.solve_one_sided_pbe`), the supplier's cost
    ``--supplier-value`` (default 5000), the types ``--retailer-low`` / ``--retailer-high``."""
    from eqx_jax.solvers.one_sided import solve_one_sided_pbe

    if a.retailer_prior != "two_type" or a.reward != "discounted" or a.retailer_value:
        raise CliError(f"--proposer {a.proposer}: eqx solve computes the perfect Bayesian "
                       "equilibrium with a two-type retailer under the discounted model; add "
                       "--retailer-prior two_type --reward discounted (and no --retailer-value)")
    cost = 5000.0 if a.supplier_value is None else a.supplier_value
    params = params_from_args(a)
    try:
        pbe = solve_one_sided_pbe(
            cost, float(params.retailer_low), float(params.retailer_high),
            float(params.retailer_high_prob), int(params.max_rounds),
            discount=tuple(params.discount), timeout_payoff=tuple(params.timeout_payoff),
            walk_payoff=tuple(params.walk_payoff), max_price=float(params.max_price),
            proposer=a.proposer)
    except ValueError as e:
        raise option_error(e, {**GAME_OPTIONS, "cost": "--supplier-value",
                               "v_low": "--retailer-low", "v_high": "--retailer-high",
                               "prob_high": "--retailer-high-prob"}) from None
    d = pbe.to_dict()
    if a.json:
        print_json(d)
        return
    print(f"Perfect Bayesian equilibrium, {a.proposer} proposes: supplier cost {cost:,.2f}, "
          f"retailer {params.retailer_high:,.2f} with probability "
          f"{params.retailer_high_prob:g}, else {params.retailer_low:,.2f}")
    print(f"  offers {', '.join(f'{x:,.2f}' for x in d['price_path'])}; beliefs "
          f"{', '.join(f'{x:.4f}' for x in d['belief_path'])}")
    print(f"  high type accepts in round {d['high_accept_round']} (first with positive "
          f"probability in round {d['high_accept_round_first']}), low type in round "
          f"{d['low_accept_round']}")
    print(f"  payoffs: supplier {d['supplier_payoff']:,.2f}, high type "
          f"{d['high_payoff']:,.2f}, low type {d['low_payoff']:,.2f}")
    for line in d["explanation"]:
        print(f"    {line}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``simulate`` and ``solve``."""
    p = sub.add_parser("simulate", help="play classic negotiators over vectorized episodes",
                       description="Play two classic negotiators (or all of them, --tournament) "
                                   "over many vectorized episodes and print the metrics.")
    p.add_argument("--episodes", type=int, default=10_000,
                   help="episodes (per pairing in a tournament; default 10000)")
    p.add_argument("--supplier", default="boulware", help="supplier negotiator (default boulware)")
    p.add_argument("--retailer", default="conceder", help="retailer negotiator (default conceder)")
    p.add_argument("--tournament", action="store_true",
                   help="every negotiator against every other, plus the game's equilibrium")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--game", default=DEFAULT_GAME, choices=sorted(GAMES),
                   help=f"the game (default {DEFAULT_GAME}; docs/games.md)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a setting of the --game (repeatable), e.g. --set cost_low=40")
    p.add_argument("--scenario", default=None,
                   help="multi-issue, group: a scenario file or a name in configs/scenarios/")
    p.add_argument("--agents", type=int, default=None,
                   help="group: play the scenario's first N parties (2 <= N <= its parties)")
    p.add_argument("--negotiators", default=None, metavar="NAME[,NAME...]",
                   help="group: one negotiator for every seat or one per seat (default linear; "
                        "also negmas_boulware, negmas_linear, negmas_conceder)")
    add_game_args(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("solve", help="subgame-perfect equilibrium of the complete-info game",
                       description="Solve the complete-information game by backward induction "
                                   "(exact) and print the subgame-perfect equilibrium.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_game_args(p)
    solve_games.add_solve_game_args(p)
    p.set_defaults(func=cmd_solve)
