"""Exact subgame-perfect equilibrium of the complete-information price x quantity game.

The game is the one of ``docs/games.md`` ("price-quantity"): the turn structure, tie rules and
reward models of the single-price game (``docs/rules.md``), with an offer ``(p, q)``: unit price
``p`` in [0, max_price] (currency units per unit) and quantity ``q`` in [0, max_quantity]
(units). Gains of a deal: supplier ``(p - c) q``, retailer ``V(q) - p q`` with
``V(q) = a q - b q^2 / 2``. Both ``c`` and ``a`` are known to both agents here.

Method (backward induction, no grid). As in the price game, the pair of payoffs when the mover of
round t does *not* accept the standing offer (it walks or counters) does not depend on that offer,
so it is computed from round T down to 1. In round t < T the mover's counter is accepted in round
t+1 iff it gives the responder at least the responder's own non-accept value, i.e. a required
gain ``k``. Write the payment ``m = p q`` (so ``0 <= m <= max_price q``):

* supplier proposing: maximise ``m - c q`` subject to ``V(q) - m >= k``: the payment is pinned
  at ``m(q) = min(max_price q, V(q) - k)`` and ``m(q) - c q`` is concave in q (a minimum of a
  line and a concave parabola) on the interval ``{q : V(q) >= k}``;
* retailer proposing: maximise ``V(q) - m`` subject to ``m - c q >= k``: ``m(q) = max(0, c q +
  k)`` and ``V(q) - m(q)`` is concave on ``{q : (max_price - c) q >= k}``.

So the best acceptable offer is found exactly among finitely many candidates: the interval's
ends, the quantity bounds, the kinks (where the price cap or the price floor starts to bind) and
the stationary points ``q* = (a - c)/b`` (payment pinned by the responder) and ``a/b`` (payment
0). With ``D = 0`` (seed model, round T) a deal pays the bonus whatever the offer: all or nothing.

This module imports only NumPy and ``eqx_jax.checks``, never the envs, so that it is an
independent check of them. Payoffs are reward units; prices currency units per unit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from eqx_jax.checks import check_number
from eqx_jax.payoffs import AGENTS, REWARD_MODELS, check_pair, deal_factors, reward_model_name

__all__ = ["AGENTS", "REWARD_MODELS", "END_CODES", "PQRoundPlan", "PQSPE", "solve_pq_spe",
           "spe_pq_batch"]

#: Integer codes of ``spe_pq_batch(...)["end"]`` (the same codes as the price game's solver).
END_CODES: dict[str, int] = {"deal": 0, "walk_away": 1, "timeout": 2}
#: The largest max_rounds accepted (the env's range).
MAX_ROUNDS = 1000

# Values that differ by less than _RTOL x (payoff scale) are ties, so that exact mathematical ties
# (a responder made exactly indifferent) are resolved by the tie rules, not by round-off.
_RTOL = 1e-10


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Game:
    """Validated settings (internal)."""

    T: int
    model: str
    max_price: float
    max_quantity: float
    speed_bonus: float
    bonus_fraction: float
    discount: tuple[float, float]
    walk: tuple[float, float]
    timeout: tuple[float, float]

    @property
    def tol(self) -> float:
        """Tie tolerance for gains and payoffs, currency / reward units."""
        scale = max(1.0, 10.0 * self.max_price * self.max_quantity, abs(self.speed_bonus),
                    *map(abs, self.walk), *map(abs, self.timeout))
        return _RTOL * scale

    def factors(self, t: int) -> tuple[float, float, float]:
        """(D_s, D_r, B) of a deal in round t: payoff_i = gain_i D_i + B
        (:func:`eqx_jax.payoffs.deal_factors`)."""
        return deal_factors(self.model, t, self.T, self.speed_bonus, self.bonus_fraction,
                            self.discount)


def _make_game(max_rounds, reward_model, max_price, max_quantity, speed_bonus, bonus_fraction,
               discount, walk_payoff, timeout_payoff) -> _Game:
    check_number("max_rounds", max_rounds, 1, MAX_ROUNDS, integer=True)
    reward_model = reward_model_name(reward_model)  # a name or the env's integer codes 0 / 1
    big = 1e9
    return _Game(
        T=int(max_rounds), model=str(reward_model),
        max_price=float(check_number("max_price", max_price, 0.0, big, low_open=True)),
        max_quantity=float(check_number("max_quantity", max_quantity, 0.0, big, low_open=True)),
        speed_bonus=float(check_number("speed_bonus", speed_bonus, -big, big)),
        bonus_fraction=float(check_number("bonus_fraction", bonus_fraction, 0.0, 1.0)),
        discount=check_pair("discount", discount, 0.0, 1.0, low_open=True),
        walk=check_pair("walk_payoff", walk_payoff, -big, big),
        timeout=check_pair("timeout_payoff", timeout_payoff, -big, big),
    )


def _check_array(name: str, x: np.ndarray, low: float, high: float, *, low_open=False) -> None:
    """FieldError naming ``name`` at the first entry of ``x`` outside the range (or not finite)."""
    bad = ~np.isfinite(x) | ((x <= low) if low_open else (x < low)) | (x > high)
    if np.any(bad):
        check_number(name, float(x[bad].ravel()[0]), low, high, low_open=low_open)


def _values(g: _Game, c, a, b) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """Validated (c, a, b) as flat float64 arrays of the broadcast shape (returned last)."""
    c, a, b = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in (c, a, b)))
    shape = c.shape
    c, a, b = c.ravel(), a.ravel(), b.ravel()
    _check_array("unit_cost", c, 0.0, g.max_price)
    _check_array("demand_intercept", a, 0.0, 10.0 * g.max_price)
    _check_array("demand_slope", b, 0.0, 1e9, low_open=True)
    return c, a, b, shape


# --------------------------------------------------------------------------------------------
# One round: the best offer the responder accepts
# --------------------------------------------------------------------------------------------


def _value(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The retailer's value V(q) = a q - b q^2 / 2 of q units, currency units."""
    return a * q - 0.5 * b * q * q


