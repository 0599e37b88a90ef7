"""The multi-issue SPE solver against an independent brute force.

* Small discrete games: a backward induction over the whole game tree (every round, every
  standing offer, every counter, written here from the rules) gives the same outcome, round,
  payoffs and agreement utilities.
* Continuous issues: the linear program against the enumeration of the same game on a fine grid
  of each issue; mixed games: the mixed-integer program likewise.
* The env, played along the SPE path, pays the SPE payoffs.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.games.multi_issue import (
    MultiIssueEnv,
    complete_information_game,
    make_multi_issue_params,
    solve_scenario_spe,
)
from eqx_jax.games.scenario import load_scenario
from eqx_jax.solvers.multi_issue import MultiIssueGame, solve_multi_issue_spe

TOL = 1e-7


def _payoff(g, u, t):
    """Deal payoffs in round t, written from the rules."""
    if g.reward_model == "seed":
        d = np.array([(1 - t / g.max_rounds) ** 2] * 2)
        b = g.speed_bonus if t + 1e-3 < g.bonus_fraction * g.max_rounds else 0.0
    else:
        d, b = np.array([g.discount[0] ** t, g.discount[1] ** t]), 0.0
    return g.utility_scale * (u - g.reservation) * d + b


def brute_force(g: MultiIssueGame):
    """(outcome, round, payoffs, agreement utilities) by backward induction over the tree."""
    sizes = [len(t) for t in g.tables[0]]
    offers = list(itertools.product(*[range(n) for n in sizes]))
    util = np.array([[sum(g.weights[a, k] * g.tables[a][k][v] for k, v in enumerate(x))
                      for a in range(2)] for x in offers])
    T = g.max_rounds
    # not_accept[t] = (payoffs, end) of the mover of round t not accepting; end describes the
    # path: ("deal", round, utilities) / ("walk_away", round, None) / ("timeout", T, None).
    not_accept: dict[int, tuple[np.ndarray, tuple]] = {}

    def accepts(t, x):  # the mover of round t accepts standing offer x?
        m = (t + 1) % 2
        return _payoff(g, util[x], t)[m] >= not_accept[t][0][m] - TOL

    for t in range(T, 0, -1):
        m = (t + 1) % 2
        if t == T:
            best = (np.asarray(g.timeout_payoff, float), ("timeout", T, None))
        else:
            cands = []
            for x in range(len(offers)):
                if accepts(t + 1, x):
                    res = (_payoff(g, util[x], t + 1), ("deal", t + 1, tuple(util[x])))
                else:
                    res = not_accept[t + 1]
                cands.append((x, res))
            top = max(c[1][0][m] for c in cands)
            tied = [c for c in cands if c[1][0][m] >= top - TOL]
            # agreement first, then the mover's utility, then the other's
            tied.sort(key=lambda c: (c[1][1][0] == "deal" and c[1][1][1] == t + 1,
                                     util[c[0], m], util[c[0], 1 - m]))
            best = tied[-1][1]
        walk = np.asarray(g.walk_payoff, float)
        not_accept[t] = (walk, ("walk_away", t, None)) if walk[m] > best[0][m] + TOL else best
    pay, end = not_accept[1]
    return end[0], end[1], pay, end[2]


def _random_game(rng, reward_model):
    k = int(rng.integers(2, 4))
    sizes = rng.integers(2, 5, k)
    tables = tuple(tuple(rng.permutation(np.linspace(0, 1, n)) if rng.random() < 0.5
                         else np.linspace(0, 1, n)[::(1 if a == 0 else -1)]
                         for n in sizes) for a in range(2))
    return MultiIssueGame(
        discrete=(True,) * k, low=(0.0,) * k, high=tuple(float(n - 1) for n in sizes),
        tables=tables, weights=rng.uniform(0.1, 1.0, (2, k)),
        reservation=rng.uniform(0.0, 0.4, 2), max_rounds=int(rng.integers(1, 6)),
        reward_model=reward_model, speed_bonus=float(rng.choice([0.0, 5.0])),
        discount=tuple(rng.uniform(0.6, 0.99, 2)),
        walk_payoff=tuple(rng.choice([0.0, -2.0, 3.0], 2)),
        timeout_payoff=tuple(rng.choice([0.0, -1.0], 2)))


@pytest.mark.parametrize("reward_model", ["seed", "discounted"])
def test_spe_matches_brute_force_on_small_discrete_games(reward_model):
    rng = np.random.default_rng(0 if reward_model == "seed" else 1)
    outcomes = set()
    for _ in range(25):
        g = _random_game(rng, reward_model)
        spe = solve_multi_issue_spe(g)
        end, rnd, pay, util = brute_force(g)
        outcomes.add(end)
        assert (spe.outcome, spe.round) == (end, rnd)
        np.testing.assert_allclose(spe.payoffs, pay, atol=1e-6)
        if util is not None:
            np.testing.assert_allclose(spe.utilities, util, atol=1e-9)
    assert "deal" in outcomes  # the draws cover agreements


def _grid_version(g: MultiIssueGame, points: int) -> MultiIssueGame:
    """The same game with every continuous issue replaced by ``points`` equally spaced values."""
    tables = tuple(tuple(np.linspace(t[0], t[1], points) if not d else t
                         for t, d in zip(g.tables[a], g.discrete, strict=True))
                   for a in range(2))
    return MultiIssueGame(
        discrete=(True,) * len(g.discrete), low=g.low, high=g.high, tables=tables,
        weights=g.weights, reservation=g.reservation, max_rounds=g.max_rounds,
        reward_model=g.reward_model, utility_scale=g.utility_scale, speed_bonus=g.speed_bonus,
        bonus_fraction=g.bonus_fraction, discount=g.discount, walk_payoff=g.walk_payoff,
        timeout_payoff=g.timeout_payoff)


@pytest.mark.parametrize("name,points", [("distributive-2", 801), ("supply-chain-4", 401)])
@pytest.mark.parametrize("reward_model", ["seed", "discounted"])
def test_programs_match_enumeration_on_a_fine_grid(name, points, reward_model):
    """LP (all continuous after fixing) / MILP (mixed) vs enumerating a fine grid."""
    sc = load_scenario(name)
    g = complete_information_game(sc, make_multi_issue_params(sc, reward_model=reward_model))
    exact = solve_multi_issue_spe(g)
    grid = solve_multi_issue_spe(_grid_version(g, points))
    assert (exact.outcome, exact.round) == (grid.outcome, grid.round)
    # The grid can only do worse for the proposer, by at most a grid step of a continuous issue.
    step = 1.0 / (points - 1)
    np.testing.assert_allclose(exact.utilities, grid.utilities, atol=2 * step)
    np.testing.assert_allclose(exact.payoffs, grid.payoffs, atol=2 * step * g.utility_scale)


def test_all_continuous_lp_matches_grid():
    k = 3
    g = MultiIssueGame(
        discrete=(False,) * k, low=(0.0, 10.0, -1.0), high=(1.0, 20.0, 1.0),
        tables=((np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0])),
                (np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.0, 1.0]))),
        weights=np.array([[0.5, 0.2, 0.3], [0.2, 0.6, 0.2]]), reservation=np.array([0.2, 0.1]),
        max_rounds=4, reward_model="discounted", discount=(0.9, 0.8))
    exact = solve_multi_issue_spe(g)
    grid = solve_multi_issue_spe(_grid_version(g, 101))
    assert exact.outcome == "deal" and exact.round == grid.round
    np.testing.assert_allclose(exact.utilities, grid.utilities, atol=0.02)
    # The common-interest issue (index 2) is set to both sides' best end.
    assert exact.agreement[2] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["distributive-2", "integrative-4", "supply-chain-4"])
def test_env_along_the_spe_path_pays_the_spe_payoffs(name):
    sc = load_scenario(name).fixed()
    params = make_multi_issue_params(sc, reward_model="discounted", discount=(0.9, 0.85))
    spe = solve_scenario_spe(sc, params)
    assert spe.outcome == "deal"
    env = MultiIssueEnv(sc)
    _, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step_env)
    for plan in spe.plans[:spe.round - 1]:  # counters until the accepted one
        offer = jnp.asarray(plan.offer if plan.offer else np.zeros(env.offer_size), jnp.float32)
        act = env.make_action(jnp.int32(1), offer)
        state, rewards, done, info = step(state, {"supplier": act, "retailer": act}, params)
        assert not bool(done)
    acc = env.make_action(jnp.int32(0), jnp.zeros(env.offer_size))
    state, rewards, done, info = step(state, {"supplier": acc, "retailer": acc}, params)
    assert bool(info["deal"]) and int(info["round"]) == spe.round
    np.testing.assert_allclose([rewards["supplier"], rewards["retailer"]], spe.payoffs,
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose([info["supplier_utility"], info["retailer_utility"]],
                               spe.utilities, atol=1e-5)
