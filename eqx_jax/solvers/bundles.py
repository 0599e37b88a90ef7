"""Exact theory of OpenSpiel's item-bundles bargaining game (NumPy only, independent of the env).

The game (``docs/games.md``, "bundles"; OpenSpiel's ``bargaining``): a pool of items of
:data:`NUM_ITEM_TYPES` types, player 0 and player 1 each with integer per-item values (each
player's whole pool is worth :data:`TOTAL_VALUE` in OpenSpiel's instances). Turns alternate,
player 0 first. A turn is an *offer* (a vector of item counts that the *proposer keeps*; the
other player would get the rest of the pool) or, from turn 2 on, *agree* to the standing offer.
An agreement at turn ``k`` pays each player the value of its share times
``discount ** max(0, k - 2)``; after an offer at turn ``k >= 2`` the game ends with no
agreement with probability ``prob_end``; an offer at turn ``max_turns`` ends it with no
agreement. No agreement pays 0 to both.

This module gives the offers in OpenSpiel's action order (:func:`all_offers`), the splits of a
pool and their Pareto optimality, all valid instances of OpenSpiel's instance generator, and the
subgame-perfect equilibrium of one complete-information instance by backward induction
(:func:`solve_spe`).

Units: item counts and values are integers; returns are value points (0 to 10).
"""

from __future__ import annotations

import dataclasses
import itertools
from functools import lru_cache

import numpy as np

from eqx_jax.checks import check_number

NUM_ITEM_TYPES = 3
POOL_MIN_ITEMS = 5  # OpenSpiel's generator: 5 to 7 items in a pool
POOL_MAX_ITEMS = 7  # an offer keeps at most 7 items in all (OpenSpiel's kPoolMaxNumItems)
TOTAL_VALUE = 10  # each player's whole pool is worth 10 in a generated instance
#: Ties within this many value points count as equal (returns are sums of products of small
#: integers and powers of the discount, exact to ~1e-15).
TIE_EPS = 1e-9


@lru_cache(maxsize=1)
def all_offers() -> np.ndarray:
    """(120, 3) int64: every offer in OpenSpiel's action order (action id = row).

    OpenSpiel's ``CreateOffers`` counts through ``[0, 7]^3`` with the *first* item type moving
    fastest and keeps the vectors of at most 7 items; the agree action's id is 120.
    """
    rows = [(a, b, c) for c in range(POOL_MAX_ITEMS + 1) for b in range(POOL_MAX_ITEMS + 1)
            for a in range(POOL_MAX_ITEMS + 1) if a + b + c <= POOL_MAX_ITEMS]
    return np.asarray(rows, dtype=np.int64)


def agree_action() -> int:
    """OpenSpiel's action id of *agree* (one past the last offer)."""
    return len(all_offers())


def splits(pool) -> np.ndarray:
    """(S, 3) int64: the legal offers of ``pool`` (each count <= the pool's), in action order."""
    offers = all_offers()
    return offers[np.all(offers <= np.asarray(pool), axis=1)]


def split_values(pool, values, shares0) -> np.ndarray:
    """(..., 2) float64: (player 0, player 1) value of the splits where player 0 gets
    ``shares0`` (..., 3) and player 1 the rest of ``pool``; ``values`` (2, 3)."""
    v = np.asarray(values, dtype=np.float64)
    s0 = np.asarray(shares0, dtype=np.float64)
    s1 = np.asarray(pool, dtype=np.float64) - s0
    return np.stack([s0 @ v[0], s1 @ v[1]], axis=-1)


def pareto_mask(pool, values, shares0) -> np.ndarray:
    """(...,) bool: whether each split (player 0 gets ``shares0`` (..., 3)) is Pareto optimal
    among *all* splits of ``pool``: no split gives one player more and the other no less."""
    cand = split_values(pool, values, splits(pool))  # (S, 2)
    u = split_values(pool, values, shares0)[..., None, :]  # (..., 1, 2)
    dominated = np.all(cand >= u - TIE_EPS, axis=-1) & np.any(cand > u + TIE_EPS, axis=-1)
    return ~np.any(dominated, axis=-1)


def pareto_splits(pool, values) -> np.ndarray:
    """(P, 3) int64: player 0's shares of the Pareto-optimal splits of ``pool``."""
    s = splits(pool)
    return s[pareto_mask(pool, values, s)]


