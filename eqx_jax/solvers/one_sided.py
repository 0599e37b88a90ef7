"""Exact perfect Bayesian equilibrium of one-sided-offer bargaining with a two-type retailer.

The game (NumPy float64, no JAX, independent of the envs). A supplier (seller) with a publicly
known cost ``c`` faces a retailer (buyer) whose value ``v`` is ``v_H`` with probability ``pi``
and ``v_L < v_H`` otherwise (currency units, all in ``[0, max_price]``). With the default
``proposer="supplier"`` the supplier offers a price in every odd env round ``2k - 1`` and the
retailer accepts or rejects it in round ``2k``; offer period ``k`` runs over ``k = 1..N`` with
``N = max_rounds // 2`` (an offer in an odd last round can no longer be answered). A deal at
``p`` in round ``t`` pays ``(p - c) delta_s^t`` and ``(v - p) delta_r^t`` (reward units); no
deal pays the undiscounted timeout payoffs ``(d_s, d_r)``. Walking away pays ``(w_s, w_r)`` with
``w <= d`` (checked), so it is never needed and never used. Offer period ``k``'s deal factors
are ``A_k = delta_s^(2k)`` and ``B_k = delta_r^(2k)``.

Structure of the equilibrium (:func:`solve_one_sided_pbe`; tie rules in its docstring): the
state is the supplier's belief ``pi_k`` that the retailer still bargaining is the high type.

* The low type's value of rejecting is always ``d_r`` (it is never offered more than its
  reservation price ``r_k = v_L - d_r / B_k``), so it accepts ``p`` iff ``p <= r_k``.
* Skimming: the high type accepts every price the low type accepts (its value of waiting is at
  most ``(v_H - v_L) B_{k+1} + d_r``, which is below what ``r_k`` pays it).
* The supplier's value ``S_k(pi)`` is convex and piecewise linear in the belief; the high type's
  value ``U_k(pi)`` is a step function. Backward induction works on these exactly: the
  thresholds are the crossings of finitely many lines, never a belief grid.

Method, supplier proposes (backward induction over the belief, k = N..1). S_{N+1} = d_s and
U_{N+1} = d_r whatever the belief. In period k the supplier picks the best of:
  (i) "all": ask r_k = v_L - d_r / B_k; both types accept; S = (r_k - c) A_k.
  (ii) "screen to x" for x = 0 or a breakpoint of S_{k+1} with x <= pi: ask
      P = v_H - U_{k+1}(x) / B_k; the low type rejects, the high type accepts with
      probability q = (pi - x) / (pi (1 - x)) (q = 1 for x = 0), so a rejection moves the
      belief to x; S = ((pi - x)(P - c) A_k + (1 - pi) S_{k+1}(x)) / (1 - x).
  (iii) "wait": ask max_price, which nobody accepts; S = S_{k+1}(pi).
Each option is linear in pi (waiting: piecewise, on the pieces of S_{k+1}), so S_k is their
upper envelope and its breakpoints (the thresholds) are crossings of lines. In the last
period, for c < v_L and zero timeouts, this is: ask v_L if pi < (v_L - c) / (v_H - c), else
v_H. Earlier, screening to a threshold x > 0 is the mixed case: at x the next supplier is
indifferent between the options on either side of x and may mix between their prices;
weight lambda on the higher one gives the high type lambda U^+ + (1 - lambda) U^- and any
price between v_H - U^-/B_k and v_H - U^+/B_k makes it indifferent for one lambda. The
supplier asks the highest such price, which is the one for lambda = 1: on the path the
supplier's offers are deterministic and the high type's randomisation carries the mixing.

Method, retailer proposes (the env's rounds: the supplier moves in odd rounds, so round 1 has
nothing to answer, offer k comes in round 2k and its answer in round 2k + 1, N = (T - 1) // 2,
A_k = delta_s^(2k + 1), B_k = delta_r^(2k + 1)): the supplier accepts p in period k iff
(p - c) A_k >= d_s, since
rejecting can never earn it more than d_s (the informed retailer, whatever the supplier
believes, offers exactly the supplier's reservation price rho_k = c + d_s / A_k or nothing
acceptable). Each type v picks the period maximising (v - rho_k) B_k against d_r (with zero
timeouts: both types with v > c offer c at once, a pooling offer).

:func:`fudenberg_tirole_two_period` is the hand-derived closed form of the two-offer game
(Fudenberg & Tirole 1983) and :func:`brute_force_one_sided` an independent grid search; the
tests compare the three.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

import numpy as np

from eqx_jax.checks import FieldError, check_choice, check_number
from eqx_jax.payoffs import check_pair

__all__ = [
    "PROPOSERS",
    "OneSidedPBE",
    "BruteForcePBE",
    "solve_one_sided_pbe",
    "fudenberg_tirole_two_period",
    "brute_force_one_sided",
]

#: The protocols this solver covers: who makes every offer.
PROPOSERS: tuple[str, str] = ("supplier", "retailer")

# Payoffs that differ by less than _RTOL x (payoff scale) are ties, so that exact mathematical
# ties (a seller indifferent at a threshold belief) go to the documented tie rules rather than
# to the last bit of a division.
_RTOL = 1e-10
# A belief this close to a breakpoint is that breakpoint: posteriors land exactly on thresholds
# and must pick up the seller's choice *at* the threshold, not the one beside it.
_BTOL = 1e-12
_NAN = float("nan")


# --------------------------------------------------------------------------------------------
# Settings and validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Game:
    """Validated settings (internal). Values in currency units, payoffs in reward units."""

    c: float
    vl: float
    vh: float
    prior: float
    T: int
    discount: tuple[float, float]
    timeout: tuple[float, float]
    max_price: float
    proposer: str
    walk: tuple[float, float]

    @property
    def offset(self) -> int:
        """0 when the supplier proposes (it moves in odd rounds); 1 when the retailer does (it
        moves in even rounds: the env's round 1 is the supplier's, with nothing to answer)."""
        return 0 if self.proposer == "supplier" else 1

    def offer_round(self, k: int) -> int:
        """The env round of offer k (its answer comes in the next round)."""
        return 2 * k - 1 + self.offset

    @property
    def n_offers(self) -> int:
        """N: offers that can still be answered (offer k in :meth:`offer_round`)."""
        return (self.T - self.offset) // 2

    @property
    def vtol(self) -> float:
        """Tie tolerance for payoffs, reward units."""
        return _RTOL * max(1.0, self.max_price, *map(abs, self.timeout))

    @property
    def ptol(self) -> float:
        """Tie tolerance for prices, currency units."""
        return _RTOL * max(1.0, self.max_price)

    def seller_factor(self, k: int) -> float:
        """A_k = delta_s^(2k + offset): the supplier's deal factor of offer period k."""
        return self.discount[0] ** (2 * k + self.offset)

    def buyer_factor(self, k: int) -> float:
        """B_k = delta_r^(2k + offset): the retailer's deal factor of offer period k."""
        return self.discount[1] ** (2 * k + self.offset)


