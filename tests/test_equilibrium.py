"""Tests for eqx_jax.equilibrium: hand-derived SPEs, a brute-force differential test, and the
incomplete-information reference values (Chatterjee-Samuelson, Myerson-Satterthwaite).

Notation: V_s / V_r valuations, T = max_rounds, D(t) = (1 - t/T)^2 and B(t) the seed model's
discount and speed bonus; alt_t = (supplier, retailer) payoffs when the mover of round t does not
accept. Prices are currency units, payoffs reward units.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eqx_jax.equilibrium import (
    chatterjee_samuelson,
    myerson_satterthwaite,
    solve_spe,
    spe_price_batch,
)

# --------------------------------------------------------------------------------------------
# Hand-derived SPEs
# --------------------------------------------------------------------------------------------


def test_one_round_game_times_out():
    # T = 1: the supplier moves in round 1, there is no standing offer, so it can only counter
    # (which ends the game: timeout -5) or walk (-10). -5 > -10: it counters -> timeout.
    s = solve_spe(5000, 8000, 1)
    assert (s.outcome, s.end, s.round, s.price) == ("no_agreement", "timeout", 1, None)
    assert (s.supplier_payoff, s.retailer_payoff) == (-5.0, -5.0)
    # If walking pays more than the timeout for the supplier, it walks.
    s = solve_spe(5000, 8000, 1, walk_payoff=(-1.0, -10.0))
    assert (s.end, s.round, s.supplier_payoff, s.retailer_payoff) == ("walk_away", 1, -1.0, -10.0)
    # Tie (walk == timeout): the mover counters, i.e. the game times out.
    assert solve_spe(5000, 8000, 1, walk_payoff=(-5.0, -5.0)).end == "timeout"


def test_two_round_seed_game():
    # T = 2, seed: alt_2 = retailer's best of walk (-10) and counter -> timeout (-5) = (-5, -5).
    # Round 2 = T: D(2) = 0 and B(2) = 0 (2 < 0.3 * 2 is false), so a deal pays (0, 0) at any
    # price, and 0 >= -5: the retailer accepts every price. The supplier's payoff is 0 whatever it
    # asks, so by the price tie-break it asks max_price. Deal at 10000 in round 2, payoffs (0, 0).
    s = solve_spe(5000, 8000, 2)
    assert (s.outcome, s.end, s.round, s.price) == ("agreement", "deal", 2, 10000.0)
    assert (s.supplier_payoff, s.retailer_payoff) == (0.0, 0.0)
    assert s.rounds[0].offer_accept_range == (0.0, 10000.0)
    # If the timeout pays the retailer more than a round-T deal (0), no price is acceptable:
    # the supplier's counter is rejected and the retailer times the game out.
    s = solve_spe(5000, 8000, 2, timeout_payoff=(-5.0, 1.0))
    assert (s.end, s.round, s.supplier_payoff, s.retailer_payoff) == ("timeout", 2, -5.0, 1.0)


def test_two_round_discounted_game():
    # T = 2, discounted, delta = 0.95: alt_2 = (-5, -5) (timeout beats walking). Round 1: the
    # retailer accepts q in round 2 iff (8000 - q) 0.95^2 >= -5 <=> q <= 8000 + 5 / 0.9025.
    # The supplier asks exactly that: supplier 3000 * 0.9025 + 5 = 2712.5, retailer -5.
    s = solve_spe(5000, 8000, 2, reward_model="discounted")
    assert s.end == "deal" and s.round == 2
    assert s.price == pytest.approx(8000 + 5 / 0.9025, abs=1e-9)
    assert s.supplier_payoff == pytest.approx(2712.5, abs=1e-9)
    assert s.retailer_payoff == pytest.approx(-5.0, abs=1e-9)


def test_default_seed_game_by_hand():
    # V_s = 5000, V_r = 8000, T = 10, seed: D(t) = (1 - t/10)^2, B(t) = 5 for t in {1, 2}.
    # Backward (round: mover's counter price, alt_t = (supplier, retailer)):
    #  10 R: timeout -5 beats walk -10                      alt = (-5, -5)
    #   9 S: round-10 deal pays 0 >= -5, any price: asks 10000   alt = (0, 0)
    #        S accepts q in 9 iff (q - 5000) 0.01 >= 0 <=> q >= 5000
    #   8 R: offers 5000, retailer gets 3000 * 0.01 = 30      alt = (0, 30)
    #        R accepts q in 8 iff (8000 - q) 0.04 >= 30 <=> q <= 7250
    #   7 S: asks 7250, supplier gets 2250 * 0.04 = 90        alt = (90, 30)
    #        S accepts in 7 iff (q - 5000) 0.09 >= 90 <=> q >= 6000
    #   6 R: offers 6000, retailer gets 2000 * 0.09 = 180     alt = (90, 180)
    #        R accepts in 6 iff (8000 - q) 0.16 >= 180 <=> q <= 6875
    #   5 S: asks 6875, supplier gets 1875 * 0.16 = 300       alt = (300, 180)
    #        S accepts in 5 iff (q - 5000) 0.25 >= 300 <=> q >= 6200
    #   4 R: offers 6200, retailer gets 1800 * 0.25 = 450     alt = (300, 450)
    #        R accepts in 4 iff (8000 - q) 0.36 >= 450 <=> q <= 6750
    #   3 S: asks 6750, supplier gets 1750 * 0.36 = 630       alt = (630, 450)
    #        S accepts in 3 iff (q - 5000) 0.49 >= 630 <=> q >= 5000 + 9000/7
    #   2 R: offers 5000 + 9000/7, retailer gets (3000 - 9000/7) 0.49 = 840   alt = (630, 840)
    #        R accepts in 2 iff (8000 - q) 0.64 + 5 >= 840 <=> q <= 8000 - 835/0.64 = 6695.3125
    #   1 S: asks 6695.3125, supplier gets 1695.3125 * 0.64 + 5 = 1090 > -10.
    # Path: deal at 6695.3125 in round 2, payoffs (1090, 840).
    s = solve_spe(5000, 8000, 10)
    assert (s.outcome, s.end, s.round) == ("agreement", "deal", 2)
    assert s.price == pytest.approx(6695.3125, abs=1e-9)
    assert s.supplier_payoff == pytest.approx(1090.0, abs=1e-9)
    assert s.retailer_payoff == pytest.approx(840.0, abs=1e-9)
    planned = [r.price for r in s.rounds]
    expected = [6695.3125, 5000 + 9000 / 7, 6750, 6200, 6875, 6000, 7250, 5000, 10000, 0.0]
    assert planned == pytest.approx(expected, abs=1e-9)
    assert [r.mover for r in s.rounds[:2]] == ["supplier", "retailer"]
    assert [r.kind for r in s.rounds] == ["agreement"] * 9 + ["timeout"]
    assert s.rounds[9].value == (-5.0, -5.0)
    assert s.rounds[1].accept_range == pytest.approx((0.0, 6695.3125), abs=1e-9)
    assert [r.on_path for r in s.rounds] == [True, True] + [False] * 8
    assert s.explanation[1].startswith("Round 1: the supplier proposes 6695.31, the highest price")
    # The speed bonus shifts the round-2 threshold by B/D(2) = 5/0.64: without it the supplier
    # asks 8000 - 840/0.64 = 6687.5 and gets 1687.5 * 0.64 = 1080.
    s0 = solve_spe(5000, 8000, 10, speed_bonus=0.0)
    assert s0.price == pytest.approx(6687.5, abs=1e-9)
    assert s0.supplier_payoff == pytest.approx(1080.0, abs=1e-9)
    assert s0.retailer_payoff == pytest.approx(840.0, abs=1e-9)


def test_no_gains_from_trade():
    # V_s = 8000 > V_r = 5000, seed, T = 10. Round 9: the supplier asks 10000 and the retailer
    # accepts in round 10 (D(10) = 0: a deal pays 0 > -5). Every earlier acceptable offer would
    # cost its proposer (no surplus, and no bonus outweighs a 3000 gap), so every earlier
    # proposer prefers a rejected offer and waits: alt_t = (0, 0). Artefact of the seed model:
    # a deal in round T at max_price paying (0, 0).
    s = solve_spe(8000, 5000, 10)
    assert (s.outcome, s.end, s.round, s.price) == ("agreement", "deal", 10, 10000.0)
    assert (s.supplier_payoff, s.retailer_payoff) == (0.0, 0.0)
    assert [r.kind for r in s.rounds[:8]] == ["delay"] * 8
    assert [r.price for r in s.rounds[:4]] == [10000.0, 0.0, 10000.0, 0.0]
    # Discounted: a deal never beats waiting for the timeout (-5 each), so the game times out.
    s = solve_spe(8000, 5000, 10, reward_model="discounted")
    assert (s.outcome, s.end, s.round, s.price) == ("no_agreement", "timeout", 10, None)
    assert (s.supplier_payoff, s.retailer_payoff) == (-5.0, -5.0)
    # If walking pays more than the timeout, the last mover walks; earlier movers are indifferent
    # between walking now and waiting (-1 either way) and, by the tie-break, counter.
    s = solve_spe(8000, 5000, 10, reward_model="discounted", walk_payoff=(-1.0, -1.0))
    assert (s.end, s.round, s.supplier_payoff, s.retailer_payoff) == ("walk_away", 10, -1, -1)


def _rubinstein_share(k: int, d_s: float, d_r: float) -> float:
    """Share of the pie the *supplier* gets when it proposes with k proposals left (accepted
    proposals in rounds ..., T - 1), finite-horizon alternating offers with disagreement 0:
    x_1 = y_1 = 1 (the last responder gets 0 and accepts), x_k = 1 - d_r y_{k-1},
    y_k = 1 - d_s x_{k-1} (y: the retailer's share when it proposes)."""
    x = y = 1.0
    for _ in range(k - 1):
        x, y = 1.0 - d_r * y, 1.0 - d_s * x
    return x


@pytest.mark.parametrize("T", [2, 3, 4, 7, 10])
@pytest.mark.parametrize("disc", [(0.95, 0.95), (0.9, 0.8), (0.7, 0.99)])
def test_discounted_matches_finite_horizon_rubinstein(T, disc):
    # With walk = timeout = 0 the discounted game is finite-horizon Rubinstein bargaining over the
    # pie S = V_r - V_s: the supplier proposes in round 1 with T - 1 proposals left, the deal is
    # accepted in round 2 (payoffs discounted twice). The responder's value of rejecting is its own
    # share as next proposer, one round later: 1 - x_k = d_r y_{k-1}.
    vs, vr = 2000.0, 7000.0
    s = solve_spe(vs, vr, T, reward_model="discounted", discount=disc,
                  walk_payoff=(0.0, 0.0), timeout_payoff=(0.0, 0.0))
    x = _rubinstein_share(T - 1, *disc)
    assert (s.end, s.round) == ("deal", 2)
    assert s.price == pytest.approx(vs + x * (vr - vs), abs=1e-7)
    assert s.supplier_payoff == pytest.approx(x * (vr - vs) * disc[0] ** 2, abs=1e-7)
    assert s.retailer_payoff == pytest.approx((1 - x) * (vr - vs) * disc[1] ** 2, abs=1e-7)


def test_long_discounted_game_converges_to_rubinstein():
    d_s, d_r = 0.9, 0.8
    s = solve_spe(0.0, 1000.0, 401, reward_model="discounted", discount=(d_s, d_r),
                  walk_payoff=(0.0, 0.0), timeout_payoff=(0.0, 0.0))
    assert s.price == pytest.approx(1000.0 * (1 - d_r) / (1 - d_s * d_r), abs=1e-6)


def test_speed_bonus_discontinuity():
    # V_s = 5010 > V_r = 5000 (no gains from trade), seed, T = 10. From round 3 on, no deal pays
    # both at least their alternative (0), so alt_2 = (0, 0) (see test_no_gains_from_trade).
    # In round 2 the bonus B(2) = 5 applies (2 < 0.3 * 10): the retailer accepts q iff
    # (5000 - q) 0.64 + 5 >= 0 <=> q <= 5007.8125; the supplier then gets
    # (5007.8125 - 5010) 0.64 + 5 = 3.6 > 0, so it proposes that: deal in round 2.
    s = solve_spe(5010, 5000, 10)
    assert (s.end, s.round) == ("deal", 2)
    assert s.price == pytest.approx(5007.8125, abs=1e-9)
    assert s.supplier_payoff == pytest.approx(3.6, abs=1e-9)
    assert s.retailer_payoff == pytest.approx(0.0, abs=1e-9)
    # With bonus_fraction = 0.2 the bonus stops *before* round 2 (2 < 0.2 * 10 is false): the
    # deal jumps to round 10 at max_price, payoffs (0, 0).
    s = solve_spe(5010, 5000, 10, bonus_fraction=0.2)
    assert (s.end, s.round, s.price, s.supplier_payoff, s.retailer_payoff) == (
        "deal", 10, 10000.0, 0.0, 0.0)
    # bonus_fraction * T is compared exactly on the decimal value: 0.55 * 100 = 55 (in float64
    # it is 55.00000000000001), so round 55 gets no bonus, as with bonus_fraction 0.549; with
    # 0.5501 it does, which changes every threshold before round 55.
    def plans(bf):
        return [r.value for r in solve_spe(5000, 8000, 100, bonus_fraction=bf).rounds]
    assert plans(0.55) == plans(0.549)
    assert plans(0.55) != plans(0.5501)


def test_prices_clip_at_max_price_and_zero():
    # Clip at max_price: discounted, T = 2, V_r = 9998. The retailer accepts q in round 2 iff
    # (9998 - q) 0.9025 >= -5 <=> q <= 10003.54 > 10000, so every price is acceptable and the
    # supplier asks 10000: payoffs (5000 * 0.9025, -2 * 0.9025).
    s = solve_spe(5000, 9998, 2, reward_model="discounted")
    assert (s.end, s.round, s.price) == ("deal", 2, 10000.0)
    assert s.supplier_payoff == pytest.approx(4512.5, abs=1e-9)
    assert s.retailer_payoff == pytest.approx(-1.805, abs=1e-9)
    assert s.rounds[0].delay_value is None  # no price is rejected
    # Clip at 0: discounted, T = 3, V_s = 1, V_r = 8000. alt_3 = (-5, -5). Round 2: the supplier
    # accepts q in round 3 iff (q - 1) 0.95^3 >= -5 <=> q >= 1 - 5.83 < 0: the retailer offers 0
    # and gets 8000 * 0.95^3 = 6859 (supplier -0.857375). Round 1: the retailer accepts q iff
    # (8000 - q) 0.9025 >= 6859 <=> q <= 400; the supplier gets 399 * 0.9025 = 360.0975.
    s = solve_spe(1, 8000, 3, reward_model="discounted")
    assert s.rounds[1].price == 0.0 and s.rounds[1].threshold == 0.0
    assert s.rounds[1].value == pytest.approx((-0.857375, 6859.0), abs=1e-9)
    assert (s.end, s.round) == ("deal", 2)
    assert s.price == pytest.approx(400.0, abs=1e-9)
    assert s.supplier_payoff == pytest.approx(360.0975, abs=1e-9)
    assert s.retailer_payoff == pytest.approx(6859.0, abs=1e-9)


def test_to_dict_is_json_and_has_keys():
    for vs, vr, model in [(5000, 8000, "seed"), (8000, 5000, "discounted")]:
        d = solve_spe(vs, vr, 10, reward_model=model).to_dict()
        assert set(d) == {"price", "round", "supplier_payoff", "retailer_payoff", "outcome",
                          "end", "explanation", "rounds"}
        text = json.dumps(d, allow_nan=False)
        assert json.loads(text)["round"] == d["round"]
        assert len(d["rounds"]) == 10 and all(isinstance(x, str) for x in d["explanation"])
    assert solve_spe(8000, 5000, 10, reward_model="discounted").to_dict()["price"] is None


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_rounds": 0}, "max_rounds"),
        ({"max_rounds": 2.5}, "max_rounds"),
        ({"max_rounds": True}, "max_rounds"),
        ({"supplier_value": -1.0}, "supplier_value"),
        ({"retailer_value": float("nan")}, "retailer_value"),
        ({"retailer_value": 10000.5}, "retailer_value"),
        ({"reward_model": "rubinstein"}, "reward_model"),
        ({"discount": (0.0, 0.9)}, "discount[supplier]"),
        ({"discount": (0.9, 1.1)}, "discount[retailer]"),
        ({"discount": (0.9,)}, "discount"),
        ({"bonus_fraction": 1.5}, "bonus_fraction"),
        ({"max_price": 0.0}, "max_price"),
        ({"walk_payoff": (float("inf"), 0.0)}, "walk_payoff[supplier]"),
    ],
)
def test_invalid_inputs(kwargs, name):
    args = {"supplier_value": 5000.0, "retailer_value": 8000.0, **kwargs}
    with pytest.raises(ValueError, match=name.replace("[", r"\[")):
        solve_spe(**args)


