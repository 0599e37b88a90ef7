"""``eqx solve --game multi-issue --scenario FILE|NAME``: the exact subgame-perfect equilibrium
of a complete-information multi-issue scenario (:func:`eqx_jax.games.multi_issue.
solve_scenario_spe`), its per-round plan and a plain-English explanation, or one JSON object.

A scenario whose weights or reservation values are private (priors of non-zero width) has no
complete-information game of its own: it is refused with the first such field named, unless
``--at-prior-mean`` asks for the game at the prior means (``Scenario.fixed()``, the game of
its ``-fixed`` twin in ``configs/scenarios/``).

Units: issue values in natural units (a continuous issue's own unit; a discrete issue by its
label, its value index where it has none); utilities in [0, 1]; payoffs reward units.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from eqx_jax.checks import FieldError
from eqx_jax.cli.common import CliError, fmt, option_error, print_json
from eqx_jax.games.multi_issue import (
    complete_information_game,
    make_multi_issue_params,
    multi_issue_params_to_dict,
)
from eqx_jax.games.scenario import AGENT_KEYS, Scenario, load_scenario
from eqx_jax.references import mi_issue_values
from eqx_jax.solvers.multi_issue import (
    MISPE,
    MultiIssueGame,
    deal_factors,
    solve_multi_issue_spe,
)

#: Multi-issue settings as the command line spells them.
MI_OPTIONS: dict[str, str] = {"max_rounds": "--rounds", "reward_model": "--reward",
                              "discount": "--discount", "discount[supplier]": "--discount",
                              "discount[retailer]": "--discount"}
#: The shared game options' defaults: an option at its default leaves the scenario's setting.
_SHARED_DEFAULTS: dict[str, Any] = {"rounds": 10, "reward": "seed", "discount": (0.95, 0.95)}


def add_multi_issue_args(p: argparse.ArgumentParser) -> None:
    """``--scenario`` and ``--at-prior-mean`` of ``eqx solve``."""
    g = p.add_argument_group("multi-issue settings (--game multi-issue)")
    g.add_argument("--scenario", default=None,
                   help="a scenario file or a name in configs/scenarios/ with fixed weights and "
                        "reservation values (e.g. integrative-4-fixed)")
    g.add_argument("--at-prior-mean", action="store_true",
                   help="solve a scenario with private weights / reservations at its prior "
                        "means (the complete-information game of its -fixed version)")


# ------------------------------------------------------------------------------ the game
def private_field(sc: Scenario) -> str | None:
    """The first field of ``sc`` that is drawn from a prior (low < high), as the scenario file
    names it (``utilities.supplier.weights[0]``), or None for a complete-information one."""
    # The first two parties are keyed supplier / retailer in two-party files; others by name.
    for a, agent in enumerate(AGENT_KEYS + tuple(sc.parties[len(AGENT_KEYS):])):
        for k in range(sc.num_issues):
            if sc.weight_low[a, k] != sc.weight_high[a, k]:
                return f"utilities.{agent}.weights[{k}]"
        if sc.reservation_low[a] != sc.reservation_high[a]:
            return f"utilities.{agent}.reservation"
    return None


def _overrides(a: argparse.Namespace) -> dict[str, Any]:
    """The shared game options the user moved from their defaults (the rest: the scenario's)."""
    out: dict[str, Any] = {}
    if a.rounds != _SHARED_DEFAULTS["rounds"]:
        out["max_rounds"] = a.rounds
    if a.reward != _SHARED_DEFAULTS["reward"]:
        out["reward_model"] = a.reward
    if tuple(a.discount) != _SHARED_DEFAULTS["discount"]:
        out["discount"] = tuple(a.discount)
    return out


def load_game(a: argparse.Namespace) -> tuple[Scenario, MultiIssueGame, dict[str, Any]]:
    """(the scenario, its complete-information game, the settings dict) from the options;
    :class:`CliError` naming the option or the scenario field on bad input."""
    if a.scenario is None:
        raise CliError("--game multi-issue needs --scenario FILE|NAME (e.g. "
                       "integrative-4-fixed)")
    try:
        sc = load_scenario(a.scenario)
        field = private_field(sc)
        if field is not None and not a.at_prior_mean:
            raise FieldError(
                field, "a fixed number for the complete-information game (use the scenario's "
                "-fixed version, or --at-prior-mean to solve at the prior means)",
                [float(x) for x in _prior(sc, field)])
        fixed = sc.fixed()
        params = make_multi_issue_params(fixed, **_overrides(a))
        game = complete_information_game(fixed, params)
    except ValueError as e:
        raise option_error(e, MI_OPTIONS) from None
    return fixed, game, multi_issue_params_to_dict(params)


def _prior(sc: Scenario, field: str) -> tuple[float, float]:
    """The prior [low, high] of a field named by :func:`private_field`."""
    a = AGENT_KEYS.index(field.split(".")[1])
    if field.endswith("reservation"):
        return sc.reservation_low[a], sc.reservation_high[a]
    k = int(field.rsplit("[", 1)[1].rstrip("]"))
    return sc.weight_low[a, k], sc.weight_high[a, k]


# ------------------------------------------------------------------------- the outcome
def accept_floor(g: MultiIssueGame, who: int, t: int, alt: float) -> float | None:
    """The least utility of ``who`` at which accepting in round ``t`` pays at least ``alt``
    (its payoff of not accepting): ``r + (alt - B(t)) / (scale D(t))``; -inf when every offer
    pays enough, None when none does (D(t) = 0)."""
    d, bonus = deal_factors(g, t)
    if d[who] <= 0:
        return -math.inf if bonus >= alt - 1e-9 * g.utility_scale else None
    return float(g.reservation[who] + (alt - bonus) / (g.utility_scale * d[who]))


def _accept_rule(g: MultiIssueGame, plans: list[dict], j: int
                 ) -> tuple[float | None, str | None]:
    """Round ``j + 1``'s mover's rule for accepting the standing offer: (the least utility it
    accepts, or None; the rule in words), (None, None) in round 1 (no standing offer)."""
    if j == 0:
        return None, None
    who = AGENT_KEYS.index(plans[j]["mover"])
    floor = accept_floor(g, who, plans[j]["round"], plans[j]["value"][who])
    if floor is None:
        return None, "accepts no offer"
    if floor <= 0:
        return floor, "accepts every offer"
    return floor, f"accepts iff u_{plans[j]['mover']} >= {floor:.4f}"


def spe_dict(sc: Scenario, g: MultiIssueGame, spe: MISPE, settings: dict[str, Any],
             at_prior_mean: bool) -> dict[str, Any]:
    """The JSON form of the SPE (see ``docs/games.md``, "multi-issue")."""
    plans = []
    for pl in spe.plans:
        plans.append({"round": pl.round, "mover": pl.mover, "move": pl.move,
                      "on_path": pl.round <= spe.round, "offer": list(pl.offer or []) or None,
                      "offer_values": mi_issue_values(sc, pl.offer),
                      "utilities": None if pl.utilities is None else list(pl.utilities),
                      "value": list(pl.alt)})
    for j, pl in enumerate(plans):
        pl["accept_floor"], pl["accept_rule"] = _accept_rule(g, plans, j)
    u = spe.utilities
    out = {
        "game": "multi-issue", "scenario": sc.name, "at_prior_mean": bool(at_prior_mean),
        "settings": settings,
        "issues": [{"name": i.name, "type": i.kind, "low": i.low, "high": i.high,
                    **({"values": i.num_values, "labels": list(i.labels)} if i.discrete
                       else {})} for i in sc.issues],
        "weights": {a: [float(x) for x in g.weights[i]] for i, a in enumerate(AGENT_KEYS)},
        "reservation": {a: float(g.reservation[i]) for i, a in enumerate(AGENT_KEYS)},
        "outcome": spe.outcome, "round": spe.round,
        "agreement": mi_issue_values(sc, spe.agreement),
        "offer": None if spe.agreement is None else list(spe.agreement),
        "supplier_utility": None if u is None else u[0],
        "retailer_utility": None if u is None else u[1],
        "supplier_payoff": spe.payoffs[0], "retailer_payoff": spe.payoffs[1],
        "plans": plans,
    }
    out["explanation"] = explanation(sc, g, out)
    return out


# --------------------------------------------------------------------------- explaining
def _show(values: dict[str, Any] | None) -> str:
    if values is None:
        return "-"
    return ", ".join(f"{k} {fmt(v, 2) if isinstance(v, float) else v}"
                     for k, v in values.items())


def _alternative(plans: list[dict], j: int, who: int) -> str:
    """What round ``j + 1``'s mover does instead of accepting, in words."""
    pl = plans[j]
    if pl["move"] == "counter":
        nxt = AGENT_KEYS[1 - who]
        return (f"countering with ({_show(pl['offer_values'])}), which the {nxt} accepts in "
                f"round {pl['round'] + 1}")
    return {"delay": "a counter that is rejected", "walk": "walking away",
            "timeout": "a counter that times out"}[pl["move"]]


def explanation(sc: Scenario, g: MultiIssueGame, d: dict[str, Any]) -> list[str]:
    """Plain-English lines: the game, the path of play round by round, the outcome."""
    s = d["settings"]
    plans = d["plans"]
    weights = "; ".join(f"{a} weights {', '.join(f'{w:.3f}' for w in d['weights'][a])}, "
                        f"reservation {d['reservation'][a]:g}" for a in AGENT_KEYS)
    lines = [f"Complete-information multi-issue game {sc.name} "
             f"({', '.join(i.name for i in sc.issues)}), {s['reward_model']} reward model, "
             f"T = {s['max_rounds']} rounds, a deal in round t pays "
             f"{s['utility_scale']:g} (u_i - r_i) D_i(t) + B(t); {weights}; the supplier "
             f"moves in odd rounds. Backward induction "
             f"from round {s['max_rounds']}."]
    for j, pl in enumerate(plans[:d["round"]]):
        who = AGENT_KEYS.index(pl["mover"])
        other = AGENT_KEYS[1 - who]
        if d["outcome"] == "deal" and pl["round"] == d["round"]:
            lines.append(f"Round {pl['round']}: the {pl['mover']} accepts "
                         f"({_show(d['agreement'])}): accepting pays it "
                         f"{fmt(d[pl['mover'] + '_payoff'], 2)}, at least its best "
                         f"alternative {fmt(pl['value'][who], 2)} "
                         f"({_alternative(plans, j, who)}).")
        elif pl["move"] == "counter":
            rule = plans[j + 1]["accept_rule"]
            u = pl["utilities"]
            lines.append(
                f"Round {pl['round']}: the {pl['mover']} proposes ({_show(pl['offer_values'])}),"
                f" the best outcome for it that the {other} accepts in round {pl['round'] + 1} "
                f"(the {other} {rule}: rejecting is worth {fmt(plans[j + 1]['value'][1 - who], 2)}"
                f" to it, {_alternative(plans, j + 1, 1 - who)}); utilities supplier "
                f"{u[0]:.4f} / retailer {u[1]:.4f}; the deal pays the {pl['mover']} "
                f"{fmt(pl['value'][who], 2)}, at least as much as delaying or walking away "
                f"({fmt(float(g.walk_payoff[who]), 2)}).")
        else:
            lines.append(f"Round {pl['round']}: the {pl['mover']} plays {pl['move']} "
                         f"(worth {fmt(pl['value'][who], 2)} to it).")
    if d["outcome"] == "deal":
        lines.append(f"Outcome: deal on ({_show(d['agreement'])}) in round {d['round']}; "
                     f"utilities supplier {d['supplier_utility']:.4f}, retailer "
                     f"{d['retailer_utility']:.4f}; payoffs supplier "
                     f"{fmt(d['supplier_payoff'], 2)}, retailer {fmt(d['retailer_payoff'], 2)}.")
    else:
        lines.append(f"Outcome: no deal ({d['outcome']} in round {d['round']}); payoffs "
                     f"{fmt(d['supplier_payoff'], 2)} / {fmt(d['retailer_payoff'], 2)}.")
    return lines


def cmd_solve_multi_issue(a: argparse.Namespace) -> None:
    """``eqx solve --game multi-issue``: the exact SPE, its per-round plan, explained."""
    sc, game, settings = load_game(a)
    d = spe_dict(sc, game, solve_multi_issue_spe(game), settings, a.at_prior_mean)
    if a.json:
        print_json(d)
        return
    print_mi_spe(d)


def print_mi_spe(d: dict[str, Any]) -> None:
    """The text form of :func:`spe_dict`."""
    s = d["settings"]
    where = " at the prior means" if d["at_prior_mean"] else ""
    print(f"Subgame-perfect equilibrium of the complete-information multi-issue game "
          f"{d['scenario']}{where} (T = {s['max_rounds']}, reward {s['reward_model']}, "
          f"utility_scale {s['utility_scale']:g}):")
    print(f"  {'outcome':20s} {d['outcome']}")
    print(f"  {'agreement':20s} {_show(d['agreement'])}")
    for key in ("round", "supplier_utility", "retailer_utility", "supplier_payoff",
                "retailer_payoff"):
        v = d[key]
        print(f"  {key:20s} {'-' if v is None else fmt(v, 4)}")
    print("Per-round plan (the full strategy; * = on the equilibrium path):")
    print(f"  {'round':>5}  {'mover':8}  {'move':7}  {'utilities s / r':>15}  "
          f"{'value s / r':>15}  counter-offer; accepts a standing offer")
    for pl in d["plans"]:
        u = "-" if pl["utilities"] is None else \
            f"{pl['utilities'][0]:.3f} / {pl['utilities'][1]:.3f}"
        value = f"{fmt(pl['value'][0], 2)} / {fmt(pl['value'][1], 2)}"
        mark = "*" if pl["on_path"] else " "
        print(f"  {pl['round']:>4}{mark}  {pl['mover']:8}  {pl['move']:7}  {u:>15}  "
              f"{value:>15}  ({_show(pl['offer_values'])}); "
              f"{pl['accept_rule'] or '- (no standing offer)'}")
    print("Explanation:")
    for line in d["explanation"]:
        print(f"  {line}")
