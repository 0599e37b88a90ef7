"""Tests for eqx_jax.solvers.one_sided: hand-computed equilibria, the Fudenberg-Tirole closed form
and a grid brute force against the exact solver, invariants, the retailer-proposes protocol and
input validation.

Notation: c cost, v_L < v_H the retailer's values, pi = Pr(v_H), T env rounds, N = T // 2 offer
periods (offer k made in round 2k - 1, answered in round 2k), A_k = delta_s^(2k) and
B_k = delta_r^(2k) the deal factors of period k. Prices are currency units, payoffs reward units.
"""

from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
import pytest

from eqx_jax.solvers.one_sided import (
    brute_force_one_sided,
    fudenberg_tirole_two_period,
    solve_one_sided_pbe,
)

# --------------------------------------------------------------------------------------------
# Hand-computed cases
# --------------------------------------------------------------------------------------------


def test_take_it_or_leave_it_monopoly_price():
    # T = 2: one offer, answered in round 2 (factor 0.9^2 = 0.81). The supplier asks v_L = 40
    # (both buy) or v_H = 100 (only the high type buys): v_H pays iff
    # pi (100 - 10) >= 40 - 10, i.e. pi >= pi* = 1/3.
    kw = dict(discount=(0.9, 0.9), max_price=200.0)
    low = solve_one_sided_pbe(10, 40, 100, 0.2, 2, **kw)
    assert low.price_path == (40.0,) and low.offer_kinds == ("sell_to_both",)
    assert (low.high_accept_round, low.low_accept_round) == (2, 2)
    assert low.supplier_payoff == pytest.approx(30 * 0.81)
    assert low.high_payoff == pytest.approx(60 * 0.81) and low.low_payoff == 0.0
    assert low.outcome_probabilities == pytest.approx((0.0, 1.0))
    high = solve_one_sided_pbe(10, 40, 100, 0.5, 2, **kw)
    assert high.price_path == (100.0,) and high.offer_kinds == ("sell_to_high",)
    assert (high.high_accept_round, high.low_accept_round) == (2, None)
    assert high.supplier_payoff == pytest.approx(0.5 * 90 * 0.81)
    assert high.outcome_probabilities == pytest.approx((0.0, 0.5))
    assert high.timeout_probability == pytest.approx(0.5)
    assert high.thresholds == ((pytest.approx(1 / 3),),)
    # At pi* the supplier is indifferent and asks v_H (the tie rule's ">=").
    assert solve_one_sided_pbe(10, 40, 100, 1 / 3, 2, **kw).price_path == (100.0,)
    # T = 3: the supplier's round-3 offer cannot be answered, so the game is the T = 2 one.
    odd = solve_one_sided_pbe(10, 40, 100, 0.5, 3, **kw)
    assert odd.price_path == high.price_path and len(odd.outcome_probabilities) == 3
    assert odd.supplier_payoff == pytest.approx(high.supplier_payoff)