def test_batch_matches_scalar():
    rng = np.random.default_rng(0)
    vs, vr = rng.uniform(0, 10000, 60), rng.uniform(0, 10000, 60)
    for model in ("seed", "discounted"):
        for T in (1, 2, 5, 10):
            b = spe_price_batch(vs, vr, T, reward_model=model, discount=(0.9, 0.97))
            for i in range(len(vs)):
                s = solve_spe(vs[i], vr[i], T, reward_model=model, discount=(0.9, 0.97))
                assert b["round"][i] == s.round and b["agreement"][i] == (s.end == "deal")
                assert b["supplier_payoff"][i] == s.supplier_payoff
                assert b["retailer_payoff"][i] == s.retailer_payoff
                if s.price is None:
                    assert np.isnan(b["price"][i])
                else:
                    assert b["price"][i] == s.price
    grid = spe_price_batch(np.full((3, 1), 5000.0), np.array([[6000.0, 7000.0, 8000.0]]))
    assert grid["price"].shape == (3, 3)
    assert grid["price"][0, 2] == pytest.approx(6695.3125)
    with pytest.raises(ValueError, match="retailer_values"):
        spe_price_batch([1.0], [np.inf])


# --------------------------------------------------------------------------------------------
# Differential test: brute-force backward induction on a price grid
# --------------------------------------------------------------------------------------------