def _favourite(g: _Game, mover: int, c, a, b) -> tuple[np.ndarray, np.ndarray]:
    """The mover's own most favourable offer (p, q), (N,) each: the one maximising its gain.

    Supplier: max_price and max_quantity (quantity 0 if max_price <= c: no unit pays); retailer:
    price 0 and the quantity maximising V, ``a/b`` clipped to max_quantity."""
    n = c.shape[0]
    if mover == 0:
        return np.full(n, g.max_price), np.where(g.max_price > c, g.max_quantity, 0.0)
    return np.zeros(n), np.clip(a / b, 0.0, g.max_quantity)


def _least_liked(g: _Game, mover: int, c, a, b) -> tuple[np.ndarray, np.ndarray]:
    """The offer (p, q) that pays the *responder* the least gain of all offers: rejected
    whenever any offer is. Supplier proposing: (max_price, max_quantity) or (max_price, 0)
    (the retailer's V(q) - max_price q is concave, lowest at an end); retailer: (0, max_q)."""
    n, P, Q = c.shape[0], g.max_price, g.max_quantity
    if mover == 0:
        return np.full(n, P), np.where(_value(Q, a, b) - P * Q <= 0.0, Q, 0.0)
    return np.zeros(n), np.full(n, Q)


def _least_gain(g: _Game, mover: int, c, a, b) -> np.ndarray:
    """The responder's gain (N,) at :func:`_least_liked`."""
    if mover == 0:
        return np.minimum(0.0, _value(g.max_quantity, a, b) - g.max_price * g.max_quantity)
    return -c * g.max_quantity


def _candidates(g: _Game, mover: int, need, c, a, b) -> np.ndarray:
    """Candidate quantities (K, N) in [0, max_quantity] that contain the best acceptable offer's
    quantity: bounds, the ends of the feasible interval, the kinks and the stationary points."""
    P, Q = g.max_price, g.max_quantity
    zero, cap = np.zeros_like(c), np.full_like(c, Q)
    if mover == 0:
        # Feasible: V(q) >= need. Kinks: P q = V(q) - need. Stationary point: (a - c) / b.
        r1 = np.sqrt(np.maximum(a * a - 2.0 * b * need, 0.0))
        r2 = np.sqrt(np.maximum((a - P) ** 2 - 2.0 * b * need, 0.0))
        cands = [zero, cap, (a - r1) / b, (a + r1) / b, (a - P - r2) / b, (a - P + r2) / b,
                 (a - c) / b]
    else:
        # Feasible: (P - c) q >= need. Kink: c q + need = 0 (the price floor m = 0 starts to
        # bind). Stationary points: (a - c) / b (payment pinned), a / b (payment 0).
        slack = P - c
        with np.errstate(over="ignore"):  # a tiny c or P - c: an end beyond the cap, clipped
            lo = np.where(slack > 0.0, need / np.where(slack > 0.0, slack, 1.0), 0.0)
            kink = np.where(c > 0.0, -need / np.where(c > 0.0, c, 1.0), 0.0)
        cands = [zero, cap, lo, kink, (a - c) / b, a / b]
    return np.clip(np.stack(cands), 0.0, Q)


