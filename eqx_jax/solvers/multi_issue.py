"""The exact subgame-perfect equilibrium of the complete-information multi-issue game.

NumPy / SciPy only, and no import of the games: the game comes as plain arrays
(:class:`MultiIssueGame`), so this stays an independent check of the env.

The game (``docs/games.md``, "multi-issue"): K issues, agent i's utility
``u_i(x) = sum_k w_ik f_ik(x_k)`` (a continuous issue's value function linear between its two
ends, a discrete issue's a table over its value indices), reservation values r_i, both known to
both agents. The supplier (0) moves in odd rounds; a move is ACCEPT the standing offer, COUNTER
or WALK_AWAY; at most T rounds; a deal on x in round t pays
``R_i(x, t) = scale (u_i(x) - r_i) D_i(t) + B(t)`` (seed: ``D = (1 - t/T)^2`` and the speed bonus
B; discounted: ``D_i = delta_i^t``); walk-away and timeout pay their pairs.

Method (backward induction). ``alt_t`` is the payoff pair when the mover of round t does *not*
accept the standing offer; it does not depend on that offer. In round T a counter times out.
In round t < T a counter x is accepted in round t+1 iff ``R_o(x, t+1) >= alt_{t+1}[o]``, a
lower bound on the responder's utility; the proposer's best acceptable offer maximises its own
utility subject to it: a linear program (``scipy.optimize.linprog``, HiGHS) over the continuous
issues' positions in [0, 1]; with discrete issues a mixed-integer program (``milp``, one-hot
value choices), or, when every issue is discrete, an enumeration of the outcomes.

Tie-breaking (as in the single-price game's ``eqx_jax.equilibrium``): an indifferent responder
accepts; an indifferent proposer makes the acceptable offer (prefers agreement); a mover
indifferent between walking and countering counters; among acceptable offers the proposer takes
its best utility, then the responder's best (so the agreement is Pareto-efficient for the two).
Payoffs within ``1e-9 x scale`` are ties.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from eqx_jax.checks import check_choice, check_number
from eqx_jax.payoffs import deal_factors as payoff_factors

AGENTS: tuple[str, str] = ("supplier", "retailer")
REWARD_MODELS: tuple[str, str] = ("seed", "discounted")
_TOL = 1e-9
MAX_ENUMERATION = 2_000_000  # outcomes enumerated when every issue is discrete


@dataclasses.dataclass(frozen=True)
class MultiIssueGame:
    """A complete-information multi-issue game as plain arrays.

    ``discrete`` (K,) bool; ``low``/``high`` (K,) the natural range of each continuous issue
    (ignored for a discrete one, whose values are indexed 0..n-1); ``tables[a][k]`` agent a's
    value function of issue k: (n_k,) values in [0, 1] of a discrete issue, or its (2,) values
    at (low, high) of a continuous one; ``weights`` (2, K) (normalised here to sum to 1);
    ``reservation`` (2,). The rest are the reward settings (``reward_model`` by name).
    """

    discrete: tuple[bool, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    tables: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]
    weights: np.ndarray
    reservation: np.ndarray
    max_rounds: int = 10
    reward_model: str = "seed"
    utility_scale: float = 100.0
    speed_bonus: float = 5.0
    bonus_fraction: float = 0.3
    discount: tuple[float, float] = (0.95, 0.95)
    walk_payoff: tuple[float, float] = (0.0, 0.0)
    timeout_payoff: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        k = len(self.discrete)
        check_number("number of issues", k, 1, 8, integer=True)
        check_number("max_rounds", self.max_rounds, 1, 1000, integer=True)
        check_choice("reward_model", self.reward_model, REWARD_MODELS)
        check_number("utility_scale", self.utility_scale, 0.0, 1e9, low_open=True)
        w = np.asarray(self.weights, float)
        if w.shape != (2, k) or np.any(w < 0) or np.any(w.sum(axis=1) <= 0):
            raise ValueError(f"weights must be (2, {k}) non-negative, not all zero per agent")
        object.__setattr__(self, "weights", w / w.sum(axis=1, keepdims=True))
        object.__setattr__(self, "reservation", np.asarray(self.reservation, float))
        for i, side in enumerate(AGENTS):
            check_number(f"discount[{side}]", self.discount[i], 0.0, 1.0, low_open=True)


@dataclasses.dataclass(frozen=True)
class MIRound:
    """The equilibrium plan of round t: the mover, its move when not accepting ("counter" with
    an offer that will be accepted, "delay" a counter that will be rejected, "walk", or
    "timeout" a counter in round T), the offer (natural units) and ``alt`` the payoff pair."""

    round: int
    mover: str
    move: str
    offer: tuple[float, ...] | None
    utilities: tuple[float, float] | None  # of the offer
    alt: tuple[float, float]


@dataclasses.dataclass(frozen=True)
class MISPE:
    """The SPE outcome: ``outcome`` "deal" / "walk_away" / "timeout", ``round`` in which it
    ends, the agreement (natural units; discrete issues by index) and its utilities, both
    payoffs (reward units), and the per-round plans."""

    outcome: str
    round: int
    agreement: tuple[float, ...] | None
    utilities: tuple[float, float] | None
    payoffs: tuple[float, float]
    plans: tuple[MIRound, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -------------------------------------------------------------------------- reward model
def deal_factors(g: MultiIssueGame, t: int) -> tuple[np.ndarray, float]:
    """(D (2,), B) of a deal in round t: R_i = scale (u_i - r_i) D_i + B (the reward model of
    :func:`eqx_jax.payoffs.deal_factors`)."""
    d_s, d_r, bonus = payoff_factors(g.reward_model, t, g.max_rounds, g.speed_bonus,
                                     g.bonus_fraction, g.discount)
    return np.array([d_s, d_r]), bonus


def deal_payoffs(g: MultiIssueGame, u: np.ndarray, t: int) -> np.ndarray:
    """(…, 2) payoffs of deals with utilities ``u`` (…, 2) in round t."""
    d, bonus = deal_factors(g, t)
    return g.utility_scale * (np.asarray(u) - g.reservation) * d + bonus


# ---------------------------------------------------------------- the per-round program
def _linear_terms(g: MultiIssueGame) -> tuple[np.ndarray, np.ndarray]:
    """Utility = const + sum over continuous issues of slope * position (y in [0, 1])."""
    const = np.zeros(2)
    slope = np.zeros((2, len(g.discrete)))
    for a in range(2):
        for k, disc in enumerate(g.discrete):
            if not disc:
                t = g.tables[a][k]
                const[a] += g.weights[a, k] * t[0]
                slope[a, k] = g.weights[a, k] * (t[1] - t[0])
    return const, slope


def _decode(g: MultiIssueGame, y: np.ndarray, idx: dict[int, int]) -> np.ndarray:
    return np.array([float(idx[k]) if disc else g.low[k] + y[k] * (g.high[k] - g.low[k])
                     for k, disc in enumerate(g.discrete)])


def outcome_utilities(g: MultiIssueGame, offer: np.ndarray) -> np.ndarray:
    """(2,) utilities of an offer (K,) in natural units (discrete issues by index)."""
    u = np.zeros(2)
    for a in range(2):
        for k, disc in enumerate(g.discrete):
            t = g.tables[a][k]
            if disc:
                f = t[int(round(offer[k]))]
            else:
                y = (offer[k] - g.low[k]) / (g.high[k] - g.low[k])
                f = t[0] + y * (t[1] - t[0])
            u[a] += g.weights[a, k] * f
    return u


def _enumerated(g: MultiIssueGame) -> tuple[np.ndarray, np.ndarray]:
    """All outcomes (n, K) of an all-discrete game and their utilities (n, 2)."""
    sizes = [len(t) for t in g.tables[0]]
    if int(np.prod(sizes)) > MAX_ENUMERATION:
        raise ValueError(f"outcome space must have at most {MAX_ENUMERATION} outcomes, "
                         f"got {int(np.prod(sizes))}")
    grid = np.array(list(itertools.product(*[range(n) for n in sizes])), float)
    u = np.zeros((len(grid), 2))
    for a in range(2):
        for k in range(len(sizes)):
            u[:, a] += g.weights[a, k] * np.asarray(g.tables[a][k])[grid[:, k].astype(int)]
    return grid, u


def _solve_program(g: MultiIssueGame, objective: np.ndarray, floor: np.ndarray
                   ) -> np.ndarray | None:
    """An offer maximising ``objective @ u`` subject to ``u >= floor`` (2,), or None.

    Continuous issues are positions y in [0, 1]; each discrete issue one-hot binaries."""
    const, slope = _linear_terms(g)
    cont = [k for k, disc in enumerate(g.discrete) if not disc]
    disc = [k for k, d in enumerate(g.discrete) if d]
    cols: list[tuple[int, int]] = [(k, -1) for k in cont]
    cols += [(k, v) for k in disc for v in range(len(g.tables[0][k]))]
    coef = np.zeros((2, len(cols)))  # utility of each agent per variable
    for j, (k, v) in enumerate(cols):
        for a in range(2):
            coef[a, j] = slope[a, k] if v < 0 else g.weights[a, k] * g.tables[a][k][v]
    rows = [coef]
    lo_rows, hi_rows = [floor - const], [np.full(2, np.inf)]
    for k in disc:  # exactly one value per discrete issue
        rows.append(np.array([[1.0 if c[0] == k else 0.0 for c in cols]]))
        lo_rows.append(np.ones(1))
        hi_rows.append(np.ones(1))
    a_mat = np.vstack(rows)
    lb, ub = np.concatenate(lo_rows), np.concatenate(hi_rows)
    c = -(objective @ coef)
    if not disc:
        keep = np.isfinite(floor)
        res = linprog(c, A_ub=-coef[keep], b_ub=-(floor - const)[keep],
                      bounds=[(0.0, 1.0)] * len(cols), method="highs")
        x = res.x if res.status == 0 else None
    else:
        res = milp(c, constraints=LinearConstraint(a_mat, lb, ub),
                   integrality=np.array([0 if v < 0 else 1 for _, v in cols]),
                   bounds=Bounds(0.0, 1.0))
        x = res.x if res.status == 0 else None
    if x is None:
        return None
    y = np.zeros(len(g.discrete))
    idx: dict[int, int] = {}
    for j, (k, v) in enumerate(cols):
        if v < 0:
            y[k] = np.clip(x[j], 0.0, 1.0)
        elif x[j] > 0.5:
            idx[k] = v
    return _decode(g, y, idx)


def best_acceptable(g: MultiIssueGame, mover: int, min_responder: float
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """(offer (K,), utilities (2,)) maximising the mover's utility, then the responder's,
    subject to the responder's utility >= ``min_responder``; None if no offer qualifies."""
    other = 1 - mover
    if all(g.discrete):
        grid, u = _enumerated(g)
        ok = u[:, other] >= min_responder - _TOL
        if not ok.any():
            return None
        best = u[ok, mover].max()
        cand = np.flatnonzero(ok & (u[:, mover] >= best - _TOL))
        j = cand[np.argmax(u[cand, other])]
        return grid[j], u[j]
    floor = np.full(2, -np.inf)
    floor[other] = min_responder - _TOL
    first = _solve_program(g, np.eye(2)[mover], floor)
    if first is None:
        return None
    floor[mover] = outcome_utilities(g, first)[mover] - 1e-9
    second = _solve_program(g, np.eye(2)[other], floor)
    offer = first if second is None else second
    return offer, outcome_utilities(g, offer)