def max_welfare(pool, values) -> float:
    """The largest sum of both players' values over the splits of ``pool`` (each item type to
    whoever values it more)."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.asarray(pool, dtype=np.float64) @ v.max(axis=0))


@lru_cache(maxsize=1)
def valid_instances() -> np.ndarray:
    """(M, 9) int64 rows ``pool(3), values0(3), values1(3)``: every instance OpenSpiel's
    ``bargaining_instance_generator`` can produce (pool counts in [1, 7] with 5 to 7 items in
    all, values in [0, 10] worth 10 in all to each player, no item type worthless to both, some
    item type valuable to both). Its rejection sampler draws them uniformly. M = 5793."""
    rows = []
    for pool in itertools.product(range(1, POOL_MAX_ITEMS + 1), repeat=NUM_ITEM_TYPES):
        if not POOL_MIN_ITEMS <= sum(pool) <= POOL_MAX_ITEMS:
            continue
        vals = [v for v in itertools.product(range(TOTAL_VALUE + 1), repeat=NUM_ITEM_TYPES)
                if np.dot(pool, v) == TOTAL_VALUE]
        for v0, v1 in itertools.product(vals, vals):
            pairs = list(zip(v0, v1, strict=True))
            if any(a == 0 and b == 0 for a, b in pairs) or not any(a > 0 and b > 0
                                                                  for a, b in pairs):
                continue
            rows.append((*pool, *v0, *v1))
    return np.asarray(rows, dtype=np.int64)


def generate_instances(num: int, seed: int = 0) -> np.ndarray:
    """(num, 9) int64: ``num`` distinct instances drawn uniformly from :func:`valid_instances`
    (the distribution of OpenSpiel's generator, which also keeps distinct instances only)."""
    total = len(valid_instances())
    check_number("num_instances", num, 1, total, integer=True)
    rng = np.random.default_rng(seed)
    return valid_instances()[np.sort(rng.choice(total, size=num, replace=False))]


@dataclasses.dataclass(frozen=True)
class BundlesSPE:
    """The subgame-perfect equilibrium of one instance (complete information).

    ``returns`` (2,): expected returns of players 0 and 1 at the start (the chance end included).
    On the equilibrium path without a chance end: ``agreement`` (whether one is reached);
    ``offer`` (3,) the accepted offer (items its proposer keeps), ``proposer`` its player,
    ``offer_turn`` the turn it is made and ``turn`` the turn it is accepted (1-indexed;
    ``offer_turn = turn - 1``); ``shares`` (2, 3) each player's items; ``values`` (2,) their
    values after the discount; ``pareto_optimal`` of the agreed split. ``plan`` lists, per turn
    ``k``, the offer the mover would make at turn ``k`` (3,) and its continuation values (2,).
    Without an agreement ``offer``/``shares`` are zeros and ``turn`` is the last turn played.
    """

    returns: np.ndarray
    agreement: bool
    offer: np.ndarray
    proposer: int
    offer_turn: int
    turn: int
    shares: np.ndarray
    values: np.ndarray
    pareto_optimal: bool
    plan: tuple[tuple[np.ndarray, np.ndarray], ...]


def _better(a: np.ndarray, b: np.ndarray, mover: int) -> bool:
    """Whether value pair ``a`` beats ``b`` for ``mover``: more for the mover, or the same for
    the mover and more for the other player (the equilibrium selection, see :func:`solve_spe`)."""
    da, db = a[mover] - b[mover], a[1 - mover] - b[1 - mover]
    return bool(da > TIE_EPS or (abs(da) <= TIE_EPS and db > TIE_EPS))


def _check_game(pool, values, max_turns: int, discount: float, prob_end: float):
    pool = np.asarray(pool, dtype=np.int64).reshape(-1)
    values = np.asarray(values, dtype=np.float64)
    if pool.shape != (NUM_ITEM_TYPES,) or values.shape != (2, NUM_ITEM_TYPES):
        raise ValueError(f"pool must have shape (3,) and values (2, 3), got {pool.shape} and "
                         f"{values.shape}")
    for k, n in enumerate(pool):
        check_number(f"pool[{k}]", int(n), 0, POOL_MAX_ITEMS, integer=True)
    check_number("pool total", int(pool.sum()), 0, POOL_MAX_ITEMS, integer=True)
    check_number("max_turns", max_turns, 1, 1000, integer=True)
    check_number("discount", discount, 0.0, 1.0)
    check_number("prob_end", prob_end, 0.0, 1.0)
    return pool, values


def _accept_values(pool, values, offers, proposer: int, factor: float) -> np.ndarray:
    """(S, 2) values of agreeing to each offer (kept by ``proposer``) with discount ``factor``."""
    shares0 = offers if proposer == 0 else pool - offers
    return factor * split_values(pool, values, shares0)


def _best_offer(cont: np.ndarray, accepted: np.ndarray, mover: int) -> int:
    """Row of ``cont`` (S, 2) best for ``mover``; ``accepted`` (S,) whether the responder
    agrees to each offer (selection rule of :func:`solve_spe`)."""
    best = 0
    for i in range(1, len(cont)):
        if _better(cont[i], cont[best], mover) or (
                not _better(cont[best], cont[i], mover) and accepted[i] and not accepted[best]):
            best = i
    return best


def solve_spe(pool, values, max_turns: int = 10, discount: float = 1.0,
              prob_end: float = 0.0) -> BundlesSPE:
    """The subgame-perfect equilibrium of the instance ``pool`` (3,) / ``values`` (2, 3) when
    both players know both value vectors, by backward induction over the turns.

    Selection among equally good moves (the SPE is not unique when a player is indifferent):
    the mover maximises its own value, then the other player's; among exact ties it agrees
    rather than makes an offer, prefers an offer that is agreed to at once (so that an
    agreement is not delayed for nothing), then the lowest OpenSpiel action id. The
    chance end is an expectation: an offer at turn ``k >= 2`` (``k < max_turns``) is followed by
    turn ``k + 1`` with probability ``1 - prob_end``.

    Why this is small: the value of making an offer at turn ``k`` does not depend on the
    standing offer, so each turn needs one pass over the S <= 120 offers.
    """
    pool, values = _check_game(pool, values, max_turns, discount, prob_end)
    offers = splits(pool)
    factor = [float(discount) ** max(0, k - 2) for k in range(max_turns + 1)]
    # counter[k]: (value pair, offer row) of the best offer the mover can make at turn k.
    counter: dict[int, tuple[np.ndarray, int]] = {}
    # respond[k]: (S, 2) values at the start of turn k with offer row s standing, and whether
    # the mover agrees.
    respond: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k in range(max_turns, 0, -1):
        mover = (k - 1) % 2
        if k == max_turns:
            cont, accepted = np.zeros((len(offers), 2)), np.zeros(len(offers), dtype=bool)
        else:
            stay = 1.0 - prob_end if k >= 2 else 1.0
            cont, accepted = stay * respond[k + 1][0], respond[k + 1][1]
        best = _best_offer(cont, accepted, mover)
        counter[k] = (cont[best], best)
        if k >= 2:
            acc = _accept_values(pool, values, offers, 1 - mover, factor[k])
            agree = np.array([not _better(counter[k][0], a, mover) for a in acc])
            respond[k] = (np.where(agree[:, None], acc, counter[k][0]), agree)
    plan = tuple((offers[counter[k][1]].copy(), counter[k][0].copy())
                 for k in range(1, max_turns + 1))
    return _equilibrium_path(pool, values, offers, counter, respond, factor, max_turns, plan)


def _equilibrium_path(pool, values, offers, counter, respond, factor, max_turns, plan
                      ) -> BundlesSPE:
    """Follow the equilibrium strategies from turn 1 (no chance end) to the outcome."""
    standing = counter[1][1]
    for k in range(2, max_turns + 1):
        if respond[k][1][standing]:
            proposer = k % 2  # the player who moved at turn k - 1
            offer = offers[standing]
            shares0 = offer if proposer == 0 else pool - offer
            shares = np.stack([shares0, pool - shares0])
            return BundlesSPE(
                returns=counter[1][0].copy(), agreement=True, offer=offer.copy(),
                proposer=proposer, offer_turn=k - 1, turn=k, shares=shares,
                values=factor[k] * split_values(pool, values, shares0),
                pareto_optimal=bool(pareto_mask(pool, values, shares0)), plan=plan)
        standing = counter[k][1]
    zeros = np.zeros(NUM_ITEM_TYPES, dtype=np.int64)
    return BundlesSPE(returns=counter[1][0].copy(), agreement=False, offer=zeros, proposer=-1,
                      offer_turn=-1, turn=max_turns, shares=np.zeros((2, NUM_ITEM_TYPES),
                                                                     dtype=np.int64),
                      values=np.zeros(2), pareto_optimal=False, plan=plan)