def _make_game(cost, v_low, v_high, prob_high, max_rounds, discount, timeout_payoff,
               walk_payoff, max_price, proposer) -> _Game:
    """Validate the arguments of :func:`solve_one_sided_pbe`; ValueError names the bad one."""
    check_choice("proposer", proposer, PROPOSERS)
    pmax = float(check_number("max_price", max_price, 0.0, math.inf, low_open=True))
    c = float(check_number("cost", cost, 0.0, pmax))
    vl = float(check_number("v_low", v_low, 0.0, pmax))
    vh = float(check_number("v_high", v_high, 0.0, pmax))
    if not vh > vl:
        raise FieldError("v_high", f"> v_low = {vl!r}", v_high)
    prior = float(check_number("prob_high", prob_high, 0.0, 1.0))
    T = int(check_number("max_rounds", max_rounds, 1, integer=True))
    disc = check_pair("discount", discount, 0.0, 1.0, low_open=True)
    timeout = check_pair("timeout_payoff", timeout_payoff, -math.inf, math.inf)
    walk = check_pair("walk_payoff", walk_payoff, -math.inf, math.inf)
    for i, who in enumerate(("supplier", "retailer")):
        # Walking must be weakly dominated by holding out until the timeout, so that no
        # equilibrium needs it.
        if walk[i] > timeout[i]:
            raise FieldError(f"walk_payoff[{who}]", f"<= timeout_payoff[{who}] = {timeout[i]!r}",
                             walk[i])
    g = _Game(c, vl, vh, prior, T, disc, timeout, pmax, proposer, walk)
    _check_prices_feasible(g)
    return g


def _check_prices_feasible(g: _Game) -> None:
    """The reservation prices the equilibrium uses must be feasible offers in [0, max_price]."""
    n = g.n_offers
    if n == 0:
        return
    if g.proposer == "supplier":
        # Every price the supplier uses is at most v_H - d_r / B_N (the high type's reservation
        # price of the last period), so that one bound keeps all of them <= max_price.
        bound = -(g.max_price - g.vh) * g.buyer_factor(n)
        if g.timeout[1] < bound:
            raise FieldError("timeout_payoff[retailer]",
                             f">= {bound!r} (so that v_high - d_r / delta_r^(2N) <= max_price)",
                             g.timeout[1])
        return
    # Retailer proposes: the supplier's reservation prices c + d_s / A_k, k = 1..N, are monotone
    # in k, so checking k = N bounds them all.
    a_n = g.seller_factor(n)
    low, high = -g.c * a_n, (g.max_price - g.c) * a_n
    if not low <= g.timeout[0] <= high:
        raise FieldError("timeout_payoff[supplier]",
                         f"in [{low!r}, {high!r}] (so that cost + d_s / delta_s^(2k) is in "
                         f"[0, max_price] for every offer period k)", g.timeout[0])


# --------------------------------------------------------------------------------------------
# The supplier's options and its piecewise-linear plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Option:
    """One thing the supplier can do in an offer period (internal).

    kind: "all" (ask the low type's reservation price; both types accept), "skim" (ask the
    price that leaves the high type indifferent when the belief after a rejection is
    ``target``; the low type rejects), "wait" (ask max_price; no type accepts) or "end" (after
    the last period). ``price`` in currency units; ``u_high`` the high type's value from this
    period on and ``alpha + beta * pi`` the supplier's, reward units, on the beliefs where the
    option is used. ``rank`` orders ties that the payoffs leave open (higher: more trade now).
    """

    kind: str
    target: float
    price: float
    u_high: float
    alpha: float
    beta: float
    rank: float

    def value(self, pi: float) -> float:
        """The supplier's expected payoff at belief ``pi``, reward units."""
        return self.alpha + self.beta * pi


@dataclass(frozen=True)
class _Plan:
    """The supplier's plan in one offer period (internal): breakpoints ``xs`` (0 = x_0 < ... <
    x_n = 1), the option used *at* each breakpoint and the one used *between* consecutive ones.
    The supplier's value is linear between breakpoints and the high type's value constant."""

    xs: tuple[float, ...]
    at: tuple[_Option, ...]
    between: tuple[_Option, ...]


def _terminal_plan(g: _Game) -> _Plan:
    """The "plan" after the last offer period: the timeout payoffs whatever the belief."""
    end = _Option("end", _NAN, _NAN, g.timeout[1], g.timeout[0], 0.0, 0.0)
    return _Plan((0.0, 1.0), (end, end), (end,))


def _skim(g: _Game, k: int, r_low: float, nxt: _Plan, i: int, at_own_target: bool
          ) -> _Option | None:
    """Screen to the posterior x = nxt.xs[i] in period k (None if that price is infeasible).

    The price makes the high type indifferent between accepting now and the value
    nxt.at[i].u_high it gets by rejecting when the belief then is x. With belief pi > x the high
    type accepts with probability q = (pi - x) / (pi (1 - x)), so that Bayes' rule gives x, and
    the supplier's payoff ((pi - x)(P - c) A_k + (1 - pi) S_{k+1}(x)) / (1 - x) is linear in pi.
    """
    a, b = g.seller_factor(k), g.buyer_factor(k)
    x, after = nxt.xs[i], nxt.at[i]
    price = g.vh - after.u_high / b
    # A price the low type accepts too is "all"; a negative one is not an offer.
    if price < -g.ptol or price <= r_low + g.ptol:
        return None
    price = max(price, 0.0)
    gain, s_next = (price - g.c) * a, after.value(x)
    if x < 1.0:
        alpha, beta = (s_next - x * gain) / (1.0 - x), (gain - s_next) / (1.0 - x)
    else:  # only at pi = 1: every high type accepts; belief 1 after a rejection is off path
        alpha, beta = gain, 0.0
    # Screening to the current belief itself means nobody accepts: rank it below any sale.
    rank = 0.5 if at_own_target and 0.0 < x < 1.0 else 2.0 - x
    return _Option("skim", x, price, after.u_high, alpha, beta, rank)