def _rewards(q, t, vs, vr, T, model, bonus, bf_num, disc):
    """Deal payoffs (R_s, R_r) at price(s) q in round t. bf = bf_num / 20 is compared in integer
    arithmetic (t < bf T <=> 20 t < bf_num T), independently of the module's implementation."""
    if model == "seed":
        d_s = d_r = (1.0 - t / T) ** 2
        b = bonus if 20 * t < bf_num * T else 0.0
    else:
        d_s, d_r, b = disc[0] ** t, disc[1] ** t, 0.0
    return (q - vs) * d_s + b, (vr - q) * d_r + b


def _brute_force(vs, vr, T, model, P, step, bonus, bf_num, disc, walk, timeout):
    """Backward induction over (round, standing offer on the grid), same tie-breaking rules.

    For each round t >= 2 and each grid price q as standing offer: the mover accepts iff
    R_mover(q, t) >= its value of not accepting; the latter is the better of walking and its best
    counter over *all* grid prices (ties: agreement first, then the mover's favourite price;
    counter rather than walk when indifferent).
    """
    grid = np.linspace(0.0, P, int(round(P / step)) + 1)
    walk, timeout = np.asarray(walk, float), np.asarray(timeout, float)
    plan = {}
    nxt_val = nxt_acc = None  # (2, N) payoffs and acceptance if round t+1 opens with grid[k]
    for t in range(T, 0, -1):
        m = 0 if t % 2 else 1
        if t == T:
            cval, cprice = timeout, (P if m == 0 else 0.0)
        else:
            key = nxt_val[m]
            cand = key == key.max()
            if np.any(cand & nxt_acc):
                cand &= nxt_acc
            idx = np.flatnonzero(cand)
            k = idx[-1] if m == 0 else idx[0]
            cval, cprice = nxt_val[:, k], grid[k]
        walks = walk[m] > cval[m]
        alt = walk if walks else cval
        plan[t] = (walks, cprice, alt)
        if t >= 2:
            rq = np.stack(_rewards(grid, t, vs, vr, T, model, bonus, bf_num, disc))
            nxt_acc = rq[m] >= alt[m]
            nxt_val = np.where(nxt_acc, rq, alt[:, None])
    standing = None
    for t in range(1, T + 1):
        m = 0 if t % 2 else 1
        walks, cprice, alt = plan[t]
        if standing is not None:
            rq = _rewards(standing, t, vs, vr, T, model, bonus, bf_num, disc)
            if rq[m] >= alt[m]:
                return "deal", standing, t, rq
        if walks:
            return "walk_away", None, t, tuple(walk)
        if t == T:
            return "timeout", None, t, tuple(timeout)
        standing = cprice
    raise AssertionError("unreachable")