@dataclass
class _Offer:
    """The mover's best acceptable offer, arrays (N,) (internal); ``exact``: the responder gets
    exactly its required gain (the pinned payment is not clipped by a price bound)."""

    ok: np.ndarray
    price: np.ndarray
    quantity: np.ndarray
    payment: np.ndarray
    exact: np.ndarray


def _best_acceptable(g: _Game, mover: int, need, c, a, b) -> _Offer:
    """The offer the mover likes best among those giving the responder a gain >= ``need``
    (N,), currency units. Ties in the mover's gain go to the higher total gain V(q) - c q."""
    P, tol = g.max_price, g.tol
    q = _candidates(g, mover, need, c, a, b)
    v = _value(q, a[None], b[None])
    if mover == 0:
        pinned = v - need[None]
        feas = v >= need[None] - tol
        m = np.clip(np.minimum(P * q, pinned), 0.0, None)
        own = m - c[None] * q
    else:
        pinned = c[None] * q + need[None]
        feas = (P - c[None]) * q >= need[None] - tol
        m = np.minimum(np.maximum(pinned, 0.0), P * q)
        own = v - m
    best = np.where(feas, own, -np.inf).max(axis=0)
    near = feas & (own >= best[None] - tol)
    k = np.argmax(np.where(near, v - c[None] * q, -np.inf), axis=0)[None]

    def take(x: np.ndarray) -> np.ndarray:
        return np.take_along_axis(x, k, axis=0)[0]

    qk, mk, pk = take(q), take(m), take(pinned)
    extreme = P if mover == 0 else 0.0
    unit = np.clip(mk / np.where(qk > 0.0, qk, 1.0), 0.0, P)
    unit = np.where(mk >= P * qk - tol, P, unit)  # on the cap: exactly max_price, no round-off
    price = np.where(qk > 0.0, unit, extreme)
    exact = (pk >= -tol) & (pk <= P * qk + tol)
    return _Offer(ok=feas.any(axis=0), price=price, quantity=qk, payment=mk, exact=exact)


# --------------------------------------------------------------------------------------------
# Backward induction and the equilibrium path (vectorised over settings)
# --------------------------------------------------------------------------------------------


@dataclass
class _Round:
    """Backward-induction results of round t, arrays (N,) (internal). ``alt``: payoffs (2, N)
    when the mover does not accept. For t < T: ``need`` the responder's required gain for an
    offer made now (NaN when D(t+1) = 0: then all or nothing, ``ok``), ``unacc`` some offer is
    rejected, ``agree_val`` / ``delay_val`` the payoffs (2, N) of the best acceptable offer and
    of a rejected one."""

    t: int
    mover: int
    walk: np.ndarray
    agree: np.ndarray
    price: np.ndarray
    quantity: np.ndarray
    alt: np.ndarray
    counter: np.ndarray
    need: np.ndarray | None = None
    ok: np.ndarray | None = None
    unacc: np.ndarray | None = None
    agree_val: np.ndarray | None = None
    delay_val: np.ndarray | None = None
    offer: _Offer | None = None


def _offer_round(g: _Game, rec: _Round, nxt: _Round, c, a, b) -> None:
    """Fill ``rec`` (round t < T): agreement or delay, and the counter (before walk-away)."""
    t, mv = rec.t, rec.mover
    r = 1 - mv
    ds, dr, bonus = g.factors(t + 1)
    d_r = dr if r == 1 else ds
    alt_next = nxt.alt
    n = c.shape[0]
    fav_p, fav_q = _favourite(g, mv, c, a, b)
    if d_r == 0.0:  # seed model, offer for round T: every offer pays the bonus
        need = np.full(n, np.nan)
        ok = np.broadcast_to(bonus >= alt_next[r] - g.tol, (n,)).copy()
        unacc = ~ok
        off = _Offer(ok=ok, price=fav_p, quantity=fav_q, payment=fav_p * fav_q,
                     exact=np.zeros(n, bool))
        agree_val = np.full((2, n), bonus)
        fav_rejected = unacc
    else:
        need = (alt_next[r] - bonus) / d_r
        off = _best_acceptable(g, mv, need, c, a, b)
        ok = off.ok
        unacc = _least_gain(g, mv, c, a, b) < need - g.tol
        v = _value(off.quantity, a, b)
        agree_val = np.stack([(off.payment - c * off.quantity) * ds + bonus,
                              (v - off.payment) * dr + bonus])
        # At an exact (interior) threshold the responder gets its alternative; use that value
        # rather than the recomputed one, which differs by round-off.
        agree_val[r] = np.where(off.exact, alt_next[r], agree_val[r])
        fav_gain = (fav_p - c) * fav_q if r == 0 else _value(fav_q, a, b) - fav_p * fav_q
        fav_rejected = fav_gain < need - g.tol
    agree = ok & (~unacc | (agree_val[mv] >= alt_next[mv] - g.tol))
    # A rejected counter's offer does not matter: the mover names its favourite offer if that is
    # rejected, else the offer the responder likes least (rejected whenever any offer is).
    least_p, least_q = _least_liked(g, mv, c, a, b)
    delay_p = np.where(fav_rejected, fav_p, least_p)
    delay_q = np.where(fav_rejected, fav_q, least_q)
    rec.counter = np.where(agree, agree_val, alt_next)
    rec.price = np.where(agree, off.price, delay_p)
    rec.quantity = np.where(agree, off.quantity, delay_q)
    rec.need, rec.ok, rec.unacc, rec.agree = need, ok, unacc, agree
    rec.agree_val, rec.delay_val, rec.offer = agree_val, np.array(alt_next), off


