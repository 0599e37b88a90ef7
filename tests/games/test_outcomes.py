"""Our outcome metrics (eqx_jax.outcomes) against NegMAS's own functions on the same scenarios.

Both NegMAS evaluation models: the default single-negotiation model P (finite outcome sets) and
the convex-hull model P-infinity (``convex_hull=True``) that the env computes in its step. The
utility functions are built independently in NegMAS (``LinearAdditiveUtilityFunction`` over
``TableFun`` value functions); a continuous issue is given to NegMAS as its two ends plus
interior points (the convex hull of a linear issue's values is the segment between its ends).
"""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

negmas = pytest.importorskip("negmas")
from negmas import make_issue, make_os  # noqa: E402
from negmas.preferences import LinearAdditiveUtilityFunction  # noqa: E402
from negmas.preferences.ops import (  # noqa: E402
    calc_outcome_distances,
    calc_outcome_optimality,
    calc_scenario_stats,
    estimate_max_dist,
)
from negmas.preferences.value_fun import TableFun  # noqa: E402

from eqx_jax.games.scenario import (  # noqa: E402
    load_scenario,
    sample_weights_and_reservations,
    value_function_table,
)
from eqx_jax.outcomes import (  # noqa: E402
    METRICS,
    finite_optimality,
    finite_reference,
    frontier_optimality,
    hull_frontier,
    issue_chains,
    pareto_chain,
)

CONTINUOUS_POINTS = 5  # points given to NegMAS for a continuous issue


def _tables(scenario):
    """Per agent, per issue: the value function at the points NegMAS enumerates."""
    out = []
    for a in range(2):
        row = []
        for k, issue in enumerate(scenario.issues):
            t = value_function_table(scenario.value_functions[a][k], issue)
            if not issue.discrete:  # linear between the two ends
                t = np.linspace(t[0], t[1], CONTINUOUS_POINTS)
            row.append(t)
        out.append(row)
    return out


def _negmas_ufuns(scenario, weights, reservation):
    tables = _tables(scenario)
    issues = [make_issue(len(t), f"i{k}") for k, t in enumerate(tables[0])]
    space = make_os(issues)
    ufuns = [LinearAdditiveUtilityFunction(
        values=[TableFun({v: float(x) for v, x in enumerate(t)}) for t in tables[a]],
        weights=[float(w) for w in weights[a]], outcome_space=space,
        reserved_value=float(reservation[a])) for a in range(2)]
    outcomes = list(space.enumerate())
    utils = np.array([[float(u(o)) for u in ufuns] for o in outcomes])
    return ufuns, utils


def _our_points(scenario, weights):
    """All outcome utilities (n, 2) computed by us (same enumeration order as NegMAS)."""
    tables = _tables(scenario)
    rows = []
    for combo in itertools.product(*[range(len(t)) for t in tables[0]]):
        rows.append([sum(weights[a][k] * tables[a][k][v] for k, v in enumerate(combo))
                     for a in range(2)])
    return np.array(rows)


def _draws(name, n, seed):
    sc = load_scenario(name)
    w, r = sample_weights_and_reservations(sc, np.random.default_rng(seed), n)
    return sc, w, r


def _negmas_metrics(ufuns, stats, u):
    dist = calc_outcome_distances(tuple(float(x) for x in u), stats)
    opt = calc_outcome_optimality(dist, stats, estimate_max_dist(ufuns))
    return {"pareto_distance": dist.pareto_dist, "pareto_optimality": opt.pareto_optimality,
            "nash_optimality": opt.nash_optimality, "kalai_optimality": opt.kalai_optimality,
            "ks_optimality": opt.ks_optimality,
            "max_welfare_optimality": float(opt.max_welfare_optimality)}


def _same_points(a, b, tol=1e-9):
    a, b = np.asarray(a, float).reshape(-1, 2), np.asarray(b, float).reshape(-1, 2)
    if len(a) != len(b):
        return False
    return bool(np.all(np.abs(a[np.lexsort(a.T)] - b[np.lexsort(b.T)]) < tol))


@pytest.mark.parametrize("name", ["distributive-2", "integrative-4", "supply-chain-4"])
def test_finite_model_matches_negmas(name):
    sc, weights, reservations = _draws(name, 2, seed=7)
    rng = np.random.default_rng(0)
    for w, r in zip(weights, reservations, strict=True):
        ufuns, utils = _negmas_ufuns(sc, w, r)
        np.testing.assert_allclose(_our_points(sc, w), utils, atol=1e-12)
        stats = calc_scenario_stats(ufuns)
        ref = finite_reference(utils, r)
        assert _same_points(ref.pareto, stats.pareto_utils)
        assert _same_points(ref.nash, stats.nash_utils)
        assert _same_points(ref.kalai, stats.kalai_utils)
        assert _same_points(ref.ks, stats.ks_utils)
        assert ref.max_welfare == pytest.approx(max(sum(p) for p in stats.max_welfare_utils))
        picks = utils[rng.choice(len(utils), 25, replace=False)]
        ours = finite_optimality(picks, ref)
        for j, u in enumerate(picks):
            theirs = _negmas_metrics(ufuns, stats, u)
            for key in METRICS:
                assert ours[key][j] == pytest.approx(theirs[key], abs=1e-9), (key, u)