def _min_margin(s, vs, vr, T, model, P, bonus, bf_num, disc):
    """Smallest payoff gap between a mover's options anywhere in the equilibrium strategy:
    a grid solution may resolve decisions with a smaller gap differently."""
    gaps = [math.inf]
    for p in s.rounds:
        i = 0 if p.mover == "supplier" else 1
        gaps.append(abs(p.walk_value[i] - p.counter_value[i]))
        if p.agree_value is not None and p.delay_value is not None:
            gaps.append(abs(p.agree_value[i] - p.delay_value[i]))
        if p.round < T:  # is the responder close to accepting everything / nothing?
            j, nxt = 1 - i, s.rounds[p.round]
            for q in (0.0, P):
                gaps.append(abs(_rewards(q, p.round + 1, vs, vr, T, model, bonus, bf_num,
                                         disc)[j] - nxt.value[j]))
    return min(gaps)


@pytest.mark.parametrize("model", ["seed", "discounted"])
def test_differential_against_grid_brute_force(model):
    rng = np.random.default_rng(12345 if model == "seed" else 54321)
    P, step = 1000.0, 0.25
    compared = near_ties = 0
    for T in (1, 2, 3, 4, 5, 10):
        for _ in range(30):
            vs, vr = rng.uniform(0, P, 2)
            if rng.random() < 0.3:  # many gains-from-trade cases too
                vs, vr = min(vs, vr), max(vs, vr)
            disc = tuple(rng.uniform(0.8, 1.0, 2))
            walk = tuple(rng.uniform(-50, 20, 2))
            timeout = tuple(rng.uniform(-50, 20, 2))
            bonus, bf_num = rng.uniform(0, 50), int(rng.integers(0, 21))
            kw = dict(reward_model=model, max_price=P, speed_bonus=bonus,
                      bonus_fraction=bf_num / 20, discount=disc, walk_payoff=walk,
                      timeout_payoff=timeout)
            s = solve_spe(vs, vr, T, **kw)
            end, price, rnd, pay = _brute_force(vs, vr, T, model, P, step, bonus, bf_num, disc,
                                                walk, timeout)
            # Grid errors accumulate over rounds and are amplified by ratios of discount factors.
            kappa = (max(disc) / min(disc)) ** T if model == "discounted" else 1.0
            tol_p = step * (T + 1) * kappa
            tol_v = step * (T + 1) * kappa
            same = (end == s.end and rnd == s.round
                    and abs(pay[0] - s.supplier_payoff) <= tol_v
                    and abs(pay[1] - s.retailer_payoff) <= tol_v
                    and (price is None) == (s.price is None)
                    and (price is None or abs(price - s.price) <= tol_p))
            if not same:
                # Only allowed where the exact solution has a decision the grid cannot resolve.
                margin = _min_margin(s, vs, vr, T, model, P, bonus, bf_num, disc)
                assert margin < 2 * tol_v, (T, vs, vr, kw, s.to_dict(), (end, price, rnd, pay))
                near_ties += 1
            compared += 1
    assert compared == 180 and near_ties <= 3