def _backward(g: _Game, c, a, b) -> list[_Round]:
    """Backward induction from round T to 1; returns the rounds in order t = 1..T."""
    n = c.shape[0]
    walk_pair = np.broadcast_to(np.asarray(g.walk)[:, None], (2, n))
    out: list[_Round] = []
    nxt: _Round | None = None
    for t in range(g.T, 0, -1):
        mv = 0 if t % 2 == 1 else 1  # the supplier moves in odd rounds
        fav_p, fav_q = _favourite(g, mv, c, a, b)
        rec = _Round(t=t, mover=mv, walk=np.zeros(n, bool), agree=np.zeros(n, bool),
                     price=fav_p, quantity=fav_q, alt=walk_pair,
                     counter=np.broadcast_to(np.asarray(g.timeout)[:, None], (2, n)))
        if t < g.T:
            _offer_round(g, rec, nxt, c, a, b)
        rec.walk = walk_pair[mv] > rec.counter[mv] + g.tol  # indifferent movers counter
        rec.alt = np.where(rec.walk, walk_pair, rec.counter)
        out.append(rec)
        nxt = rec
    out.reverse()
    return out


def _forward(g: _Game, rounds: list[_Round], n: int) -> dict[str, np.ndarray]:
    """Follow the equilibrium path from round 1: price, quantity, round, payoffs (2, N), end."""
    done = np.zeros(n, bool)
    price, qty = np.full(n, np.nan), np.full(n, np.nan)
    rnd, end = np.zeros(n, np.int64), np.full(n, -1, np.int64)
    pay = np.full((2, n), np.nan)

    def close(mask, code, value, t):
        nonlocal pay, rnd, end, done
        pay = np.where(mask, value, pay)
        rnd = np.where(mask, t, rnd)
        end = np.where(mask, code, end)
        done = done | mask

    for rec in rounds:
        if rec.t >= 2:
            prev = rounds[rec.t - 2]
            # The standing offer is prev's counter; it is acceptable iff prev.agree.
            acc = ~done & ~prev.walk & prev.agree
            price = np.where(acc, prev.price, price)
            qty = np.where(acc, prev.quantity, qty)
            close(acc, END_CODES["deal"], prev.agree_val, rec.t)
        close(~done & rec.walk, END_CODES["walk_away"], np.asarray(g.walk)[:, None], rec.t)
        if rec.t == g.T:
            close(~done, END_CODES["timeout"], np.asarray(g.timeout)[:, None], rec.t)
    return {"price": price, "quantity": qty, "round": rnd, "pay": pay, "end": end}


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def spe_pq_batch(
    unit_cost: np.ndarray,
    demand_intercept: np.ndarray,
    demand_slope: float | np.ndarray = 1.0,
    max_rounds: int = 10,
    *,
    reward_model: str = "seed",
    max_price: float = 200.0,
    max_quantity: float = 200.0,
    speed_bonus: float = 5.0,
    bonus_fraction: float = 0.3,
    discount: tuple[float, float] = (0.95, 0.95),
    walk_payoff: tuple[float, float] = (-10.0, -10.0),
    timeout_payoff: tuple[float, float] = (-5.0, -5.0),
) -> dict[str, np.ndarray]:
    """SPE outcomes for many settings at once (the same solution as :func:`solve_pq_spe`).

    Args:
        unit_cost: c, currency units per unit, in [0, max_price]; demand_intercept: a, in
            [0, 10 max_price]; demand_slope: b > 0: arrays broadcastable to one shape S.
        Other arguments as in :func:`solve_pq_spe` (scalars, shared by all settings).

    Returns:
        dict of arrays of shape S: ``price`` (unit price) and ``quantity`` (float64, NaN
        without a deal), ``round`` (int64), ``supplier_payoff`` / ``retailer_payoff`` (float64,
        reward units), ``agreement`` (bool), ``end`` (int64, :data:`END_CODES`),
        ``efficient_quantity`` (q* = (a - c)/b clipped to [0, max_quantity]).
    """
    g = _make_game(max_rounds, reward_model, max_price, max_quantity, speed_bonus,
                   bonus_fraction, discount, walk_payoff, timeout_payoff)
    c, a, b, shape = _values(g, unit_cost, demand_intercept, demand_slope)
    path = _forward(g, _backward(g, c, a, b), c.shape[0])
    out = {
        "price": path["price"], "quantity": path["quantity"], "round": path["round"],
        "supplier_payoff": path["pay"][0], "retailer_payoff": path["pay"][1],
        "agreement": path["end"] == END_CODES["deal"], "end": path["end"],
        "efficient_quantity": np.clip((a - c) / b, 0.0, g.max_quantity),
    }
    return {k: v.reshape(shape) for k, v in out.items()}