def _our_hull_vertices(sc, w):
    start, steps = issue_chains(np.stack([
        np.stack([np.pad(t, (0, 5 - len(t)), mode="edge") for t in row]) for row in _tables(sc)]))
    return np.asarray(hull_frontier(w, start, steps), float)


@pytest.mark.parametrize("name", ["distributive-2", "integrative-4", "supply-chain-4"])
def test_hull_model_matches_negmas(name):
    sc, weights, reservations = _draws(name, 2, seed=11)
    rng = np.random.default_rng(1)
    metrics = jax.jit(frontier_optimality)
    for w, r in zip(weights, reservations, strict=True):
        ufuns, utils = _negmas_ufuns(sc, w, r)
        stats = calc_scenario_stats(ufuns, convex_hull=True)
        vertices = _our_hull_vertices(sc, w)
        # Every NegMAS frontier point lies on our polyline, and each of our vertices is one.
        theirs = np.asarray(stats.pareto_utils)
        for p in theirs:
            assert float(metrics(p, vertices, r)["pareto_distance"]) < 1e-5
        for v in vertices:
            assert np.min(np.abs(theirs - v).sum(axis=1)) < 1e-5
        picks = utils[rng.choice(len(utils), 25, replace=False)]
        for u in picks:
            ours = {k: float(v) for k, v in metrics(u, vertices, r).items()}
            expected = _negmas_metrics(ufuns, stats, u)
            for key in METRICS:  # NegMAS's Nash point comes from SLSQP: 1e-5
                assert ours[key] == pytest.approx(expected[key], abs=2e-5), (key, u)


def test_no_rational_outcome_has_no_nash_point():
    sc, weights, _ = _draws("integrative-4", 1, seed=3)
    reservation = np.array([0.95, 0.95])
    ufuns, utils = _negmas_ufuns(sc, weights[0], reservation)
    stats = calc_scenario_stats(ufuns, convex_hull=True)
    assert not stats.nash_utils
    out = frontier_optimality(utils[0], _our_hull_vertices(sc, weights[0]), reservation)
    assert np.isnan(float(out["nash_optimality"])) and np.isnan(float(out["ks_optimality"]))
    ref = finite_reference(utils, reservation)
    assert len(ref.pareto) == 0
    assert np.isnan(finite_optimality(utils[:1], ref)["nash_optimality"][0])


def test_continuous_frontier_against_dense_grid():
    """The exact frontier of continuous linear issues vs the undominated points of a dense
    grid of the box: every grid point is on or below it, and its frontier points are close."""
    rng = np.random.default_rng(5)
    k = 3
    tables = np.zeros((2, k, 2))
    dirs = np.array([[1, 1, -1], [-1, 1, 1]])  # issue 1 is of common interest
    for a in range(2):
        for j in range(k):
            tables[a, j] = [0.0, 1.0] if dirs[a, j] > 0 else [1.0, 0.0]
    w = rng.uniform(0.2, 1.0, (2, k))
    w /= w.sum(axis=1, keepdims=True)
    start, steps = issue_chains(tables)
    vertices = np.asarray(hull_frontier(w, start, steps), float)
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 41)] * k), -1).reshape(-1, k)
    u = np.stack([(w[a] * np.where(dirs[a] > 0, grid, 1 - grid)).sum(1) for a in range(2)], 1)
    mask = np.ones(len(u), bool)
    order = np.argsort(-u[:, 0])
    best1 = -np.inf
    for i in order:  # undominated points of the grid (sweep by u_0)
        mask[i] = u[i, 1] > best1
        best1 = max(best1, u[i, 1])
    dist = jax.vmap(lambda p: frontier_optimality(p, vertices, np.zeros(2))["pareto_distance"])
    assert float(np.max(np.asarray(dist(u[mask])))) < 2e-3  # grid step 1/40 x the weights
    # No grid point lies beyond the frontier (the polyline's height at its u_0, flat to the
    # left of its first vertex).
    assert np.all(u[:, 0] <= vertices[-1, 0] + 1e-6)
    height = np.interp(u[:, 0], vertices[:, 0], vertices[:, 1])
    assert np.all(u[:, 1] <= height + 1e-6)


def test_pareto_chain_by_hand():
    # A peaked issue against an increasing one: (f_0, f_1) at the 5 values.
    pts = np.array([[0.0, 0.0], [0.25, 0.5], [0.5, 1.0], [0.75, 0.5], [1.0, 0.0]])
    assert pareto_chain(pts).tolist() == [2, 4]
    # Both agree (common interest): the chain is the single best point.
    assert pareto_chain(np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])).tolist() == [2]
    # A non-convex middle point is skipped: (0, 1), (0.4, 0.4) below the chord, (1, 0).
    assert pareto_chain(np.array([[0.0, 1.0], [0.4, 0.4], [1.0, 0.0]])).tolist() == [0, 2]
