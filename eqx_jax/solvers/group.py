"""The exact subgame-perfect equilibrium of the complete-information group game.

NumPy / SciPy only, and no import of the games: the game comes as plain arrays
(:class:`GroupGame`), so this stays an independent check of the env.

The game (``docs/rules.md``, "Group negotiation"): N parties (2..8) over K issues, party i's
utility ``u_i(x) = sum_k w_ik f_ik(x_k)`` (a continuous issue's value function linear between its
two ends, a discrete issue's a table over its value indices), reservation values r_i, all known
to all. Steps s = 1..T; the mover of step s is party ``(s - 1) mod N``. The mover ACCEPTs the
standing offer (illegal at step 1, which has none), COUNTERs with an offer (the new standing
offer, no acceptances yet) or WALKs_AWAY (every party gets ``walk_payoff``). The deal closes on
the standing offer at the step where its (N - 1)-th acceptance comes; without a deal or a walk by
step T every party gets ``timeout_payoff``. A deal on x at step s pays
``scale (u_i(x) - r_i) D_i(s) + B(s)`` (seed: ``D = (1 - s/T)^2`` and the speed bonus B;
discounted: ``D_i = delta_i^s``, B = 0; :func:`eqx_jax.payoffs.party_deal_factors`).

Method (backward induction over the steps). ``R(s)`` (N,), the payoffs when the mover m of step s
does *not* accept, does not depend on the standing offer (its options, counter and walk, do not).
A counter y at step s is answered by the responders at positions p = 1..N-1 (step s + p, party
``(m + p) mod N``, each once); if all accept, the deal closes at step d = s + N - 1.

* s = T: a counter times out. d > T (s < T): the counter's outcome does not depend on y: the
  timeout, unless a responder prefers its own ``R`` (a backward chain, as below, started from the
  timeout at position T - s).
* d <= T: responder p accepts iff its payoff of accepting is at least ``R(s+p)`` (within the
  tie tolerance; indifferent responders accept). Backwards from p = N - 1, everyone after p
  accepts exactly when y is in the *deal set* ``{y : deal_j(y, d) >= R(s+p)[j] for every
  responder j at position p}``, lower bounds on the responders' utilities. An offer outside it
  has a largest failing position q; the responders after q accept, q rejects (its own ``R``),
  and the outcome is the y-independent chain from ``R(s+q)`` back over positions q-1..1 (each
  accepts iff the outcome so far is at least its ``R``, else the outcome becomes its ``R``).
  The proposer may choose such a *delay* offer iff some y fails at q while positions > q hold.

The programs: the best deal offer maximises the proposer's utility on the deal set, then the
responders' utility sum on its optimal face (a linear program, ``scipy.optimize.linprog``
HiGHS, over the continuous issues' positions in [0, 1]; a mixed-integer program, ``milp``, with
one-hot value choices of the discrete issues); a delay at q is achievable iff the least utility
of q's party, subject to the positions > q, is below q's bound by more than the tolerance. When
every issue is discrete the outcomes are enumerated instead (at most ``MAX_ENUMERATION``).

Tie-breaking (as the two-party solvers): payoffs within ``1e-9 x scale`` tie, utilities within
1e-9; an indifferent responder accepts; a proposer indifferent between its best deal and a
delay makes the deal; a mover indifferent between walking and countering counters; among the
optimal deal offers the proposer takes its best utility, then the best sum of the responders'
utilities, then the first in enumeration order; among tied delays the first in enumeration order
(all-discrete games) or the smallest q (games with a continuous issue).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from eqx_jax.checks import FieldError, check_choice, check_number
from eqx_jax.payoffs import REWARD_MODELS, party_deal_factors
from eqx_jax.solvers.multi_issue import MAX_ENUMERATION

MIN_PARTIES, MAX_PARTIES = 2, 8
MAX_ISSUES = 16
_TOL = 1e-9  # ties: payoffs within _TOL * utility_scale, utilities within _TOL
_DEFAULTS = {"discount": 0.95, "walk_payoff": 0.0, "timeout_payoff": 0.0}


@dataclasses.dataclass(frozen=True)
class GroupGame:
    """A complete-information group game as plain arrays.

    ``discrete`` (K,) bool; ``low``/``high`` (K,) the natural range of each continuous issue
    (ignored for a discrete one, whose values are indexed 0..n-1); ``tables[a][k]`` party a's
    value function of issue k: (n_k,) values in [0, 1] of a discrete issue, or its (2,) values at
    (low, high) of a continuous one; ``weights`` (N, K) (normalised here to sum to 1 per party);
    ``reservation`` (N,) in utility units. The rest are the reward settings (``reward_model`` by
    name; ``discount`` / ``walk_payoff`` / ``timeout_payoff`` N-tuples, None: 0.95 / 0 / 0 for
    every party); ``names`` the parties' names (default ``agent0``..).
    """

    discrete: tuple[bool, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    tables: tuple[tuple[np.ndarray, ...], ...]
    weights: np.ndarray
    reservation: np.ndarray
    max_rounds: int = 12
    reward_model: str = "seed"
    utility_scale: float = 100.0
    speed_bonus: float = 5.0
    bonus_fraction: float = 0.3
    discount: tuple[float, ...] | None = None
    walk_payoff: tuple[float, ...] | None = None
    timeout_payoff: tuple[float, ...] | None = None
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        k = len(self.discrete)
        check_number("number of issues", k, 1, MAX_ISSUES, integer=True)
        w = np.asarray(self.weights, float)
        if w.ndim != 2 or w.shape[1] != k or not MIN_PARTIES <= w.shape[0] <= MAX_PARTIES:
            raise FieldError("weights", f"an (N, {k}) array with N parties in "
                             f"{MIN_PARTIES}..{MAX_PARTIES}", w.shape)
        n = w.shape[0]
        if not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w.sum(axis=1) <= 0):
            raise FieldError("weights", "finite, >= 0 and not all zero per party", w.tolist())
        object.__setattr__(self, "weights", w / w.sum(axis=1, keepdims=True))
        res = np.asarray(self.reservation, float)
        if res.shape != (n,):
            raise FieldError("reservation", f"an array of shape ({n},)", res.shape)
        for i, r in enumerate(res):
            check_number(f"reservation[{i}]", float(r), 0.0, 1.0)
        object.__setattr__(self, "reservation", res)
        self._check_issues(n, k)
        check_number("max_rounds", self.max_rounds, 1, 1000, integer=True)
        check_choice("reward_model", self.reward_model, REWARD_MODELS)
        check_number("utility_scale", self.utility_scale, 0.0, 1e9, low_open=True)
        check_number("speed_bonus", self.speed_bonus, -1e9, 1e9)
        check_number("bonus_fraction", self.bonus_fraction, 0.0, 1.0)
        for field, default in _DEFAULTS.items():
            object.__setattr__(self, field, self._party_tuple(field, default, n))
        names = tuple(self.names) or tuple(f"agent{i}" for i in range(n))
        if len(names) != n or not all(isinstance(x, str) and x for x in names):
            raise FieldError("names", f"{n} non-empty strings (one per party)", self.names)
        object.__setattr__(self, "names", names)

    def _check_issues(self, n: int, k: int) -> None:
        """Shapes and ranges of ``low`` / ``high`` / ``tables`` (N parties, K issues)."""
        for field in ("low", "high"):
            if len(getattr(self, field)) != k:
                raise FieldError(field, f"{k} numbers (one per issue)", getattr(self, field))
        if len(self.tables) != n or any(len(t) != k for t in self.tables):
            raise FieldError("tables", f"{n} tuples (one per party) of {k} arrays",
                             [len(t) for t in self.tables])
        for kk, disc in enumerate(self.discrete):
            if not disc and not float(self.high[kk]) > float(self.low[kk]):
                raise FieldError(f"high[{kk}]", f"> low[{kk}] = {self.low[kk]}", self.high[kk])
            size = len(self.tables[0][kk]) if disc else 2
            for a in range(n):
                t = np.asarray(self.tables[a][kk], float)
                if t.shape != (size,) or size < 1:
                    raise FieldError(f"tables[{a}][{kk}]", f"an array of shape ({size},)",
                                     t.shape)
                if not np.all((t >= 0.0) & (t <= 1.0)):
                    raise FieldError(f"tables[{a}][{kk}]", "values in [0, 1]", t.tolist())

    def _party_tuple(self, field: str, default: float, n: int) -> tuple[float, ...]:
        value = getattr(self, field)
        items = (default,) * n if value is None else tuple(value)
        if len(items) != n:
            raise FieldError(field, f"{n} numbers (one per party) or None", value)
        if field == "discount":
            return tuple(float(check_number(f"discount[{i}]", x, 0.0, 1.0, low_open=True))
                         for i, x in enumerate(items))
        return tuple(float(check_number(f"{field}[{i}]", x, -1e9, 1e9))
                     for i, x in enumerate(items))

    @property
    def num_parties(self) -> int:
        return int(self.weights.shape[0])


@dataclasses.dataclass(frozen=True)
class GroupStep:
    """The equilibrium plan of step s when its mover does not accept: ``move`` "counter" (an
    offer every responder accepts), "delay" (an offer a responder rejects; ``resume``: the step
    whose mover's plan then decides the game), "walk", or "timeout" (a counter that ends in the
    timeout); ``offer`` (natural units; for a delay one offer that achieves it), its
    ``utilities`` (N,), and ``alt`` = R(s), the payoffs (N,) of this plan."""

    step: int
    mover: str
    move: str
    offer: tuple[float, ...] | None
    utilities: tuple[float, ...] | None
    alt: tuple[float, ...]
    resume: int | None = None


@dataclasses.dataclass(frozen=True)
class GroupSPE:
    """The SPE outcome: ``outcome`` "deal" / "walk_away" / "timeout", the ``step`` at which it
    ends, the agreement (natural units; discrete issues by index) and its utilities (N,), the
    payoffs (N,) in reward units, and the per-step plans (steps 1..T)."""

    outcome: str
    step: int
    agreement: tuple[float, ...] | None
    utilities: tuple[float, ...] | None
    payoffs: tuple[float, ...]
    plans: tuple[GroupStep, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -------------------------------------------------------------------------- reward model
def deal_factors(g: GroupGame, s: int) -> tuple[np.ndarray, float]:
    """(D (N,), B) of a deal at step s: payoff_i = scale (u_i - r_i) D_i + B."""
    d, bonus = party_deal_factors(g.reward_model, s, g.max_rounds, g.speed_bonus,
                                  g.bonus_fraction, g.discount)
    return np.asarray(d, float), float(bonus)


def deal_payoffs(g: GroupGame, u: np.ndarray, s: int) -> np.ndarray:
    """(..., N) payoffs of deals with utilities ``u`` (..., N) at step s."""
    d, bonus = deal_factors(g, s)
    return g.utility_scale * (np.asarray(u) - g.reservation) * d + bonus


# ---------------------------------------------------------------------------- utilities
def outcome_utilities(g: GroupGame, offer: np.ndarray) -> np.ndarray:
    """(N,) utilities of an offer (K,) in natural units (discrete issues by index)."""
    u = np.zeros(g.num_parties)
    for a in range(g.num_parties):
        for k, disc in enumerate(g.discrete):
            t = np.asarray(g.tables[a][k], float)
            if disc:
                f = t[int(round(float(offer[k])))]
            else:
                y = (float(offer[k]) - g.low[k]) / (g.high[k] - g.low[k])
                f = t[0] + y * (t[1] - t[0])
            u[a] += g.weights[a, k] * f
    return u


def enumerated_outcomes(g: GroupGame) -> tuple[np.ndarray, np.ndarray]:
    """All outcomes (n, K) of an all-discrete game (value indices, in ``itertools.product``
    order) and their utilities (n, N)."""
    sizes = [len(t) for t in g.tables[0]]
    total = int(np.prod(sizes))
    if total > MAX_ENUMERATION:
        raise ValueError(f"outcome space must have at most {MAX_ENUMERATION} outcomes, "
                         f"got {total}")
    grid = np.array(list(itertools.product(*[range(n) for n in sizes])), float)
    u = np.zeros((len(grid), g.num_parties))
    for a in range(g.num_parties):
        for k in range(len(sizes)):
            u[:, a] += g.weights[a, k] * np.asarray(g.tables[a][k], float)[grid[:, k].astype(int)]
    return grid, u


def _columns(g: GroupGame) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """The program's variables: (issue, -1) a continuous issue's position in [0, 1], (issue, v)
    the binary "discrete issue takes value v"; utility = const (N,) + coef (N, cols) @ x."""
    n = g.num_parties
    cols = [(k, -1) for k, d in enumerate(g.discrete) if not d]
    cols += [(k, v) for k, d in enumerate(g.discrete) if d for v in range(len(g.tables[0][k]))]
    const, coef = np.zeros(n), np.zeros((n, len(cols)))
    for a in range(n):
        for j, (k, v) in enumerate(cols):
            t = np.asarray(g.tables[a][k], float)
            if v < 0:
                const[a] += g.weights[a, k] * t[0]
                coef[a, j] = g.weights[a, k] * (t[1] - t[0])
            else:
                coef[a, j] = g.weights[a, k] * t[v]
    return cols, const, coef


def _solve_program(g: GroupGame, objective: np.ndarray, floor: np.ndarray
                   ) -> np.ndarray | None:
    """An offer (K,) maximising ``objective @ u`` subject to ``u >= floor`` (N,; -inf: no
    bound), or None when none exists."""
    if np.any(floor == np.inf):
        return None
    cols, const, coef = _columns(g)
    keep = np.isfinite(floor)
    c = -(objective @ coef)
    disc = [k for k, d in enumerate(g.discrete) if d]
    if not disc:
        res = linprog(c, A_ub=-coef[keep], b_ub=-(floor - const)[keep],
                      bounds=[(0.0, 1.0)] * len(cols), method="highs")
    else:
        one_hot = np.array([[1.0 if col[0] == k else 0.0 for col in cols] for k in disc])
        rows = [coef[keep], one_hot]
        lb = np.concatenate([(floor - const)[keep], np.ones(len(disc))])
        ub = np.concatenate([np.full(int(keep.sum()), np.inf), np.ones(len(disc))])
        res = milp(c, constraints=LinearConstraint(np.vstack(rows), lb, ub),
                   integrality=np.array([0 if v < 0 else 1 for _, v in cols]),
                   bounds=Bounds(0.0, 1.0))
    if res.status != 0 or res.x is None:
        return None
    offer = np.zeros(len(g.discrete))
    for j, (k, v) in enumerate(cols):
        if v < 0:
            offer[k] = g.low[k] + float(np.clip(res.x[j], 0.0, 1.0)) * (g.high[k] - g.low[k])
        elif res.x[j] > 0.5:
            offer[k] = float(v)
    return offer


# ------------------------------------------------------------ the deal set of one counter
@dataclasses.dataclass(frozen=True)
class _Counter:
    """A counter at step s by ``mover`` closing at step ``d`` <= T: ``who[p]`` the responder at
    position p (index 0 is position 1) and ``alt[p]`` its payoff of rejecting, R(s + p)."""

    mover: int
    d: int
    who: tuple[int, ...]
    alt: tuple[float, ...]


def _floors(g: GroupGame, c: _Counter) -> np.ndarray:
    """(N-1,) the least utility of each responder that makes accepting the deal at step d at
    least its ``alt`` (within the payoff tolerance): -inf every offer, +inf none."""
    d, bonus = deal_factors(g, c.d)
    tol = _TOL * g.utility_scale
    out = np.empty(len(c.who))
    for p, (j, a) in enumerate(zip(c.who, c.alt, strict=True)):
        if d[j] <= 0:
            out[p] = -np.inf if bonus >= a - tol else np.inf
        else:
            out[p] = g.reservation[j] + (a - tol - bonus) / (g.utility_scale * d[j])
    return out


def _floor_vector(g: GroupGame, c: _Counter, floors: np.ndarray, positions: range) -> np.ndarray:
    vec = np.full(g.num_parties, -np.inf)
    for p in positions:
        vec[c.who[p]] = floors[p]
    return vec


Deal = tuple[np.ndarray, np.ndarray]  # (offer (K,) natural units, utilities (N,))
Space = tuple[np.ndarray, np.ndarray]  # every outcome (n, K) and its utilities (n, N)


def _program_deal(g: GroupGame, c: _Counter, floors: np.ndarray) -> Deal | None:
    """The best deal offer by the programs: the mover's best utility on the deal set, then the
    responders' best utility sum on that face; None if the deal set is empty."""
    n = g.num_parties
    floor = _floor_vector(g, c, floors, range(len(c.who)))
    first = _solve_program(g, np.eye(n)[c.mover], floor)
    if first is None:
        return None
    floor[c.mover] = outcome_utilities(g, first)[c.mover] - _TOL
    others = np.ones(n)
    others[c.mover] = 0.0
    second = _solve_program(g, others, floor)
    offer = first if second is None else second
    return offer, outcome_utilities(g, offer)