@dataclass(frozen=True)
class PQRoundPlan:
    """The equilibrium plan of the agent moving in round ``round`` (on or off the path).

    Prices are currency units per unit, quantities units, gains currency units, value pairs
    (supplier, retailer) payoffs in reward units.

    Attributes:
        round, mover: t (1..T) and "supplier" (odd t) or "retailer".
        accept_gain: the mover accepts a standing offer iff its gain at it is >= this (None in
            round 1, and when the deal pays a fixed amount whatever the offer: seed model,
            round T); accept_rule: the same in words (None in round 1).
        offer_accept_gain, offer_accept_rule: the responder's rule for an offer made in this
            round (None if t == T).
        action: "counter" or "walk"; kind: "agreement" (the counter is accepted in round
            t+1), "delay" (it is rejected), "timeout" (a counter in round T) or "walk".
        price, quantity: the planned counter (None if the mover walks).
        binding: for an agreement, the constraints that hold with equality at the offer:
            "continuation" (the responder gets exactly its required gain), "price_cap" (p =
            max_price), "price_floor" (p = 0); or ("any",) when every offer is accepted and pays
            the same (seed model, round T); None for other kinds.
        value: payoffs if the mover does not accept; walk_value, counter_value: of walking and
            of the planned counter; agree_value: of the best acceptable offer (None if none);
            delay_value: of a rejected offer (None if t == T or every offer is accepted).
        on_path: whether the round is reached on the equilibrium path.
    """

    round: int
    mover: str
    accept_gain: float | None
    accept_rule: str | None
    offer_accept_gain: float | None
    offer_accept_rule: str | None
    action: str
    kind: str
    price: float | None
    quantity: float | None
    binding: tuple[str, ...] | None
    value: tuple[float, float]
    walk_value: tuple[float, float]
    counter_value: tuple[float, float]
    agree_value: tuple[float, float] | None
    delay_value: tuple[float, float] | None
    on_path: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples become lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self)}


@dataclass(frozen=True)
class PQSPE:
    """Subgame-perfect equilibrium of one complete-information price x quantity game.

    Attributes:
        outcome: "deal", "walk_away" or "timeout"; price (unit price, currency units per unit)
            and quantity (units): the deal, None without one; round: the round the deal is
            accepted in, or the game ends in; supplier_payoff, retailer_payoff: reward units.
        efficient_quantity: q* = (a - c)/b clipped to [0, max_quantity]; surplus: the deal's
            total gain V(q) - c q (currency units, None without a deal); efficiency: surplus /
            the maximal total gain (None without a deal or when no gain is possible).
        plans: one :class:`PQRoundPlan` per round 1..T; explanation: plain-English lines.
        unit_cost, demand_intercept, demand_slope, max_rounds, reward_model: the solved game.
    """

    outcome: str
    price: float | None
    quantity: float | None
    round: int
    supplier_payoff: float
    retailer_payoff: float
    efficient_quantity: float
    surplus: float | None
    efficiency: float | None
    plans: tuple[PQRoundPlan, ...]
    explanation: list[str]
    unit_cost: float
    demand_intercept: float
    demand_slope: float
    max_rounds: int
    reward_model: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field (plans as dicts)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["plans"] = [p.to_dict() for p in self.plans]
        out["explanation"] = list(self.explanation)
        out["agreement"] = self.outcome == "deal"
        return out


