"""The group game's N-party outcome metrics against NegMAS's own functions (3 and 4 parties)
and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from eqx_jax.games.group_metrics import group_metrics, outcome_values
from eqx_jax.games.scenario import load_scenario, sample_weights_and_reservations
from eqx_jax.outcomes import METRICS

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


def _negmas(values, w, r):
    """NegMAS ufuns over the enumerated grid: issue k's values are its value indices."""
    n, m, k_num = values.shape
    sizes = [len(np.unique(values[0, :, k])) for k in range(k_num)]
    issues = [make_issue(s, f"i{k}") for k, s in enumerate(sizes)]
    space = make_os(issues)
    outcomes = list(space.enumerate())
    tables = []
    for a in range(n):  # value of issue k at index v: read off the enumeration
        row = []
        for k in range(k_num):
            table = {}
            for j, o in enumerate(outcomes):
                table[o[k]] = float(values[a, j, k])
            row.append(TableFun(table))
        tables.append(row)
    ufuns = [LinearAdditiveUtilityFunction(values=tables[a], weights=[float(x) for x in w[a]],
                                           outcome_space=space, reserved_value=float(r[a]))
             for a in range(n)]
    utils = np.array([[float(u(o)) for u in ufuns] for o in outcomes])
    return ufuns, utils


@pytest.mark.parametrize("name", ["supply-chain-3p", "supply-chain-4p"])
def test_metrics_match_negmas_for_three_and_four_parties(name):
    sc = load_scenario(name)
    w, r = sample_weights_and_reservations(sc, np.random.default_rng(3), 2)
    _, values = outcome_values(sc)
    rng = np.random.default_rng(1)
    for e in range(2):
        ufuns, utils = _negmas(values, w[e], r[e])
        ours_points = np.einsum("amk,ak->ma", values, w[e])
        np.testing.assert_allclose(ours_points, utils, atol=1e-12)
        picks = utils[rng.choice(len(utils), 8, replace=False)]
        got = group_metrics(sc, picks, np.ones(8, bool), np.repeat(w[e][None], 8, 0),
                            np.repeat(r[e][None], 8, 0))["per_episode"]
        stats = calc_scenario_stats(ufuns)
        max_dist = estimate_max_dist(ufuns)
        for j, u in enumerate(picks):
            dist = calc_outcome_distances(tuple(float(x) for x in u), stats)
            opt = calc_outcome_optimality(dist, stats, max_dist)
            theirs = {"pareto_distance": dist.pareto_dist,
                      "pareto_optimality": opt.pareto_optimality,
                      "nash_optimality": opt.nash_optimality,
                      "kalai_optimality": opt.kalai_optimality,
                      "ks_optimality": opt.ks_optimality,
                      "max_welfare_optimality": float(opt.max_welfare_optimality)}
            for key in METRICS:
                assert got[key][j] == pytest.approx(theirs[key], abs=1e-9), (key, u)


def test_nash_product_share_and_welfare_by_hand():
    sc = load_scenario("supply-chain-3p")
    _, values = outcome_values(sc)
    w = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]])  # price, price, delivery
    r = np.array([0.1, 0.1, 0.0])
    points = np.einsum("amk,ak->ma", values, w)
    # Parties 0 and 1 split the price (u_1 = 1 - u_0); party 2 wants the longest delivery.
    # Best Nash product: price in the middle (positions 4/9 or 5/9 of 10 levels), delivery top.
    d = np.maximum(r, points.min(axis=0))
    best = max((p - 0.1) * (1 - p - 0.1) * (1.0 - d[2]) for p in np.linspace(0, 1, 10))
    u = np.array([[0.5, 0.5, 1.0], [0.8, 0.2, 1.0], [0.5, 0.5, 0.0]])
    out = group_metrics(sc, u, np.array([True, True, False]), np.repeat(w[None], 3, 0),
                        np.repeat(r[None], 3, 0))
    per = out["per_episode"]
    assert per["nash_product_optimality"][0] == pytest.approx(0.4 * 0.4 * 1.0 / best)
    assert per["nash_product_optimality"][1] == pytest.approx(0.7 * 0.1 * 1.0 / best)
    assert np.isnan(per["nash_product_optimality"][2])  # no deal
    np.testing.assert_allclose(per["share"][0], np.array([0.4, 0.4, 1.0]) / 1.8)
    assert out["deal_rate"] == pytest.approx(2 / 3)
    assert out["welfare"] == pytest.approx(2.0)
    assert out["utility"] == pytest.approx([0.65, 0.35, 1.0])
    # (0.5, 0.5) lies between the grid's price levels 4/9 and 5/9 on the frontier's line.
    assert per["pareto_distance"][0] == pytest.approx(np.sqrt(2) * (0.5 - 4 / 9))
