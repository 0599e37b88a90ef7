"""The group-game SPE solver against an independent brute force.

* Small all-discrete games (N = 2, 3, 4): a backward induction over the whole state space (step
  s, acceptances k, standing offer x), trying every action of every state, written here from
  the rules, gives the same outcome, step, payoffs and agreement.
* Hand-computed three-party cases (a deal, an indifferent proposer, a delay).
* Continuous issues: the linear / mixed-integer programs against the brute force on a fine grid.
* N = 2 is the two-party multi-issue game: the same SPE as its solver.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from eqx_jax.solvers.group import GroupGame, outcome_utilities, solve_group_spe
from eqx_jax.solvers.multi_issue import MultiIssueGame, solve_multi_issue_spe


def _payoff(g, u, s):
    """(N,) deal payoffs at step s, written from the rules."""
    n, T = len(g.reservation), g.max_rounds
    if g.reward_model == "seed":
        d = np.full(n, (1 - s / T) ** 2)
        b = g.speed_bonus if s + 1e-3 < g.bonus_fraction * T else 0.0
    else:
        d, b = np.array([x ** s for x in g.discount]), 0.0
    return g.utility_scale * (np.asarray(u) - g.reservation) * d + b


def _utilities(g):
    """Every outcome (value indices, product order) and its (n, N) utilities."""
    sizes = [len(t) for t in g.tables[0]]
    offers = list(itertools.product(*[range(n) for n in sizes]))
    w = np.asarray(g.weights) / np.sum(g.weights, axis=1, keepdims=True)
    util = np.array([[sum(w[a, k] * g.tables[a][k][v] for k, v in enumerate(x))
                      for a in range(len(w))] for x in offers])
    return offers, util


def brute_force(g):
    """(outcome, step, payoffs (N,), agreement index or None) by backward induction over every
    state (s, k, x); a value is (payoffs, (outcome, step, agreement index))."""
    offers, util = _utilities(g)
    n, T, tol = len(util[0]), g.max_rounds, 1e-9 * g.utility_scale
    timeout = (np.asarray(g.timeout_payoff, float), ("timeout", T, None))
    walk_pay = np.asarray(g.walk_payoff, float)
    value: dict[tuple[int, int], list] = {}
    no_accept: dict[int, tuple] = {}
    for s in range(T, 0, -1):
        m = (s - 1) % n
        if s == T:
            best = timeout
        else:
            cands = [value[(s + 1, 0)][y] for y in range(len(offers))]
            top = max(c[0][m] for c in cands)
            tied = [y for y, c in enumerate(cands) if c[0][m] >= top - tol]
            own = [y for y in tied if cands[y][1] == ("deal", s + n - 1, y)]
            if own:  # the agreement first, then the mover's utility, then the others' sum
                own = [y for y in own if util[y, m] >= max(util[own, m]) - 1e-9]
                rest = [util[y].sum() - util[y, m] for y in own]
                own = [y for y, r in zip(own, rest, strict=True) if r >= max(rest) - 1e-9]
                best = cands[own[0]]
            else:
                best = cands[tied[0]]
        if walk_pay[m] > best[0][m] + tol:
            best = (walk_pay, ("walk_away", s, None))
        no_accept[s] = best
        for k in range(n - 1):
            row = []
            for x in range(len(offers)):
                if k + 1 == n - 1:
                    acc = (_payoff(g, util[x], s), ("deal", s, x))
                elif s == T:
                    acc = timeout
                else:
                    acc = value[(s + 1, k + 1)][x]
                row.append(acc if acc[0][m] >= best[0][m] - tol else best)
            value[(s, k)] = row
    pay, (end, step, x) = no_accept[1]
    return end, step, pay, x


def _game(n, tables, weights, reservation, **kw):
    k = len(tables[0])
    return GroupGame(discrete=(True,) * k, low=(0.0,) * k,
                     high=tuple(float(len(t) - 1) for t in tables[0]),
                     tables=tuple(tuple(np.asarray(t, float) for t in row) for row in tables),
                     weights=np.asarray(weights, float), reservation=np.asarray(reservation),
                     **kw)


def _random_game(rng, n, reward_model):
    k = int(rng.integers(2, 4))
    sizes = rng.integers(2, 5, k)
    tables = [[rng.permutation(np.linspace(0, 1, m)) for m in sizes] for _ in range(n)]
    return _game(n, tables, rng.uniform(0.1, 1.0, (n, k)), rng.uniform(0.0, 0.4, n),
                 max_rounds=int(rng.integers(1, 3 * n + 1)), reward_model=reward_model,
                 speed_bonus=float(rng.choice([0.0, 5.0])),
                 discount=tuple(rng.uniform(0.6, 0.99, n)),
                 walk_payoff=tuple(rng.choice([0.0, -2.0, 3.0, 25.0], n, p=[.4, .3, .2, .1])),
                 timeout_payoff=tuple(rng.choice([0.0, -1.0, 2.0], n)))


def _check_against_brute_force(g):
    spe = solve_group_spe(g)
    end, step, pay, x = brute_force(g)
    assert (spe.outcome, spe.step) == (end, step)
    np.testing.assert_allclose(spe.payoffs, pay, atol=1e-7)
    if x is not None:
        offers, _ = _utilities(g)
        np.testing.assert_array_equal(spe.agreement, offers[x])
    return spe


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("reward_model", ["seed", "discounted"])
def test_spe_matches_brute_force_on_random_discrete_games(n, reward_model):
    rng = np.random.default_rng(10 * n + (reward_model == "seed"))
    outcomes, moves = set(), set()
    for _ in range(30):
        spe = _check_against_brute_force(_random_game(rng, n, reward_model))
        outcomes.add(spe.outcome)
        moves.update(p.move for p in spe.plans)
    assert "deal" in outcomes and len(outcomes) >= 2  # the draws cover deals and no-deals
    assert {"counter", "walk", "timeout"} <= moves


def test_short_deadline_times_out_or_walks():
    """T < N: no counter can collect N - 1 acceptances, so no deal."""
    rng = np.random.default_rng(5)
    for _ in range(10):
        g = _random_game(rng, 4, "discounted")
        g = GroupGame(**{**g.__dict__, "max_rounds": 3})
        spe = _check_against_brute_force(g)
        assert spe.outcome in ("timeout", "walk_away")
        assert all(p.move != "counter" for p in spe.plans)


# Three parties, one issue of three values, discounted (delta = 0.9), scale 100, T = 4:
# u0 = (1, .5, 0), u1 = (0, 1, .5), u2 = (.5, 0, 1).
_TABLES = [[[1.0, 0.5, 0.0]], [[0.0, 1.0, 0.5]], [[0.5, 0.0, 1.0]]]
_HAND = dict(max_rounds=4, reward_model="discounted", discount=(0.9, 0.9, 0.9))


def test_hand_computed_three_party_deal():
    """r = 0, walk = timeout = 0. R(4) = R(3) = 0 (counters time out). Step 2 (party 1,
    closing at step 4, D = .6561): every offer passes, it takes value 1: R(2) = 65.61 (.5, 1, 0)
    = (32.805, 65.61, 0). Step 1 (party 0, closing at 3, D = .729): party 1 needs 72.9 u1 >=
    65.61, u1 >= .9: only value 1, payoffs (36.45, 72.9, 0)."""
    g = _game(3, _TABLES, [[1.0]] * 3, [0.0] * 3, **_HAND)
    spe = _check_against_brute_force(g)
    assert (spe.outcome, spe.step, spe.agreement) == ("deal", 3, (1.0,))
    np.testing.assert_allclose(spe.payoffs, [36.45, 72.9, 0.0])
    assert [p.move for p in spe.plans] == ["counter", "counter", "timeout", "timeout"]
    np.testing.assert_allclose(spe.plans[1].alt, [32.805, 65.61, 0.0])


def test_hand_computed_indifferent_proposer_makes_the_deal():
    """As above with party 2's walk payoff 10: R(3) = its walk (0, 0, 10). Step 2: party 2 needs
    65.61 u2 >= 10 (values 0, 2), party 1 takes value 2: R(2) = (0, 32.805, 65.61). Step 1:
    party 1 needs u1 >= .45 (values 1, 2), party 2 u2 >= .137 (values 0, 2): only value 2,
    paying party 0 zero, as do its delays (back to R(2)) and its walk: it makes the deal,
    (0, 36.45, 72.9)."""
    g = _game(3, _TABLES, [[1.0]] * 3, [0.0] * 3, walk_payoff=(0.0, 0.0, 10.0), **_HAND)
    spe = _check_against_brute_force(g)
    assert (spe.outcome, spe.step, spe.agreement) == ("deal", 3, (2.0,))
    np.testing.assert_allclose(spe.payoffs, [0.0, 36.45, 72.9], atol=1e-12)
    assert spe.plans[2].move == "walk"


def test_hand_computed_delay_to_a_profitable_timeout():
    """T = 3, r = (0, .2, .2), party 0's timeout payoff 80. R(3) = the timeout (80, 0, 0);
    step 2's counter cannot close by T and party 2 accepts it into the timeout: R(2) = (80, 0, 0).
    Step 1: its best deal (value 1, 72.9 x .5 = 36.45) is worse than an offer party 1 rejects
    (value 0, u1 = 0 < .2) leading to R(2): a delay, then the timeout at step 3."""
    g = _game(3, _TABLES, [[1.0]] * 3, [0.0, 0.2, 0.2], timeout_payoff=(80.0, 0.0, 0.0),
              **{**_HAND, "max_rounds": 3})
    spe = _check_against_brute_force(g)
    assert (spe.outcome, spe.step) == ("timeout", 3)
    np.testing.assert_allclose(spe.payoffs, [80.0, 0.0, 0.0])
    first = spe.plans[0]
    assert (first.move, first.resume, first.offer) == ("delay", 2, (0.0,))
    assert spe.plans[1].move == "timeout"


def _continuous_game(rng, n, discrete_values=0):
    """One continuous issue (price 8..12) and optionally a discrete issue."""
    tables = []
    for _ in range(n):
        row = [np.array([1.0, 0.0]) if rng.random() < 0.5 else np.array([0.0, 1.0])]
        if discrete_values:
            row.append(rng.permutation(np.linspace(0, 1, discrete_values)))
        tables.append(row)
    k = 1 + bool(discrete_values)
    return GroupGame(discrete=(False,) + (True,) * (k - 1), low=(8.0,) + (0.0,) * (k - 1),
                     high=(12.0,) + (float(discrete_values - 1),) * (k - 1), tables=tuple(
                         tuple(r) for r in tables), weights=rng.uniform(0.2, 1.0, (n, k)),
                     reservation=rng.uniform(0.0, 0.3, n), max_rounds=int(rng.integers(n, 3 * n)),
                     reward_model="discounted", discount=tuple(rng.uniform(0.7, 0.95, n)))


def _on_grid(g, points):
    """The same game with the continuous issue on ``points`` equally spaced values."""
    tables = tuple(tuple(np.linspace(t[0], t[1], points) if not d else t
                         for t, d in zip(row, g.discrete, strict=True)) for row in g.tables)
    high = tuple(h if d else float(points - 1) for h, d in zip(g.high, g.discrete, strict=True))
    return GroupGame(**{**g.__dict__, "discrete": (True,) * len(g.discrete), "tables": tables,
                        "low": (0.0,) * len(g.discrete), "high": high})


@pytest.mark.parametrize("n,values", [(3, 0), (3, 3), (4, 0)])
def test_programs_match_brute_force_on_a_fine_grid(n, values):
    rng = np.random.default_rng(n + 7 * values)
    points = 161
    for _ in range(3):
        g = _continuous_game(rng, n, values)
        spe = solve_group_spe(g)
        end, step, pay, x = brute_force(_on_grid(g, points))
        assert (spe.outcome, spe.step) == (end, step)
        # The grid moves every bound by at most a grid step of the issue's utility.
        np.testing.assert_allclose(spe.payoffs, pay, atol=3 * g.utility_scale / (points - 1))
        if x is not None:
            np.testing.assert_allclose(spe.utilities, outcome_utilities(g, np.array(
                spe.agreement)), atol=1e-9)


def test_program_delays_and_walks_match_brute_force_on_a_fine_grid():
    """The programs' delay and walk branches (walk / timeout payoffs drawn), both models."""
    rng = np.random.default_rng(1)
    points, moves = 161, set()
    for _ in range(12):
        n = int(rng.integers(2, 5))
        g = _continuous_game(rng, n, int(rng.choice([0, 3])))
        g = GroupGame(**{**g.__dict__, "reward_model": str(rng.choice(["seed", "discounted"])),
                         "walk_payoff": tuple(rng.choice([0.0, -2.0, 3.0, 25.0], n)),
                         "timeout_payoff": tuple(rng.choice([0.0, -1.0, 2.0], n))})
        spe = solve_group_spe(g)
        end, step, pay, _ = brute_force(_on_grid(g, points))
        assert (spe.outcome, spe.step) == (end, step)
        np.testing.assert_allclose(spe.payoffs, pay, atol=3 * g.utility_scale / (points - 1))
        moves.update(p.move for p in spe.plans)
    assert {"counter", "delay", "walk"} <= moves