def _f(x: float) -> str:
    return f"{x:,.2f}"


def _rule(who: int, gain: float | None, all_ok: bool, c: float, a: float, b: float) -> str:
    """A mover's acceptance rule in words."""
    if gain is None:
        return "accepts every offer" if all_ok else "accepts no offer"
    lhs = f"(p - {c:g}) q" if who == 0 else f"{a:g} q - {b:g} q^2/2 - p q"
    return f"accepts (p, q) iff {lhs} >= {_f(gain)}"


def _binding(g: _Game, rec: _Round) -> tuple[str, ...] | None:
    """What fixes an agreed offer (see :class:`PQRoundPlan`); None for other kinds."""
    if rec.walk[0] or not rec.agree[0]:
        return None
    if np.isnan(rec.need[0]):
        return ("any",)
    off = rec.offer
    m, q = float(off.payment[0]), float(off.quantity[0])
    out = ["continuation"] if off.exact[0] else []
    if q > 0.0 and m >= g.max_price * q - g.tol:
        out.append("price_cap")
    if q > 0.0 and m <= g.tol:
        out.append("price_floor")
    return tuple(out)


def _plan(g: _Game, rounds: list[_Round], rec: _Round, last: int, vals) -> PQRoundPlan:
    """The :class:`PQRoundPlan` of ``rec`` (arrays of shape (1,)); ``vals`` = (c, a, b)."""
    t, mv = rec.t, rec.mover

    def pair(x):
        return None if x is None else (float(x[0][0]), float(x[1][0]))

    def gain_rule(r: _Round | None, who: int):
        if r is None or r.need is None:
            return None, None
        gain = None if np.isnan(r.need[0]) else float(r.need[0])
        return gain, _rule(who, gain, bool(r.ok[0]), *vals)

    acc_gain, acc_rule = gain_rule(rounds[t - 2] if t >= 2 else None, mv)
    off_gain, off_rule = gain_rule(rec, 1 - mv)
    walk = bool(rec.walk[0])
    kind = "walk" if walk else "timeout" if t == g.T else \
        "agreement" if bool(rec.agree[0]) else "delay"
    has_a = rec.ok is not None and bool(rec.ok[0])
    has_b = rec.unacc is not None and bool(rec.unacc[0])
    return PQRoundPlan(
        round=t, mover=AGENTS[mv], accept_gain=acc_gain, accept_rule=acc_rule,
        offer_accept_gain=off_gain, offer_accept_rule=off_rule,
        action="walk" if walk else "counter", kind=kind,
        price=None if walk else float(rec.price[0]),
        quantity=None if walk else float(rec.quantity[0]),
        binding=None if t == g.T else _binding(g, rec),
        value=pair(rec.alt), walk_value=(g.walk[0], g.walk[1]), counter_value=pair(rec.counter),
        agree_value=pair(rec.agree_val) if has_a else None,
        delay_value=pair(rec.delay_val) if has_b else None,
        on_path=t <= last,
    )


def _offer_text(p: float | None, q: float | None) -> str:
    return f"(p, q) = ({_f(p)}, {_f(q)})"


def _phrase(pl: PQRoundPlan) -> str:
    """What a mover does when it does not accept, in a few words."""
    other = AGENTS[1] if pl.mover == AGENTS[0] else AGENTS[0]
    if pl.kind == "walk":
        return f"walking away in round {pl.round}"
    if pl.kind == "timeout":
        return f"countering in round {pl.round}, which ends the game with the timeout"
    verb = "accepts" if pl.kind == "agreement" else "rejects"
    return (f"countering with {_offer_text(pl.price, pl.quantity)}, which the {other} {verb} "
            f"in round {pl.round + 1}")


def _gain(i: int, p: float, q: float, vals: tuple[float, float, float]) -> float:
    c, a, b = vals
    return (p - c) * q if i == 0 else a * q - 0.5 * b * q * q - p * q