def _candidates(g: _Game, k: int, nxt: _Plan, j: int, at_point: bool) -> list[_Option]:
    """The supplier's options in period k at beliefs in (x_j, x_{j+1}) (``at_point`` False) or
    at x_j itself, where x = nxt.xs are the breakpoints of period k + 1's plan.

    Targets of screening are the breakpoints x_0..x_j (a posterior strictly inside a piece of
    nxt is never better: the payoff is linear in it there, so an end of the piece, or waiting,
    does at least as well)."""
    a, b = g.seller_factor(k), g.buyer_factor(k)
    opts = []
    r_low = g.vl - g.timeout[1] / b
    if r_low >= -g.ptol:
        r_low = max(r_low, 0.0)
        opts.append(_Option("all", _NAN, r_low, (g.vh - r_low) * b, (r_low - g.c) * a, 0.0, 3.0))
    for i in range(j + 1):
        opt = _skim(g, k, r_low, nxt, i, at_point and i == j)
        if opt is not None:
            opts.append(opt)
    w = nxt.at[j] if at_point else nxt.between[j]
    opts.append(_Option("wait", _NAN, g.max_price, w.u_high, w.alpha, w.beta, 0.0))
    return opts


def _best(g: _Game, cands: list[_Option], pi: float) -> _Option:
    """The supplier's choice at belief pi: highest payoff; ties to the option that leaves the
    high type the least, then to more trade now (``rank``)."""
    vals = [o.value(pi) for o in cands]
    vmax = max(vals)
    tied = [o for o, v in zip(cands, vals, strict=True) if v >= vmax - g.vtol]
    umin = min(o.u_high for o in tied)
    tied = [o for o in tied if o.u_high <= umin + g.vtol]
    return max(tied, key=lambda o: o.rank)


def _crossings(cands: list[_Option], lo: float, hi: float) -> list[float]:
    """Beliefs in (lo, hi) where two candidate lines cross: the only places the best can change."""
    al = np.array([o.alpha for o in cands])
    be = np.array([o.beta for o in cands])
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (al[None, :] - al[:, None]) / (be[:, None] - be[None, :])
    x = np.sort(x[np.isfinite(x) & (x > lo + _BTOL) & (x < hi - _BTOL)])
    out: list[float] = []
    for v in x:
        if not out or v - out[-1] > _BTOL:
            out.append(float(v))
    return out


def _same(a: _Option, b: _Option, tol: float) -> bool:
    """Whether two options are the same plan (so that a breakpoint between them can go)."""
    same_target = a.target == b.target or (math.isnan(a.target) and math.isnan(b.target))
    if a.kind != b.kind or not same_target:
        return False
    return all(abs(u - v) <= tol for u, v in ((a.price, b.price), (a.u_high, b.u_high),
                                             (a.alpha, b.alpha), (a.beta, b.beta)))


def _merge(g: _Game, xs: list[float], at: list[_Option], between: list[_Option]) -> _Plan:
    """Drop breakpoints where the plan does not change (same option left, at and right)."""
    out_x, out_at, out_between = [xs[0]], [at[0]], []
    cur = between[0]
    for i in range(1, len(xs)):
        last = i == len(xs) - 1
        if not last and _same(cur, at[i], g.vtol) and _same(at[i], between[i], g.vtol):
            continue
        out_between.append(cur)
        out_x.append(xs[i])
        out_at.append(at[i])
        if not last:
            cur = between[i]
    return _Plan(tuple(out_x), tuple(out_at), tuple(out_between))


def _build_plan(g: _Game, k: int, nxt: _Plan) -> _Plan:
    """Period k's plan from period k + 1's: the upper envelope of the candidate lines on each
    piece of nxt, with new breakpoints where lines cross."""
    xs: list[float] = []
    at: list[_Option] = []
    between: list[_Option] = []
    n = len(nxt.xs)
    for j in range(n):
        xs.append(nxt.xs[j])
        at.append(_best(g, _candidates(g, k, nxt, j, True), nxt.xs[j]))
        if j == n - 1:
            break
        lo, hi = nxt.xs[j], nxt.xs[j + 1]
        cands = _candidates(g, k, nxt, j, False)
        edges = [lo, *_crossings(cands, lo, hi), hi]
        for e0, e1 in zip(edges[:-1], edges[1:], strict=True):
            between.append(_best(g, cands, 0.5 * (e0 + e1)))
            if e1 < hi:
                xs.append(e1)
                at.append(_best(g, cands, e1))
    return _merge(g, xs, at, between)


def _decide(g: _Game, k: int, nxt: _Plan, pi: float) -> tuple[_Option, float]:
    """The supplier's choice in period k at belief pi (snapped onto a breakpoint of nxt when
    within _BTOL of one) and the belief it was made at."""
    xs = nxt.xs
    j = min(max(bisect_right(xs, pi) - 1, 0), len(xs) - 1)
    for i in (j, j + 1):
        if 0 <= i < len(xs) and abs(xs[i] - pi) <= _BTOL:
            return _best(g, _candidates(g, k, nxt, i, True), xs[i]), xs[i]
    return _best(g, _candidates(g, k, nxt, j, False), pi), pi


# --------------------------------------------------------------------------------------------
# The equilibrium path and its summary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """One offer period on the path (internal): belief at its start, offer, each type's
    probability of accepting it (given it is still bargaining), the belief after a rejection,
    and the kind of offer (see :attr:`OneSidedPBE.offer_kinds`)."""

    k: int
    belief: float
    price: float
    q_high: float
    q_low: float
    next_belief: float
    kind: str


def _responses(opt: _Option, pi: float) -> tuple[float, float, float, str]:
    """(q_high, q_low, belief after a rejection, kind) of the supplier's option at belief pi."""
    if opt.kind == "all":
        return 1.0, 1.0, pi, "sell_to_both"
    if opt.kind == "wait":
        return 0.0, 0.0, pi, "no_sale"
    x = opt.target
    if pi <= 0.0:  # only low types remain; a high type, were it there, would accept
        return 1.0, 0.0, 0.0, "no_sale"
    if x <= 0.0 or pi >= 1.0:
        return 1.0, 0.0, x, "sell_to_high"
    q = min(max((pi - x) / (pi * (1.0 - x)), 0.0), 1.0)
    return q, 0.0, x, ("sell_to_some_high" if q > 0.0 else "no_sale")


