"""Negotiation metrics, vectorized over batches of episodes.

The first four are the founding design's definitions, unchanged (see its "Evaluation Metrics"):

* ``nash_distance``: ``|p - m| / m`` with ``m = (V_s + V_r) / 2``, the *midpoint* price.
* ``pareto_score``: 0 if ``p`` is outside ``[V_s, V_r]``, else ``1 - |(p - V_s) - S/2| / (S/2)``
  with ``S = V_r - V_s`` (1 at the midpoint, 0 at either valuation).
* ``negotiation_efficiency``: 0 without a deal, else ``min(1, 1 - rounds/T + 0.2 [rounds <= 3])``.
* deal rate and average rounds.

Plus: the surplus captured (realised gains from trade over the available gains ``max(S, 0)``),
each side's share of the realised surplus, and the true Nash bargaining solution of the game
(:func:`nash_bargaining_solution`), which is *not* the midpoint in general.

All functions are elementwise over arrays of any (matching) shape, ``jit``/``vmap``-able.
Prices and valuations are currency units; rounds are counts.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from eqx_jax.efficiency import efficiency_summary

# Same tolerance as the env: rounds are integers, so t < f*T is t + eps < f*T for float f*T.
BONUS_EPS = 1e-3


def nash_distance(price: jax.Array, v_s: jax.Array, v_r: jax.Array) -> jax.Array:
    """Founding design: relative distance of the deal price from the midpoint (V_s + V_r) / 2.

    This is *not* a distance from any equilibrium of the game; see the README. 0 when the midpoint
    is 0 (both valuations 0) to avoid a division by zero.
    """
    mid = (v_s + v_r) / 2
    safe_mid = jnp.where(mid > 0, mid, 1.0)
    return jnp.where(mid > 0, jnp.abs(price - mid) / safe_mid, 0.0)


def pareto_score(price: jax.Array, v_s: jax.Array, v_r: jax.Array) -> jax.Array:
    """Founding design's "Pareto efficiency score": closeness of the split to 50/50, in [0, 1].

    0 if the price is outside [V_s, V_r]; when V_s == V_r == price the (only) split scores 1.
    """
    half = (v_r - v_s) / 2
    inside = (v_s <= price) & (price <= v_r)
    safe_half = jnp.where(half > 0, half, 1.0)
    score = jnp.where(half > 0, 1.0 - jnp.abs((price - v_s) - half) / safe_half, 1.0)
    return jnp.where(inside, score, 0.0)


def negotiation_efficiency(rounds: jax.Array, max_rounds: jax.Array, deal: jax.Array) -> jax.Array:
    """Founding design: ``min(1, 1 - rounds/T + 0.2 [rounds <= 3])`` for a deal, else 0."""
    r = jnp.asarray(rounds, jnp.float32)
    eff = 1.0 - r / jnp.asarray(max_rounds, jnp.float32) + jnp.where(r <= 3, 0.2, 0.0)
    return jnp.where(deal, jnp.minimum(1.0, eff), 0.0)


def episode_metrics(
    deal: jax.Array,
    price: jax.Array,
    rounds: jax.Array,
    v_s: jax.Array,
    v_r: jax.Array,
    max_rounds: jax.Array,
) -> dict[str, jax.Array]:
    """Per-episode metrics (0 where undefined, e.g. no deal; aggregate with :func:`summarize`).

    ``surplus_captured``: realised gains from trade / available gains ``max(V_r - V_s, 0)``
    (1 for a deal when gains exist, 0 without; a deal with V_s > V_r captures a negative amount).
    ``supplier_share``/``retailer_share``: ``(p - V_s) / S`` and ``(V_r - p) / S`` for a deal.
    """
    surplus = v_r - v_s
    has_gains = surplus > 0
    safe_s = jnp.where(has_gains, surplus, 1.0)
    return {
        "nash_distance": jnp.where(deal, nash_distance(price, v_s, v_r), 0.0),
        "pareto_score": jnp.where(deal, pareto_score(price, v_s, v_r), 0.0),
        "negotiation_efficiency": negotiation_efficiency(rounds, max_rounds, deal),
        "surplus_captured": jnp.where(deal & has_gains, 1.0, 0.0),
        "supplier_share": jnp.where(deal & has_gains, (price - v_s) / safe_s, 0.0),
        "retailer_share": jnp.where(deal & has_gains, (v_r - price) / safe_s, 0.0),
    }


def summarize(episodes: dict[str, jax.Array | np.ndarray],
              game: dict[str, Any] | None = None) -> dict[str, float]:
    """Aggregate finished episodes (arrays with one entry per episode) into scalar metrics.

    ``episodes`` needs ``deal``, ``price``, ``round``, ``supplier_value``, ``retailer_value``,
    ``max_rounds`` (scalar or per episode) and optionally ``supplier_reward``/``retailer_reward``.
    Means over *deals* (the founding design evaluates these per deal price): ``nash_distance``,
    ``pareto_score``, ``mean_price``, ``rounds_to_deal``, the shares. Means over *all* episodes:
    ``deal_rate``, ``mean_rounds``, ``negotiation_efficiency``, rewards. ``surplus_captured`` is
    total realised gains over total available gains (the ex-post efficiency of the batch).
    A mean over zero deals is ``nan``, so callers can tell "no deals" from 0.

    ``surplus_captured`` and ``pareto_score`` ignore *when* the deal closes; with ``game`` (the
    game's settings: ``eqx_jax.env.spe_kwargs(params)`` plus ``max_rounds``) and the rewards,
    the figures of :func:`eqx_jax.efficiency.efficiency_summary` are added, which count it:
    ``welfare_efficiency`` and each side's reward against the complete-information SPE of the
    drawn valuations.
    """
    e = {k: np.asarray(v) for k, v in episodes.items()}
    deal = e["deal"].astype(bool)
    n = deal.size
    p, vs, vr, r = e["price"], e["supplier_value"], e["retailer_value"], e["round"]
    per = {k: np.asarray(v) for k, v in episode_metrics(
        deal, p, r, vs, vr, np.broadcast_to(e["max_rounds"], deal.shape)).items()}
    n_deal = int(deal.sum())

    def over_deals(x: np.ndarray) -> float:
        return float(x[deal].mean()) if n_deal else float("nan")

    def over_all(x: np.ndarray) -> float:
        return float(x.mean()) if n else float("nan")

    gains_avail = np.maximum(vr - vs, 0.0).sum()
    realised = np.where(deal, vr - vs, 0.0).sum()
    out = {
        "episodes": n,
        "deal_rate": over_all(deal),
        "mean_rounds": over_all(r),
        "rounds_to_deal": over_deals(r.astype(np.float64)),
        "mean_price": over_deals(p),
        "nash_distance": over_deals(per["nash_distance"]),
        "pareto_score": over_deals(per["pareto_score"]),
        "negotiation_efficiency": over_all(per["negotiation_efficiency"]),
        "surplus_captured": float(realised / gains_avail) if gains_avail > 0 else float("nan"),
        "supplier_share": over_deals(per["supplier_share"]),
        "retailer_share": over_deals(per["retailer_share"]),
    }
    for side in ("supplier", "retailer"):
        if f"{side}_reward" in e:
            out[f"{side}_reward"] = float(e[f"{side}_reward"].mean())
    if game is not None and all(f"{a}_reward" in e for a in ("supplier", "retailer")):
        out.update(efficiency_summary(vs, vr, {a: e[f"{a}_reward"] for a in
                                               ("supplier", "retailer")}, game))
    if "walk_away" in e:
        out["walk_rate"] = float(np.asarray(e["walk_away"]).mean())
    if "timeout" in e:
        out["timeout_rate"] = float(np.asarray(e["timeout"]).mean())
    return out


def nash_bargaining_solution(
    v_s: float,
    v_r: float,
    max_rounds: int = 10,
    *,
    reward_model: str = "seed",
    max_price: float = 10000.0,
    speed_bonus: float = 5.0,
    bonus_fraction: float = 0.3,
    discount: tuple[float, float] = (0.95, 0.95),
    disagreement: tuple[float, float] = (-5.0, -5.0),
) -> dict[str, float | int | str | None]:
    """The Nash bargaining solution of the game (complete information), in closed form.

    Maximises ``(u_s - d_s)(u_r - d_r)`` over every agreement the game allows — a price ``p`` in
    ``[0, max_price]`` accepted in round ``t`` in ``2..T`` (round 1 has no offer to accept) — with
    the game's own payoffs ``u_i(p, t)`` and the disagreement point ``d`` (default: the timeout
    payoffs, what the two get if they simply fail to agree).

    Where it differs from the founding design's midpoint ``(V_s + V_r) / 2``: in utility space the
    NBS equalises the *gains over disagreement* weighted by the price slopes, so with payoff slopes
    ``D_s, D_r`` and constants ``c_i = bonus - d_i`` the price is
    ``p* = (V_s + V_r)/2 + (c_r / D_r - c_s / D_s) / 2``. It equals the midpoint only when both
    sides discount alike and have equal disagreement payoffs (the default seed game); asymmetric
    penalties, unequal discount factors (``discounted`` model) or V_s > V_r move it or remove it.
    It also picks the round (the earliest, where payoffs are least discounted) — the midpoint does
    not say when. Returns price/round/payoffs, or ``outcome="no_agreement"`` when no agreement
    beats the disagreement point for both.
    """
    if reward_model not in ("seed", "discounted"):
        raise ValueError(f"reward_model must be 'seed' or 'discounted', got {reward_model!r}")
    best: tuple[float, int, float, float, float] | None = None
    d_s, d_r = disagreement
    for t in range(2, int(max_rounds) + 1):
        if reward_model == "seed":
            slope_s = slope_r = (1.0 - t / max_rounds) ** 2
            bonus = speed_bonus if t + BONUS_EPS < bonus_fraction * max_rounds else 0.0
        else:
            slope_s, slope_r = discount[0] ** t, discount[1] ** t
            bonus = 0.0
        c_s, c_r = bonus - d_s, bonus - d_r
        # Feasible prices: both gains >= 0 and p in [0, max_price].
        lo, hi = 0.0, max_price
        if slope_s > 0:
            lo = max(lo, v_s - c_s / slope_s)
        elif c_s < 0:
            continue
        if slope_r > 0:
            hi = min(hi, v_r + c_r / slope_r)
        elif c_r < 0:
            continue
        if lo > hi:
            continue
        if slope_s > 0 and slope_r > 0:
            p = (v_s + v_r) / 2 + (c_r / slope_r - c_s / slope_s) / 2
        else:  # a flat side: the product is linear or constant in p; default to the midpoint
            p = (v_s + v_r) / 2
        p = min(max(p, lo), hi)
        u_s = (p - v_s) * slope_s + bonus
        u_r = (v_r - p) * slope_r + bonus
        prod = (u_s - d_s) * (u_r - d_r)
        if best is None or prod > best[0] + 1e-12:
            best = (prod, t, p, u_s, u_r)
    if best is None or best[0] <= 0:
        return {"outcome": "no_agreement", "price": None, "round": None,
                "supplier_payoff": d_s, "retailer_payoff": d_r}
    _, t, p, u_s, u_r = best
    return {"outcome": "agreement", "price": p, "round": t,
            "supplier_payoff": u_s, "retailer_payoff": u_r}
