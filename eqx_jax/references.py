"""What trained play is measured against in the games beyond one price: the exact SPE of the
complete-information game and the surplus available, per game (the single-price game's are in
:mod:`eqx_jax.evaluate`, which calls this module for the other games).

Units: prices currency units per unit, quantities units, payoffs reward units, surplus currency
units (gains before the reward model).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from eqx_jax.games.price_quantity import PQParams, pq_params_to_dict
from eqx_jax.games.scenario import (
    load_scenario,
    sample_weights_and_reservations,
    value_tables,
)
from eqx_jax.solvers.price_quantity import spe_pq_batch

#: Relative tolerance of the "within" shares (the issue's quality bar: 2 % of the SPE).
WITHIN = 0.02
_SURPLUS_SAMPLES = 200_000


def pq_spe_kwargs(p: PQParams) -> dict[str, Any]:
    """The settings of ``p`` as keyword arguments of ``spe_pq_batch`` / ``solve_pq_spe``."""
    d = pq_params_to_dict(p)
    return {k: (tuple(d[k]) if isinstance(d[k], list) else d[k])
            for k in ("reward_model", "max_price", "max_quantity", "speed_bonus",
                      "bonus_fraction", "discount", "walk_payoff", "timeout_payoff")}


def pq_max_surplus(c: np.ndarray, a: np.ndarray, p: PQParams) -> np.ndarray:
    """The largest total gain ``V(q*) - c q*`` (currency units) for values ``c``, ``a``."""
    q = np.clip((a - c) / p.demand_slope, 0.0, p.max_quantity)
    return (a - c) * q - 0.5 * p.demand_slope * q * q


def pq_mean_surplus(p: PQParams) -> float:
    """E[max total gain] under the priors (exact when both values are fixed; else a
    200,000-sample Monte Carlo mean with a fixed seed, so the same settings give the same
    number)."""
    if p.cost_low == p.cost_high and p.demand_low == p.demand_high:
        return float(pq_max_surplus(np.float64(p.cost_low), np.float64(p.demand_low), p))
    rng = np.random.default_rng(0)
    c = rng.uniform(p.cost_low, p.cost_high, _SURPLUS_SAMPLES)
    a = rng.uniform(p.demand_low, p.demand_high, _SURPLUS_SAMPLES)
    return float(pq_max_surplus(c, a, p).mean())


def _rel(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(x - ref) / np.maximum(np.abs(ref), 1e-9)


def pq_spe_distance(record: dict[str, np.ndarray], p: PQParams) -> dict[str, float]:
    """Per-episode distances of played episodes from the SPE of the complete-information game
    with *that episode's* values (c, a): with fixed values, the SPE of the game; with private
    values, the benchmark of full information.

    ``record``: a :func:`eqx_jax.simulate.play_batch` record (arrays (N,)). Returns the SPE's
    mean ``spe_price`` / ``spe_quantity`` / ``spe_round`` / payoffs, and over the episodes:
    ``spe_round_match`` (share ending in the SPE's round with its outcome), over the deals:
    ``spe_price_rel_error`` / ``spe_quantity_rel_error`` (mean |x - x*| / x*),
    ``price_within_2pct`` / ``quantity_within_2pct`` (shares), ``efficient_quantity_rel_error``
    (|q - q*| / q*, q* = (a - c) / b clipped), and ``spe_supplier_payoff_error`` /
    ``spe_retailer_payoff_error`` (|mean reward - mean SPE payoff|)."""
    c = np.asarray(record["unit_cost"], np.float64)
    a = np.asarray(record["demand_intercept"], np.float64)
    spe = spe_pq_batch(c, a, float(p.demand_slope), int(p.max_rounds), **pq_spe_kwargs(p))
    deal = np.asarray(record["deal"]) > 0.5
    ok = deal & spe["agreement"]
    price, qty = np.asarray(record["price"], np.float64), np.asarray(record["quantity"],
                                                                      np.float64)
    q_eff = np.clip((a - c) / p.demand_slope, 0.0, p.max_quantity)
    same_end = (np.asarray(record["round"]) == spe["round"]) & (deal == spe["agreement"])

    def over_deals(x: np.ndarray) -> float:
        return float(x[ok].mean()) if ok.any() else math.nan

    out = {
        "spe_price": float(np.nanmean(spe["price"])) if spe["agreement"].any() else math.nan,
        "spe_quantity": (float(np.nanmean(spe["quantity"])) if spe["agreement"].any()
                         else math.nan),
        "spe_round": float(spe["round"].mean()),
        "spe_supplier_payoff": float(spe["supplier_payoff"].mean()),
        "spe_retailer_payoff": float(spe["retailer_payoff"].mean()),
        "spe_round_match": float(same_end.mean()),
        "spe_price_rel_error": over_deals(_rel(price, spe["price"])),
        "spe_quantity_rel_error": over_deals(_rel(qty, spe["quantity"])),
        "price_within_2pct": over_deals(_rel(price, spe["price"]) <= WITHIN),
        "quantity_within_2pct": over_deals(_rel(qty, spe["quantity"]) <= WITHIN),
        "efficient_quantity_rel_error": over_deals(_rel(qty, q_eff)),
    }
    for side in ("supplier", "retailer"):
        reward = np.asarray(record[f"{side}_reward"], np.float64).mean()
        out[f"spe_{side}_payoff_error"] = float(abs(reward - out[f"spe_{side}_payoff"]))
    return out


def mi_mean_surplus(scenario: str, utility_scale: float, samples: int = 20_000) -> float:
    """E[largest joint gain] of a multi-issue scenario under its priors, reward units before
    the reward model: ``utility_scale * max(0, max_x (u_s(x) + u_r(x)) - r_s - r_r)``, exact per
    draw (utilities are separable: each issue at its best table point; a continuous issue's
    value functions are linear, so an end point), averaged over ``samples`` prior draws (fixed
    seed)."""
    sc = load_scenario(scenario)
    tables = value_tables(sc)  # (2, K, V)
    w, r = sample_weights_and_reservations(sc, np.random.default_rng(0), samples)
    joint = np.einsum("nak,akv->nkv", w, tables).max(axis=2).sum(axis=1)  # (n,)
    return float(utility_scale * np.maximum(joint - r.sum(axis=1), 0.0).mean())
