"""The exact SPE of the complete-information price x quantity game (eqx_jax.solvers).

Checked three ways: hand-derived closed forms, an independent brute-force backward induction
over a (price, quantity) grid written here in plain NumPy, and properties (hypothesis).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqx_jax.checks import FieldError
from eqx_jax.solvers.price_quantity import END_CODES, solve_pq_spe, spe_pq_batch


def V(q, a, b):
    return a * q - b * q * q / 2


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------


def split_recursion(S, T, factors):
    """Hand derivation when no bound binds: every proposer offers the efficient quantity and
    leaves the responder exactly its continuation value, so it keeps the rest of the surplus S.
    ``factors(t) -> (D_s, D_r, B)``. Returns the round-1 proposal's payoffs and payment split
    (supplier payoff, retailer payoff, the retailer's required gain)."""
    alt = np.array([-5.0, -5.0])  # round T: the timeout (better than walking, -10)
    need = None
    for t in range(T - 1, 0, -1):
        m, r = (0, 1) if t % 2 else (1, 0)
        ds, dr, bonus = factors(t + 1)
        d = (ds, dr)
        if d[r] == 0.0:  # everything pays the bonus: accepted iff bonus >= alt
            assert bonus >= alt[r]
            alt = np.array([bonus, bonus])
            continue
        need = (alt[r] - bonus) / d[r]
        new = np.empty(2)
        new[r] = alt[r]
        new[m] = (S - need) * d[m] + bonus
        alt = new
    return alt, need


def seed_factors(T, bonus=5.0, frac=0.3):
    def f(t):
        d = (1 - t / T) ** 2
        return d, d, bonus if t + 1e-3 < frac * T else 0.0
    return f


def test_seed_founding_case_is_efficient_and_split_by_continuation_values():
    c, a, b, T = 50.0, 160.0, 1.0, 10
    s = solve_pq_spe(c, a, b, T)
    q_star = (a - c) / b
    assert s.outcome == "deal" and s.round == 2
    assert s.quantity == pytest.approx(110.0) and s.efficient_quantity == 110.0
    S = V(q_star, a, b) - c * q_star  # 6050
    (pay_s, pay_r), need = split_recursion(S, T, seed_factors(T))
    assert (pay_s, pay_r) == pytest.approx((2188.0, 1694.0))  # worked out by hand in the docs
    assert (s.supplier_payoff, s.retailer_payoff) == pytest.approx((pay_s, pay_r), rel=1e-12)
    # the retailer is left exactly its required gain: p q = V(q) - need
    assert s.price == pytest.approx((V(q_star, a, b) - need) / q_star, rel=1e-12)
    assert s.efficiency == pytest.approx(1.0)
    assert s.plans[0].binding == ("continuation",)
    assert s.plans[1].value[1] == pytest.approx(1694.0)


def test_discounted_one_and_two_rounds():
    c, a, b = 50.0, 160.0, 1.0
    s1 = solve_pq_spe(c, a, b, 1, reward_model="discounted")
    assert (s1.outcome, s1.round, s1.price, s1.quantity) == ("timeout", 1, None, None)
    assert (s1.supplier_payoff, s1.retailer_payoff) == (-5.0, -5.0)
    d_s, d_r = 0.9, 0.8
    s2 = solve_pq_spe(c, a, b, 2, reward_model="discounted", discount=(d_s, d_r))
    # round 2: the retailer would otherwise time out (-5): it accepts iff gain >= -5 / d_r^2
    need = -5.0 / d_r**2
    assert (s2.outcome, s2.round) == ("deal", 2)
    assert s2.quantity == pytest.approx(110.0)
    assert s2.price == pytest.approx((V(110.0, a, b) - need) / 110.0, rel=1e-12)
    assert s2.supplier_payoff == pytest.approx((V(110.0, a, b) - need - c * 110.0) * d_s**2)
    assert s2.retailer_payoff == pytest.approx(-5.0)


def test_discounted_unequal_discounts_match_split_recursion():
    c, a, b, T, ds, dr = 20.0, 150.0, 0.5, 7, 0.9, 0.6
    s = solve_pq_spe(c, a, b, T, reward_model="discounted", discount=(ds, dr))
    q = min((a - c) / b, 200.0)
    S = V(q, a, b) - c * q
    (pay_s, pay_r), _ = split_recursion(S, T, lambda t: (ds**t, dr**t, 0.0))
    assert s.quantity == pytest.approx(q)
    assert (s.supplier_payoff, s.retailer_payoff) == pytest.approx((pay_s, pay_r), rel=1e-12)


def test_seed_last_round_offer_is_all_or_nothing():
    # T = 2: a deal in round 2 pays D(2) = 0 and no bonus: the retailer accepts anything rather
    # than time out (-5), and the supplier names its favourite offer.
    s = solve_pq_spe(50.0, 160.0, 1.0, 2)
    assert (s.outcome, s.round, s.price, s.quantity) == ("deal", 2, 200.0, 200.0)
    assert (s.supplier_payoff, s.retailer_payoff) == (0.0, 0.0)
    assert s.plans[0].binding == ("any",)


def test_price_cap_binds_and_quantity_carries_the_share():
    c, a, b, T, P = 50.0, 160.0, 1.0, 4, 60.0
    s = solve_pq_spe(c, a, b, T, max_price=P)
    # round 3 (supplier) offers for round 4 (D = 0): accepted, worth 0; round 2 the retailer
    # offers at cost for round 3, keeping S D(3) = 6050 / 16; round 1 the retailer must get
    # that back at D(2) = 1/4: required gain k = 1512.5. The supplier's payment m = min(P q,
    # V(q) - k) - c q rises on the cap branch until the kink P q = V(q) - k.
    k = 6050 / 16 / 0.25
    q_kink = (a - P) + math.sqrt((a - P) ** 2 - 2 * b * k)
    assert (s.outcome, s.round) == ("deal", 2)
    assert s.price == pytest.approx(P) and s.quantity == pytest.approx(q_kink, rel=1e-12)
    assert s.supplier_payoff == pytest.approx((P - c) * q_kink * 0.25, rel=1e-12)
    assert s.retailer_payoff == pytest.approx(k * 0.25, rel=1e-12)
    assert set(s.plans[0].binding) == {"continuation", "price_cap"}
    assert s.quantity > s.efficient_quantity


def test_quantity_cap_binds():
    c, a, b, T, Q = 50.0, 160.0, 1.0, 10, 50.0
    s = solve_pq_spe(c, a, b, T, max_quantity=Q)
    S = V(Q, a, b) - c * Q
    (pay_s, pay_r), _ = split_recursion(S, T, seed_factors(T))
    assert s.quantity == Q and s.efficient_quantity == Q
    assert (s.supplier_payoff, s.retailer_payoff) == pytest.approx((pay_s, pay_r), rel=1e-12)


def test_price_floor_binds_when_the_supplier_accepts_losses():
    # Disagreement is so bad for both (timeout -6000, walk -7000) that the retailer, proposing
    # in round 2, asks for units at price 0 up to the supplier's limit c q = 6000 / d^3.
    c, a, b, d = 50.0, 160.0, 1.0, 0.95
    s = solve_pq_spe(c, a, b, 3, reward_model="discounted", discount=(d, d),
                     timeout_payoff=(-6000.0, -6000.0), walk_payoff=(-7000.0, -7000.0))
    q2 = 6000.0 / d**3 / c
    r2 = s.plans[1]
    assert (r2.kind, r2.price) == ("agreement", 0.0) and r2.quantity == pytest.approx(q2)
    # round 1: the supplier must leave the retailer V(q2) d^3 / d^2; the cheapest way is price 0
    # at the smallest q with V(q) >= k
    k = V(q2, a, b) * d
    q1 = (a - math.sqrt(a * a - 2 * b * k)) / b
    assert (s.outcome, s.round, s.price) == ("deal", 2, 0.0)
    assert s.quantity == pytest.approx(q1, rel=1e-9)
    assert s.supplier_payoff == pytest.approx(-c * q1 * d**2, rel=1e-9)
    assert "price_floor" in s.plans[0].binding


def test_walk_away_when_walking_pays_more():
    # the whole surplus at D(2) is 6050 x 0.64 + 2 x 5 = 3882 < 4000: no deal pays the supplier
    # its walk-away payoff. Walking later pays the same, and an indifferent mover counters, so
    # it delays until a counter is worth less than walking: round 9 (a deal in round 10 pays 0).
    s = solve_pq_spe(50.0, 160.0, 1.0, 10, walk_payoff=(4000.0, -10.0))
    assert (s.outcome, s.price) == ("walk_away", None)
    assert (s.supplier_payoff, s.retailer_payoff) == (4000.0, -10.0)
    assert s.plans[0].kind == "delay" and s.round == 9
    assert "walks away" in s.explanation[-2]
    # when walking is strictly better from the start (a timeout worse than walking, T = 1)
    s1 = solve_pq_spe(50.0, 160.0, 1.0, 1, walk_payoff=(4000.0, -10.0))
    assert (s1.outcome, s1.round) == ("walk_away", 1)


def test_no_gain_possible_gives_zero_quantity_deal():
    # a < c: every unit loses; with a zero disagreement value the retailer needs a gain >= 0,
    # so any q > 0 costs the supplier: it offers q = 0 (indifferent, it prefers agreement).
    s = solve_pq_spe(100.0, 80.0, 1.0, 4, reward_model="discounted",
                     timeout_payoff=(0.0, 0.0))
    assert s.efficient_quantity == 0.0
    assert (s.outcome, s.round, s.quantity) == ("deal", 2, 0.0)
    assert s.supplier_payoff == s.retailer_payoff == 0.0
    assert s.efficiency is None
    # with the seed model's bonus the retailer's continuation is low enough that it accepts a
    # small loss now: the supplier sells a little at the price cap
    s2 = solve_pq_spe(100.0, 80.0, 1.0, 10)
    assert s2.outcome == "deal" and s2.price == pytest.approx(200.0) and s2.quantity > 0.0
    assert s2.retailer_payoff == pytest.approx(s2.plans[1].value[1])


def test_to_dict_and_explanation():
    d = solve_pq_spe(50.0, 160.0, 1.0, 10).to_dict()
    for key in ("price", "quantity", "round", "supplier_payoff", "retailer_payoff", "outcome",
                "plans", "explanation", "efficient_quantity"):
        assert key in d
    assert len(d["plans"]) == 10 and d["plans"][0]["mover"] == "supplier"
    assert d["plans"][0]["offer_accept_rule"].startswith("accepts (p, q) iff 160 q")
    assert d["explanation"][-1].startswith("Outcome: deal at unit price 81.01 for 110.00")


# ---------------------------------------------------------------------------------------------
# Independent brute force on a (p, q) grid
# ---------------------------------------------------------------------------------------------


def brute_force(c, a, b, T, *, model="seed", P=200.0, Q=200.0, bonus=5.0, frac=0.3,
                disc=(0.95, 0.95), walk=(-10.0, -10.0), timeout=(-5.0, -5.0),
                n_p=2001, n_q=801):
    """Backward induction where every counter is one of n_p x n_q grid offers. Returns
    (outcome, round, payoffs (2,))."""
    p, q = np.meshgrid(np.linspace(0, P, n_p), np.linspace(0, Q, n_q), indexing="ij")
    gains = np.stack([((p - c) * q).ravel(), (a * q - b * q * q / 2 - p * q).ravel()])
    walk, timeout, tol = np.array(walk), np.array(timeout), 1e-9

    def factors(t):
        if model == "seed":
            d = (1 - t / T) ** 2
            return d, d, bonus if t + 1e-3 < frac * T else 0.0
        return disc[0] ** t, disc[1] ** t, 0.0

    def mover(t):
        return 0 if t % 2 else 1

    plan = {T: ("walk", walk) if walk[mover(T)] > timeout[mover(T)] + tol
            else ("timeout", timeout)}
    alt = plan[T][1]
    for t in range(T - 1, 0, -1):
        m, r = mover(t), mover(t + 1)
        ds, dr, bb = factors(t + 1)
        pay = np.stack([gains[0] * ds + bb, gains[1] * dr + bb])
        accepted = pay[r] >= alt[r] - tol
        choice = ("delay", alt)
        if accepted.any():
            # the best accepted offer for the mover; among equally good ones, the responder's best
            best = np.max(np.where(accepted, pay[m], -np.inf))
            i = np.argmax(np.where(accepted & (pay[m] >= best - tol), pay[r], -np.inf))
            if accepted.all() or pay[m, i] >= alt[m] - tol:
                choice = ("agree", pay[:, i])
        if walk[m] > choice[1][m] + tol:
            choice = ("walk", walk)
        plan[t] = choice
        alt = choice[1]
    t = 1
    while plan[t][0] == "delay":
        t += 1
    kind, value = plan[t]
    return {"walk": "walk_away", "timeout": "timeout", "agree": "deal"}[kind], \
        t + (kind == "agree"), value


def _settings():
    rng = np.random.default_rng(7)
    out = [
        dict(c=50.0, a=160.0, b=1.0, T=6, model="seed"),
        dict(c=50.0, a=160.0, b=1.0, T=4, model="seed", P=60.0),  # price cap binds
        dict(c=10.0, a=300.0, b=0.8, T=5, model="discounted", Q=60.0),  # quantity cap binds
        dict(c=50.0, a=160.0, b=1.0, T=3, model="discounted",  # price floor binds
             timeout=(-6000.0, -6000.0), walk=(-7000.0, -7000.0)),
        dict(c=50.0, a=160.0, b=1.0, T=5, model="seed", walk=(3000.0, -10.0)),  # walks
        dict(c=40.0, a=150.0, b=1.0, T=6, model="discounted", walk=(-10.0, 2500.0)),
        dict(c=100.0, a=160.0, b=1.0, T=5, model="seed", P=100.0),  # c = max_price: ties
        dict(c=30.0, a=100.0, b=0.05, T=6, model="discounted", disc=(1.0, 0.5)),
    ]
    for k in range(8):
        P, Q = float(rng.choice([200, 60, 120])), float(rng.choice([200, 50, 120]))
        c = float(rng.uniform(0, min(P, 80)))
        out.append(dict(c=c, a=float(rng.uniform(c, 300)), b=float(rng.uniform(0.5, 2)),
                        T=int(rng.integers(1, 7)), model=("seed", "discounted")[k % 2], P=P, Q=Q,
                        walk=(float(rng.choice([-10.0, 300.0])), -10.0), disc=(0.9, 0.8)))
    return out


@pytest.mark.parametrize("case", _settings())
def test_spe_matches_brute_force(case):
    case = {"P": 200.0, "Q": 200.0, "walk": (-10.0, -10.0), "timeout": (-5.0, -5.0),
            "disc": (0.95, 0.95), **case}
    c, a, b, T, P, Q = (case[k] for k in ("c", "a", "b", "T", "P", "Q"))
    n_p, n_q = 2001, 801
    outcome, rnd, pay = brute_force(c, a, b, T, model=case["model"], P=P, Q=Q,
                                    disc=case["disc"], walk=case["walk"],
                                    timeout=case["timeout"], n_p=n_p, n_q=n_q)
    s = solve_pq_spe(c, a, b, T, reward_model=case["model"], max_price=P, max_quantity=Q,
                     discount=case["disc"], walk_payoff=case["walk"],
                     timeout_payoff=case["timeout"])
    assert (s.outcome, s.round) == (outcome, rnd)
    # Grid resolution: per round the best grid offer loses at most dp Q (price step at any
    # quantity) plus dq/2 times the slope of the proposer's value in q (<= max(P, a) + c);
    # the losses add up over the rounds.
    dp, dq = P / (n_p - 1), Q / (n_q - 1)
    bound = T * (dp * Q + dq / 2 * (max(P, a) + c))
    np.testing.assert_allclose([s.supplier_payoff, s.retailer_payoff], pay, rtol=0, atol=bound)


# ---------------------------------------------------------------------------------------------
# The batch, the properties, the input checks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["seed", "discounted"])
def test_batch_equals_single_solves(model):
    rng = np.random.default_rng(3)
    n = 40
    c = rng.uniform(0, 120, n)
    a = rng.uniform(0, 400, n)
    b = rng.uniform(0.2, 3, n)
    kw = dict(reward_model=model, max_price=120.0, max_quantity=150.0, discount=(0.9, 0.85),
              walk_payoff=(20.0, -10.0))
    out = spe_pq_batch(c, a, b, 6, **kw)
    for i in range(n):
        s = solve_pq_spe(float(c[i]), float(a[i]), float(b[i]), 6, **kw)
        assert out["end"][i] == END_CODES[s.outcome] and out["round"][i] == s.round
        assert out["supplier_payoff"][i] == s.supplier_payoff
        assert out["retailer_payoff"][i] == s.retailer_payoff
        if s.outcome == "deal":
            assert (out["price"][i], out["quantity"][i]) == (s.price, s.quantity)
        else:
            assert np.isnan(out["price"][i]) and np.isnan(out["quantity"][i])
        assert out["efficient_quantity"][i] == s.efficient_quantity
    assert set(out["end"].tolist()) >= {0}
    assert out["price"].shape == (n,)


def test_batch_broadcasts_a_scalar_slope():
    out = spe_pq_batch(np.array([[50.0, 40.0]]), np.array([[160.0], [150.0]]), 1.0, 10)
    assert out["quantity"].shape == (2, 2)
    assert out["quantity"][0, 0] == pytest.approx(110.0)


@settings(max_examples=60, deadline=None)
@given(c=st.floats(0, 100), a=st.floats(0, 500), b=st.floats(0.05, 5), T=st.integers(1, 8),
       model=st.sampled_from(["seed", "discounted"]), P=st.floats(100, 300),
       Q=st.floats(10, 300), ds=st.floats(0.5, 1), dr=st.floats(0.5, 1),
       walk_s=st.sampled_from([-10.0, 0.0, 50.0, 2000.0]))
def test_properties(c, a, b, T, model, P, Q, ds, dr, walk_s):
    s = solve_pq_spe(c, a, b, T, reward_model=model, max_price=P, max_quantity=Q,
                     discount=(ds, dr), walk_payoff=(walk_s, -10.0))
    q_star = min(max((a - c) / b, 0.0), Q)
    assert s.efficient_quantity == pytest.approx(q_star)
    tol = 1e-7 * max(1.0, P * Q, a * Q)
    for pl in s.plans:
        i = 0 if pl.mover == "supplier" else 1
        # a mover never walks from a better counter, and never counters into a worse one
        assert pl.value[i] >= max(pl.walk_value[i], pl.counter_value[i]) - tol
        if pl.kind != "agreement" or pl.offer_accept_gain is None:
            continue
        # the responder is never offered less than its required gain (its continuation value)
        p, q = pl.price, pl.quantity
        gain_r = (p - c) * q if i == 1 else a * q - b * q * q / 2 - p * q
        assert gain_r >= pl.offer_accept_gain - tol
        assert 0.0 <= p <= P and 0.0 <= q <= Q
        # no price bound binds: the proposer offers the efficient quantity
        if pl.binding == ("continuation",):
            assert q == pytest.approx(q_star, rel=1e-6, abs=1e-6)
    assert s.supplier_payoff >= min(walk_s, -10.0, -5.0) - tol  # round 1: never below walking
    if s.outcome == "deal":
        assert s.efficiency is None or s.efficiency <= 1.0 + 1e-9


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(unit_cost=250.0), "unit_cost"),
    (dict(unit_cost=-1.0), "unit_cost"),
    (dict(unit_cost=float("nan")), "unit_cost"),
    (dict(demand_intercept=2001.0), "demand_intercept"),
    (dict(demand_slope=0.0), "demand_slope"),
    (dict(max_rounds=0), "max_rounds"),
    (dict(max_rounds=2.5), "max_rounds"),
    (dict(max_price=0.0), "max_price"),
    (dict(max_quantity=-5.0), "max_quantity"),
    (dict(reward_model="nash"), "reward_model"),
    (dict(discount=(0.0, 0.9)), "discount[supplier]"),
    (dict(discount=(0.9,)), "discount"),
    (dict(walk_payoff=(0.0, float("inf"))), "walk_payoff[retailer]"),
    (dict(bonus_fraction=1.5), "bonus_fraction"),
])
def test_bad_input_names_the_field(kwargs, field):
    args = dict(unit_cost=50.0, demand_intercept=160.0, demand_slope=1.0, max_rounds=10)
    args.update(kwargs)
    with pytest.raises(FieldError) as e:
        solve_pq_spe(args.pop("unit_cost"), args.pop("demand_intercept"),
                     args.pop("demand_slope"), args.pop("max_rounds"), **args)
    assert e.value.field == field
    assert str(e.value).startswith(f"{field} must be")


def test_batch_bad_entry_names_the_field_and_range():
    with pytest.raises(ValueError, match=r"demand_intercept must be in \[0, 2000\], got 2500"):
        spe_pq_batch([50.0, 50.0], [160.0, 2500.0], 1.0, 10)
    with pytest.raises(ValueError, match=r"unit_cost must be in \[0, 100\]"):
        spe_pq_batch([150.0], [160.0], 1.0, 10, max_price=100.0)