def test_hand_computed_two_period_regimes():
    # c = 0, v_L = 50, v_H = 100, delta = 0.9 per round: A_1 = B_1 = 0.81, A_2 = B_2 = 0.6561.
    # Period 2: pi* = 50 / 100 = 0.5. Below pi* the supplier sells to both at 50, so the high
    #   type's value of waiting is U_2 = 50 * 0.6561 = 32.805 and S_2(0) = 32.805; from pi* on
    #   it asks 100 and U_2 = 0.
    # Period 1:
    #   sell to both at 50:  S = 50 * 0.81 = 40.5.
    #   screen:              P = 100 - 32.805 / 0.81 = 59.5,
    #                        S = pi * 59.5 * 0.81 + (1 - pi) * 32.805 = 32.805 + 15.39 pi,
    #                        >= 40.5 iff pi >= 0.5.
    #   mixed (pi >= 0.5):   P = 100, q = (pi - 0.5) / (0.5 pi),
    #                        S = ((pi - 0.5) * 81 + (1 - pi) * 32.805) / 0.5 = 96.39 pi - 15.39,
    #                        >= screen iff 81 pi >= 48.195, i.e. pi >= 0.595.
    kw = dict(discount=(0.9, 0.9), max_price=200.0)
    both = solve_one_sided_pbe(0, 50, 100, 0.3, 4, **kw)
    assert both.price_path == (50.0,) and both.supplier_payoff == pytest.approx(40.5)
    assert both.high_payoff == pytest.approx(40.5)
    screen = solve_one_sided_pbe(0, 50, 100, 0.55, 4, **kw)
    assert screen.price_path == pytest.approx((59.5, 50.0))
    assert screen.belief_path == pytest.approx((0.55, 0.0))
    assert screen.supplier_payoff == pytest.approx(41.2695)
    assert screen.high_payoff == pytest.approx(32.805)  # (100 - 59.5) * 0.81
    assert (screen.high_accept_round, screen.low_accept_round) == (2, 4)
    mixed = solve_one_sided_pbe(0, 50, 100, 0.8, 4, **kw)
    assert mixed.price_path == pytest.approx((100.0, 100.0))
    assert mixed.belief_path == pytest.approx((0.8, 0.5))
    assert mixed.high_accept_prob == pytest.approx((0.75, 1.0))
    assert mixed.low_accept_prob == (0.0, 0.0)
    assert (mixed.high_accept_round_first, mixed.high_accept_round) == (2, 4)
    assert mixed.low_accept_round is None
    # Deals: 0.8 * 0.75 = 0.6 in round 2, the remaining 0.2 high types in round 4.
    assert mixed.outcome_probabilities == pytest.approx((0, 0.6, 0, 0.2))
    assert mixed.timeout_probability == pytest.approx(0.2)
    assert mixed.supplier_payoff == pytest.approx(61.722)  # 0.6 * 81 + 0.2 * 65.61
    assert (mixed.high_payoff, mixed.low_payoff) == (pytest.approx(0.0), 0.0)
    assert mixed.thresholds == (pytest.approx((0.5, 0.595)), pytest.approx((0.5,)))
    text = " ".join(mixed.explanation)
    assert "probability 0.750" in text and "100.00" in text


def test_corner_priors_and_no_offer():
    kw = dict(discount=(0.9, 0.8), max_price=200.0)
    # pi = 1: complete information; the supplier asks v_H at once.
    sure = solve_one_sided_pbe(10, 40, 100, 1.0, 6, **kw)
    assert sure.price_path == (100.0,) and sure.high_accept_prob == (1.0,)
    assert sure.supplier_payoff == pytest.approx(90 * 0.81)
    # pi = 0 with a gap: sell to the low type at v_L at once.
    none = solve_one_sided_pbe(10, 40, 100, 0.0, 6, **kw)
    assert none.price_path == (40.0,) and none.supplier_payoff == pytest.approx(30 * 0.81)
    # T = 1: no offer can be answered: the timeout payoffs.
    idle = solve_one_sided_pbe(10, 40, 100, 0.5, 1, timeout_payoff=(-1.0, -2.0),
                               walk_payoff=(-3.0, -3.0), **kw)
    assert idle.price_path == () and idle.timeout_probability == 1.0
    assert (idle.supplier_payoff, idle.high_payoff, idle.low_payoff) == (-1.0, -2.0, -2.0)


def test_no_gap_low_type_never_trades():
    # v_L <= c: the supplier asks v_H every period; the high type buys at once, the low never.
    for c in (40.0, 55.0):
        r = solve_one_sided_pbe(c, 40, 100, 0.3, 6, discount=(0.9, 0.9), max_price=200.0)
        assert r.price_path == (100.0, 100.0, 100.0)
        assert r.belief_path == (0.3, 0.0, 0.0)
        assert (r.high_accept_round, r.low_accept_round) == (2, None)
        assert r.supplier_payoff == pytest.approx(0.3 * (100 - c) * 0.81)
        assert r.low_payoff == 0.0 and r.timeout_probability == pytest.approx(0.7)


def test_timeout_payoffs_enter_reservation_prices():
    # T = 2, d = (2, 3): the low type accepts p iff (40 - p) 0.81 >= 3, so r = 40 - 3 / 0.81;
    # at pi = 0.1 the supplier sells to both there.
    r = solve_one_sided_pbe(10, 40, 100, 0.1, 2, discount=(0.9, 0.9), max_price=200.0,
                            timeout_payoff=(2.0, 3.0))
    assert r.price_path == pytest.approx((40 - 3 / 0.81,))
    assert r.low_payoff == pytest.approx(3.0)
    assert r.supplier_payoff == pytest.approx((40 - 3 / 0.81 - 10) * 0.81)