def _as_two_party(g):
    return MultiIssueGame(discrete=g.discrete, low=g.low, high=g.high, tables=g.tables,
                          weights=g.weights, reservation=g.reservation,
                          max_rounds=g.max_rounds, reward_model=g.reward_model,
                          utility_scale=g.utility_scale, speed_bonus=g.speed_bonus,
                          bonus_fraction=g.bonus_fraction, discount=g.discount,
                          walk_payoff=g.walk_payoff, timeout_payoff=g.timeout_payoff)


def test_two_parties_agree_with_the_multi_issue_solver():
    rng = np.random.default_rng(3)
    games = [_random_game(rng, 2, model) for model in ("seed", "discounted") for _ in range(10)]
    games += [_continuous_game(rng, 2, values) for values in (0, 3, 0, 4)]
    for g in games:
        spe, mi = solve_group_spe(g), solve_multi_issue_spe(_as_two_party(g))
        assert (spe.outcome, spe.step) == (mi.outcome, mi.round)
        np.testing.assert_allclose(spe.payoffs, mi.payoffs, atol=1e-6)
        if mi.utilities is not None:
            np.testing.assert_allclose(spe.utilities, mi.utilities, atol=1e-6)


def test_to_dict_and_names():
    g = _game(3, _TABLES, [[1.0]] * 3, [0.0] * 3, names=("a", "b", "c"), **_HAND)
    d = solve_group_spe(g).to_dict()
    assert d["outcome"] == "deal" and [p["mover"] for p in d["plans"]] == ["a", "b", "c", "a"]
    assert solve_group_spe(_game(3, _TABLES, [[1.0]] * 3, [0.0] * 3)).plans[1].mover == "agent1"


@pytest.mark.parametrize("change,field", [
    ({"weights": np.ones((1, 1))}, "weights"),
    ({"weights": np.ones((9, 1))}, "weights"),
    ({"reservation": np.array([0.0, 1.5, 0.0])}, r"reservation\[1\]"),
    ({"discount": (0.9, 1.2, 0.9)}, r"discount\[1\]"),
    ({"walk_payoff": (0.0, 0.0)}, "walk_payoff"),
    ({"max_rounds": 0}, "max_rounds"),
    ({"reward_model": "linear"}, "reward_model"),
    ({"names": ("a", "b")}, "names"),
    ({"tables": (([1.0, 0.5, 0.0],), ([0.0, 1.0],), ([0.5, 0.0, 1.0],))}, r"tables\[1\]\[0\]"),
])
def test_validation_names_the_field(change, field):
    base = _game(3, _TABLES, [[1.0]] * 3, [0.0] * 3)
    kw = {**base.__dict__, **change}
    kw["tables"] = tuple(tuple(np.asarray(t, float) for t in row) for row in kw["tables"])
    with pytest.raises(ValueError, match=field):
        GroupGame(**kw)