def test_differential_default_scale_spot_checks():
    # Full-size game (max_price 10000, step 1) for a few valuation pairs and both models.
    for model in ("seed", "discounted"):
        for vs, vr, T in [(5000, 8000, 10), (4321.5, 8765.25, 7), (6000, 5000, 5),
                          (0, 10000, 4)]:
            s = solve_spe(vs, vr, T, reward_model=model)
            end, price, rnd, pay = _brute_force(vs, vr, T, model, 10000.0, 1.0, 5.0, 6,
                                                (0.95, 0.95), (-10, -10), (-5, -5))
            assert (end, rnd) == (s.end, s.round)
            assert (price is None) == (s.price is None)
            if price is not None:
                assert abs(price - s.price) <= 1.0 * (T + 1)
            assert pay[0] == pytest.approx(s.supplier_payoff, abs=T + 1)
            assert pay[1] == pytest.approx(s.retailer_payoff, abs=T + 1)


# --------------------------------------------------------------------------------------------
# Chatterjee-Samuelson and Myerson-Satterthwaite
# --------------------------------------------------------------------------------------------


def test_uniform_01_reference_values():
    cs = chatterjee_samuelson(0.0, 1.0, 0.0, 1.0)
    assert cs["valid"] and cs["equilibrium"] == "linear"
    assert cs["buyer_slope"] == pytest.approx(2 / 3) and cs["seller_slope"] == pytest.approx(2 / 3)
    assert cs["buyer_intercept"] == pytest.approx(1 / 12)
    assert cs["seller_intercept"] == pytest.approx(1 / 4)
    assert cs["trade_threshold"] == pytest.approx(1 / 4)
    assert cs["gains"] == pytest.approx(9 / 64, abs=1e-14)
    assert cs["first_best_gains"] == pytest.approx(1 / 6, abs=1e-14)
    assert cs["ratio"] == pytest.approx(27 / 32, abs=1e-13)
    ms = myerson_satterthwaite(0.0, 1.0, 0.0, 1.0)
    assert ms["g"] == pytest.approx(0.25, rel=1e-12)
    assert ms["second_best_gains"] == pytest.approx(9 / 64, rel=1e-12)
    assert ms["first_best_gains"] == pytest.approx(1 / 6, rel=1e-14)
    assert ms["ratio"] == pytest.approx(27 / 32, rel=1e-12)
    assert ms["trade_probability"] == pytest.approx(9 / 32, rel=1e-12)
    assert not ms["first_best_feasible"]


