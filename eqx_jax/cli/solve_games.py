"""``eqx solve --game NAME``: the options and the output of the games other than the single-price
game (``price-quantity``, ``multi-issue``, ``bundles``), whose exact equilibria live in
:mod:`eqx_jax.solvers`.

``--game price`` (the default) is the single-price game and keeps its own options and output
(:func:`eqx_jax.cli.games.cmd_solve`); the options of one game are refused with the other.
:func:`cmd_solve_game` runs the solver of any other game (:data:`GAME_SOLVERS`).
"""

from __future__ import annotations

import argparse
from typing import Any

from eqx_jax.cli.common import CliError, fmt, option_error, print_json
from eqx_jax.cli.group import solve_group
from eqx_jax.cli.solve_bundles import BUNDLES_ONLY, add_bundles_args, cmd_solve_bundles
from eqx_jax.cli.solve_multi_issue import add_multi_issue_args, cmd_solve_multi_issue
from eqx_jax.solvers.price_quantity import solve_pq_spe

#: The games ``eqx solve`` can solve, the first the default.
SOLVE_GAMES: tuple[str, ...] = ("price", "price-quantity", "multi-issue", "bundles", "group")
#: The single-price game's price cap when ``--max-price`` is not given.
PRICE_GAME_MAX_PRICE = 10000.0
#: price-quantity defaults: the env's prior means (c ~ U[40, 60], a ~ U[140, 180]), its slope and
#: its offer bounds.
PQ_DEFAULTS: dict[str, float] = {"unit_cost": 50.0, "demand_intercept": 160.0,
                                 "demand_slope": 1.0, "max_price": 200.0, "max_quantity": 200.0}
#: Solver fields as the command line spells them.
PQ_OPTIONS: dict[str, str] = {
    "unit_cost": "--unit-cost", "demand_intercept": "--demand-intercept",
    "demand_slope": "--demand-slope", "max_rounds": "--rounds", "max_price": "--max-price",
    "max_quantity": "--max-quantity", "discount": "--discount",
    "discount[supplier]": "--discount", "discount[retailer]": "--discount",
}
# The single-price game's own options (dest -> option); refused with another game.
_PRICE_ONLY = {"supplier_low": "--supplier-low", "supplier_high": "--supplier-high",
               "retailer_low": "--retailer-low", "retailer_high": "--retailer-high",
               "supplier_value": "--supplier-value", "retailer_value": "--retailer-value",
               "proposer": "--proposer", "retailer_prior": "--retailer-prior",
               "timeout_payoff": "--timeout-payoff", "walk_payoff": "--walk-payoff",
               "retailer_high_prob": "--retailer-high-prob"}
_PQ_ONLY = {"unit_cost": "--unit-cost", "demand_intercept": "--demand-intercept",
            "demand_slope": "--demand-slope", "max_quantity": "--max-quantity"}
# The multi-issue options (dest -> option); refused with another game (False/None: not given).
_MI_ONLY = {"scenario": "--scenario", "at_prior_mean": "--at-prior-mean"}
_MI_DEFAULTS = {"scenario": None, "at_prior_mean": False}


def add_solve_game_args(p: argparse.ArgumentParser) -> None:
    """``--game`` and the price-quantity options of ``eqx solve`` (after the shared game
    options); ``--max-price`` defaults to the chosen game's own cap."""
    if not any("--game" in act.option_strings for act in p._actions):
        p.add_argument("--game", choices=SOLVE_GAMES, default=SOLVE_GAMES[0],
                       help="the game to solve (default price)")
    g = p.add_argument_group("price-quantity settings (--game price-quantity)")
    g.add_argument("--unit-cost", type=float, default=None,
                   help=f"supplier's unit cost c (default {PQ_DEFAULTS['unit_cost']:g})")
    g.add_argument("--demand-intercept", type=float, default=None,
                   help=f"retailer's demand intercept a, value V(q) = a q - b q^2/2 "
                        f"(default {PQ_DEFAULTS['demand_intercept']:g})")
    g.add_argument("--demand-slope", type=float, default=None,
                   help=f"demand slope b > 0 (default {PQ_DEFAULTS['demand_slope']:g})")
    g.add_argument("--max-quantity", type=float, default=None,
                   help=f"quantity cap (default {PQ_DEFAULTS['max_quantity']:g})")
    for act in p._actions:
        if act.dest == "max_price":
            act.default = None
            act.help = (f"price cap (default {PRICE_GAME_MAX_PRICE:g} for --game price, "
                        f"{PQ_DEFAULTS['max_price']:g} per unit for price-quantity)")
    add_multi_issue_args(p)
    p.add_argument("--agents", type=int, default=None,
                   help="--game group: solve the scenario's first N parties")
    add_bundles_args(p)
    p.set_defaults(_price_only_defaults={k: p.get_default(k) for k in _PRICE_ONLY})


def _refuse(a: argparse.Namespace, options: dict[str, str], defaults: dict[str, Any],
            game: str) -> None:
    for dest, option in options.items():
        if getattr(a, dest, None) != defaults.get(dest):
            raise CliError(f"{option} does not apply to --game {game}")