def _program_delays(g: GroupGame, c: _Counter, floors: np.ndarray
                    ) -> list[tuple[int, np.ndarray]]:
    """[(q, witness offer)] for every achievable largest failing position q, ascending: the
    least utility of q's party subject to the positions after q is below q's floor."""
    npos = len(c.who)
    out = []
    for q in range(npos):
        if floors[q] == -np.inf:
            continue  # this responder accepts every offer
        target = -np.eye(g.num_parties)[c.who[q]]
        witness = _solve_program(g, target, _floor_vector(g, c, floors, range(q + 1, npos)))
        if witness is None:
            continue
        if floors[q] == np.inf or outcome_utilities(g, witness)[c.who[q]] < floors[q] - _TOL:
            out.append((q + 1, witness))
    return out


def _enumerated_delays(g: GroupGame, c: _Counter, pay: np.ndarray
                       ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(in_set (n,) bool, [(q, first offer index)] in enumeration order of the first offer) from
    the deal payoffs ``pay`` (n, N) of every outcome."""
    tol = _TOL * g.utility_scale
    fails = np.stack([pay[:, j] < a - tol for j, a in zip(c.who, c.alt, strict=True)], axis=1)
    npos = len(c.who)
    q_of = np.where(fails.any(axis=1), npos - np.argmax(fails[:, ::-1], axis=1), 0)
    firsts = []
    for q in range(1, npos + 1):
        hits = np.flatnonzero(q_of == q)
        if hits.size:
            firsts.append((int(hits[0]), q))
    return q_of == 0, [(q, i) for i, q in sorted(firsts)]


def _enumerated_deal(g: GroupGame, c: _Counter, grid: np.ndarray, util: np.ndarray,
                     pay: np.ndarray, in_set: np.ndarray, level: float) -> Deal | None:
    """The first deal offer with the mover's payoff within the tolerance of ``level`` (the
    best of deals and delays), its best utility, then the responders' best utility sum."""
    tol, m = _TOL * g.utility_scale, c.mover
    cand = np.flatnonzero(in_set & (pay[:, m] >= level - tol))
    if not cand.size:
        return None
    cand = cand[util[cand, m] >= util[cand, m].max() - _TOL]
    rest = util[cand].sum(axis=1) - util[cand, m]
    j = int(cand[np.flatnonzero(rest >= rest.max() - _TOL)[0]])
    return grid[j], util[j]


