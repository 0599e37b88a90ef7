"""``eqx solve --game bundles --instance "1,2,3 8,1,0 4,0,2"``: the exact subgame-perfect
equilibrium of one complete-information instance of OpenSpiel's bargaining game
(:func:`eqx_jax.solvers.bundles.solve_spe`), its per-turn plan and a plain-English explanation,
or one JSON object.

Units: item counts; values and returns in value points (each player's pool is worth 10 in
OpenSpiel's instances); turns 1-indexed (player 0, the ``supplier``, moves on odd turns).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from eqx_jax.checks import FieldError, check_number
from eqx_jax.cli.common import CliError, fmt, option_error, print_json
from eqx_jax.games.bundles import parse_instances
from eqx_jax.solvers.bundles import TIE_EPS, BundlesSPE, max_welfare, solve_spe

#: The instance solved when ``--instance`` is not given (OpenSpiel's format, its example).
DEFAULT_INSTANCE = "1,2,3 8,1,0 4,0,2"
#: OpenSpiel's defaults of the game's settings.
BUNDLES_DEFAULTS: dict[str, Any] = {"max_turns": 10, "discount": 1.0, "prob_end": 0.0}
#: Solver fields as the command line spells them.
BUNDLES_OPTIONS: dict[str, str] = {"max_turns": "--max-turns", "discount": "--discount",
                                   "prob_end": "--prob-end"}
#: The bundles options (dest -> option), refused with the other games (None: not given).
BUNDLES_ONLY: dict[str, str] = {"instance": "--instance", "max_turns": "--max-turns",
                                "prob_end": "--prob-end"}
PLAYERS = ("supplier", "retailer")


class _Discount(argparse.Action):
    """``--discount D`` (both players; the bundles game's one discount) or ``--discount D_S
    D_R`` (the other games' per-player factors); records that it was given."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) not in (1, 2):
            parser.error(f"{option_string} takes D (both players) or D_S D_R, got "
                         f"{len(values)} values")
        setattr(namespace, self.dest, tuple(values) * (3 - len(values)))
        namespace.discount_given = tuple(values)


def add_bundles_args(p: argparse.ArgumentParser) -> None:
    """The bundles options of ``eqx solve``; ``--discount`` then also takes a single value."""
    g = p.add_argument_group("bundles settings (--game bundles)")
    g.add_argument("--instance", default=None,
                   help=f"the instance in OpenSpiel's format '<pool> <values 0> <values 1>' "
                        f"(default '{DEFAULT_INSTANCE}')")
    g.add_argument("--max-turns", type=int, default=None,
                   help=f"turns (default {BUNDLES_DEFAULTS['max_turns']})")
    g.add_argument("--prob-end", type=float, default=None,
                   help="chance of the end after each offer from turn 2 on (default 0)")
    old = next(act for act in p._actions if act.dest == "discount")
    group = old.container  # the shared game options' group: replace its --discount in place
    handler, group.conflict_handler = group.conflict_handler, "resolve"
    group.add_argument(
        "--discount", type=float, nargs="+", default=old.default, action=_Discount,
        metavar="D", help="discounted model: per-round discount factors D_S D_R (one value: "
                          "both); bundles: the one discount (default 1)")
    group.conflict_handler = handler
    p.set_defaults(discount_given=None)


def bundles_settings(a: argparse.Namespace) -> dict[str, Any]:
    """The solver's settings from the options (OpenSpiel's defaults where not given);
    :class:`CliError` naming the option for a bad value."""
    d = a.discount_given
    if d is not None and len(d) == 2 and d[0] != d[1]:
        raise CliError(f"--discount: the bundles game has one discount (OpenSpiel's), got "
                       f"{d[0]:g} {d[1]:g}")
    text = DEFAULT_INSTANCE if a.instance is None else a.instance
    try:
        pools, values = parse_instances(text)
        if len(pools) != 1:
            raise CliError(f"--instance must be one instance, got {len(pools)} lines")
        out = {"instance": text.strip(), "pool": pools[0].tolist(), "values": values[0].tolist(),
               "max_turns": BUNDLES_DEFAULTS["max_turns"] if a.max_turns is None
               else a.max_turns,
               "discount": BUNDLES_DEFAULTS["discount"] if d is None else float(d[0]),
               "prob_end": BUNDLES_DEFAULTS["prob_end"] if a.prob_end is None else a.prob_end}
        check_number("max_turns", out["max_turns"], 1, 1000, integer=True)
        check_number("discount", out["discount"], 0.0, 1.0)
        check_number("prob_end", out["prob_end"], 0.0, 1.0)
    except FieldError as e:
        field = BUNDLES_OPTIONS.get(e.field, f"--instance: {e.field}")
        raise option_error(e, {e.field: field}) from None
    except ValueError as e:
        raise CliError(f"--instance: {e}") from None
    return out


def refuse_other_options(a: argparse.Namespace) -> None:
    """The other games' options are refused with ``--game bundles`` (naming what to use)."""
    if a.rounds != 10:
        raise CliError("--rounds does not apply to --game bundles (use --max-turns)")
    if a.reward != "seed":
        raise CliError("--reward does not apply to --game bundles (a deal pays the values of "
                       "the shares, times --discount per turn)")
    others = {"max_price": "--max-price", "supplier_value": "--supplier-value",
              "retailer_value": "--retailer-value", "unit_cost": "--unit-cost",
              "demand_intercept": "--demand-intercept", "demand_slope": "--demand-slope",
              "max_quantity": "--max-quantity", "scenario": "--scenario"}
    for dest, option in others.items():
        if getattr(a, dest, None) is not None:
            raise CliError(f"{option} does not apply to --game bundles")
    for dest, default in (("supplier_low", 4000.0), ("supplier_high", 6000.0),
                          ("retailer_low", 7000.0), ("retailer_high", 9000.0),
                          ("at_prior_mean", False)):
        if getattr(a, dest, default) != default:
            raise CliError(f"--{dest.replace('_', '-')} does not apply to --game bundles")


def cmd_solve_bundles(a: argparse.Namespace) -> None:
    """``eqx solve --game bundles``: the exact SPE, its per-turn plan, explained."""
    refuse_other_options(a)
    s = bundles_settings(a)
    spe = solve_spe(s["pool"], s["values"], s["max_turns"], s["discount"], s["prob_end"])
    d = spe_to_dict(spe, s)
    if a.json:
        print_json({"game": "bundles", "settings": s, **d})
        return
    print_bundles_spe(d, s)


def _factor(discount: float, turn: int) -> float:
    """What a deal at ``turn`` is worth per value point."""
    return float(discount) ** max(0, turn - 2)


def plan_rows(spe: BundlesSPE, s: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-turn plan: at each turn the mover's offer (the items it keeps, and gives),
    the expected values (both players) of making it, the least undiscounted value of a
    standing offer it accepts (``accept_threshold``, None at turn 1 or where a deal is worth
    0), and whether the turn is on the equilibrium path (``on_path_move``: offer / accept)."""
    pool = np.asarray(s["pool"])
    rows = []
    for k, (offer, value) in enumerate(spe.plan, start=1):
        mover = (k - 1) % 2
        factor = _factor(s["discount"], k)
        threshold = (max(0.0, float(value[mover]) / factor) if k >= 2 and factor > 0 else None)
        if spe.agreement:
            move = "offer" if k <= spe.offer_turn else "accept" if k == spe.turn else None
        else:
            move = "offer"
        rows.append({"turn": k, "mover": PLAYERS[mover], "keeps": offer.tolist(),
                     "gives": (pool - offer).tolist(), "value": [float(v) for v in value],
                     "deal_factor": factor, "accept_threshold": threshold,
                     "on_path_move": move})
    return rows


def spe_to_dict(spe: BundlesSPE, s: dict[str, Any]) -> dict[str, Any]:
    """The JSON form: ``returns`` (expected, both players), ``outcome``, ``agreement`` (None
    without one), ``plan`` (:func:`plan_rows`) and ``explanation`` (lines)."""
    welfare_max = max_welfare(s["pool"], s["values"])
    agreement = None
    if spe.agreement:
        agreement = {
            "offer": spe.offer.tolist(), "proposer": PLAYERS[spe.proposer],
            "offer_turn": spe.offer_turn, "turn": spe.turn,
            "shares": {p: spe.shares[i].tolist() for i, p in enumerate(PLAYERS)},
            "values": {p: float(spe.values[i]) for i, p in enumerate(PLAYERS)},
            "welfare": float(np.sum(np.asarray(s["values"]) * spe.shares)),
            "max_welfare": welfare_max, "pareto_optimal": bool(spe.pareto_optimal)}
    plan = plan_rows(spe, s)
    return {"outcome": "agreement" if spe.agreement else "no agreement",
            "returns": {p: float(spe.returns[i]) for i, p in enumerate(PLAYERS)},
            "agreement": agreement, "plan": plan,
            "explanation": explain(spe, s, plan, welfare_max)}


def _items(x: list[int]) -> str:
    return "(" + ", ".join(str(int(v)) for v in x) + ")"


def explain(spe: BundlesSPE, s: dict[str, Any], plan: list[dict[str, Any]],
            welfare_max: float) -> list[str]:
    """The equilibrium in plain English, one sentence a line."""
    t, d, pe = s["max_turns"], s["discount"], s["prob_end"]
    lines = ["Turns alternate, the supplier (OpenSpiel's player 0) first; a turn is an offer "
             "(the items its proposer keeps) or, from turn 2 on, accepting the standing offer. "
             + (f"A deal at turn k is worth {d:g}^max(0, k - 2) per value point" if d < 1.0
                else "A deal is worth its full value at every turn (discount 1)")
             + (f"; after each offer from turn 2 on the game ends with probability {pe:g}"
                if pe > 0 else "") + f"; an offer at turn {t} ends it with nothing for both."]
    last = plan[-1]
    if t >= 2:
        lines.append(f"At turn {t} the {last['mover']} accepts any standing offer: countering "
                     f"would end the game with nothing.")
    lines.append("Backward from there, each mover accepts a standing offer worth at least what "
                 "its own best offer would bring (the thresholds of the plan), and offers the "
                 "split best for itself among those worth accepting or waiting for.")
    if not spe.agreement:
        lines.append(f"No split is worth agreeing to before the end: the equilibrium reaches "
                     f"no agreement (returns {spe.returns[0]:.4g} / {spe.returns[1]:.4g}).")
        return lines
    proposer, responder = PLAYERS[spe.proposer], PLAYERS[1 - spe.proposer]
    threshold = plan[spe.turn - 1]["accept_threshold"]
    gives = (np.asarray(s["pool"]) - spe.offer).tolist()
    worth = float(np.dot(np.asarray(s["values"])[1 - spe.proposer], gives))
    lines.append(f"In equilibrium the {proposer} offers at turn {spe.offer_turn} to keep "
                 f"{_items(spe.offer.tolist())} and give {_items(gives)}, worth {worth:g} to "
                 f"the {responder}" + (f", at least the {threshold:.4g} it would get by "
                                       f"countering" if threshold is not None else "")
                 + f", so the {responder} accepts at turn {spe.turn}.")
    pareto = "Pareto optimal" if spe.pareto_optimal else "not Pareto optimal"
    lines.append(f"Values of the deal: supplier {spe.values[0]:.4g}, retailer "
                 f"{spe.values[1]:.4g} (expected returns {spe.returns[0]:.4g} / "
                 f"{spe.returns[1]:.4g}); the split is {pareto}, welfare "
                 f"{float(np.sum(np.asarray(s['values']) * spe.shares)):g} of the largest "
                 f"{welfare_max:g}.")
    if d >= 1.0 - TIE_EPS and pe <= 0.0:
        lines.append("With discount 1 and no chance end, waiting costs nothing, so the last "
                     "proposer's threat decides the split.")
    return lines


def print_bundles_spe(d: dict[str, Any], s: dict[str, Any]) -> None:
    """The text form of :func:`spe_to_dict` for the settings ``s``."""
    print(f"Subgame-perfect equilibrium of the complete-information bundles game "
          f"(instance '{s['instance']}': pool {_items(s['pool'])}, values supplier "
          f"{_items(s['values'][0])} / retailer {_items(s['values'][1])}; max_turns "
          f"{s['max_turns']}, discount {s['discount']:g}, prob_end {s['prob_end']:g}):")
    print(f"  {'outcome':20s} {d['outcome']}")
    for p in PLAYERS:
        print(f"  {p + '_return':20s} {fmt(d['returns'][p], 4)}")
    ag = d["agreement"]
    if ag is not None:
        print(f"  {'offer':20s} {ag['proposer']} keeps {_items(ag['offer'])} (made at turn "
              f"{ag['offer_turn']}, accepted at turn {ag['turn']})")
        for p in PLAYERS:
            print(f"  {p + ' share':20s} {_items(ag['shares'][p])}, value "
                  f"{fmt(ag['values'][p], 4)}")
        print(f"  {'pareto_optimal':20s} {ag['pareto_optimal']} (welfare {ag['welfare']:g} "
              f"of {ag['max_welfare']:g})")
    print("Per-turn plan (the full strategy; * = on the equilibrium path):")
    print(f"  {'turn':>4}  {'mover':8}  {'keeps':>9}  {'gives':>9}  "
          f"{'its offer: supplier / retailer':>30}  accepts a standing offer worth")
    for row in d["plan"]:
        mark = "*" if row["on_path_move"] else " "
        rule = ("- (no standing offer)" if row["accept_threshold"] is None and row["turn"] == 1
                else "anything" if row["accept_threshold"] is None
                else f">= {row['accept_threshold']:.4g}")
        value = f"{fmt(row['value'][0], 3)} / {fmt(row['value'][1], 3)}"
        print(f"  {row['turn']:>3}{mark}  {row['mover']:8}  {_items(row['keeps']):>9}  "
              f"{_items(row['gives']):>9}  {value:>30}  {rule}"
              + ("  (accepts here)" if row["on_path_move"] == "accept" else ""))
    print("Explanation:")
    for line in d["explanation"]:
        print(f"  {line}")
