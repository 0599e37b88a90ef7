"""Outcome metrics of N-party negotiations (the group game) over the parties' true utilities.

Per episode (each with its own private weights and reservation values) the outcome space is
enumerated as NegMAS enumerates it (every value of a discrete issue; a continuous issue at
``levels`` evenly spaced values, NegMAS's ``PresortingInverseUtilityFunction(levels=10)``
default), and the agreement is measured against NegMAS's single-negotiation model P
(:func:`eqx_jax.outcomes.finite_reference`, N-dimensional): the rational Pareto frontier, the
Nash point (maximising ``prod_i (u_i - d_i)``), the egalitarian "Kalai" and Kalai-Smorodinsky
points and the best welfare, with ``d_i`` the disagreement point (the reservation value, or the
least utility where that is higher).

Beyond NegMAS's distances (:data:`eqx_jax.outcomes.METRICS`): ``nash_product_optimality``, the
agreement's ``prod_i max(u_i - d_i, 0)`` over the largest one among the outcomes (1 at the Nash
point), ``welfare`` (``sum_i u_i``), and each party's ``share`` of the gains
(``(u_i - r_i) / sum_j (u_j - r_j)`` over deals where the sum is positive).

NumPy, after play (an evaluation tool; the env's step does not compute these). Utilities in
[0, 1]; shapes per function (B episodes, N parties, K issues, M outcomes).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from eqx_jax.games.scenario import Scenario, load_scenario, value_function_table
from eqx_jax.outcomes import METRICS, finite_optimality, finite_reference

#: NegMAS's default number of values of a continuous issue (``levels=10``).
CONTINUOUS_LEVELS = 10
MAX_OUTCOMES = 20_000


def outcome_values(scenario: Scenario | str, levels: int = CONTINUOUS_LEVELS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(outcomes (M, K) natural units, values (N, M, K) each party's value function of each
    issue at each outcome, float64 in [0, 1]), in ``itertools.product`` order."""
    sc = load_scenario(scenario)
    grids, tables = [], []
    for k, issue in enumerate(sc.issues):
        if issue.discrete:
            grids.append(np.arange(issue.num_values, dtype=float))
            tables.append([value_function_table(sc.value_functions[a][k], issue)
                           for a in range(sc.num_parties)])
        else:
            z = np.linspace(0.0, 1.0, levels)
            grids.append(issue.low + z * (issue.high - issue.low))
            ends = [value_function_table(sc.value_functions[a][k], issue)
                    for a in range(sc.num_parties)]
            tables.append([e[0] + z * (e[1] - e[0]) for e in ends])
    size = int(np.prod([g.size for g in grids]))
    if size > MAX_OUTCOMES:
        raise ValueError(f"scenario {sc.name!r} has {size} outcomes; the group metrics "
                         f"enumerate at most {MAX_OUTCOMES}")
    index = np.array(list(itertools.product(*[range(g.size) for g in grids])))
    outcomes = np.stack([grids[k][index[:, k]] for k in range(len(grids))], axis=1)
    values = np.stack([np.stack([tables[k][a][index[:, k]] for k in range(len(grids))], axis=1)
                       for a in range(sc.num_parties)])
    return outcomes, values


def group_metrics(scenario: Scenario | str, utilities: np.ndarray, deal: np.ndarray,
                  weights: np.ndarray, reservation: np.ndarray,
                  levels: int = CONTINUOUS_LEVELS) -> dict[str, Any]:
    """Per-episode metrics of B negotiations, aggregated.

    ``utilities`` (B, N) every party's true utility of the agreement (ignored without a deal);
    ``deal`` (B,) bool; ``weights`` (B, N, K) the episodes' normalised weights; ``reservation``
    (B, N). Returns ``deal_rate``; over deals: ``utility`` and ``share`` (N,) means,
    ``welfare``, the metrics of :data:`eqx_jax.outcomes.METRICS` and ``nash_product_optimality``
    (means, NaN-free: episodes where NegMAS has no point are left out of that mean);
    ``per_episode``: the (B,) arrays (NaN without a deal)."""
    u = np.asarray(utilities, float)
    deal = np.asarray(deal, bool)
    w = np.asarray(weights, float)
    r = np.asarray(reservation, float)
    _, values = outcome_values(scenario, levels)  # (N, M, K)
    b, n = u.shape
    per = {name: np.full(b, np.nan) for name in METRICS + ("nash_product_optimality",)}
    for e in np.flatnonzero(deal):
        points = np.einsum("amk,ak->ma", values, w[e])  # (M, N) every outcome's utilities
        ref = finite_reference(points, r[e])
        for name, x in finite_optimality(u[e][None], ref).items():
            per[name][e] = x[0]
        d = np.maximum(r[e], points.min(axis=0))
        best = np.prod(np.maximum(points - d, 0.0), axis=1).max()
        if best > 1e-12:
            per["nash_product_optimality"][e] = np.prod(np.maximum(u[e] - d, 0.0)) / best
    gains = u - r
    total = gains.sum(axis=1, keepdims=True)
    ok = deal & (total[:, 0] > 1e-12)
    share = np.where(ok[:, None], gains / np.where(ok[:, None], total, 1.0), np.nan)
    out: dict[str, Any] = {"episodes": int(b), "deal_rate": float(deal.mean()) if b else 0.0}
    if deal.any():
        out["utility"] = u[deal].mean(axis=0).tolist()
        out["share"] = (np.nanmean(share[ok], axis=0).tolist() if ok.any() else [np.nan] * n)
        out["welfare"] = float(u[deal].sum(axis=1).mean())
        for name, x in per.items():
            vals = x[deal]
            vals = vals[~np.isnan(vals)]
            out[name] = float(vals.mean()) if vals.size else float("nan")
    out["per_episode"] = {**per, "share": share}
    return out