# ---------------------------------------------------------------- backward induction
def lowest_utility(g: MultiIssueGame, who: int) -> float:
    """The least utility of ``who`` over all offers (utilities are separable by issue)."""
    return float(sum(g.weights[who, k] * np.min(g.tables[who][k])
                     for k in range(len(g.discrete))))


def _responder_floor(g: MultiIssueGame, who: int, t: int, alt: float) -> float | None:
    """The least utility of ``who`` that makes accepting in round t at least ``alt``
    (-inf: every offer; None: no offer)."""
    d, bonus = deal_factors(g, t)
    tol = _TOL * g.utility_scale
    if d[who] <= 0:
        return -np.inf if bonus >= alt - tol else None
    return g.reservation[who] + (alt - bonus) / (g.utility_scale * d[who])


def _round(g: MultiIssueGame, t: int, nxt: tuple[float, float] | None) -> MIRound:
    m = 0 if t % 2 == 1 else 1
    o = 1 - m
    tol = _TOL * g.utility_scale
    walk = np.asarray(g.walk_payoff, float)
    if nxt is None:  # round T: a counter times out
        move, offer, util, value = "timeout", None, None, np.asarray(g.timeout_payoff, float)
    else:
        floor = _responder_floor(g, o, t + 1, nxt[o])
        found = None if floor is None else best_acceptable(g, m, floor)
        # A delay needs an offer the responder rejects (one below its floor).
        can_delay = floor is None or lowest_utility(g, o) < floor - _TOL
        move, offer, util = "delay", None, None
        value = np.asarray(nxt, float) if can_delay else np.full(2, -np.inf)
        if found is not None:
            pay = deal_payoffs(g, found[1], t + 1)
            if pay[m] >= value[m] - tol:  # prefers agreement when indifferent
                move, offer, util, value = "counter", found[0], found[1], pay
    if walk[m] > value[m] + tol:  # counters when indifferent
        move, offer, util, value = "walk", None, None, walk
    return MIRound(round=t, mover=AGENTS[m], move=move,
                   offer=None if offer is None else tuple(float(x) for x in offer),
                   utilities=None if util is None else (float(util[0]), float(util[1])),
                   alt=(float(value[0]), float(value[1])))


def solve_multi_issue_spe(g: MultiIssueGame) -> MISPE:
    """The SPE of the complete-information game ``g`` (see the module docstring)."""
    plans: list[MIRound] = []
    nxt = None
    for t in range(g.max_rounds, 0, -1):
        plan = _round(g, t, nxt)
        plans.append(plan)
        nxt = plan.alt
    plans.reverse()
    for plan in plans:  # follow the path from round 1 (no standing offer: no accept)
        if plan.move == "counter":
            return MISPE("deal", plan.round + 1, plan.offer, plan.utilities, plan.alt,
                         tuple(plans))
        if plan.move in ("walk", "timeout"):
            return MISPE("walk_away" if plan.move == "walk" else "timeout", plan.round, None,
                         None, plan.alt, tuple(plans))
    raise AssertionError("the last round always ends the game")  # pragma: no cover