def _explain_standing(g: _Game, plans, pl: PQRoundPlan, i: int, accepted: bool,
                      pay: tuple[float, float], vals) -> str:
    """How the mover of round ``pl.round >= 2`` (index ``i``) answers the standing offer."""
    t, m = pl.round, pl.mover
    prev = plans[t - 2]
    offer = _offer_text(prev.price, prev.quantity)
    if accepted:
        return (f"Round {t}: the {m} accepts {offer}: accepting pays it {_f(pay[i])}, at least "
                f"its best alternative {_f(pl.value[i])} ({_phrase(pl)}).")
    ds, dr, bonus = g.factors(t)
    v_acc = _gain(i, prev.price, prev.quantity, vals) * (ds if i == 0 else dr) + bonus
    return (f"Round {t}: the {m} rejects {offer}: accepting would pay it {_f(v_acc)}, less "
            f"than its best alternative {_f(pl.value[i])} ({_phrase(pl)}).")


def _why_offer(g: _Game, pl: PQRoundPlan, r: str, q_star: float) -> str:
    """Why the agreed offer is what it is: what binds, and the quantity against q*."""
    if pl.binding == ("any",):
        return (f"in round {g.T} a deal pays both the same whatever the offer (D(T) = 0), so the "
                f"{pl.mover} names its own favourite offer")
    words = {"continuation": f"the payment p q leaves the {r} exactly its required gain "
                             f"{_f(pl.offer_accept_gain)}",
             "price_cap": f"the price cap {_f(g.max_price)} binds",
             "price_floor": "the price floor 0 binds"}
    pins = "; ".join(words[k] for k in pl.binding)
    if abs(pl.quantity - q_star) <= 1e-9 * max(1.0, g.max_quantity):
        qty = f"the quantity is the efficient q* = {_f(q_star)}"
    elif pl.quantity >= g.max_quantity:
        qty = f"the quantity is the cap max_quantity = {_f(g.max_quantity)}"
    else:
        qty = (f"the quantity is not q* = {_f(q_star)}: with the price at its bound the "
               f"{pl.mover} takes its share through the quantity")
    return f"{pins}, and {qty}"


def _explain_move(g: _Game, plans, pl: PQRoundPlan, i: int, q_star: float) -> str:
    """What the mover of round ``pl.round`` does when it does not accept."""
    t, m, r = pl.round, pl.mover, AGENTS[1 - i]
    if pl.kind == "walk":
        return (f"Round {t}: the {m} walks away: walking pays it {_f(pl.walk_value[i])}, more "
                f"than its best counter-offer ({_f(pl.counter_value[i])}).")
    if pl.kind == "timeout":
        return (f"Round {t} (the last): the {m} counters, which ends the game with the timeout "
                f"payoff {_f(pl.counter_value[i])}, at least as good for it as walking away "
                f"({_f(pl.walk_value[i])}).")
    nxt = plans[t]
    offer = _offer_text(pl.price, pl.quantity)
    if pl.kind == "agreement":
        alt = (f"the deal pays the {m} {_f(pl.agree_value[i])}, at least as much as "
               + (f"delaying ({_f(pl.delay_value[i])}) or " if pl.delay_value else "")
               + f"walking away ({_f(pl.walk_value[i])})")
        return (f"Round {t}: the {m} proposes {offer}, the best offer for it that the {r} "
                f"accepts in round {t + 1} (the {r} {nxt.accept_rule}: rejecting is worth "
                f"{_f(nxt.value[1 - i])} to it, {_phrase(nxt)}); "
                f"{_why_offer(g, pl, r, q_star)}; {alt}.")
    if pl.agree_value is None:
        why = f"no offer is acceptable to the {r} ({nxt.accept_rule})"
    else:
        why = (f"the best offer the {r} would accept pays the {m} only "
               f"{_f(pl.agree_value[i])}, less than waiting ({_f(pl.delay_value[i])})")
    return f"Round {t}: the {m} proposes {offer}, which the {r} rejects: {why}."


def _explain(g: _Game, plans: tuple[PQRoundPlan, ...], outcome: str, last: int,
             pay: tuple[float, float], vals: tuple[float, float, float],
             q_star: float) -> list[str]:
    """Plain-English lines for the equilibrium path (rounds 1..``last``), then the outcome."""
    c, a, b = vals
    lines = [f"Complete-information price x quantity game, {g.model} reward model, T = {g.T} "
             f"rounds; unit cost c = {c:g}, value V(q) = {a:g} q - {b:g} q^2/2, efficient "
             f"quantity q* = {_f(q_star)}; the supplier moves in odd rounds. Backward induction "
             f"from round {g.T}."]
    for pl in plans[:last]:
        i = AGENTS.index(pl.mover)
        if pl.round >= 2:
            accepted = outcome == "deal" and pl.round == last
            lines.append(_explain_standing(g, plans, pl, i, accepted, pay, vals))
            if accepted:
                break
        lines.append(_explain_move(g, plans, pl, i, q_star))
    if outcome != "deal":
        return lines + [f"Outcome: no deal ({outcome.replace('_', ' ')}) in round {last}; "
                        f"payoffs supplier {_f(pay[0])}, retailer {_f(pay[1])}."]
    deal = plans[last - 2]
    lines.append(f"Outcome: deal at unit price {_f(deal.price)} for {_f(deal.quantity)} units in "
                 f"round {last}; payoffs supplier {_f(pay[0])}, retailer {_f(pay[1])}.")
    if g.model == "seed" and last == g.T:
        lines.append(f"Note: a deal in round T = {g.T} pays 0 to both whatever the offer "
                     "(D(T) = 0); it is an artefact of the seed model, preferred to the timeout.")
    return lines


