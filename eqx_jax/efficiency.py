"""Honest efficiency of price-game episodes: what was realised against what the episode allowed.

The founding design's metrics (``eqx_jax.metrics``) judge a deal by its price alone:
``surplus_captured`` is 1 for every deal when gains exist, however late the deal, and the
``pareto_score`` rewards a 50/50 split. Both ignore the cost of delay, which the reward models
charge every round (the seed model's time factor falls from 0.64 in round 2 to 0.36 in round 4
of T = 10). The figures here count it:

* :func:`best_welfare`: the largest sum of both rewards any outcome of the rules allows in an
  episode (a deal at any price in ``[0, max_price]`` in any round ``2..T`` — round 1 has no offer
  to accept —, a walk-away, a timeout).
* ``welfare_efficiency``: the realised sum of both rewards over that largest sum, pooled over a
  batch (sum over sum: a ratio per episode is unstable where little is at stake, e.g. where
  the only positive achievable sum is a speed bonus).
* the price of private information: each side's realised reward against its reward in the
  subgame-perfect equilibrium of the complete-information game of the drawn valuations
  (:func:`eqx_jax.equilibrium.spe_price_batch`), what it would get if both valuations were known.

NumPy float64 throughout, vectorised over episodes; rewards are reward units, valuations and
prices currency units. ``game`` below is the keyword set of
:func:`eqx_jax.equilibrium.spe_price_batch` (``eqx_jax.env.spe_kwargs(params)``) plus
``max_rounds``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from eqx_jax.equilibrium import chatterjee_samuelson, myerson_satterthwaite, spe_price_batch
from eqx_jax.payoffs import AGENTS, deal_factors, reward_model_name

__all__ = ["best_welfare", "deal_rounds", "efficiency_summary", "episode_efficiency",
           "mechanism_benchmarks"]


def deal_rounds(max_rounds: int, proposer: str = "alternate") -> range:
    """The rounds (1-based) in which a deal can close under ``proposer``: those where the
    standing offer came from the other side (both offer: any round after the first; only the
    supplier, who moves in odd rounds: the retailer's even rounds; only the retailer: the
    supplier's odd rounds from round 3)."""
    start, step = {"alternate": (2, 1), "supplier": (2, 2), "retailer": (3, 2)}[proposer]
    return range(start, int(max_rounds) + 1, step)


def best_welfare(v_s: np.ndarray, v_r: np.ndarray, max_rounds: int, *, reward_model: Any,
                 max_price: float, speed_bonus: float, bonus_fraction: float,
                 discount: tuple[float, float], walk_payoff: tuple[float, float],
                 timeout_payoff: tuple[float, float], proposer: str = "alternate"
                 ) -> np.ndarray:
    """The largest sum of both rewards achievable in each episode, reward units, shape of the
    broadcast ``v_s``, ``v_r`` (currency units).

    A deal at price ``p`` in round ``t`` pays ``(p - V_s) D_s(t) + (V_r - p) D_r(t) + 2 B(t)``:
    linear in ``p``, so its largest value is at ``p = 0`` or ``p = max_price`` (with equal
    factors, as in the seed model, every price gives ``(V_r - V_s) D(t) + 2 B(t)``). The maximum
    over the rounds of :func:`deal_rounds` of that, the walk-away sum and the timeout sum.
    """
    vs, vr = np.broadcast_arrays(np.asarray(v_s, np.float64), np.asarray(v_r, np.float64))
    model = reward_model_name(reward_model)
    best = np.full(vs.shape, max(sum(walk_payoff), sum(timeout_payoff)), np.float64)
    for t in deal_rounds(max_rounds, proposer):
        d_s, d_r, bonus = deal_factors(model, t, int(max_rounds), speed_bonus, bonus_fraction,
                                       tuple(discount))
        for p in (0.0, float(max_price)):
            best = np.maximum(best, (p - vs) * d_s + (vr - p) * d_r + 2.0 * bonus)
    return best


def _game_args(game: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    kw = dict(game)
    return int(kw.pop("max_rounds")), kw


def efficiency_summary(v_s: np.ndarray, v_r: np.ndarray, rewards: dict[str, np.ndarray],
                       game: dict[str, Any]) -> dict[str, float]:
    """Batch figures of episodes with valuations ``v_s``, ``v_r`` (N,) and realised rewards
    ``rewards[side]`` (N,), reward units.

    Returns ``welfare_efficiency`` (sum of realised welfare / sum of :func:`best_welfare`; nan
    when the latter is <= 0), ``mean_welfare`` and ``mean_best_welfare`` (per episode), and per
    side: ``<side>_spe_reward`` (mean complete-information SPE reward of the drawn valuations),
    ``<side>_reward_over_spe`` (mean realised / mean SPE reward; nan when the latter is 0) and
    ``<side>_price_of_private_information`` (mean SPE reward - mean realised reward), plus
    ``spe_welfare_efficiency``: the same efficiency for the SPE's outcomes (1 when the
    complete-information game always trades at once). The SPE figures are those of the
    alternating-offers game, left out where only one side makes offers.
    """
    vs, vr = np.asarray(v_s, np.float64), np.asarray(v_r, np.float64)
    if vs.size == 0:
        return {}
    rounds, kw = _game_args(game)
    best = best_welfare(vs, vr, rounds, **kw)
    realised = sum(np.asarray(rewards[a], np.float64) for a in AGENTS)
    total_best = float(best.sum())

    def ratio(x: float, y: float) -> float:
        return x / y if y > 0 else math.nan

    out = {
        "welfare_efficiency": ratio(float(realised.sum()), total_best),
        "mean_welfare": float(realised.mean()),
        "mean_best_welfare": float(best.mean()),
    }
    if kw.pop("proposer", "alternate") != "alternate":
        return out  # the SPE below is the alternating-offers game's
    spe = spe_price_batch(vs, vr, rounds, **kw)
    out |= {
        "spe_welfare_efficiency": ratio(
            float((spe["supplier_payoff"] + spe["retailer_payoff"]).sum()), total_best),
    }
    for side in AGENTS:
        mine = float(np.mean(rewards[side]))
        ref = float(spe[f"{side}_payoff"].mean())
        out[f"{side}_spe_reward"] = ref
        out[f"{side}_reward_over_spe"] = mine / ref if ref != 0 else math.nan
        out[f"{side}_price_of_private_information"] = ref - mine
    return out


def episode_efficiency(v_s: float, v_r: float, rewards: dict[str, float],
                       spe_payoffs: dict[str, float], game: dict[str, Any]) -> dict[str, Any]:
    """One episode's figures (a server session's result): ``welfare_efficiency`` (realised /
    best achievable sum; None when that is <= 0), ``best_welfare`` and
    ``price_of_private_information`` ({side: SPE payoff - realised reward}, reward units), from
    the session's rewards and its SPE payoffs (already solved by the caller)."""
    rounds, kw = _game_args(game)
    best = float(best_welfare(np.float64(v_s), np.float64(v_r), rounds, **kw))
    realised = sum(float(rewards[a]) for a in AGENTS)
    return {
        "welfare_efficiency": realised / best if best > 0 else None,
        "best_welfare": best,
        "price_of_private_information": {a: float(spe_payoffs[a]) - float(rewards[a])
                                         for a in AGENTS},
    }


def mechanism_benchmarks(v_s: np.ndarray, v_r: np.ndarray, deal: np.ndarray,
                         priors: tuple[float, float, float, float]) -> dict[str, Any]:
    """Gains from trade (currency units, ``E[(V_r - V_s) 1{deal}]``: what the mechanism-design
    bounds measure, a deal's delay not counted) against what any procedure could reach with the
    uniform ``priors`` ``(supplier_low, supplier_high, retailer_low, retailer_high)``, each
    ``low < high``:

    * ``first_best_gains``: ``E[(V_r - V_s)^+]``, trade exactly when there are gains;
    * ``second_best_gains``: the Myerson-Satterthwaite bound, the most any incentive-compatible,
      individually rational, budget-balanced mechanism reaches
      (:func:`eqx_jax.equilibrium.myerson_satterthwaite`);
    * ``chatterjee_samuelson_gains``: the linear equilibrium of the k = 1/2 double auction
      (:func:`eqx_jax.equilibrium.chatterjee_samuelson`; its ``valid`` flag says whether the
      linear strategies are an equilibrium for these supports).

    Per batch (``v_s``, ``v_r``, ``deal``: (N,)): ``realised_gains`` (mean), its ratio to each
    bound (``gains_over_first_best``, ``..._second_best``, ``..._chatterjee_samuelson``), and
    ``trade_rate_with_gains`` / ``trade_rate_without_gains`` (deal rate where ``V_r > V_s`` and
    where not; nan where no such episode). The bounds are expectations under the priors, the
    realised gains a sample mean: with N episodes they differ by sampling error
    (~``std / sqrt(N)``)."""
    vs, vr = np.asarray(v_s, np.float64), np.asarray(v_r, np.float64)
    deal = np.asarray(deal, bool)
    ms = myerson_satterthwaite(*priors)
    cs = chatterjee_samuelson(*priors)
    realised = float(np.where(deal, vr - vs, 0.0).mean())
    gains = vr > vs

    def ratio(bound: float | None) -> float:
        return realised / bound if bound else math.nan

    def rate(mask: np.ndarray) -> float:
        return float(deal[mask].mean()) if mask.any() else math.nan

    return {
        "first_best_gains": ms["first_best_gains"],
        "second_best_gains": ms["second_best_gains"],
        "chatterjee_samuelson_gains": cs["gains"],
        "chatterjee_samuelson_valid": bool(cs["valid"]),
        "supports_overlap": bool(cs["supports_overlap"]),
        "realised_gains": realised,
        "gains_over_first_best": ratio(ms["first_best_gains"]),
        "gains_over_second_best": ratio(ms["second_best_gains"]),
        "gains_over_chatterjee_samuelson": ratio(cs["gains"]),
        "trade_rate_with_gains": rate(gains),
        "trade_rate_without_gains": rate(~gains),
    }
