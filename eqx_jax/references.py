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

from eqx_jax.games.bundles import NUM_ITEMS, BundlesParams
from eqx_jax.games.multi_issue import MultiIssueParams, solve_scenario_spe
from eqx_jax.games.price_quantity import PQParams, pq_params_to_dict
from eqx_jax.games.scenario import (
    Scenario,
    load_scenario,
    sample_weights_and_reservations,
    value_tables,
)
from eqx_jax.solvers.bundles import BundlesSPE, max_welfare, solve_spe
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


def mi_mean_surplus(scenario: str | Scenario, utility_scale: float,
                    samples: int = 20_000) -> float:
    """E[largest joint gain] of a multi-issue scenario (a name, file or loaded scenario; N
    parties for the group game) under its priors, reward units before the reward model:
    ``utility_scale * max(0, max_x sum_i u_i(x) - sum_i r_i)``, exact per draw (utilities are
    separable: each issue at its best table point; a continuous issue's value functions are
    linear, so an end point), averaged over ``samples`` prior draws (fixed seed)."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    tables = value_tables(sc)  # (N, K, V)
    w, r = sample_weights_and_reservations(sc, np.random.default_rng(0), samples)
    joint = np.einsum("nak,akv->nkv", w, tables).max(axis=2).sum(axis=1)  # (n,)
    return float(utility_scale * np.maximum(joint - r.sum(axis=1), 0.0).mean())


# ------------------------------------------------------------------------- multi-issue SPE
#: Episodes of a private-information multi-issue evaluation whose full-information SPE is
#: solved (one LP / MILP / enumeration per round each: 0.06 s to 0.2 s per episode measured
#: on the shipped scenarios, so all 10,000 episodes would take about half an hour).
MI_SPE_EPISODES = 100


def mi_issue_values(scenario: Scenario, offer: Any) -> dict[str, Any] | None:
    """An offer (K,) in natural units as {issue name: value}: a continuous issue in its own
    unit, a discrete one by its label (by its value index where it has no labels)."""
    if offer is None:
        return None
    out: dict[str, Any] = {}
    for issue, x in zip(scenario.issues, offer, strict=True):
        if issue.discrete:
            i = int(round(float(x)))
            out[issue.name] = issue.labels[i] if issue.labels else i
        else:
            out[issue.name] = float(x)
    return out


class MIRecordingEnv:
    """A multi-issue env whose ``step_env`` info also holds each episode's weights
    (``weight_<a>_<k>``, agent a's normalised weight of issue k) and reservation values, and
    whose ``record_keys`` name them, so that :func:`eqx_jax.simulate.play_batch` records what
    each episode drew (the full-information SPE of a private-information episode needs it).
    Everything else is the wrapped env's."""

    def __init__(self, env: Any):
        self._env = env
        k_num = env.offer_size
        self.weight_keys = tuple(f"weight_{a}_{k}" for a in range(2) for k in range(k_num))
        self.record_keys = (tuple(env.info_keys) + self.weight_keys
                            + ("supplier_reservation", "retailer_reservation"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def step_env(self, state: Any, actions: dict[str, Any], params: Any):
        """The wrapped step, its info with the episode's weights added."""
        state_next, rewards, done, info = self._env.step_env(state, actions, params)
        info = {**info, **dict(zip(self.weight_keys, state.weights, strict=True))}
        return state_next, rewards, done, info


def mi_spe_summary(scenario: str | Scenario, params: MultiIssueParams) -> dict[str, Any]:
    """The SPE of a complete-information scenario under the settings of ``params``:
    ``outcome``, ``round``, ``agreement`` ({issue: value}, :func:`mi_issue_values`), ``offer``
    (K,) natural units, ``supplier_utility`` / ``retailer_utility`` (None without a deal),
    ``supplier_payoff`` / ``retailer_payoff`` (reward units)."""
    sc = load_scenario(scenario)
    spe = solve_scenario_spe(sc, params)
    u = spe.utilities or (None, None)
    return {"outcome": spe.outcome, "round": spe.round,
            "agreement": mi_issue_values(sc, spe.agreement),
            "offer": None if spe.agreement is None else list(spe.agreement),
            "supplier_utility": u[0], "retailer_utility": u[1],
            "supplier_payoff": spe.payoffs[0], "retailer_payoff": spe.payoffs[1]}


def mi_episode_spes(scenario: str | Scenario, params: MultiIssueParams,
                    weights: np.ndarray, reservation: np.ndarray) -> dict[str, np.ndarray]:
    """The SPE of the complete-information game of each (weights (S, 2, K), reservation
    (S, 2)) pair under the reward settings of ``params``; arrays (S,): ``deal`` (bool),
    ``round``, ``supplier_utility`` / ``retailer_utility`` (nan without a deal),
    ``supplier_payoff`` / ``retailer_payoff`` (reward units). Identical pairs are solved once."""
    sc = load_scenario(scenario)
    w = np.asarray(weights, np.float64)
    r = np.asarray(reservation, np.float64)
    out = {k: np.zeros(len(w)) for k in ("round", "supplier_utility", "retailer_utility",
                                          "supplier_payoff", "retailer_payoff")}
    out["deal"] = np.zeros(len(w), bool)
    cache: dict[bytes, Any] = {}
    for i in range(len(w)):
        key = w[i].tobytes() + r[i].tobytes()
        if key not in cache:
            cache[key] = solve_scenario_spe(sc, params, w[i], r[i])
        spe = cache[key]
        u = spe.utilities or (math.nan, math.nan)
        out["deal"][i] = spe.outcome == "deal"
        out["round"][i] = spe.round
        out["supplier_utility"][i], out["retailer_utility"][i] = u
        out["supplier_payoff"][i], out["retailer_payoff"][i] = spe.payoffs
    return out


def mi_record_draws(record: dict[str, np.ndarray], k_num: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(weights (N, 2, K), reservation (N, 2)) of a :class:`MIRecordingEnv` record."""
    w = np.stack([np.asarray(record[f"weight_{a}_{k}"], np.float64)
                  for a in range(2) for k in range(k_num)], axis=-1)
    r = np.stack([np.asarray(record[f"{s}_reservation"], np.float64)
                  for s in ("supplier", "retailer")], axis=-1)
    return w.reshape(-1, 2, k_num), r


def mi_spe_distance(record: dict[str, np.ndarray], spes: dict[str, np.ndarray],
                    prefix: str) -> dict[str, float]:
    """Distances of played episodes from their SPEs (``spes``: :func:`mi_episode_spes` of the
    same episodes, or of their first S; the record is cut to them). Keys ``<prefix>...``:

    the SPE's means ``round``, ``supplier_utility`` / ``retailer_utility`` (over its deals),
    ``supplier_payoff`` / ``retailer_payoff``; ``round_match`` (share of episodes ending in
    the SPE's round with its outcome), ``round_error`` (|mean round - mean SPE round|); over
    the episodes where both agree: ``supplier_utility_rel_error`` / ``retailer_..`` (mean
    |u - u*| / u*), ``utility_within_2pct`` (share with both sides within 2 %);
    ``supplier_payoff_error`` / ``retailer_..`` (|mean reward - mean SPE payoff|) and
    ``supplier_reward_gap`` / ``retailer_..`` (mean reward - mean SPE payoff, signed);
    ``episodes`` (S)."""
    s = len(spes["round"])
    rec = {k: np.asarray(v, np.float64)[:s] for k, v in record.items()}
    deal = rec["deal"] > 0.5
    both = deal & spes["deal"]
    out: dict[str, float] = {"episodes": float(s), "round": float(spes["round"].mean())}
    same = (rec["round"] == spes["round"]) & (deal == spes["deal"])
    out["round_match"] = float(same.mean())
    out["round_error"] = float(abs(rec["round"].mean() - spes["round"].mean()))
    within = np.ones(s, bool)
    for side in ("supplier", "retailer"):
        ref = spes[f"{side}_utility"]
        out[f"{side}_utility"] = float(np.nanmean(ref)) if spes["deal"].any() else math.nan
        rel = _rel(rec[f"{side}_utility"], ref)
        out[f"{side}_utility_rel_error"] = float(rel[both].mean()) if both.any() else math.nan
        within &= rel <= WITHIN
        pay, reward = spes[f"{side}_payoff"].mean(), rec[f"{side}_reward"].mean()
        out[f"{side}_payoff"] = float(pay)
        out[f"{side}_payoff_error"] = float(abs(reward - pay))
        out[f"{side}_reward_gap"] = float(reward - pay)
    out["utility_within_2pct"] = float(within[both].mean()) if both.any() else math.nan
    return {prefix + k: v for k, v in out.items()}


# ----------------------------------------------------------------------------- bundles SPE
#: Two returns are the same within this many value points (the env computes them in float32).
BUNDLES_RETURN_TOL = 1e-4


def bundles_instance(p: BundlesParams, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool (3,), values (2, 3)) int64 of instance ``index`` of ``p``'s table."""
    row = np.asarray(p.table)[int(index)].astype(np.int64)
    return row[:NUM_ITEMS], row[NUM_ITEMS:].reshape(2, NUM_ITEMS)


def bundles_instance_spes(p: BundlesParams, indices: Any) -> dict[int, BundlesSPE]:
    """The SPE (:func:`eqx_jax.solvers.bundles.solve_spe`, complete information) of each
    distinct instance index in ``indices`` under the settings of ``p``, each solved once."""
    out: dict[int, BundlesSPE] = {}
    for i in sorted({int(i) for i in np.asarray(indices).reshape(-1)}):
        pool, values = bundles_instance(p, i)
        out[i] = solve_spe(pool, values, int(p.max_turns), float(p.discount),
                           float(p.prob_end))
    return out


def bundles_mean_surplus(p: BundlesParams) -> float:
    """The mean largest welfare (both players' values, each item type to whoever values it
    more; value points) over the instances a reset draws (the fixed one where ``instance``
    is set)."""
    n = np.asarray(p.table).shape[0]
    indices = [int(p.instance)] if int(p.instance) >= 0 else range(n)
    return float(np.mean([max_welfare(*bundles_instance(p, i)) for i in indices]))


def bundles_spe_distance(record: dict[str, np.ndarray], p: BundlesParams) -> dict[str, float]:
    """How played episodes compare with the SPE of their instance's complete-information game
    (the benchmark of full information where the values are private).

    ``record``: a :func:`eqx_jax.simulate.play_batch` record of the bundles env (arrays (N,),
    with ``instance`` and ``supplier_items_k``). The SPE path has no chance end, so episodes
    that ended by chance are left out of the shares (``spe_episodes`` counts the others).
    Over those episodes: ``spe_agreement_share``, the share whose outcome is the SPE's (a
    deal on the SPE's split, player 0's items equal, at the SPE's turn; no deal where the SPE
    has none); ``spe_returns_share``, the share with both returns equal to the SPE's (within
    :data:`BUNDLES_RETURN_TOL`; no deal pays 0): several splits can be worth the same, so
    this is the share of outcomes equivalent to the SPE's; ``spe_turn_match`` (the SPE's
    final turn and outcome), ``spe_turn``, ``mean_turn`` and ``spe_turn_error`` (|difference|,
    turns); ``spe_agreement_instances`` / ``spe_returns_instances``, the same shares averaged
    per instance (each instance played counts once). Over all episodes: ``spe_<side>_return``
    (the SPE's expected returns, chance end included) and ``spe_<side>_return_error`` (|mean
    reward - that|, value points)."""
    r = {k: np.asarray(v, np.float64) for k, v in record.items()}
    inst = r["instance"].astype(np.int64)
    spes = bundles_instance_spes(p, inst)

    def per_episode(f) -> np.ndarray:
        table = {i: f(s) for i, s in spes.items()}
        return np.stack([table[i] for i in inst])

    agree = per_episode(lambda s: s.agreement).astype(bool)
    turn = per_episode(lambda s: s.turn).astype(np.float64)
    shares0 = per_episode(lambda s: s.shares[0]).astype(np.float64)  # (N, 3)
    values = per_episode(lambda s: s.values)  # (N, 2), the path's discounted values
    deal = r["deal"] > 0.5
    items = np.stack([r[f"supplier_items_{k}"] for k in range(NUM_ITEMS)], axis=-1)
    rewards = np.stack([r["supplier_reward"], r["retailer_reward"]], axis=-1)
    same_end = (deal == agree) & (r["round"] == turn)
    same_split = same_end & (~agree | np.all(items == shares0, axis=1))
    same_returns = (deal == agree) & np.all(np.abs(rewards - np.where(agree[:, None], values, 0.0))
                                            <= BUNDLES_RETURN_TOL, axis=1)
    kept = ~(r.get("chance_end", np.zeros_like(r["deal"])) > 0.5)

    def share(x: np.ndarray) -> float:
        return float(x[kept].mean()) if kept.any() else math.nan

    def by_instance(x: np.ndarray) -> float:
        cells = [x[kept & (inst == i)].mean() for i in spes if (kept & (inst == i)).any()]
        return float(np.mean(cells)) if cells else math.nan

    out = {"spe_episodes": float(kept.sum()), "spe_agreement_share": share(same_split),
           "spe_returns_share": share(same_returns), "spe_turn_match": share(same_end),
           "spe_turn": share(turn), "mean_turn": share(r["round"]),
           "spe_agreement_instances": by_instance(same_split),
           "spe_returns_instances": by_instance(same_returns)}
    out["spe_turn_error"] = abs(out["mean_turn"] - out["spe_turn"])
    for j, side in enumerate(("supplier", "retailer")):
        expected = per_episode(lambda s, j=j: s.returns[j])
        out[f"spe_{side}_return"] = float(expected.mean())
        out[f"spe_{side}_return_error"] = float(abs(rewards[:, j].mean() - expected.mean()))
    return out