def solve_pq_spe(
    unit_cost: float,
    demand_intercept: float,
    demand_slope: float,
    max_rounds: int = 10,
    *,
    reward_model: str = "seed",
    max_price: float = 200.0,
    max_quantity: float = 200.0,
    speed_bonus: float = 5.0,
    bonus_fraction: float = 0.3,
    discount: tuple[float, float] = (0.95, 0.95),
    walk_payoff: tuple[float, float] = (-10.0, -10.0),
    timeout_payoff: tuple[float, float] = (-5.0, -5.0),
) -> PQSPE:
    """Exact SPE of the complete-information price x quantity game (see the module docstring).

    Args:
        unit_cost: c in [0, max_price], currency units per unit; demand_intercept: a in
            [0, 10 max_price]; demand_slope: b > 0 (the retailer's marginal value is a - b q).
        max_rounds: T in [1, 1000]; reward_model: "seed" or "discounted" (or the env's 0 / 1);
        max_price (> 0, per unit), max_quantity (> 0, units): the offer bounds; speed_bonus,
        bonus_fraction: seed model; discount: (delta_s, delta_r) in (0, 1], discounted model;
        walk_payoff, timeout_payoff: (supplier, retailer), reward units.

    Tie rules (the equilibrium is unique given them): an indifferent responder accepts; a
    proposer indifferent between an accepted and a rejected offer makes the accepted one; a mover
    indifferent between walking and countering counters; among acceptable offers equally good
    for the proposer, the one with the higher total gain V(q) - c q; when the offer does not
    change the proposer's payoff (a counter in round T, a rejected counter, any offer for a
    seed-model round T) it names its own favourite offer (supplier (max_price, max_quantity),
    retailer (0, a/b)), and a rejected counter is the offer the responder likes least if the
    favourite would be accepted. Payoffs within 1e-10 x (payoff scale) are ties.

    Raises:
        ValueError (:class:`~eqx_jax.checks.FieldError`) naming the field and its range.
    """
    g = _make_game(max_rounds, reward_model, max_price, max_quantity, speed_bonus,
                   bonus_fraction, discount, walk_payoff, timeout_payoff)
    for name, x in (("unit_cost", unit_cost), ("demand_intercept", demand_intercept),
                    ("demand_slope", demand_slope)):
        check_number(name, x)
    c, a, b, _ = _values(g, unit_cost, demand_intercept, demand_slope)
    rounds = _backward(g, c, a, b)
    path = _forward(g, rounds, 1)
    outcome = {v: k for k, v in END_CODES.items()}[int(path["end"][0])]
    last = int(path["round"][0])
    vals = (float(c[0]), float(a[0]), float(b[0]))
    plans = tuple(_plan(g, rounds, rec, last, vals) for rec in rounds)
    deal = outcome == "deal"
    price = float(path["price"][0]) if deal else None
    qty = float(path["quantity"][0]) if deal else None
    q_star = float(np.clip((vals[1] - vals[0]) / vals[2], 0.0, g.max_quantity))
    best_total = float(_value(q_star, vals[1], vals[2]) - vals[0] * q_star)
    surplus = float(_value(qty, vals[1], vals[2]) - vals[0] * qty) if deal else None
    pay = (float(path["pay"][0, 0]), float(path["pay"][1, 0]))
    return PQSPE(
        outcome=outcome, price=price, quantity=qty, round=last,
        supplier_payoff=pay[0], retailer_payoff=pay[1], efficient_quantity=q_star,
        surplus=surplus,
        efficiency=surplus / best_total if deal and best_total > 0.0 else None,
        plans=plans,
        explanation=_explain(g, plans, outcome, last, pay, vals, q_star),
        unit_cost=vals[0], demand_intercept=vals[1], demand_slope=vals[2], max_rounds=g.T,
        reward_model=g.model,
    )