# ---------------------------------------------------------------- backward induction
def _chain(g: GroupGame, s: int, q: int, vec: np.ndarray, origin: int | None,
           alts: dict[int, np.ndarray]) -> tuple[np.ndarray, int | None]:
    """The outcome of a counter at step s whose position q's outcome is ``vec`` (decided at
    step ``origin``; None: the timeout): back over positions q-1..1, each accepts iff the outcome
    so far pays it at least its own R, else the outcome becomes its R."""
    n, tol = g.num_parties, _TOL * g.utility_scale
    m = (s - 1) % n
    for p in range(q - 1, 0, -1):
        j = (m + p) % n
        if vec[j] < alts[s + p][j] - tol:
            vec, origin = alts[s + p], s + p
    return vec, origin


def _counter_options(g: GroupGame, s: int, alts: dict[int, np.ndarray],
                     space: Space | None) -> tuple[Deal | None, tuple | None]:
    """(best deal offer, best delay (payoffs, resume step, witness offer)) of a counter at step s
    closing at d = s + N - 1 <= T; ``space``: the enumerated (outcomes, utilities) or None."""
    n, tol = g.num_parties, _TOL * g.utility_scale
    m = (s - 1) % n
    c = _Counter(m, s + n - 1, tuple((m + p) % n for p in range(1, n)),
                 tuple(float(alts[s + p][(m + p) % n]) for p in range(1, n)))
    if space is None:
        floors = _floors(g, c)
        delays = _program_delays(g, c, floors)
    else:
        pay = deal_payoffs(g, space[1], c.d)
        in_set, firsts = _enumerated_delays(g, c, pay)
        delays = [(q, space[0][i]) for q, i in firsts]
    chains = [(*_chain(g, s, q, alts[s + q], s + q, alts), witness) for q, witness in delays]
    delay = None
    if chains:  # the first of the tied best
        best = max(vec[m] for vec, _, _ in chains)
        delay = next(ch for ch in chains if ch[0][m] >= best - tol)
    if space is None:
        deal = _program_deal(g, c, floors)
    else:
        level = max(pay[in_set, m].max() if in_set.any() else -np.inf,
                    -np.inf if delay is None else delay[0][m])
        deal = _enumerated_deal(g, c, space[0], space[1], pay, in_set, level)
    return deal, delay


