"""What every ``eqx`` subcommand shares: the one-line user error, the game options, JSON and
table output. Outer layers (``serve``, ``baselines``) add their subcommands with these too."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from eqx_jax.checks import FieldError, check_number
from eqx_jax.env import EnvParams, make_params


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


#: Game settings as the command line spells them (the errors name the option a user typed).
GAME_OPTIONS = {
    "max_rounds": "--rounds", "max_price": "--max-price",
    "supplier_low": "--supplier-low/--supplier-value",
    "supplier_high": "--supplier-high/--supplier-value",
    "retailer_low": "--retailer-low/--retailer-value",
    "retailer_high": "--retailer-high/--retailer-value",
    "supplier_value": "--supplier-value", "retailer_value": "--retailer-value",
    "retailer_high_prob": "--retailer-high-prob",
}


def option_error(e: ValueError, options: dict[str, str]) -> CliError:
    """``e`` as a :class:`CliError` that names the option behind its field (``options``: field
    -> option); errors that are not about one field keep their text."""
    if isinstance(e, FieldError):
        return CliError(str(e.renamed(options.get(e.field, e.field))))
    return CliError(str(e))


def add_game_args(p: argparse.ArgumentParser) -> None:
    """The game settings shared by every subcommand that plays or solves a game."""
    g = p.add_argument_group("game settings (defaults: the founding design's game)")
    g.add_argument("--rounds", type=int, default=10, help="max rounds T (default 10)")
    g.add_argument("--reward", choices=["seed", "discounted"], default="seed",
                   help="reward model (default seed)")
    g.add_argument("--max-price", type=float, default=10000.0, help="price cap (default 10000)")
    g.add_argument("--supplier-low", type=float, default=4000.0,
                   help="supplier valuation prior U[low, high] (default 4000)")
    g.add_argument("--supplier-high", type=float, default=6000.0, help="(default 6000)")
    g.add_argument("--retailer-low", type=float, default=7000.0,
                   help="retailer valuation prior U[low, high] (default 7000)")
    g.add_argument("--retailer-high", type=float, default=9000.0, help="(default 9000)")
    g.add_argument("--supplier-value", type=float, default=None,
                   help="fix the supplier's valuation (sets low = high)")
    g.add_argument("--retailer-value", type=float, default=None,
                   help="fix the retailer's valuation (sets low = high)")
    g.add_argument("--discount", type=float, nargs=2, default=(0.95, 0.95),
                   metavar=("D_S", "D_R"), help="discounted model: per-round discount factors")
    g.add_argument("--timeout-payoff", type=float, nargs=2, default=(-5.0, -5.0),
                   metavar=("S", "R"), help="payoffs when round T ends open (default -5 -5)")
    g.add_argument("--walk-payoff", type=float, nargs=2, default=(-10.0, -10.0),
                   metavar=("S", "R"), help="payoffs of a walk-away (default -10 -10)")
    g.add_argument("--proposer", choices=["alternate", "supplier", "retailer"],
                   default="alternate",
                   help="who makes offers (default alternate; supplier / retailer: only that "
                        "side, the other accepts or rejects)")
    g.add_argument("--retailer-prior", choices=["uniform", "two_type"], default="uniform",
                   help="uniform on [retailer-low, retailer-high] (default) or two types: "
                        "retailer-high with probability --retailer-high-prob, else retailer-low")
    g.add_argument("--retailer-high-prob", type=float, default=0.5,
                   help="two_type prior: probability of the high type (default 0.5)")


def params_from_args(a: argparse.Namespace) -> EnvParams:
    """Validated game settings from :func:`add_game_args` options (fixed values fold into the
    priors: ``--supplier-value V`` is ``low = high = V``)."""
    s_lo, s_hi = a.supplier_low, a.supplier_high
    r_lo, r_hi = a.retailer_low, a.retailer_high
    if a.supplier_value is not None:
        s_lo = s_hi = a.supplier_value
    if a.retailer_value is not None:
        r_lo = r_hi = a.retailer_value
    try:
        return make_params(
            max_rounds=a.rounds, reward_model=a.reward, max_price=a.max_price,
            supplier_low=s_lo, supplier_high=s_hi, retailer_low=r_lo, retailer_high=r_hi,
            discount=tuple(a.discount), timeout_payoff=tuple(a.timeout_payoff),
            walk_payoff=tuple(a.walk_payoff), proposer=a.proposer,
            retailer_prior=a.retailer_prior, retailer_high_prob=a.retailer_high_prob,
        )
    except ValueError as e:
        raise option_error(e, GAME_OPTIONS) from None


def positive_int(name: str, value: int, high: int = 10**9) -> int:
    """``value`` if it is in ``[1, high]``, else a :class:`CliError` naming the option."""
    try:
        return check_number(name, value, 1, high)
    except FieldError as e:
        raise CliError(str(e)) from None


def jsonable(x: Any) -> Any:
    """``x`` with non-finite floats as ``None`` (JSON has no NaN), recursively."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    return x


def print_json(obj: Any) -> None:
    """The ``--json`` output: one JSON object on stdout."""
    print(json.dumps(jsonable(obj), indent=2))


def fmt(x: Any, digits: int = 3) -> str:
    """A float with thousands separators (``n/a`` if not finite); anything else as ``str``."""
    if isinstance(x, float):
        return "n/a" if not math.isfinite(x) else f"{x:,.{digits}f}"
    return str(x)


def print_table(rows: list[dict], cols: list[tuple[str, str, int]]) -> None:
    """``rows`` as a fixed-width table; ``cols``: (key, title, width), first two left-aligned."""
    print("  ".join(f"{title:>{w}}" if i > 1 else f"{title:<{w}}"
                    for i, (_, title, w) in enumerate(cols)))
    for r in rows:
        cells = []
        for i, (key, _, w) in enumerate(cols):
            v = r[key]
            if isinstance(v, float):
                v = 0.0 if abs(v) < 5e-4 else v  # no "-0.000"
                s = "n/a" if not math.isfinite(v) else (
                    f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
            else:
                s = str(v)
            cells.append(f"{s:>{w}}" if i > 1 else f"{s:<{w}}")
        print("  ".join(cells))