def test_translation_and_scale_invariance():
    # Shifting all supports by x and scaling by a multiplies gains by a and keeps the ratio.
    base = myerson_satterthwaite(0.0, 1.0, 0.0, 1.0)
    ms = myerson_satterthwaite(4000.0, 6000.0, 4000.0, 6000.0)
    assert ms["g"] == pytest.approx(500.0, rel=1e-12)
    assert ms["second_best_gains"] == pytest.approx(2000 * 9 / 64, rel=1e-12)
    assert ms["ratio"] == pytest.approx(base["ratio"], rel=1e-12)


def _mc(a_s, b_s, a_b, b_b, n=1_000_000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(a_s, b_s, n), rng.uniform(a_b, b_b, n)


@pytest.mark.parametrize("supports", [
    (4000.0, 6000.0, 5000.0, 9000.0),  # overlapping, different widths (linear eq. invalid)
    (0.0, 1.0, 0.2, 1.1),  # overlapping, linear eq. valid
    (0.0, 1.0, 0.25, 0.75),  # buyer support nested in the seller's
    (3.0, 5.0, 0.0, 10.0),  # seller support nested in the buyer's
])
def test_monte_carlo(supports):
    a_s, b_s, a_b, b_b = supports
    c, v = _mc(*supports)
    width = b_b - a_s
    cs, ms = chatterjee_samuelson(*supports), myerson_satterthwaite(*supports)
    fb = np.mean(np.maximum(v - c, 0.0))
    assert ms["first_best_gains"] == pytest.approx(fb, abs=3e-3 * width)
    assert cs["first_best_gains"] == pytest.approx(fb, abs=3e-3 * width)
    # Linear strategies: simulate the bids themselves, not the threshold formula.
    trade = (cs["buyer_intercept"] + cs["buyer_slope"] * v
             >= cs["seller_intercept"] + cs["seller_slope"] * c)
    assert cs["linear_gains"] == pytest.approx(np.mean((v - c) * trade), abs=3e-3 * width)
    assert cs["linear_trade_probability"] == pytest.approx(trade.mean(), abs=3e-3)
    # Second best: gains of the trade rule, and the expected virtual surplus is ~0 at g > 0.
    g = ms["g"]
    ms_trade = v - c >= g
    assert ms["second_best_gains"] == pytest.approx(np.mean((v - c) * ms_trade), abs=3e-3 * width)
    if g > 0:
        virtual = np.mean(((2 * v - b_b) - (2 * c - a_s)) * ms_trade)
        assert abs(virtual) < 1e-2 * width
        assert abs(ms["virtual_surplus_at_g"]) < 1e-9 * width
    assert ms["second_best_gains"] >= cs["linear_gains"] - 1e-9 * width


def _buyer_payoff(v, bids, lo, hi):
    """Buyer's expected payoff of each bid against asks ~ U[lo, hi] at the k = 1/2 price."""
    m = np.clip(bids, lo, hi)
    prob = (m - lo) / (hi - lo)
    return prob * (v - bids / 2) - (m * m - lo * lo) / (4 * (hi - lo))


def _seller_payoff(c, asks, lo, hi):
    """Seller's expected payoff of each ask against bids ~ U[lo, hi] at the k = 1/2 price."""
    m = np.clip(asks, lo, hi)
    prob = (hi - m) / (hi - lo)
    return prob * (asks / 2 - c) + (hi * hi - m * m) / (4 * (hi - lo))


def _linear_is_best_response(a_s, b_s, a_b, b_b, n_types=41, n_bids=4001):
    """Largest gain any type could get by deviating from the linear strategy (grid search)."""
    cs = chatterjee_samuelson(a_s, b_s, a_b, b_b)
    pb = lambda v: cs["buyer_intercept"] + cs["buyer_slope"] * v
    ps = lambda c: cs["seller_intercept"] + cs["seller_slope"] * c
    ask_lo, ask_hi, bid_lo, bid_hi = ps(a_s), ps(b_s), pb(a_b), pb(b_b)
    span = max(ask_hi, bid_hi) - min(ask_lo, bid_lo)
    prices = np.linspace(min(ask_lo, bid_lo) - 0.1 * span, max(ask_hi, bid_hi) + 0.1 * span,
                         n_bids)
    worst = 0.0
    for v in np.linspace(a_b, b_b, n_types):
        dev = _buyer_payoff(v, prices, ask_lo, ask_hi).max()
        worst = max(worst, dev - _buyer_payoff(v, np.array([pb(v)]), ask_lo, ask_hi)[0])
    for c in np.linspace(a_s, b_s, n_types):
        dev = _seller_payoff(c, prices, bid_lo, bid_hi).max()
        worst = max(worst, dev - _seller_payoff(c, np.array([ps(c)]), bid_lo, bid_hi)[0])
    return worst / span, cs


def test_linear_strategies_best_responses_uniform_01():
    gain, cs = _linear_is_best_response(0.0, 1.0, 0.0, 1.0)
    assert cs["valid"] and gain < 1e-6


def test_validity_conditions_match_numeric_best_responses():
    # valid iff 3 b_b <= 4 b_s - a_s and 3 a_s >= 4 a_b - b_b: check against a grid search of
    # profitable deviations, skipping supports within 2% of a boundary of the conditions.
    rng = np.random.default_rng(7)
    n_valid = n_invalid = 0
    while n_valid < 8 or n_invalid < 8:
        a_s, a_b = rng.uniform(0, 1, 2)
        b_s, b_b = a_s + rng.uniform(0.2, 1.5), a_b + rng.uniform(0.2, 1.5)
        scale = b_b - a_s if b_b > a_s else 1.0
        m1 = (4 * b_s - a_s - 3 * b_b) / scale
        m2 = (3 * a_s - 4 * a_b + b_b) / scale
        if min(abs(m1), abs(m2)) < 0.02:
            continue
        gain, cs = _linear_is_best_response(a_s, b_s, a_b, b_b, n_types=21, n_bids=2001)
        if cs["valid"]:
            n_valid += 1
            assert gain < 1e-6, (a_s, b_s, a_b, b_b, gain)
        else:
            n_invalid += 1
            assert gain > 1e-5, (a_s, b_s, a_b, b_b, gain)


def test_cs_equals_second_best_when_valid():
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(400):
        a_s, a_b = rng.uniform(0, 10, 2)
        b_s, b_b = a_s + rng.uniform(0.5, 10), a_b + rng.uniform(0.5, 10)
        cs = chatterjee_samuelson(a_s, b_s, a_b, b_b)
        if not (cs["valid"] and cs["supports_overlap"]) or b_b <= a_s:
            continue
        ms = myerson_satterthwaite(a_s, b_s, a_b, b_b)
        assert cs["gains"] == pytest.approx(ms["second_best_gains"], rel=1e-9, abs=1e-12)
        assert ms["g"] == pytest.approx(cs["trade_threshold"], rel=1e-9)
        checked += 1
    assert checked >= 20


def test_disjoint_supports_are_efficient():
    # U[4000, 6000] x U[7000, 9000]: b_s = 6000 <= a_b = 7000, always gains from trade;
    # E[v - c] = 8000 - 5000 = 3000; any price in [6000, 7000] is efficient.
    cs = chatterjee_samuelson(4000.0, 6000.0, 7000.0, 9000.0)
    ms = myerson_satterthwaite(4000.0, 6000.0, 7000.0, 9000.0)
    assert not cs["supports_overlap"] and cs["equilibrium"] == "posted_price"
    assert cs["efficient_price_range"] == [6000.0, 7000.0]
    assert cs["ratio"] == 1.0 and cs["gains"] == pytest.approx(3000.0, rel=1e-13)
    assert "do not overlap" in cs["reason"]
    assert not cs["valid"]  # the linear strategies are not an equilibrium here
    # Linear threshold 1250 on v - c ~ triangular-ish on [1000, 5000]: some trade is lost.
    assert cs["linear_ratio"] < 1.0
    assert ms["g"] == 0.0 and ms["first_best_feasible"] and ms["ratio"] == 1.0
    assert ms["second_best_gains"] == pytest.approx(3000.0, rel=1e-13)
    # Touching supports (b_s == a_b) count as disjoint.
    assert chatterjee_samuelson(0.0, 1.0, 1.0, 2.0)["ratio"] == 1.0


def test_no_possible_gains():
    ms = myerson_satterthwaite(5.0, 6.0, 1.0, 2.0)
    assert ms["first_best_gains"] == 0.0 and ms["second_best_gains"] == 0.0
    assert ms["ratio"] is None
    assert chatterjee_samuelson(5.0, 6.0, 1.0, 2.0)["gains"] == 0.0


def test_support_validation():
    with pytest.raises(ValueError, match="a_s < b_s"):
        myerson_satterthwaite(1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="b_b"):
        chatterjee_samuelson(0.0, 1.0, 0.0, float("nan"))