def prepare_price_game(a: argparse.Namespace) -> None:
    """For ``--game price``: refuse the price-quantity and multi-issue options, fill in the
    price cap."""
    _refuse(a, _PQ_ONLY, {}, "price")
    _refuse(a, _MI_ONLY, _MI_DEFAULTS, "price")
    _refuse(a, {"agents": "--agents"}, {}, "price")
    _refuse(a, BUNDLES_ONLY, {}, "price")
    if a.max_price is None:
        a.max_price = PRICE_GAME_MAX_PRICE


def _pq_settings(a: argparse.Namespace) -> dict[str, Any]:
    """The solver's arguments from the options (defaults from :data:`PQ_DEFAULTS`)."""
    def pick(dest: str) -> float:
        value = getattr(a, dest)
        return PQ_DEFAULTS[dest] if value is None else value

    return {"unit_cost": pick("unit_cost"), "demand_intercept": pick("demand_intercept"),
            "demand_slope": pick("demand_slope"), "max_rounds": a.rounds,
            "reward_model": a.reward, "max_price": pick("max_price"),
            "max_quantity": pick("max_quantity"), "discount": tuple(a.discount)}


def cmd_solve_price_quantity(a: argparse.Namespace) -> None:
    """``eqx solve --game price-quantity``: the exact SPE, its per-round plan, explained."""
    _refuse(a, _PRICE_ONLY, a._price_only_defaults, "price-quantity")
    kw = _pq_settings(a)
    try:
        spe = solve_pq_spe(kw.pop("unit_cost"), kw.pop("demand_intercept"),
                           kw.pop("demand_slope"), kw.pop("max_rounds"), **kw)
    except ValueError as e:
        raise option_error(e, PQ_OPTIONS) from None
    if a.json:
        print_json({"game": "price-quantity", "settings": _pq_settings(a), **spe.to_dict()})
        return
    print_pq_spe(spe.to_dict(), _pq_settings(a))


def _solve_multi_issue(a: argparse.Namespace) -> None:
    """``eqx solve --game multi-issue`` (:mod:`eqx_jax.cli.solve_multi_issue`)."""
    _refuse(a, _PRICE_ONLY, a._price_only_defaults, "multi-issue")
    _refuse(a, {**_PQ_ONLY, "max_price": "--max-price"}, {}, "multi-issue")
    cmd_solve_multi_issue(a)


def _solve_group(a: argparse.Namespace) -> None:
    """``eqx solve --game group`` (:mod:`eqx_jax.cli.group`)."""
    _refuse(a, _PRICE_ONLY, a._price_only_defaults, "group")
    _refuse(a, {**_PQ_ONLY, "max_price": "--max-price"}, {}, "group")
    solve_group(a)


#: ``eqx solve --game NAME`` for every game but ``price``: the handler of each.
GAME_SOLVERS = {"price-quantity": cmd_solve_price_quantity, "multi-issue": _solve_multi_issue,
                "bundles": cmd_solve_bundles, "group": _solve_group}


def cmd_solve_game(a: argparse.Namespace) -> None:
    """``eqx solve`` for a game other than ``price`` (:data:`GAME_SOLVERS`)."""
    if a.game != "bundles":
        _refuse(a, BUNDLES_ONLY, {}, a.game)
    if a.game not in ("multi-issue", "group"):
        _refuse(a, _MI_ONLY, _MI_DEFAULTS, a.game)
    if a.game != "group" and a.agents is not None:
        raise CliError(f"--agents does not apply to --game {a.game} (a group setting)")
    GAME_SOLVERS[a.game](a)


def _pair(v: list[float] | None) -> str:
    return "-" if v is None else f"{fmt(v[0], 2)} / {fmt(v[1], 2)}"


def print_pq_spe(d: dict[str, Any], s: dict[str, Any]) -> None:
    """The text form of a price-quantity SPE (``PQSPE.to_dict()``) for the settings ``s``."""
    print(f"Subgame-perfect equilibrium of the complete-information price-quantity game "
          f"(c = {s['unit_cost']:g}, a = {s['demand_intercept']:g}, b = {s['demand_slope']:g}, "
          f"T = {s['max_rounds']}, reward {s['reward_model']}, max_price {s['max_price']:g}, "
          f"max_quantity {s['max_quantity']:g}):")
    for key in ("outcome", "price", "quantity", "round", "supplier_payoff", "retailer_payoff",
                "efficient_quantity", "efficiency"):
        v = d[key]
        print(f"  {key:20s} {'-' if v is None else fmt(v, 4)}")
    print("Per-round plan (the full strategy; * = on the equilibrium path):")
    print(f"  {'round':>5}  {'mover':8}  {'kind':9}  {'counter (p, q)':>20}  "
          f"{'value supplier / retailer':>26}  accepts a standing offer")
    for pl in d["plans"]:
        counter = "-" if pl["price"] is None else \
            f"({fmt(pl['price'], 2)}, {fmt(pl['quantity'], 2)})"
        mark = "*" if pl["on_path"] else " "
        print(f"  {pl['round']:>4}{mark}  {pl['mover']:8}  {pl['kind']:9}  {counter:>20}  "
              f"{_pair(pl['value']):>26}  {pl['accept_rule'] or '- (no standing offer)'}")
    print("Explanation:")
    for line in d["explanation"]:
        print(f"  {line}")
