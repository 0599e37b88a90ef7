"""One episode of a game beyond one price against game theory: its drawn private values, the
utility of any offer to every agent, the exact subgame-perfect equilibrium of the
complete-information game of those values, and the optimality of the outcome.

What the server reports at the end of a session (and what a person at the table is compared
with). Plain NumPy on the host, one episode at a time; the solvers are the ones ``eqx solve``
runs (``eqx_jax.solvers``), so a session's equilibrium is the CLI's.

Units: the price-quantity game's utilities are the deal gains in currency units (supplier
``(p - c) q``, retailer ``a q - b q^2 / 2 - p q``); the multi-issue and group games' are the
linear-additive utilities in [0, 1]; the bundles game's the undiscounted value of each player's
items. Payoffs are rewards (reward units). Rounds are 1-based.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from eqx_jax.games.view import IssueView, offer_to_dict


def private_values(game: str, env: Any, state: Any) -> dict[str, Any]:
    """The private values an episode's first ``state`` holds, as plain JSON-able data."""
    s = jax.device_get(state)
    if game == "price-quantity":
        return {"unit_cost": float(s.unit_cost), "demand_intercept": float(s.demand_intercept)}
    if game in ("multi-issue", "group"):
        w = np.asarray(s.weights_array(), float).reshape(len(env.agents), -1)
        r = np.asarray(s.reservation_array(), float).reshape(-1)
        return {"weights": {a: [round(float(x), 6) for x in w[i]] for i, a in
                            enumerate(env.agents)},
                "reservation": {a: round(float(r[i]), 6) for i, a in enumerate(env.agents)}}
    if game == "bundles":
        return {"pool": [int(x) for x in s.pool],
                "values": {"supplier": [int(x) for x in s.values0],
                           "retailer": [int(x) for x in s.values1]}}
    raise ValueError(f"no private values for the game {game!r}")