def _plan(g: GroupGame, s: int, alts: dict[int, np.ndarray], space: Space | None) -> GroupStep:
    """The plan of step s given R of the later steps (``alts``)."""
    n, T, tol = g.num_parties, g.max_rounds, _TOL * g.utility_scale
    m = (s - 1) % n
    timeout = np.asarray(g.timeout_payoff, float)
    offer = util = resume = None
    if s + n - 1 > T:  # no deal can close: the timeout unless a responder rejects first
        value, resume = _chain(g, s, T - s + 1, timeout, None, alts)
        move = "timeout" if resume is None else "delay"
    else:
        deal, delay = _counter_options(g, s, alts, space)
        move, value = "walk", np.full(n, -np.inf)
        if delay is not None:
            move, value, resume = "delay", delay[0], delay[1]
            offer, util = delay[2], outcome_utilities(g, delay[2])
        if deal is not None:
            pay = deal_payoffs(g, deal[1], s + n - 1)
            if pay[m] >= value[m] - tol:  # prefers the agreement when indifferent
                move, value, resume = "counter", pay, None
                offer, util = deal
    walk = np.asarray(g.walk_payoff, float)
    if walk[m] > value[m] + tol or move == "walk":  # counters when indifferent
        move, value, offer, util, resume = "walk", walk, None, None, None
    return GroupStep(step=s, mover=g.names[m], move=move,
                     offer=None if offer is None else tuple(float(x) for x in offer),
                     utilities=None if util is None else tuple(float(x) for x in util),
                     alt=tuple(float(x) for x in value), resume=resume)


def solve_group_spe(g: GroupGame) -> GroupSPE:
    """The SPE of the complete-information group game ``g`` (see the module docstring)."""
    space = enumerated_outcomes(g) if all(g.discrete) else None
    alts: dict[int, np.ndarray] = {}
    plans: dict[int, GroupStep] = {}
    for s in range(g.max_rounds, 0, -1):
        plans[s] = _plan(g, s, alts, space)
        alts[s] = np.asarray(plans[s].alt)
    ordered = tuple(plans[s] for s in range(1, g.max_rounds + 1))
    s = 1  # follow the path from step 1 (no standing offer: no accept)
    while plans[s].move == "delay":
        s = plans[s].resume
    plan, pay = plans[s], ordered[0].alt
    if plan.move == "counter":
        return GroupSPE("deal", s + g.num_parties - 1, plan.offer, plan.utilities, pay, ordered)
    if plan.move == "walk":
        return GroupSPE("walk_away", s, None, None, pay, ordered)
    return GroupSPE("timeout", g.max_rounds, None, None, pay, ordered)
