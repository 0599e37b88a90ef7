"""Game-theoretic reference values for the bargaining game (NumPy float64, no JAX).

Two kinds of reference values, to check what learning agents do against theory:

1. :func:`solve_spe` / :func:`spe_price_batch`: the exact subgame-perfect equilibrium (SPE) of the
   *complete-information* game of ``docs/rules.md`` (both valuations known to both agents), by
   backward induction in closed form: no price grid, so every threshold is exact up to float64
   round-off.
2. :func:`chatterjee_samuelson` and :func:`myerson_satterthwaite`: the linear equilibrium of the
   k = 1/2 double auction and the second-best mechanism when valuations are *private* and uniform.
   These bound what any bargaining procedure can achieve under incomplete information.

Units: prices, valuations and support bounds are currency units; payoffs and expected gains from
trade are reward units for the SPE (the game's reward models) and currency units for the
double-auction values (gains from trade ``v - c``). Rounds are counted from 1 as in the rules.

This module imports nothing from the environment side of ``eqx_jax`` (only the argument checks
of ``eqx_jax.checks``), so it stands alone as an independent check of the environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from eqx_jax.checks import check_number
from eqx_jax.payoffs import AGENTS, REWARD_MODELS, check_pair, deal_factors, reward_model_name

__all__ = [
    "AGENTS",
    "REWARD_MODELS",
    "END_CODES",
    "RoundPlan",
    "SPE",
    "solve_spe",
    "spe_price_batch",
    "chatterjee_samuelson",
    "myerson_satterthwaite",
]

#: Integer codes of ``spe_price_batch(...)["end"]``.
END_CODES: dict[str, int] = {"deal": 0, "walk_away": 1, "timeout": 2}

# Float64 round-off guard. Values that differ by less than _RTOL x (payoff scale) are treated as
# ties, so that exact mathematical ties (e.g. a responder made exactly indifferent) are resolved by
# the documented tie-breaking rules and not by the last bit of a division.
_RTOL = 1e-10


# --------------------------------------------------------------------------------------------
# Parameters and validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Game:
    """Validated game settings (internal)."""

    T: int
    model: str
    max_price: float
    speed_bonus: float
    bonus_fraction: float
    discount: tuple[float, float]
    walk: tuple[float, float]
    timeout: tuple[float, float]

    @property
    def vtol(self) -> float:
        """Tie tolerance for payoffs, reward units."""
        scale = max(1.0, self.max_price, abs(self.speed_bonus), *map(abs, self.walk),
                    *map(abs, self.timeout))
        return _RTOL * scale

    @property
    def ptol(self) -> float:
        """Tie tolerance for prices, currency units."""
        return _RTOL * max(1.0, self.max_price)

    def slopes(self, t: int) -> tuple[float, float, float, float]:
        """(D_s, B_s, D_r, B_r) of round t: R_s = (p - V_s) D_s + B_s, R_r = (V_r - p) D_r + B_r
        (the reward model of :func:`eqx_jax.payoffs.deal_factors`)."""
        d_s, d_r, b = deal_factors(self.model, t, self.T, self.speed_bonus, self.bonus_fraction,
                                   self.discount)
        return d_s, b, d_r, b


def _is_real(x: Any) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _make_game(max_rounds, reward_model, max_price, speed_bonus, bonus_fraction, discount,
               walk_payoff, timeout_payoff) -> _Game:
    check_number("max_rounds", max_rounds, 1, integer=True)
    reward_model = reward_model_name(reward_model)  # a name or the env's integer codes 0 / 1
    inf = math.inf
    return _Game(
        T=int(max_rounds),
        model=str(reward_model),
        max_price=float(check_number("max_price", max_price, 0.0, inf, low_open=True)),
        speed_bonus=float(check_number("speed_bonus", speed_bonus, -inf, inf)),
        bonus_fraction=float(check_number("bonus_fraction", bonus_fraction, 0.0, 1.0)),
        discount=check_pair("discount", discount, 0.0, 1.0, low_open=True),
        walk=check_pair("walk_payoff", walk_payoff, -inf, inf),
        timeout=check_pair("timeout_payoff", timeout_payoff, -inf, inf),
    )


def _check_values(name: str, x: np.ndarray, max_price: float) -> None:
    bad = ~np.isfinite(x) | (x < 0.0) | (x > max_price)
    if np.any(bad):
        raise ValueError(
            f"{name} must be finite and in [0, max_price] = [0, {max_price}], "
            f"got {x[bad].ravel()[0]!r}"
        )


# --------------------------------------------------------------------------------------------
# Backward induction (vectorised over valuation pairs)
# --------------------------------------------------------------------------------------------


@dataclass
class _Round:
    """Backward-induction results for round t, arrays of shape (N,) (internal).

    ``alt`` is the mover's *non-accept* value: the payoff pair (supplier, retailer) that results
    when the mover of round t does not accept the standing offer (it walks or counters). It does not
    depend on the standing offer, which is what makes the solution closed form.
    """

    t: int
    mover: int
    walk: np.ndarray  # bool: the mover walks rather than counters
    agree: np.ndarray  # bool: the mover's counter is an offer the responder accepts in round t+1
    price: np.ndarray  # the mover's counter price (meaningless where walk is True)
    alt: np.ndarray  # (2, N) payoffs of not accepting in round t
    counter: np.ndarray  # (2, N) payoffs of the best counter
    # Offers made in round t (t < T): the responder accepts prices in [lo, hi] iff ok.
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    ok: np.ndarray | None = None
    unacc: np.ndarray | None = None  # bool: some price in [0, max_price] is rejected
    agree_val: np.ndarray | None = None  # (2, N) payoffs of the best acceptable offer (option a)
    delay_val: np.ndarray | None = None  # (2, N) payoffs of an unacceptable offer (option b)


def _payoffs(g: _Game, price: np.ndarray, t: int, vs: np.ndarray, vr: np.ndarray) -> np.ndarray:
    """Deal payoffs (2, N) at ``price`` in round t, reward units."""
    ds, bs, dr, br = g.slopes(t)
    return np.stack([(price - vs) * ds + bs, (vr - price) * dr + br])


def _acceptable(g: _Game, t: int, who: int, alt_who: np.ndarray, vs, vr):
    """Prices the agent ``who`` accepts as standing offer in round t, given its non-accept value.

    ``who`` accepts q iff R_who(q, t) >= alt_who (indifferent responders accept). R is affine in
    q, so the set is an interval [lo, hi] within [0, max_price]; returns (lo, hi, ok, unacc, exact):
    ok says the interval is non-empty, unacc says some price in [0, max_price] is rejected, and
    exact says the threshold is interior (not clipped), so ``who`` is exactly indifferent there.
    """
    ds, bs, dr, br = g.slopes(t)
    d, b = (ds, bs) if who == 0 else (dr, br)
    pmax, n = g.max_price, alt_who.shape[0]
    if d == 0.0:
        # Seed model in round T: the reward is B(T) whatever the price: all or nothing.
        ok = b >= alt_who - g.vtol
        lo, hi = np.zeros(n), np.full(n, pmax)
        return lo, hi, ok, ~ok, np.zeros(n, bool)
    if who == 1:  # retailer: (V_r - q) d + b >= alt  <=>  q <= V_r - (alt - b) / d
        thr = vr - (alt_who - b) / d
        ok = thr >= -g.ptol
        unacc = thr < pmax - g.ptol
        return np.zeros(n), np.clip(thr, 0.0, pmax), ok, unacc, unacc & (thr > 0.0)
    thr = vs + (alt_who - b) / d  # supplier: (q - V_s) d + b >= alt  <=>  q >= V_s + (alt - b)/d
    ok = thr <= pmax + g.ptol
    unacc = thr > g.ptol
    return np.clip(thr, 0.0, pmax), np.full(n, pmax), ok, unacc, unacc & (thr < pmax)


def _backward(g: _Game, vs: np.ndarray, vr: np.ndarray) -> list[_Round]:
    """Backward induction from round T to round 1; returns rounds[0..T-1] for t = 1..T."""
    n, T, pmax = vs.shape[0], g.T, g.max_price
    walk_pair = np.broadcast_to(np.asarray(g.walk)[:, None], (2, n))
    out: list[_Round] = []
    nxt: _Round | None = None
    for t in range(T, 0, -1):
        m = 0 if t % 2 == 1 else 1  # supplier moves in odd rounds
        # When the price is irrelevant (timeout counter, or rejected counter), the mover names
        # its own most favourable price: a supplier asks max_price, a retailer offers 0.
        extreme = np.full(n, pmax if m == 0 else 0.0)
        rec = _Round(t=t, mover=m, walk=np.zeros(n, bool), agree=np.zeros(n, bool),
                     price=extreme, alt=walk_pair, counter=walk_pair)
        if t == T:
            counter = np.broadcast_to(np.asarray(g.timeout)[:, None], (2, n))
            price = extreme
        else:
            assert nxt is not None
            r = 1 - m
            alt_next = nxt.alt  # the responder's value of not accepting in round t+1
            lo, hi, ok, unacc, exact = _acceptable(g, t + 1, r, alt_next[r], vs, vr)
            best = hi if m == 0 else lo  # the acceptable price the mover likes best
            agree_val = _payoffs(g, best, t + 1, vs, vr)
            # At an interior threshold the responder gets exactly its alternative; use that value
            # rather than the recomputed one, which differs by round-off.
            agree_val[r] = np.where(exact, alt_next[r], agree_val[r])
            # (a) agreement if it exists and is at least as good for the mover as (b) delay.
            agree = ok & (~unacc | (agree_val[m] >= alt_next[m] - g.vtol))
            counter = np.where(agree, agree_val, alt_next)
            price = np.where(agree, best, extreme)
            rec.lo, rec.hi, rec.ok, rec.unacc = lo, hi, ok, unacc
            rec.agree_val, rec.delay_val, rec.agree = agree_val, alt_next, agree
        walk = walk_pair[m] > counter[m] + g.vtol  # indifferent movers counter
        rec.walk, rec.price, rec.counter = walk, price, counter
        rec.alt = np.where(walk, walk_pair, counter)
        out.append(rec)
        nxt = rec
    out.reverse()
    return out


def _forward(g: _Game, vs, vr, rounds: list[_Round]):
    """Follow the equilibrium path from round 1; returns arrays (price, round, payoffs, end)."""
    n = vs.shape[0]
    done = np.zeros(n, bool)
    price = np.full(n, np.nan)
    rnd = np.zeros(n, np.int64)
    pay = np.full((2, n), np.nan)
    end = np.full(n, -1, np.int64)
    for rec in rounds:
        t = rec.t
        if t >= 2:
            prev = rounds[t - 2]
            # The standing offer is prev.price; by construction it is acceptable iff prev.agree.
            acc = ~done & ~prev.walk & prev.agree
            price = np.where(acc, prev.price, price)
            pay = np.where(acc, prev.agree_val, pay)
            rnd = np.where(acc, t, rnd)
            end = np.where(acc, END_CODES["deal"], end)
            done |= acc
        walk = ~done & rec.walk
        pay = np.where(walk, np.asarray(g.walk)[:, None], pay)
        rnd = np.where(walk, t, rnd)
        end = np.where(walk, END_CODES["walk_away"], end)
        done |= walk
        if t == g.T:
            to = ~done
            pay = np.where(to, np.asarray(g.timeout)[:, None], pay)
            rnd = np.where(to, t, rnd)
            end = np.where(to, END_CODES["timeout"], end)
            done |= to
    return price, rnd, pay, end


# --------------------------------------------------------------------------------------------
# Public SPE API
# --------------------------------------------------------------------------------------------


def _pair(a: np.ndarray | None, i: int = 0) -> tuple[float, float] | None:
    return None if a is None else (float(a[0][i]), float(a[1][i]))


@dataclass(frozen=True)
class RoundPlan:
    """The equilibrium plan of the agent moving in round ``round`` (on or off the path).

    Prices are currency units, value pairs are (supplier, retailer) payoffs in reward units.

    Attributes:
        round: t, 1..T.
        mover: "supplier" (odd t) or "retailer" (even t).
        accept_range: closed price interval of standing offers the mover accepts in this round
            (it accepts q iff R_mover(q, t) >= ``value``); None in round 1 (no standing offer)
            or if it accepts no price in [0, max_price].
        offer_accept_range: interval of prices the *responder* (the mover of round t+1) would
            accept if offered in this round; None if t == T (a counter ends the game) or if it
            accepts no price in [0, max_price].
        threshold: the responder's acceptance threshold for an offer made in round t, clipped to
            [0, max_price]: the highest acceptable price if the mover is the supplier, the lowest
            if the retailer (when the price does not matter to the responder, e.g. seed model in
            round T, the mover's favourite end of the range). None when offer_accept_range is.
        action: "counter" or "walk": the mover's choice when it does not accept.
        kind: "agreement" (a counter the responder accepts), "delay" (a counter it rejects),
            "timeout" (a counter in round T), or "walk".
        price: the planned counter price; None if the mover walks.
        value: payoffs if the mover does not accept (walks or counters as planned).
        walk_value, counter_value: payoffs of walking and of the planned counter.
        agree_value: payoffs of the best acceptable offer (deal in round t+1); None if none.
        delay_value: payoffs of an unacceptable offer (the responder's own value of not accepting
            in round t+1); None if t == T or every price is acceptable.
        on_path: whether this round is reached on the equilibrium path.
    """

    round: int
    mover: str
    accept_range: tuple[float, float] | None
    offer_accept_range: tuple[float, float] | None
    threshold: float | None
    action: str
    kind: str
    price: float | None
    value: tuple[float, float]
    walk_value: tuple[float, float]
    counter_value: tuple[float, float]
    agree_value: tuple[float, float] | None
    delay_value: tuple[float, float] | None
    on_path: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples become lists, None becomes null)."""
        out: dict[str, Any] = {}
        for k in self.__dataclass_fields__:
            v = getattr(self, k)
            out[k] = list(v) if isinstance(v, tuple) else v
        return out


@dataclass(frozen=True)
class SPE:
    """Subgame-perfect equilibrium of one complete-information game.

    Attributes:
        outcome: "agreement" or "no_agreement".
        price: agreed price, currency units; None when there is no agreement.
        round: round in which the deal is accepted, or in which the game ends without one.
        supplier_payoff, retailer_payoff: equilibrium payoffs, reward units.
        end: "deal", "walk_away" or "timeout".
        rounds: one :class:`RoundPlan` per round 1..T (the full strategy, incl. off-path rounds).
        explanation: plain-English account of the equilibrium path, one string per line.
        supplier_value, retailer_value, max_rounds, reward_model: the solved game.
    """

    outcome: str
    price: float | None
    round: int
    supplier_payoff: float
    retailer_payoff: float
    end: str
    rounds: tuple[RoundPlan, ...]
    explanation: list[str]
    supplier_value: float
    retailer_value: float
    max_rounds: int
    reward_model: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict with keys price, round, supplier_payoff, retailer_payoff,
        outcome, end, explanation, rounds (``price`` is null without agreement)."""
        return {
            "price": self.price,
            "round": self.round,
            "supplier_payoff": self.supplier_payoff,
            "retailer_payoff": self.retailer_payoff,
            "outcome": self.outcome,
            "end": self.end,
            "explanation": list(self.explanation),
            "rounds": [r.to_dict() for r in self.rounds],
        }


def _round_plan(g: _Game, rounds: list[_Round], rec: _Round, last: int) -> RoundPlan:
    """The :class:`RoundPlan` of round ``rec.t`` from the backward-induction results of a single
    game (arrays of shape (1,)); ``last`` is the round the equilibrium path ends in, so rounds
    ``t <= last`` are on the path. Prices in currency units, values in reward units."""
    t = rec.t
    prev = rounds[t - 2] if t >= 2 else None
    acc_range = None
    if prev is not None and bool(prev.ok[0]):
        acc_range = (float(prev.lo[0]), float(prev.hi[0]))
    offer_range = threshold = None
    if rec.ok is not None and bool(rec.ok[0]):
        offer_range = (float(rec.lo[0]), float(rec.hi[0]))
        threshold = offer_range[1] if rec.mover == 0 else offer_range[0]
    walk = bool(rec.walk[0])
    if walk:
        kind = "walk"
    elif t == g.T:
        kind = "timeout"
    else:
        kind = "agreement" if bool(rec.agree[0]) else "delay"
    has_a = rec.ok is not None and bool(rec.ok[0])
    has_b = rec.unacc is not None and bool(rec.unacc[0])
    return RoundPlan(
        round=t,
        mover=AGENTS[rec.mover],
        accept_range=acc_range,
        offer_accept_range=offer_range,
        threshold=threshold,
        action="walk" if walk else "counter",
        kind=kind,
        price=None if walk else float(rec.price[0]),
        value=_pair(rec.alt),
        walk_value=(float(g.walk[0]), float(g.walk[1])),
        counter_value=_pair(rec.counter),
        agree_value=_pair(rec.agree_val) if has_a else None,
        delay_value=_pair(rec.delay_val) if has_b else None,
        on_path=t <= last,
    )


def _round_plans(g: _Game, rounds: list[_Round], last: int) -> tuple[RoundPlan, ...]:
    """One :class:`RoundPlan` per round 1..T (see :func:`_round_plan`)."""
    return tuple(_round_plan(g, rounds, rec, last) for rec in rounds)


def solve_spe(
    supplier_value: float,
    retailer_value: float,
    max_rounds: int = 10,
    *,
    reward_model: str = "seed",
    max_price: float = 10000.0,
    speed_bonus: float = 5.0,
    bonus_fraction: float = 0.3,
    discount: tuple[float, float] = (0.95, 0.95),
    walk_payoff: tuple[float, float] = (-10.0, -10.0),
    timeout_payoff: tuple[float, float] = (-5.0, -5.0),
) -> SPE:
    """Exact subgame-perfect equilibrium of the complete-information bargaining game.

    The game is the one of ``docs/rules.md`` with both valuations common knowledge. Arguments have
    the env's meaning and defaults: valuations and ``max_price`` in currency units, payoffs in
    reward units, ``discount = (delta_s, delta_r)`` per round (discounted model only),
    ``speed_bonus`` / ``bonus_fraction`` (seed model only; the bonus applies iff
    ``t < bonus_fraction * T``, decided exactly on the decimal value of ``bonus_fraction``).
    ``reward_model`` is "seed" or "discounted" (the env's integer codes 0 / 1 are accepted too).

    Method (backward induction, no price grid). Let alt_t be the payoff pair when the mover of round
    t does *not* accept the standing offer. It does not depend on that offer, so it is a scalar pair
    computed from t = T down to 1. In round T a counter ends the game with ``timeout_payoff``. In
    round t < T a counter q' is accepted in round t+1 iff R_resp(q', t+1) >= alt_{t+1}[resp], a
    price threshold since R is affine in the price; the mover compares (a) the acceptable price it
    likes best (threshold clipped to [0, max_price]), a deal in round t+1, with (b) any rejected
    price, which yields alt_{t+1}; then counters or walks. The path is followed from round 1.

    Tie-breaking rules (the equilibrium is unique given these):
      1. A responder indifferent between accepting a standing offer and not accepting accepts.
      2. A proposer indifferent between (a) an offer that will be accepted and (b) delaying with an
         offer that will be rejected makes the acceptable offer (prefers agreement).
      3. A mover indifferent between walking away and countering counters.
      4. Prices that do not change the mover's payoff: among acceptable prices that pay the mover
         the same (seed model, offer for round T, where D(T) = 0) the supplier asks the highest and
         the retailer offers the lowest; a rejected counter or a counter in round T (whose price is
         irrelevant) is max_price for the supplier and 0 for the retailer.
    Float64 round-off is absorbed by treating payoffs within 1e-10 x (payoff scale) as ties.

    Returns:
        :class:`SPE` with the outcome, price, round, payoffs, per-round plans and an explanation.

    Raises:
        ValueError: naming the parameter and its allowed range, on invalid input.
    """
    g = _make_game(max_rounds, reward_model, max_price, speed_bonus, bonus_fraction, discount,
                   walk_payoff, timeout_payoff)
    vs = np.array([float(check_number("supplier_value", supplier_value, 0.0, g.max_price))])
    vr = np.array([float(check_number("retailer_value", retailer_value, 0.0, g.max_price))])
    rounds = _backward(g, vs, vr)
    price, rnd, pay, end = _forward(g, vs, vr, rounds)
    end_name = {v: k for k, v in END_CODES.items()}[int(end[0])]
    last = int(rnd[0])

    plans_t = _round_plans(g, rounds, last)
    agreement = end_name == "deal"
    spe_price = float(price[0]) if agreement else None
    explanation = _explain(g, plans_t, spe_price, last, end_name,
                           (float(pay[0, 0]), float(pay[1, 0])), float(vs[0]), float(vr[0]))
    return SPE(
        outcome="agreement" if agreement else "no_agreement",
        price=spe_price,
        round=last,
        supplier_payoff=float(pay[0, 0]),
        retailer_payoff=float(pay[1, 0]),
        end=end_name,
        rounds=plans_t,
        explanation=explanation,
        supplier_value=float(vs[0]),
        retailer_value=float(vr[0]),
        max_rounds=g.T,
        reward_model=g.model,
    )


def _f(x: float) -> str:
    return f"{x:.2f}"


def _plan_phrase(p: RoundPlan) -> str:
    """Short description of what a mover does when it does not accept."""
    other = AGENTS[1] if p.mover == AGENTS[0] else AGENTS[0]
    if p.kind == "walk":
        return f"walking away in round {p.round}"
    if p.kind == "timeout":
        return f"countering in round {p.round}, which ends the game with the timeout"
    verb = "accepts" if p.kind == "agreement" else "rejects"
    return f"countering at {_f(p.price)}, which the {other} {verb} in round {p.round + 1}"


def _explain_standing(g: _Game, plans: tuple[RoundPlan, ...], p: RoundPlan, i: int,
                      accepted: bool, pay: tuple[float, float], vs: float, vr: float) -> str:
    """The line for how the mover of round ``p.round >= 2`` (index ``i``, 0 supplier) answers
    the standing offer: it accepts (``accepted``; ``pay`` is the deal's payoff pair, reward
    units) or rejects it. ``vs`` / ``vr``: the valuations, currency units."""
    t, m = p.round, p.mover
    standing = plans[t - 2].price
    if accepted:
        return (f"Round {t}: the {m} accepts {_f(standing)}: accepting pays it "
                f"{_f(pay[i])}, at least its best alternative {_f(p.value[i])} "
                f"({_plan_phrase(p)}).")
    ds, bs, dr, br = g.slopes(t)
    v_acc = ((standing - vs) * ds + bs) if i == 0 else ((vr - standing) * dr + br)
    return (f"Round {t}: the {m} rejects {_f(standing)}: accepting would pay it "
            f"{_f(v_acc)}, less than its best alternative {_f(p.value[i])} "
            f"({_plan_phrase(p)}).")


def _explain_move(g: _Game, plans: tuple[RoundPlan, ...], p: RoundPlan, i: int) -> str:
    """The line for what the mover of round ``p.round`` (index ``i``, 0 supplier) does when it
    does not accept: walk, counter into the timeout, or propose an accepted / rejected price."""
    t, m = p.round, p.mover
    r = AGENTS[1 - i]
    if p.kind == "walk":
        return (f"Round {t}: the {m} walks away: walking pays it {_f(p.walk_value[i])}, more "
                f"than its best counter-offer ({_f(p.counter_value[i])}).")
    if p.kind == "timeout":
        return (f"Round {t} (the last): the {m} counters, which ends the game with the timeout "
                f"payoff {_f(p.counter_value[i])}, at least as good for it as walking away "
                f"({_f(p.walk_value[i])}).")
    nxt = plans[t]  # responder's plan in round t+1
    if p.kind == "agreement":
        side = "highest" if i == 0 else "lowest"
        if p.delay_value is None:
            why = (f"the {r} accepts any price in round {t + 1}, because a deal then pays it "
                   f"{_f(p.agree_value[1 - i])}, at least its alternative "
                   f"{_f(nxt.value[1 - i])} ({_plan_phrase(nxt)})")
            if g.model == "seed" and t + 1 == g.T:
                why += f"; the price does not change payoffs in round {g.T} (D(T) = 0)"
            return f"Round {t}: the {m} proposes {_f(p.price)}; {why}."
        return (f"Round {t}: the {m} proposes {_f(p.price)}, the {side} price the {r} "
                f"accepts in round {t + 1}, because rejecting is worth only "
                f"{_f(nxt.value[1 - i])} to the {r} ({_plan_phrase(nxt)}); the deal pays "
                f"the {m} {_f(p.agree_value[i])}, at least as much as delaying "
                f"({_f(p.delay_value[i])}) or walking away ({_f(p.walk_value[i])}).")
    # delay
    if p.agree_value is None:
        why = f"no price in [0, {_f(g.max_price)}] is acceptable to the {r}"
    else:
        why = (f"the best price the {r} would accept ({_f(p.threshold)}) pays the {m} "
               f"only {_f(p.agree_value[i])}, less than waiting "
               f"({_f(p.delay_value[i])})")
    return f"Round {t}: the {m} proposes {_f(p.price)}, which the {r} rejects: {why}."


def _explain_outcome(g: _Game, price: float | None, last: int, end: str,
                     pay: tuple[float, float]) -> list[str]:
    """The closing line(s): the outcome and its payoffs (reward units), plus a note for a
    seed-model deal in round T."""
    if end != "deal":
        return [f"Outcome: no agreement ({end.replace('_', ' ')}) in round {last}; payoffs "
                f"supplier {_f(pay[0])}, retailer {_f(pay[1])}."]
    lines = [f"Outcome: deal at {_f(price)} in round {last}; payoffs supplier {_f(pay[0])}, "
             f"retailer {_f(pay[1])}."]
    if g.model == "seed" and last == g.T:
        lines.append(
            f"Note: a deal in round T = {g.T} pays 0 to both whatever the price (D(T) = 0); "
            "it is an artefact of the seed model, preferred to the timeout."
        )
    return lines


def _explain(g: _Game, plans: tuple[RoundPlan, ...], price: float | None, last: int, end: str,
             pay: tuple[float, float], vs: float, vr: float) -> list[str]:
    """Plain-English lines for the equilibrium path (rounds 1..``last``), then the outcome.

    ``price``: the deal price (currency units) or None; ``end``: "deal", "walk_away" or
    "timeout"; ``pay``: the (supplier, retailer) payoffs, reward units; ``vs`` / ``vr``: the
    valuations, currency units.
    """
    lines = [
        f"Complete-information game, {g.model} reward model, T = {g.T} rounds; the supplier "
        f"moves in odd rounds. Backward induction from round {g.T}."
    ]
    for p in plans[:last]:
        i = 0 if p.mover == "supplier" else 1
        if p.round >= 2:
            accepted = end == "deal" and p.round == last
            lines.append(_explain_standing(g, plans, p, i, accepted, pay, vs, vr))
            if accepted:
                break
        lines.append(_explain_move(g, plans, p, i))
    return lines + _explain_outcome(g, price, last, end, pay)


def spe_price_batch(
    supplier_values: np.ndarray,
    retailer_values: np.ndarray,
    max_rounds: int = 10,
    *,
    reward_model: str = "seed",
    max_price: float = 10000.0,
    speed_bonus: float = 5.0,
    bonus_fraction: float = 0.3,
    discount: tuple[float, float] = (0.95, 0.95),
    walk_payoff: tuple[float, float] = (-10.0, -10.0),
    timeout_payoff: tuple[float, float] = (-5.0, -5.0),
) -> dict[str, np.ndarray]:
    """SPE outcome for many valuation pairs at once (vectorised; same solution as solve_spe).

    Args:
        supplier_values, retailer_values: valuations, currency units, broadcastable arrays, each
            entry finite and in [0, max_price]. Other arguments as in :func:`solve_spe`.

    Returns:
        dict of arrays with the broadcast shape S of the inputs:
        ``price`` (float64, currency units, NaN without agreement), ``round`` (int64),
        ``supplier_payoff`` / ``retailer_payoff`` (float64, reward units), ``agreement`` (bool),
        ``end`` (int64 code, see :data:`END_CODES`: 0 deal, 1 walk_away, 2 timeout).
    """
    g = _make_game(max_rounds, reward_model, max_price, speed_bonus, bonus_fraction, discount,
                   walk_payoff, timeout_payoff)
    vs, vr = np.broadcast_arrays(np.asarray(supplier_values, np.float64),
                                 np.asarray(retailer_values, np.float64))
    shape = vs.shape
    vs, vr = vs.ravel(), vr.ravel()
    _check_values("supplier_values", vs, g.max_price)
    _check_values("retailer_values", vr, g.max_price)
    price, rnd, pay, end = _forward(g, vs, vr, _backward(g, vs, vr))
    return {
        "price": price.reshape(shape),
        "round": rnd.reshape(shape),
        "supplier_payoff": pay[0].reshape(shape),
        "retailer_payoff": pay[1].reshape(shape),
        "agreement": (end == END_CODES["deal"]).reshape(shape),
        "end": end.reshape(shape),
    }


# --------------------------------------------------------------------------------------------
# Incomplete information, uniform priors
# --------------------------------------------------------------------------------------------

# Three Gauss-Legendre nodes integrate polynomials of degree <= 5 exactly; our integrands have
# degree <= 2 on each piece, so a few nodes give the exact integral (up to round-off).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)


def _check_supports(a_s, b_s, a_b, b_b) -> tuple[float, float, float, float]:
    names = ("a_s", "b_s", "a_b", "b_b")
    vals = []
    for name, x in zip(names, (a_s, b_s, a_b, b_b), strict=True):
        if not _is_real(x) or not math.isfinite(float(x)):
            raise ValueError(f"{name} must be a finite number, got {x!r}")
        vals.append(float(x))
    if not vals[0] < vals[1]:
        raise ValueError(f"seller support needs a_s < b_s, got [{vals[0]}, {vals[1]}]")
    if not vals[2] < vals[3]:
        raise ValueError(f"buyer support needs a_b < b_b, got [{vals[2]}, {vals[3]}]")
    return vals[0], vals[1], vals[2], vals[3]


def _expect(alpha: float, beta: float, gamma: float, g: float,
            a_s: float, b_s: float, a_b: float, b_b: float) -> float:
    """E[(alpha v + beta c + gamma) 1{v - c >= g}], c ~ U[a_s, b_s], v ~ U[a_b, b_b] independent.

    Exact: for fixed v the inner integral over c in [a_s, u(v)], u(v) = clip(v - g, a_s, b_s), is
    done analytically; the outer integrand is a polynomial of degree <= 2 in v between the kinks
    of u (v = a_s + g, v = b_s + g), integrated piece by piece with Gauss-Legendre.
    """
    knots = sorted({a_b, b_b, *(k for k in (a_s + g, b_s + g) if a_b < k < b_b)})
    total = 0.0
    for lo, hi in zip(knots[:-1], knots[1:], strict=True):
        half = 0.5 * (hi - lo)
        v = lo + half * (_GL_X + 1.0)
        u = np.clip(v - g, a_s, b_s)
        inner = (alpha * v + gamma) * (u - a_s) + 0.5 * beta * (u - a_s) * (u + a_s)
        total += half * float(np.dot(_GL_W, inner))
    return total / ((b_s - a_s) * (b_b - a_b))


def _centre(a_s, b_s, a_b, b_b):
    """Shift all supports by a common origin: every quantity here depends only on differences
    (v - c, 2v - b_b - 2c + a_s), and centring avoids cancellation between large prices."""
    o = 0.25 * (a_s + b_s + a_b + b_b)
    return a_s - o, b_s - o, a_b - o, b_b - o


def _gains(g, a_s, b_s, a_b, b_b) -> float:
    return _expect(1.0, -1.0, 0.0, g, a_s, b_s, a_b, b_b)


def chatterjee_samuelson(a_s: float, b_s: float, a_b: float, b_b: float) -> dict[str, Any]:
    """Linear equilibrium of the k = 1/2 double auction with uniform priors.

    Seller (supplier) cost c ~ U[a_s, b_s], buyer (retailer) value v ~ U[a_b, b_b], currency units,
    a_s < b_s and a_b < b_b. Trade at the mid-price (p_s + p_b) / 2 iff the bid p_b >= the ask p_s.

    Linear strategies (best responses to each other's uniform bid distributions):
    ``p_b(v) = 2/3 v + b_b/12 + a_s/4``, ``p_s(c) = 2/3 c + b_b/4 + a_s/12``; trade iff
    ``v - c >= (b_b - a_s)/4``. They form an equilibrium iff no type would rather bid at the edge
    of the opponent's bid range: the highest bid must not exceed the highest ask
    (``p_b(b_b) <= p_s(b_s)``, i.e. ``3 b_b <= 4 b_s - a_s``) and the lowest ask must not be below
    the lowest bid (``p_s(a_s) >= p_b(a_b)``, i.e. ``3 a_s >= 4 a_b - b_b``). Otherwise a buyer
    bidding above every ask would gain by bidding the highest ask instead, etc.

    When the supports do not overlap with gains (b_s <= a_b), trade is always efficient: any single
    posted price in [b_s, a_b] (both submit it) is an efficient equilibrium, so the reported
    equilibrium is that one (``equilibrium`` "posted_price", ratio 1); the linear numbers are still
    given under ``linear_*``.

    Returns a dict (floats in currency units): ``buyer_slope``, ``buyer_intercept``,
    ``seller_slope``, ``seller_intercept``, ``trade_threshold`` (on v - c), ``valid`` (bool),
    ``reason`` (str), ``equilibrium`` ("linear" or "posted_price"), ``gains`` (E[(v - c) 1{trade}]
    of the reported equilibrium), ``first_best_gains`` (E[(v - c)^+]), ``ratio`` (gains / first
    best; None if first best is 0), ``trade_probability``, ``linear_gains``, ``linear_ratio``,
    ``linear_trade_probability``, ``supports_overlap`` (bool), ``efficient_price_range``
    ([b_s, a_b] or None).
    """
    a_s, b_s, a_b, b_b = _check_supports(a_s, b_s, a_b, b_b)
    ca = _centre(a_s, b_s, a_b, b_b)
    threshold = (b_b - a_s) / 4.0
    high_ok = 3.0 * b_b <= 4.0 * b_s - a_s
    low_ok = 3.0 * a_s >= 4.0 * a_b - b_b
    valid = high_ok and low_ok
    reasons = []
    if not high_ok:
        reasons.append("the highest buyer bid p_b(b_b) exceeds the highest seller ask p_s(b_s) "
                       "(3 b_b > 4 b_s - a_s): high buyer types would bid less")
    if not low_ok:
        reasons.append("the lowest seller ask p_s(a_s) is below the lowest buyer bid p_b(a_b) "
                       "(3 a_s < 4 a_b - b_b): low seller types would ask more")
    reason = ("linear strategies are mutual best responses (3 b_b <= 4 b_s - a_s and "
              "3 a_s >= 4 a_b - b_b)") if valid else "; ".join(reasons)
    fb = _gains(0.0, *ca)
    lin = _gains(threshold, *ca)
    lin_prob = _expect(0.0, 0.0, 1.0, threshold, *ca)
    overlap = b_s > a_b
    lin_ratio = lin / fb if fb > 0 else None
    out: dict[str, Any] = {
        "buyer_slope": 2.0 / 3.0,
        "buyer_intercept": b_b / 12.0 + a_s / 4.0,
        "seller_slope": 2.0 / 3.0,
        "seller_intercept": b_b / 4.0 + a_s / 12.0,
        "trade_threshold": threshold,
        "valid": valid,
        "reason": reason,
        "first_best_gains": fb,
        "linear_gains": lin,
        "linear_ratio": lin_ratio,
        "linear_trade_probability": lin_prob,
        "supports_overlap": overlap,
        "efficient_price_range": None if overlap else [b_s, a_b],
    }
    if overlap:
        out.update(equilibrium="linear", gains=lin, ratio=lin_ratio, trade_probability=lin_prob)
        if b_b <= a_s:
            out["reason"] = (f"no gains from trade are possible (b_b = {b_b} <= a_s = {a_s}): "
                             f"nobody trades. Linear equilibrium: {reason}")
    else:
        out.update(
            equilibrium="posted_price", gains=fb, ratio=1.0, trade_probability=1.0,
            reason=(f"supports do not overlap (b_s = {b_s} <= a_b = {a_b}): there are always "
                    f"gains from trade and any single posted price in [{b_s}, {a_b}] is an "
                    f"efficient equilibrium (ratio 1). Linear equilibrium: {reason}"),
        )
    return out


def myerson_satterthwaite(a_s: float, b_s: float, a_b: float, b_b: float) -> dict[str, Any]:
    """Second-best trade with uniform priors (Myerson & Satterthwaite 1983).

    Seller cost c ~ U[a_s, b_s], buyer value v ~ U[a_b, b_b], currency units, a_s < b_s, a_b < b_b.
    Among incentive-compatible, individually rational, (ex-ante) budget-balanced mechanisms the one
    maximising expected gains from trade trades iff ``v - c >= g``, where g >= 0 is the smallest
    value with non-negative expected virtual surplus
    ``h(g) = E[(2v - b_b) - (2c - a_s); v - c >= g] >= 0`` (buyer virtual value 2v - b_b, seller
    virtual cost 2c - a_s). h is non-decreasing on [0, (b_b - a_s)/2] and h((b_b - a_s)/2) >= 0,
    so g is found by bisection there (to ~1e-13 relative); g = 0 when first best is feasible.
    All expectations are exact integrals of piecewise polynomials (see ``_expect``).

    Returns a dict (currency units): ``g``, ``second_best_gains``, ``first_best_gains``,
    ``ratio`` (second / first best; None if first best is 0), ``trade_probability`` (second
    best), ``first_best_trade_probability``, ``first_best_feasible`` (bool),
    ``virtual_surplus_at_g`` (h(g), ~0 unless g = 0).
    """
    a_s, b_s, a_b, b_b = _check_supports(a_s, b_s, a_b, b_b)
    ca = _centre(a_s, b_s, a_b, b_b)
    cs, _, _, cb = ca

    def h(gap: float) -> float:
        return _expect(2.0, -2.0, -cb + cs, gap, *ca)

    fb = _gains(0.0, *ca)
    if fb <= 0.0 or h(0.0) >= 0.0:
        g = 0.0
    else:
        lo, hi = 0.0, 0.5 * (b_b - a_s)  # h(lo) < 0 <= h(hi)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if h(mid) >= 0.0:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-13 * hi:
                break
        g = hi
    sb = _gains(g, *ca)
    return {
        "g": g,
        "second_best_gains": sb,
        "first_best_gains": fb,
        "ratio": sb / fb if fb > 0 else None,
        "trade_probability": _expect(0.0, 0.0, 1.0, g, *ca),
        "first_best_trade_probability": _expect(0.0, 0.0, 1.0, 0.0, *ca),
        "first_best_feasible": g == 0.0,
        "virtual_surplus_at_g": h(g),
    }