def _arrays(env: Any, private: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray([private["weights"][a] for a in env.agents], float)
    r = np.asarray([private["reservation"][a] for a in env.agents], float)
    return w, r


def _solver_game(game: str, env: Any, params: Any, private: dict[str, Any]) -> Any:
    """The solver's complete-information game of a multi-issue or group episode."""
    w, r = _arrays(env, private)
    if game == "multi-issue":
        from eqx_jax.games.multi_issue import complete_information_game

        return complete_information_game(env.scenario, params, w, r)
    from eqx_jax.games.group import complete_information_group_game

    return complete_information_group_game(env.scenario, params, w, r)


def offer_utilities(game: str, env: Any, params: Any, private: dict[str, Any],
                    offer: Any) -> dict[str, float]:
    """Every agent's utility of ``offer`` (D,) in natural units (see the module units)."""
    x = np.asarray(offer, float).reshape(-1)
    if game == "price-quantity":
        c, a = private["unit_cost"], private["demand_intercept"]
        b = float(params.demand_slope)
        p, q = float(x[0]), float(x[1])
        return {"supplier": (p - c) * q, "retailer": a * q - 0.5 * b * q * q - p * q}
    if game in ("multi-issue", "group"):
        g = _solver_game(game, env, params, private)
        if game == "multi-issue":
            from eqx_jax.solvers.multi_issue import outcome_utilities
        else:
            from eqx_jax.solvers.group import outcome_utilities
        u = outcome_utilities(g, x)
        return {a: float(u[i]) for i, a in enumerate(env.agents)}
    if game == "bundles":
        pool = np.asarray(private["pool"], float)
        v0 = np.asarray(private["values"]["supplier"], float)
        v1 = np.asarray(private["values"]["retailer"], float)
        return {"supplier": float(v0 @ x), "retailer": float(v1 @ (pool - x))}
    raise ValueError(f"no utilities for the game {game!r}")


def _agreement(issues: tuple[IssueView, ...], offer: Any) -> dict[str, float] | None:
    return None if offer is None else offer_to_dict(issues, np.asarray(offer, float))


def episode_equilibrium(game: str, env: Any, params: Any, private: dict[str, Any],
                        issues: tuple[IssueView, ...]) -> dict[str, Any]:
    """The exact SPE of the complete-information game of this episode's private values:
    ``outcome``, ``round`` (the step it ends at), ``agreement`` (display values, None without
    a deal), ``utilities`` and ``payoffs`` per agent. The bundles game's ``payoffs`` are its
    expected returns (its chance end is an expectation)."""
    agents = tuple(env.agents)
    if game == "price-quantity":
        from eqx_jax.references import pq_spe_kwargs
        from eqx_jax.solvers.price_quantity import solve_pq_spe

        spe = solve_pq_spe(private["unit_cost"], private["demand_intercept"],
                           float(params.demand_slope), int(params.max_rounds),
                           **pq_spe_kwargs(params))
        deal = spe.outcome == "deal"
        offer = [spe.price, spe.quantity] if deal else None
        out = {"outcome": spe.outcome, "round": int(spe.round),
               "payoffs": {"supplier": float(spe.supplier_payoff),
                           "retailer": float(spe.retailer_payoff)}}
    elif game in ("multi-issue", "group"):
        g = _solver_game(game, env, params, private)
        if game == "multi-issue":
            from eqx_jax.solvers.multi_issue import solve_multi_issue_spe

            spe = solve_multi_issue_spe(g)
            step = spe.round
        else:
            from eqx_jax.solvers.group import solve_group_spe

            spe = solve_group_spe(g)
            step = spe.step
        offer = spe.agreement if spe.outcome == "deal" else None
        out = {"outcome": spe.outcome, "round": int(step),
               "payoffs": {a: float(x) for a, x in zip(agents, spe.payoffs, strict=True)}}
    elif game == "bundles":
        from eqx_jax.solvers.bundles import solve_spe

        pool = np.asarray(private["pool"])
        values = np.asarray([private["values"]["supplier"], private["values"]["retailer"]])
        spe = solve_spe(pool, values, int(params.max_turns), float(params.discount),
                        float(params.prob_end))
        offer = spe.shares[0] if spe.agreement else None
        out = {"outcome": "deal" if spe.agreement else "timeout", "round": int(spe.turn),
               "payoffs": {a: float(x) for a, x in zip(agents, spe.returns, strict=True)}}
    else:
        raise ValueError(f"no equilibrium for the game {game!r}")
    out["agreement"] = _agreement(issues, offer)
    out["utilities"] = (None if offer is None
                        else offer_utilities(game, env, params, private, offer))
    return out


def outcome_optimality(game: str, env: Any, params: Any, private: dict[str, Any],
                       agreement: Any | None) -> dict[str, Any]:
    """How good a deal ``agreement`` (D,) natural units is (``{}`` without a deal).

    price-quantity: ``efficiency`` (total gain / the largest total gain, at the efficient
    quantity) and ``supplier_share`` of the total gain. multi-issue and group: NegMAS's
    ``pareto_optimality``, ``nash_optimality``, ``kalai_optimality``, ``ks_optimality``,
    ``max_welfare_optimality`` and ``nash_product_optimality`` over the scenario's outcomes
    (:func:`eqx_jax.games.group_metrics.group_metrics`). bundles: ``efficiency`` (welfare /
    the largest welfare of the pool) and ``pareto_optimal``."""
    if agreement is None:
        return {}
    x = np.asarray(agreement, float).reshape(-1)
    if game == "price-quantity":
        u = offer_utilities(game, env, params, private, x)
        c, a, b = private["unit_cost"], private["demand_intercept"], float(params.demand_slope)
        q_star = float(np.clip((a - c) / b, 0.0, float(params.max_quantity)))
        best = a * q_star - 0.5 * b * q_star**2 - c * q_star
        total = u["supplier"] + u["retailer"]
        return {"efficiency": total / best if best > 1e-9 else None,
                "supplier_share": u["supplier"] / total if abs(total) > 1e-9 else None}
    if game in ("multi-issue", "group"):
        from eqx_jax.games.group_metrics import group_metrics

        w, r = _arrays(env, private)
        u = np.asarray([list(offer_utilities(game, env, params, private, x).values())])
        m = group_metrics(env.scenario, u, np.asarray([True]), w[None], r[None])
        keys = ("pareto_optimality", "nash_optimality", "kalai_optimality", "ks_optimality",
                "max_welfare_optimality", "nash_product_optimality")
        return {k: (None if k not in m or not np.isfinite(m[k]) else float(m[k])) for k in keys}
    if game == "bundles":
        from eqx_jax.solvers.bundles import max_welfare, pareto_mask

        pool = np.asarray(private["pool"])
        values = np.asarray([private["values"]["supplier"], private["values"]["retailer"]])
        u = offer_utilities(game, env, params, private, x)
        best = max_welfare(pool, values)
        return {"efficiency": (u["supplier"] + u["retailer"]) / best if best > 0 else None,
                "pareto_optimal": bool(pareto_mask(pool, values, x.astype(int)[None])[0])}
    raise ValueError(f"no optimality for the game {game!r}")


def utility_frontier(game: str, env: Any, params: Any, private: dict[str, Any],
                     ) -> dict[str, Any] | None:
    """A two-party episode's outcomes in utility space (what the dashboard draws): ``pareto``
    the Pareto frontier of the individually rational outcomes as (supplier, retailer) utility
    points sorted by the supplier's, and ``nash`` the Nash bargaining point on it (the
    disagreement point: the reservation values in the multi-issue game, no gain (0, 0)
    elsewhere). The price-quantity game's frontier is the segment of total gain ``S*`` (the
    efficient quantity) between (0, S*) and (S*, 0). None for the group game (N dimensions)."""
    from eqx_jax.outcomes import finite_reference

    if game == "group":
        return None
    if game == "price-quantity":
        c, a, b = private["unit_cost"], private["demand_intercept"], float(params.demand_slope)
        q = float(np.clip((a - c) / b, 0.0, float(params.max_quantity)))
        best = max(0.0, a * q - 0.5 * b * q * q - c * q)
        return {"pareto": [[0.0, best], [best, 0.0]], "nash": [best / 2, best / 2]}
    if game == "multi-issue":
        from eqx_jax.games.group_metrics import outcome_values

        w, r = _arrays(env, private)
        _, values = outcome_values(env.scenario)
        points, reservation = np.einsum("amk,ak->ma", values, w), r
    elif game == "bundles":
        from eqx_jax.solvers.bundles import split_values, splits

        pool = np.asarray(private["pool"])
        values = np.asarray([private["values"]["supplier"], private["values"]["retailer"]])
        points, reservation = split_values(pool, values, splits(pool)), np.zeros(2)
    else:
        raise ValueError(f"no utility frontier for the game {game!r}")
    ref = finite_reference(points, reservation)
    front = ref.pareto[np.argsort(ref.pareto[:, 0])]
    return {"pareto": np.round(front, 6).tolist(),
            "nash": np.round(ref.nash[0], 6).tolist() if len(ref.nash) else None}