# --------------------------------------------------------------------------------------------
# The Fudenberg-Tirole closed form against the solver
# --------------------------------------------------------------------------------------------


def _ft_draws(n: int, seed: int = 7):
    """(c, v_L, v_H, pi, delta_s, delta_r): random games, each with a random prior and priors
    exactly at the closed form's thresholds (period 2's pi* and the period-1 ties), 0 and 1."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        vh = float(rng.uniform(20, 200))
        vl = float(rng.uniform(1, vh - 1))
        c = float(rng.uniform(0, vl)) if i % 4 else float(rng.uniform(vl, vh))
        ds, dr = (1.0 if rng.random() < 0.1 else float(rng.uniform(0.3, 1.0)) for _ in "sr")
        th = fudenberg_tirole_two_period(c, vl, vh, 0.5, ds**2, dr**2)["thresholds"]
        pis = {float(rng.uniform(0, 1)), float(rng.uniform(0, 1))}
        pis |= {x for x in th.values() if x is not None and 0.0 <= x <= 1.0}
        if i % 10 == 0:
            pis |= {0.0, 1.0}
        for pi in sorted(pis):
            yield c, vl, vh, pi, ds, dr


def test_two_period_closed_form_matches_solver():
    draws = list(_ft_draws(90))
    assert len(draws) >= 200
    regimes = set()
    for c, vl, vh, pi, ds, dr in draws:
        ft = fudenberg_tirole_two_period(c, vl, vh, pi, ds**2, dr**2)
        regimes.add(ft["regime"])
        r = solve_one_sided_pbe(c, vl, vh, pi, 4, discount=(ds, dr), max_price=1000.0)
        where = (c, vl, vh, pi, ds, dr, ft["regime"])
        assert len(r.price_path) == len(ft["price_path"]), where
        np.testing.assert_allclose(r.price_path, ft["price_path"], atol=1e-9, err_msg=where)
        np.testing.assert_allclose(r.belief_path, ft["belief_path"], atol=1e-9, err_msg=where)
        np.testing.assert_allclose(r.high_accept_prob, ft["high_accept_prob"], atol=1e-9,
                                   err_msg=where)
        assert r.low_accept_prob == tuple(ft["low_accept_prob"]), where
        # The closed form's payoffs are in period-1 units; period 1 is answered in round 2.
        assert r.supplier_payoff == pytest.approx(ds**2 * ft["supplier_payoff"], abs=1e-9)
        assert r.high_payoff == pytest.approx(dr**2 * ft["high_payoff"], abs=1e-9)
        assert r.low_payoff == pytest.approx(dr**2 * ft["low_payoff"], abs=1e-9)
    assert regimes == {"sell_to_both", "screen", "mixed", "no_gap"}


# --------------------------------------------------------------------------------------------
# Brute force against the solver
# --------------------------------------------------------------------------------------------

BRUTE_CASES = [
    # (c, v_L, v_H, pi, T, discount, timeout_payoff)
    (10.0, 40.0, 100.0, 0.2, 2, (0.9, 0.9), (0.0, 0.0)),
    (10.0, 40.0, 100.0, 0.7, 4, (0.9, 0.85), (0.0, 0.0)),
    (0.0, 50.0, 100.0, 0.55, 4, (0.9, 0.9), (0.0, 0.0)),
    (5.0, 30.0, 90.0, 0.6, 6, (0.8, 0.9), (0.0, 0.0)),
    (20.0, 45.0, 80.0, 0.85, 6, (0.95, 0.7), (0.0, 0.0)),
    (10.0, 40.0, 100.0, 0.8, 8, (0.9, 0.85), (0.0, 0.0)),
    (2.0, 60.0, 95.0, 0.4, 8, (0.7, 0.95), (0.0, 0.0)),
    (15.0, 35.0, 70.0, 0.5, 6, (0.85, 0.85), (4.0, 2.0)),
    (50.0, 40.0, 100.0, 0.45, 6, (0.9, 0.9), (0.0, 0.0)),  # no gap: c > v_L
    (40.0, 40.0, 90.0, 0.3, 4, (0.8, 0.9), (0.0, 0.0)),  # no gap: c = v_L
]


def _assert_close_to_exact(ex, bf, n: int, grid: int, scale: float):
    where = (ex.price_path, bf.price_path)
    assert len(bf.price_path) == len(ex.price_path), where
    np.testing.assert_allclose(bf.price_path, ex.price_path, atol=1e-6 * scale)
    np.testing.assert_allclose(bf.belief_path, ex.belief_path, atol=2.0 * n / grid)
    for b, q_bf, q_ex in zip(ex.belief_path, bf.high_accept_prob, ex.high_accept_prob,
                             strict=True):
        if b > 0.0:  # at belief 0 the high type's answer is off path
            assert abs(q_bf - q_ex) <= 5.0 * n / grid
    assert bf.low_accept_prob == ex.low_accept_prob
    assert (bf.high_accept_round_first, bf.high_accept_round, bf.low_accept_round) == \
        (ex.high_accept_round_first, ex.high_accept_round, ex.low_accept_round)
    for attr in ("supplier_payoff", "high_payoff", "low_payoff"):
        assert abs(getattr(bf, attr) - getattr(ex, attr)) <= scale * n / grid, attr


@pytest.mark.parametrize("case", BRUTE_CASES)
def test_brute_force_matches_solver(case):
    c, vl, vh, pi, T, disc, to = case
    kw = dict(discount=disc, timeout_payoff=to, max_price=150.0)
    ex = solve_one_sided_pbe(c, vl, vh, pi, T, **kw)
    # The prior is away from period 1's thresholds, where a grid could pick the other side.
    assert all(abs(pi - x) > 0.03 for x in ex.thresholds[0])
    grid = 121
    bf = brute_force_one_sided(c, vl, vh, pi, T, price_grid=16, belief_grid=grid, **kw)
    _assert_close_to_exact(ex, bf, T // 2, grid, vh)


def test_brute_force_error_shrinks_with_the_grid():
    kw = dict(discount=(0.8, 0.9), max_price=150.0)
    ex = solve_one_sided_pbe(0.0, 30.0, 90.0, 0.6, 6, **kw)
    errors = []
    for grid in (31, 241):
        bf = brute_force_one_sided(0.0, 30.0, 90.0, 0.6, 6, price_grid=16, belief_grid=grid, **kw)
        _assert_close_to_exact(ex, bf, 3, grid, 90.0)
        errors.append((abs(bf.supplier_payoff - ex.supplier_payoff),
                       max(abs(a - b) for a, b in zip(bf.belief_path, ex.belief_path,
                                                           strict=True))))
    assert errors[1][0] < errors[0][0] / 4 and errors[1][1] < errors[0][1] / 4
    assert errors[1][0] > 0.0  # the grid really is an approximation


def test_brute_force_random_draws():
    rng = np.random.default_rng(3)
    checked = 0
    while checked < 12:
        vh = float(rng.uniform(40, 100))
        vl = float(rng.uniform(5, vh - 5))
        c = float(rng.uniform(0, vl - 2)) if rng.random() < 0.75 else float(rng.uniform(vl, vh))
        disc = (float(rng.uniform(0.5, 0.99)), float(rng.uniform(0.5, 0.99)))
        pi, T = float(rng.uniform(0.02, 0.98)), int(rng.choice([2, 4, 6, 8]))
        ex = solve_one_sided_pbe(c, vl, vh, pi, T, discount=disc, max_price=120.0)
        if any(abs(pi - x) <= 0.03 for x in ex.thresholds[0]):
            continue
        bf = brute_force_one_sided(c, vl, vh, pi, T, discount=disc, max_price=120.0,
                                   price_grid=13, belief_grid=101)
        _assert_close_to_exact(ex, bf, T // 2, 101, vh)
        checked += 1


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


def _random_games(n: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        vh = float(rng.uniform(10, 500))
        vl = float(rng.uniform(0, vh * 0.99))
        c = float(rng.uniform(0, vl)) if rng.random() < 0.7 else float(rng.uniform(vl, vh))
        disc = tuple(1.0 if rng.random() < 0.1 else float(rng.uniform(0.3, 1.0)) for _ in "sr")
        yield c, vl, vh, float(rng.uniform(0, 1)), int(rng.integers(1, 15)), disc


def test_equilibrium_invariants():
    for c, vl, vh, pi, T, disc in _random_games(150, seed=11):
        r = solve_one_sided_pbe(c, vl, vh, pi, T, discount=disc, max_price=600.0)
        where = (c, vl, vh, pi, T, disc)
        assert all(b1 <= b0 + 1e-12 for b0, b1 in pairwise(r.belief_path)), where
        assert all(p1 <= p0 + 1e-9 for p0, p1 in pairwise(r.price_path)), where
        for k in range(len(r.belief_path) - 1):  # Bayes' rule after a high-type-only sale
            b, q = r.belief_path[k], r.high_accept_prob[k]
            if r.low_accept_prob[k] == 0.0 and 0.0 < b < 1.0:
                assert r.belief_path[k + 1] == pytest.approx(b * (1 - q) / (1 - b * q),
                                                             abs=1e-9), where
        if r.low_accept_round is not None:
            assert r.high_accept_round is not None, where
            assert r.high_accept_round <= r.low_accept_round, where
        if r.high_accept_round is not None:
            assert r.high_accept_round_first <= r.high_accept_round, where
        assert min(r.supplier_payoff, r.high_payoff, r.low_payoff) >= -1e-9, where
        if T >= 2:  # offering the low type's price at once is always available
            assert r.supplier_payoff >= (vl - c) * disc[0] ** 2 - 1e-9, where
        assert len(r.outcome_probabilities) == T
        assert sum(r.outcome_probabilities) + r.timeout_probability == pytest.approx(1.0)
        assert json.loads(json.dumps(r.to_dict()))["price_path"] == list(r.price_path)


def test_invariants_with_timeout_payoffs():
    rng = np.random.default_rng(5)
    for c, vl, vh, pi, T, disc in _random_games(60, seed=12):
        to = (float(rng.uniform(-5, 20)), float(rng.uniform(0, 10)))
        r = solve_one_sided_pbe(c, vl, vh, pi, T, discount=disc, max_price=600.0,
                                timeout_payoff=to, walk_payoff=(-10.0, -10.0))
        where = (c, vl, vh, pi, T, disc, to)
        assert r.supplier_payoff >= to[0] - 1e-9, where
        assert min(r.high_payoff, r.low_payoff) >= to[1] - 1e-9, where
        assert sum(r.outcome_probabilities) + r.timeout_probability == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Retailer proposes
# --------------------------------------------------------------------------------------------


def test_retailer_proposes_pooling_offer():
    # The supplier's value of rejecting is its timeout payoff 0, so it accepts any p >= c;
    # both types offer c at once (a pooling offer) and keep all the gains. The env's round 1
    # is the supplier's, with nothing to answer: the offer comes in round 2, the deal in 3.
    r = solve_one_sided_pbe(10, 40, 100, 0.4, 6, discount=(0.9, 0.8), max_price=200.0,
                            proposer="retailer")
    assert r.proposer == "retailer" and r.price_path == (10.0,)
    assert r.offer_kinds == ("pooling_offer",) and r.belief_path == (0.4,)
    assert (r.high_accept_prob, r.low_accept_prob) == ((1.0,), (1.0,))
    assert (r.high_accept_round, r.low_accept_round) == (3, 3)
    assert r.supplier_payoff == pytest.approx(0.0)
    assert r.high_payoff == pytest.approx(90 * 0.8 ** 3)
    assert r.low_payoff == pytest.approx(30 * 0.8 ** 3)
    assert r.outcome_probabilities == pytest.approx((0, 0, 1, 0, 0, 0))
    json.dumps(r.to_dict())


def test_retailer_proposes_no_gap_and_timeouts():
    # c > v_L: only the high type trades (at c, at once); the low type offers 0 until timeout.
    r = solve_one_sided_pbe(50, 40, 100, 0.4, 6, discount=(0.9, 0.9), max_price=200.0,
                            proposer="retailer")
    # (T = 6: offers in rounds 2 and 4 can be answered, in rounds 3 and 5.)
    assert r.price_path == (50.0, 0.0) and r.belief_path == (0.4, 0.0)
    assert r.offer_kinds == ("high_offers", "no_sale")
    assert (r.high_accept_round, r.low_accept_round) == (3, None)
    assert r.timeout_probability == pytest.approx(0.6) and r.low_payoff == 0.0
    # d_s = 3: the supplier's reservation price is c + 3 / 0.9^3, so it earns exactly d_s.
    r = solve_one_sided_pbe(10, 40, 100, 0.4, 4, discount=(0.9, 0.9), max_price=200.0,
                            timeout_payoff=(3.0, 0.0), proposer="retailer")
    assert r.price_path == pytest.approx((10 + 3 / 0.9 ** 3,))
    assert r.supplier_payoff == pytest.approx(3.0)


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------

GOOD = dict(cost=10.0, v_low=40.0, v_high=100.0, prob_high=0.5, max_rounds=4)


@pytest.mark.parametrize("bad, name", [
    (dict(cost=-1.0), "cost"),
    (dict(cost=float("nan")), "cost"),
    (dict(cost=20000.0), "cost"),
    (dict(v_low=-5.0), "v_low"),
    (dict(v_high=40.0), "v_high"),
    (dict(v_high=20000.0), "v_high"),
    (dict(prob_high=1.5), "prob_high"),
    (dict(prob_high=-0.1), "prob_high"),
    (dict(max_rounds=0), "max_rounds"),
    (dict(max_rounds=2.5), "max_rounds"),
    (dict(max_rounds=True), "max_rounds"),
    (dict(discount=(0.0, 0.9)), "discount[supplier]"),
    (dict(discount=(0.9, 1.1)), "discount[retailer]"),
    (dict(discount=0.9), "discount"),
    (dict(timeout_payoff=(float("inf"), 0.0)), "timeout_payoff[supplier]"),
    (dict(walk_payoff=(1.0, 0.0)), "walk_payoff[supplier]"),
    (dict(walk_payoff=(0.0, 0.5)), "walk_payoff[retailer]"),
    (dict(max_price=0.0), "max_price"),
    (dict(max_price=50.0), "v_high"),
    (dict(proposer="alternate"), "proposer"),
    (dict(max_price=100.0, timeout_payoff=(0.0, -1.0), walk_payoff=(-1.0, -1.0)),
     "timeout_payoff[retailer]"),
    (dict(proposer="retailer", timeout_payoff=(-100.0, 0.0), walk_payoff=(-100.0, 0.0)),
     "timeout_payoff[supplier]"),
])
def test_bad_arguments_name_the_argument(bad, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        solve_one_sided_pbe(**{**GOOD, **bad})


def test_proposer_error_lists_allowed_values():
    with pytest.raises(ValueError, match=r"proposer must be one of \['supplier', 'retailer'\]"):
        solve_one_sided_pbe(**GOOD, proposer="alternate")


@pytest.mark.parametrize("bad, name", [
    (dict(price_grid=1), "price_grid"),
    (dict(belief_grid=1), "belief_grid"),
    (dict(accept_grid=0), "accept_grid"),
    (dict(prob_high=2.0), "prob_high"),
])
def test_brute_force_bad_arguments(bad, name):
    with pytest.raises(ValueError, match=name):
        brute_force_one_sided(**{**GOOD, **bad})


@pytest.mark.parametrize("args, name", [
    ((100.0, 40.0, 100.0, 0.5, 0.9, 0.9), "cost"),
    ((10.0, 40.0, 30.0, 0.5, 0.9, 0.9), "v_high"),
    ((10.0, 40.0, 100.0, 1.5, 0.9, 0.9), "prob_high"),
    ((10.0, 40.0, 100.0, 0.5, 0.0, 0.9), "discount_seller"),
    ((10.0, 40.0, 100.0, 0.5, 0.9, 1.5), "discount_buyer"),
])
def test_closed_form_bad_arguments(args, name):
    with pytest.raises(ValueError, match=name):
        fudenberg_tirole_two_period(*args)