def _supplier_path(g: _Game, plans: list[_Plan]) -> list[_Step]:
    """Follow the equilibrium from the prior until the game ends on path for sure."""
    pi, m_high, m_low = g.prior, g.prior, 1.0 - g.prior
    steps = []
    for k in range(1, g.n_offers + 1):
        opt, pi = _decide(g, k, plans[k + 1], pi)
        q_high, q_low, nxt, kind = _responses(opt, pi)
        steps.append(_Step(k, pi, opt.price, q_high, q_low, nxt, kind))
        m_high = 0.0 if q_high >= 1.0 else m_high * (1.0 - q_high)
        m_low = 0.0 if q_low >= 1.0 else m_low * (1.0 - q_low)
        if m_high + m_low <= 0.0:
            break
        pi = nxt
    return steps


def _first_round(probs: list[float], which: str, offset: int = 0) -> int | None:
    """Env round (2k + offset) of the first period with acceptance probability 1 ("sure") or
    > 0."""
    for k, q in enumerate(probs, start=1):
        if (q >= 1.0) if which == "sure" else (q > 0.0):
            return 2 * k + offset
    return None


def _type_payoff(g: _Game, v: float, steps: list[_Step], probs: list[float]) -> float:
    """A type's expected payoff when it accepts offer k with probability probs[k-1]."""
    left, pay = 1.0, 0.0
    for st, q in zip(steps, probs, strict=True):
        pay += left * q * (v - st.price) * g.buyer_factor(st.k)
        left *= 1.0 - q
    return pay + left * g.timeout[1]


def _summary(g: _Game, steps: list[_Step]) -> dict[str, Any]:
    """The path fields of :class:`OneSidedPBE` from the steps (masses follow the prior)."""
    m_high, m_low = g.prior, 1.0 - g.prior
    deals = [0.0] * g.T
    supplier = 0.0
    for st in steps:
        deal = m_high * st.q_high + m_low * st.q_low
        deals[2 * st.k - 1 + g.offset] = deal
        supplier += deal * (st.price - g.c) * g.seller_factor(st.k)
        m_high = 0.0 if st.q_high >= 1.0 else m_high * (1.0 - st.q_high)
        m_low = 0.0 if st.q_low >= 1.0 else m_low * (1.0 - st.q_low)
    qh = [st.q_high for st in steps]
    ql = [st.q_low for st in steps]
    return dict(
        price_path=tuple(st.price for st in steps),
        belief_path=tuple(st.belief for st in steps),
        high_accept_prob=tuple(qh),
        low_accept_prob=tuple(ql),
        high_accept_round_first=_first_round(qh, "first", g.offset),
        high_accept_round=_first_round(qh, "sure", g.offset),
        low_accept_round=_first_round(ql, "sure", g.offset),
        supplier_payoff=supplier + (m_high + m_low) * g.timeout[0],
        high_payoff=_type_payoff(g, g.vh, steps, qh),
        low_payoff=_type_payoff(g, g.vl, steps, ql),
        outcome_probabilities=tuple(deals),
        timeout_probability=m_high + m_low,
        offer_kinds=tuple(st.kind for st in steps),
    )


def _f(x: float) -> str:
    return f"{x:.2f}"


def _explain_step(g: _Game, st: _Step) -> str:
    """One sentence on offer period st.k of the supplier-proposes path."""
    head = (f"Offer {st.k} (round {g.offer_round(st.k)}, belief {st.belief:.3f} that the "
            f"retailer is the high type): the supplier asks {_f(st.price)}")
    answer = f"round {g.offer_round(st.k) + 1}"
    if st.kind == "sell_to_both":
        return (f"{head}, the low type's reservation price; both types accept in {answer}, "
                f"because at this belief screening out the high type is worth less than "
                f"selling to everyone now.")
    if st.kind == "sell_to_high" and st.k == g.n_offers:
        return (f"{head}, the high type's reservation price (rejecting leaves it the timeout "
                f"payoff); every high type accepts in {answer} and the low type rejects: at "
                f"this belief selling to the high type alone pays more than selling to both.")
    if st.kind == "sell_to_high":
        return (f"{head}, the most the high type pays now rather than wait for the lower "
                f"prices that follow once only low types are believed to remain; every high "
                f"type accepts in {answer} and the low type rejects.")
    if st.kind == "sell_to_some_high":
        return (f"{head}; the high type accepts in {answer} with probability "
                f"{st.q_high:.3f}, so that a rejection lowers the belief to the threshold "
                f"{st.next_belief:.3f} at which the supplier next asks a price that leaves "
                f"the high type exactly what it gets now: it is indifferent, and that mix is "
                f"its best response. The low type rejects.")
    if st.price >= g.max_price:
        return f"{head}, which no type accepts: waiting is worth more to the supplier."
    if st.belief <= 0.0:
        return (f"{head}; only low types remain and they reject it: selling to them now pays "
                f"the supplier no more than what follows.")
    return (f"{head}; at this threshold belief no type accepts (any acceptance would lower "
            f"the belief and so the next price).")


def _explain_supplier(g: _Game, s: dict[str, Any]) -> tuple[str, ...]:
    lines = [_explain_step(g, st) for st in s["steps"]]
    if g.n_offers == 0:
        lines.append("With max_rounds = 1 no offer can be answered: the game times out.")
    lines.append(f"Expected payoffs (reward units): supplier {_f(s['supplier_payoff'])}, high "
                 f"type {_f(s['high_payoff'])}, low type {_f(s['low_payoff'])}; probability of "
                 f"no deal {s['timeout_probability']:.3f}.")
    return tuple(lines)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OneSidedPBE:
    """Perfect Bayesian equilibrium of the one-sided-offer game (:func:`solve_one_sided_pbe`).

    Per-period tuples have one entry per offer period k = 1, 2, ... on the path, until the game
    ends on path for sure (at most N = max_rounds // 2). Offer k is made in env round 2k - 1 and
    answered in round 2k. Prices in currency units, payoffs in reward units.

    Attributes:
        proposer: "supplier" or "retailer" (who makes every offer).
        price_path: supplier proposes: the supplier's offer in each period (max_price when it
            asks a price that nobody accepts). Retailer proposes: the price of the deal made in
            the period if a type still bargaining trades then, else 0 (the rejected offer).
        belief_path: the supplier's belief pi_k that the retailer is the high type, at the
            start of each period.
        high_accept_prob, low_accept_prob: each type's probability of accepting offer k (when
            the retailer proposes: of making an offer the supplier accepts) given it is still
            bargaining. Defined off path too (a type of prior probability 0).
        high_accept_round_first: env round in which the high type first accepts with positive
            probability; high_accept_round / low_accept_round: first round in which the type
            accepts with probability 1. None if never.
        supplier_payoff, high_payoff, low_payoff: expected payoffs (each type's given its type).
        outcome_probabilities: length max_rounds; entry t - 1 is the probability of a deal in
            round t (zero in odd rounds).
        timeout_probability: probability that the game ends without a deal.
        offer_kinds: per period "sell_to_both", "sell_to_high" (every high type accepts),
            "sell_to_some_high" (the high type randomises), "no_sale"; retailer proposes:
            "pooling_offer", "high_offers", "low_offers" (who trades) or "no_sale".
        thresholds: per offer period k = 1..N (all of them, on path or not), the beliefs in
            (0, 1) at which the supplier's plan changes.
        explanation: plain-English account of the path, one sentence per line.
        cost, v_low, v_high, prob_high, max_rounds, discount, timeout_payoff: the solved game.
    """

    proposer: str
    price_path: tuple[float, ...]
    belief_path: tuple[float, ...]
    high_accept_prob: tuple[float, ...]
    low_accept_prob: tuple[float, ...]
    high_accept_round_first: int | None
    high_accept_round: int | None
    low_accept_round: int | None
    supplier_payoff: float
    high_payoff: float
    low_payoff: float
    outcome_probabilities: tuple[float, ...]
    timeout_probability: float
    offer_kinds: tuple[str, ...]
    thresholds: tuple[tuple[float, ...], ...]
    explanation: tuple[str, ...]
    cost: float
    v_low: float
    v_high: float
    prob_high: float
    max_rounds: int
    discount: tuple[float, float]
    timeout_payoff: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field (tuples become lists)."""
        return {k: _jsonable(getattr(self, k)) for k in self.__dataclass_fields__}


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    return v


def solve_one_sided_pbe(
    cost: float,
    v_low: float,
    v_high: float,
    prob_high: float,
    max_rounds: int,
    *,
    discount: tuple[float, float] = (0.95, 0.95),
    timeout_payoff: tuple[float, float] = (0.0, 0.0),
    walk_payoff: tuple[float, float] = (0.0, 0.0),
    max_price: float = 10000.0,
    proposer: str = "supplier",
) -> OneSidedPBE:
    """Exact perfect Bayesian equilibrium of the one-sided-offer game (see the module docstring).

    Arguments: ``cost`` c, ``v_low`` < ``v_high`` and ``max_price`` in currency units (all in
    [0, max_price]); ``prob_high`` the prior pi in [0, 1]; ``max_rounds`` T >= 1 env rounds;
    ``discount`` (delta_s, delta_r) per env round in (0, 1]; ``timeout_payoff`` (d_s, d_r) and
    ``walk_payoff`` (w_s, w_r <= d_s, d_r), reward units; ``proposer`` "supplier" (default) or
    "retailer".

    Method: see the module docstring (backward induction over the belief on the exact
    piecewise-linear value functions; the retailer-proposes pooling offer).

    Tie rules (the equilibrium is unique given them):
      1. An indifferent low type accepts (its acceptance changes nothing it is offered later).
         An indifferent high type accepts, except where its acceptance changes the supplier's
         belief and so the later offers: there, among the acceptance probabilities that keep
         it indifferent, the equilibrium uses the one the supplier prefers (it mixes so that a
         rejection leaves the supplier at the threshold it chose, or rejects when the supplier
         waits at a price the high type would just accept).
      2. A supplier indifferent between options takes the one that leaves the high type the
         least (at a threshold: the higher price, so in the last period v_H at
         pi = (v_L - c) / (v_H - c)). This is forced wherever the belief is reached as a
         posterior: otherwise the earlier offer that leads there has no best price.
      3. Then the one with more trade now: sell to both, then screen to the lowest posterior,
         then ask the high type's price at a threshold belief, then wait (max_price).
      4. Retailer proposes: an indifferent supplier accepts; a type indifferent between trading
         and waiting trades, and trades as early as possible; a type that does not trade offers
         0 (rejected).
    Payoffs within 1e-10 x (payoff scale) count as ties.

    Returns:
        :class:`OneSidedPBE`.

    Raises:
        ValueError: naming the argument and its allowed range, on invalid input (including
        timeouts that would need an offer outside [0, max_price], and proposer "alternate").
    """
    g = _make_game(cost, v_low, v_high, prob_high, max_rounds, discount, timeout_payoff,
                   walk_payoff, max_price, proposer)
    if g.proposer == "retailer":
        s, thresholds = _retailer_summary(g), tuple(() for _ in range(g.n_offers))
    else:
        plans: list[_Plan] = [_terminal_plan(g)] * (g.n_offers + 2)
        for k in range(g.n_offers, 0, -1):
            plans[k] = _build_plan(g, k, plans[k + 1])
        steps = _supplier_path(g, plans)
        s = _summary(g, steps)
        s["steps"] = steps
        s["explanation"] = _explain_supplier(g, s)
        thresholds = tuple(tuple(x for x in plans[k].xs if 0.0 < x < 1.0)
                           for k in range(1, g.n_offers + 1))
    s.pop("steps")
    return OneSidedPBE(proposer=g.proposer, thresholds=thresholds, cost=g.c, v_low=g.vl,
                       v_high=g.vh, prob_high=g.prior, max_rounds=g.T, discount=g.discount,
                       timeout_payoff=g.timeout, **s)


# --------------------------------------------------------------------------------------------
# Retailer proposes
# --------------------------------------------------------------------------------------------


def _retailer_trade_period(g: _Game, v: float) -> int | None:
    """The offer period in which type v offers the supplier's reservation price (None: never).

    Backward induction on the type's value R_k (R_{N+1} = d_r): trading at rho_k pays
    (v - rho_k) B_k; waiting needs an offer the supplier rejects, which exists iff rho_k > 0."""
    value, trades = g.timeout[1], {}
    for k in range(g.n_offers, 0, -1):
        rho = g.c + g.timeout[0] / g.seller_factor(k)
        trade = (v - rho) * g.buyer_factor(k)
        if trade < value - g.vtol and rho > g.ptol:
            trades[k] = False
            continue
        if trade < value - g.vtol and trade < g.walk[1]:
            # The supplier accepts every offer here, so this type could only avoid the deal
            # by walking away, which the game's walk payoff would make strictly better.
            raise FieldError("timeout_payoff", "such that no type has to walk away (in offer "
                             f"period {k} the supplier accepts every offer)", g.timeout)
        trades[k], value = True, trade
    return next((k for k in range(1, g.n_offers + 1) if trades[k]), None)


def _retailer_summary(g: _Game) -> dict[str, Any]:
    """Path fields of :class:`OneSidedPBE` when the retailer makes every offer."""
    k_high, k_low = _retailer_trade_period(g, g.vh), _retailer_trade_period(g, g.vl)
    m_high, m_low = g.prior, 1.0 - g.prior
    steps: list[_Step] = []
    for k in range(1, g.n_offers + 1):
        rho = g.c + g.timeout[0] / g.seller_factor(k)
        qh, ql = float(k == k_high), float(k == k_low)
        trades_h, trades_l = qh > 0 and m_high > 0, ql > 0 and m_low > 0
        kind = ("pooling_offer" if trades_h and trades_l else "high_offers" if trades_h
                else "low_offers" if trades_l else "no_sale")
        total = m_high + m_low
        steps.append(_Step(k, m_high / total, rho if kind != "no_sale" else 0.0, qh, ql,
                           _NAN, kind))
        m_high, m_low = m_high * (1.0 - qh), m_low * (1.0 - ql)
        if m_high + m_low <= 0.0:
            break
    s = _summary(g, steps)
    s["steps"] = steps
    s["explanation"] = _explain_retailer(g, steps, s)
    return s


def _explain_retailer(g: _Game, steps: list[_Step], s: dict[str, Any]) -> tuple[str, ...]:
    lines = []
    for st in steps:
        head = f"Offer {st.k} (round {g.offer_round(st.k)})"
        who = {"pooling_offer": "both types offer", "high_offers": "the high type offers",
               "low_offers": "the low type offers"}.get(st.kind)
        if who is None:
            lines.append(f"{head}: the retailer offers 0, which the supplier rejects: trading "
                         f"at the supplier's reservation price would pay the types still "
                         f"bargaining less than waiting.")
            continue
        lines.append(f"{head}: {who} {_f(st.price)}, the supplier's reservation price "
                     f"(cost + d_s / delta_s^{2 * st.k + g.offset}); the supplier accepts in "
                     f"round {g.offer_round(st.k) + 1}, since rejecting can earn it no more "
                     "than its timeout payoff: "
                     f"the informed retailer will never offer it more than it needs to accept.")
    if g.n_offers == 0:
        lines.append("With max_rounds = 1 no offer can be answered: the game times out.")
    lines.append(f"Expected payoffs (reward units): supplier {_f(s['supplier_payoff'])}, high "
                 f"type {_f(s['high_payoff'])}, low type {_f(s['low_payoff'])}; probability of "
                 f"no deal {s['timeout_probability']:.3f}.")
    return tuple(lines)


# --------------------------------------------------------------------------------------------
# Closed form of the two-offer game (Fudenberg & Tirole 1983)
# --------------------------------------------------------------------------------------------


def _ft_no_gap(c: float, vh: float, pi: float) -> dict[str, Any]:
    """v_L <= c < v_H: selling to the low type never pays, so the supplier asks v_H in both
    periods (also at belief 0, tie rule 2) and the high type, expecting no lower price,
    accepts at once."""
    two = pi < 1.0
    return dict(regime="no_gap", price_path=[vh, vh] if two else [vh],
                belief_path=[pi, 0.0] if two else [pi],
                high_accept_prob=[1.0, 1.0] if two else [1.0],
                low_accept_prob=[0.0, 0.0] if two else [0.0],
                supplier_payoff=pi * (vh - c), high_payoff=0.0, low_payoff=0.0,
                thresholds={"period2": 0.0})


def _ft_thresholds(c, vl, vh, ds, db, pstar, p_screen) -> dict[str, float | None]:
    """Beliefs where two period-1 regimes pay the supplier the same (lines in pi):
    sell_to_both = v_L - c; screen = s0 + s1 pi; mixed = m0 + m1 pi (for pi >= pi*)."""
    s0, s1 = ds * (vl - c), (p_screen - c) - ds * (vl - c)
    m0 = -(1.0 - ds) * (vl - c) / (1.0 - pstar)
    m1 = ((vh - c) - ds * (vl - c)) / (1.0 - pstar)

    def cross(a0, a1, b0, b1):
        return (b0 - a0) / (a1 - b1) if a1 != b1 else None

    return {"period2": pstar,
            "sell_to_both_vs_screen": cross(s0, s1, vl - c, 0.0) if db < 1.0 else None,
            "screen_vs_mixed": cross(s0, s1, m0, m1) if db < 1.0 else None,
            "sell_to_both_vs_mixed": cross(m0, m1, vl - c, 0.0)}


def fudenberg_tirole_two_period(cost: float, v_low: float, v_high: float, prob_high: float,
                                discount_seller: float, discount_buyer: float
                                ) -> dict[str, Any]:
    """Closed form of the two-offer-period game (Fudenberg & Tirole 1983, "Sequential bargaining
    with incomplete information", RES 50(2)), derived by hand; independent of the general solver.

    The seller (cost c) makes an offer in period 1 and, after a rejection, in period 2; the
    buyer is v_H with probability pi, else v_L (0 <= c < v_H, v_L < v_H, currency units). A deal
    in period 1 pays (p - c) and (v - p); in period 2 it is discounted by ``discount_seller``
    (delta_s) and ``discount_buyer`` (delta_b), both in (0, 1]; no deal pays 0. Payoffs are in
    period-1 units: with two env rounds per offer (offer k answered in round 2k) pass
    delta_s = delta^2 and multiply payoffs by the first period's factor delta^2.

    Gap case c < v_L. Period 2 at belief pi_2: ask v_H if pi_2 >= pi* = (v_L - c) / (v_H - c)
    (at pi* the seller is indifferent and asks v_H: the tie rule that leaves the high type the
    least), else v_L. So the high type's value of waiting is 0 after posteriors >= pi* and
    delta_b (v_H - v_L) below. Period 1, the seller's three regimes:
      sell_to_both: ask v_L, both accept: S = v_L - c, high type gets v_H - v_L.
      screen (delta_b < 1): ask p_s = v_H - delta_b (v_H - v_L), the price at which the high
          type is indifferent to waiting for v_L; all high types accept, the low type buys at
          v_L in period 2: S = pi (p_s - c) + (1 - pi) delta_s (v_L - c).
      mixed (pi >= pi*): ask v_H; the high type accepts with probability
          q = (pi - pi*) / (pi (1 - pi*)), so the posterior is pi* and period 2's price is v_H
          (the seller's mix at pi* puts weight 1 on v_H: any weight on v_L would force a
          period-1 price below v_H); S = ((pi - pi*)(v_H - c) + (1 - pi) delta_s (v_L - c))
          / (1 - pi*), high type 0. The low type never buys.
    The seller takes the best; ties go to the regime that leaves the high type the least
    (mixed, then screen, then sell_to_both). Screening to another posterior is never better:
    the payoff is linear in the posterior between 0 and pi*, and above pi*.
    No-gap case v_L <= c < v_H: the seller asks v_H twice and the high type accepts at once.

    Returns a dict: ``regime``, ``price_path`` (1 or 2 offers), ``belief_path`` (pi, then the
    posterior), ``high_accept_prob`` / ``low_accept_prob`` per period, ``supplier_payoff``,
    ``high_payoff``, ``low_payoff`` (period-1 units) and ``thresholds`` (pi*, and the beliefs
    where two period-1 regimes tie; None where undefined).
    """
    vh = float(check_number("v_high", v_high, 0.0))
    vl = float(check_number("v_low", v_low, 0.0))
    if not vl < vh:
        raise FieldError("v_high", f"> v_low = {vl!r}", v_high)
    c = float(check_number("cost", cost, 0.0))
    if not c < vh:
        raise FieldError("cost", f"< v_high = {vh!r}", cost)
    pi = float(check_number("prob_high", prob_high, 0.0, 1.0))
    ds = float(check_number("discount_seller", discount_seller, 0.0, 1.0, low_open=True))
    db = float(check_number("discount_buyer", discount_buyer, 0.0, 1.0, low_open=True))
    if c >= vl:
        return _ft_no_gap(c, vh, pi)
    pstar = (vl - c) / (vh - c)
    p_screen = vh - db * (vh - vl)
    regimes = []  # (name, S, high payoff, prices, beliefs, q_high, q_low), tie order
    if pi >= pstar:
        q = 1.0 if pi >= 1.0 else (pi - pstar) / (pi * (1.0 - pstar))
        two = q < 1.0
        regimes.append(("mixed", ((pi - pstar) * (vh - c) + (1 - pi) * ds * (vl - c))
                        / (1.0 - pstar), 0.0, [vh, vh][:1 + two], [pi, pstar][:1 + two],
                        [q, 1.0][:1 + two], [0.0, 0.0][:1 + two]))
    if db < 1.0:
        two = pi < 1.0
        regimes.append(("screen", pi * (p_screen - c) + (1 - pi) * ds * (vl - c),
                        db * (vh - vl), [p_screen, vl][:1 + two], [pi, 0.0][:1 + two],
                        [1.0, 1.0][:1 + two], [0.0, 1.0][:1 + two]))
    regimes.append(("sell_to_both", vl - c, vh - vl, [vl], [pi], [1.0], [1.0]))
    best = max(r[1] for r in regimes)
    name, s, u, prices, beliefs, qh, ql = next(
        r for r in regimes if r[1] >= best - _RTOL * max(1.0, vh))
    return dict(regime=name, price_path=prices, belief_path=beliefs, high_accept_prob=qh,
                low_accept_prob=ql, supplier_payoff=s, high_payoff=u, low_payoff=0.0,
                thresholds=_ft_thresholds(c, vl, vh, ds, db, pstar, p_screen))


# --------------------------------------------------------------------------------------------
# Brute force: numerical backward induction on grids
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BruteForcePBE:
    """Result of :func:`brute_force_one_sided`: the fields of :class:`OneSidedPBE` it can
    estimate (same meaning and units). Payoffs are the grid backward induction's own values
    at the prior; ``grids`` = (price_grid, belief_grid, accept_grid)."""

    price_path: tuple[float, ...]
    belief_path: tuple[float, ...]
    high_accept_prob: tuple[float, ...]
    low_accept_prob: tuple[float, ...]
    high_accept_round_first: int | None
    high_accept_round: int | None
    low_accept_round: int | None
    supplier_payoff: float
    high_payoff: float
    low_payoff: float
    grids: tuple[int, int, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field."""
        return {k: _jsonable(getattr(self, k)) for k in self.__dataclass_fields__}


def _bf_acceptance(m: np.ndarray, grid: np.ndarray, qs: np.ndarray):
    """High-type acceptance probabilities (M, Q + G) at beliefs m (M, 1): the uniform grid qs
    and, for each belief grid point x <= m, the q whose posterior is exactly x (so that the
    next period's values there are used without interpolation); and the posterior after a
    rejection by the high type (at that q) and the low type. Unused slots repeat q = 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        land = (m - grid[None, :]) / (m * (1.0 - grid[None, :]))
    ok = (grid[None, :] <= m) & (m > 0.0) & (grid[None, :] < 1.0)
    land = np.where(ok, np.clip(land, 0.0, 1.0), 1.0)
    q = np.concatenate([np.broadcast_to(qs, (m.shape[0], qs.size)), land], axis=1)
    den = m * (1.0 - q) + (1.0 - m)
    # Nobody left to reject (m = 1, q = 1): the belief after a rejection is off path; 1.
    post = np.where(den > 0.0, m * (1.0 - q) / np.where(den > 0.0, den, 1.0), 1.0)
    post[:, qs.size:] = np.where(ok, grid[None, :], post[:, qs.size:])
    return q, np.clip(post, 0.0, 1.0)


def _bf_branch(g: _Game, k: int, m, q, post, nxt, grid, prices, low_accepts: bool):
    """Candidates (M, Q', P') for one low-type response: every price on the grid plus both
    types' exact reservation prices at the posterior; returns arrays of validity (each type's
    response is optimal given next period's interpolated values), payoffs and trade mass."""
    a, b = g.seller_factor(k), g.buyer_factor(k)
    s_next, uh_next, ul_next = nxt
    post = np.ones_like(post) if low_accepts else post  # only high types can be left
    uh, ul, sv = (np.interp(post, grid, t)[..., None] for t in (uh_next, ul_next, s_next))
    extra = np.concatenate([g.vl - ul / b, g.vh - uh / b], axis=-1)
    p = np.concatenate([np.broadcast_to(prices, post.shape + prices.shape), extra], axis=-1)
    p = np.clip(p, 0.0, g.max_price)
    gain_h, gain_l = (g.vh - p) * b, (g.vl - p) * b
    tol = 10.0 * g.vtol
    # An indifferent low type accepts, so rejecting needs a strict preference.
    low_ok = gain_l >= ul - tol if low_accepts else gain_l < ul - tol
    qq = q[..., None]
    high_ok = np.where(qq >= 1.0, gain_h >= uh - tol,
                       np.where(qq <= 0.0, gain_h <= uh + tol, np.abs(gain_h - uh) <= tol))
    mass = m[..., None] * qq + (1.0 - m[..., None]) * float(low_accepts)
    shape = p.shape
    return dict(ok=low_ok & high_ok, value=mass * (p - g.c) * a + (1.0 - mass) * sv,
                u_high=np.maximum(gain_h, uh), u_low=np.broadcast_to(
                    gain_l if low_accepts else ul, shape), mass=np.broadcast_to(mass, shape),
                price=p, q=np.broadcast_to(qq, shape),
                post=np.broadcast_to(post[..., None], shape),
                low=np.full(shape, float(low_accepts)))


def _bf_choose(g: _Game, k: int, beliefs: np.ndarray, nxt, grid, prices, qs, chunk: int = 8):
    """The supplier's best consistent (price, q, low response) at each belief; ties as in the
    exact solver: least for the high type, then more trade now, then a higher q (at belief 0,
    a price a high type would accept), then the higher price."""
    keys = ("value", "u_high", "u_low", "price", "q", "low", "post")
    out = {key: np.empty(beliefs.size) for key in keys}
    for s in range(0, beliefs.size, chunk):
        m = beliefs[s:s + chunk, None]
        q, post = _bf_acceptance(m, grid, qs)
        parts = [_bf_branch(g, k, m, q, post, nxt, grid, prices, la) for la in (False, True)]
        c = {key: np.concatenate([pt[key].reshape(m.shape[0], -1) for pt in parts], axis=1)
             for key in ("ok", "mass", *keys)}
        val = np.where(c["ok"], c["value"], -np.inf)
        tie = val >= val.max(axis=1, keepdims=True) - g.vtol
        umin = np.where(tie, c["u_high"], np.inf).min(axis=1, keepdims=True)
        tie &= c["u_high"] <= umin + g.vtol
        for key in ("mass", "q"):  # q only matters at belief 0: would a high type accept?
            tie &= c[key] >= np.where(tie, c[key], -np.inf).max(axis=1, keepdims=True) - 1e-12
        idx = np.argmax(np.where(tie, c["price"], -np.inf), axis=1)
        rows = np.arange(m.shape[0])
        for key in keys:
            out[key][s:s + chunk] = c[key][rows, idx]
    return out


def brute_force_one_sided(
    cost: float,
    v_low: float,
    v_high: float,
    prob_high: float,
    max_rounds: int,
    *,
    discount: tuple[float, float] = (0.95, 0.95),
    timeout_payoff: tuple[float, float] = (0.0, 0.0),
    walk_payoff: tuple[float, float] = (0.0, 0.0),
    max_price: float = 10000.0,
    price_grid: int = 41,
    belief_grid: int = 101,
    accept_grid: int | None = None,
) -> BruteForcePBE:
    """Numerical backward induction of the supplier-proposes game, independent of the exact
    solver's thresholds (arguments as :func:`solve_one_sided_pbe`).

    For each offer period from the last, at each belief on a uniform grid of ``belief_grid``
    points in [0, 1], it searches every price on a uniform grid of ``price_grid`` points in
    [0, max_price] plus both types' exact reservation prices at the resulting posterior, every
    acceptance probability of the high type on a uniform grid of ``accept_grid`` points
    (default ``belief_grid``) plus those that land the posterior on a belief grid point, and
    both responses of the low type. It keeps the combinations where each type's response is
    optimal given next period's values at the posterior (linearly interpolated on the belief
    grid; mixing needs indifference within 1e-9 x scale) and takes the supplier's best. The
    path is then followed from the prior, re-optimising at each on-path belief.

    Errors: beliefs and the supplier's payoff are off by O(max_rounds / belief_grid).
    """
    g = _make_game(cost, v_low, v_high, prob_high, max_rounds, discount, timeout_payoff,
                   walk_payoff, max_price, "supplier")
    n_p = int(check_number("price_grid", price_grid, 2, integer=True))
    n_b = int(check_number("belief_grid", belief_grid, 2, integer=True))
    n_q = int(check_number("accept_grid", n_b if accept_grid is None else accept_grid, 2,
                           integer=True))
    grid, prices, qs = np.linspace(0, 1, n_b), np.linspace(0, g.max_price, n_p), \
        np.linspace(0, 1, n_q)
    n = g.n_offers
    tables = {n + 1: (np.full(n_b, g.timeout[0]), np.full(n_b, g.timeout[1]),
                      np.full(n_b, g.timeout[1]))}
    for k in range(n, 1, -1):
        r = _bf_choose(g, k, grid, tables[k + 1], grid, prices, qs)
        tables[k] = (r["value"], r["u_high"], r["u_low"])
    return _bf_path(g, tables, grid, prices, qs, (n_p, n_b, n_q))


def _bf_path(g: _Game, tables, grid, prices, qs, grids) -> BruteForcePBE:
    """Follow the brute-force equilibrium from the prior (see :func:`brute_force_one_sided`)."""
    pi, m_h, m_l = g.prior, g.prior, 1.0 - g.prior
    rows, top = [], None
    for k in range(1, g.n_offers + 1):
        r = _bf_choose(g, k, np.array([pi]), tables[k + 1], grid, prices, qs)
        r = {key: float(v[0]) for key, v in r.items()}
        top = top or r
        rows.append((pi, r))
        m_h = 0.0 if r["q"] >= 1.0 else m_h * (1.0 - r["q"])
        m_l = 0.0 if r["low"] >= 1.0 else m_l * (1.0 - r["low"])
        if m_h + m_l <= 0.0:
            break
        pi = r["post"]
    qh = [r["q"] for _, r in rows]
    ql = [r["low"] for _, r in rows]
    pay = (top["value"], top["u_high"], top["u_low"]) if top else \
        (g.timeout[0], g.timeout[1], g.timeout[1])
    return BruteForcePBE(
        price_path=tuple(r["price"] for _, r in rows), belief_path=tuple(p for p, _ in rows),
        high_accept_prob=tuple(qh), low_accept_prob=tuple(ql),
        high_accept_round_first=_first_round(qh, "first"),
        high_accept_round=_first_round(qh, "sure"), low_accept_round=_first_round(ql, "sure"),
        supplier_payoff=pay[0], high_payoff=pay[1], low_payoff=pay[2], grids=grids)
