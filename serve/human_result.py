"""A person's result at the end of a session: against the game's equilibrium and against an
agent in their seat.

The benchmark replays the same session (same seed, so the same private values and the same
opponents' randomness) with the person's seat played by an agent: the first trained policy at
the table that has a network for that seat (a self-play policy: "the trained agent in its own
seat"), else the seat's default (the price game: the server's default policy for the role, the
other games: the classic negotiator a seat gets by default). Only rewards and the outcome are
computed (no phrasing, nothing stored).

Units: rewards in reward units; utilities as the game defines them (the price game: the deal
gain in currency units, ``price - V_s`` / ``V_r - price``; others: ``eqx_jax.episode_reference``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from anyio import to_thread

from eqx_jax.env import AGENTS
from serve.engine import HUMAN, PolicySpec, play_move

if TYPE_CHECKING:
    from serve.db import SimSession
    from serve.simulation import Plan, SimulationManager
    from serve.tables import Table


def _trained_for(manager: SimulationManager, specs: list[PolicySpec], agent: str,
                 ) -> PolicySpec | None:
    """The first trained policy among ``specs`` with a network for ``agent``."""
    for spec in specs:
        if spec.kind != "trained":
            continue
        lp = manager.engine.load(spec.name, spec.path)
        try:
            lp.config.network_for(agent)
        except (KeyError, ValueError):
            continue
        if agent in lp.roles or lp.config.game == "group":
            return spec
    return None


def benchmark_spec(manager: SimulationManager, specs: list[PolicySpec], seat: int,
                   agent: str, game: str) -> PolicySpec:
    """What plays the person's seat in the benchmark (see the module docstring)."""
    trained = _trained_for(manager, specs, agent)
    if trained is not None:
        return trained
    if game == "price":
        return manager.resolve(None, agent)
    from serve.tables import FALLBACK_FIRST, FALLBACK_OTHERS

    return PolicySpec("negotiator", FALLBACK_FIRST if seat == 0 else FALLBACK_OTHERS)


def _play_out(play: Any, state: Any, rounds: int, agents: tuple[str, ...],
              ) -> tuple[dict[str, Any], dict[str, float]]:
    """Play ``play(state, t) -> (state, move, rewards)`` to the session's end: the last move and
    every agent's total reward."""
    totals = {a: 0.0 for a in agents}
    move: dict[str, Any] = {}
    for t in range(rounds):
        state, move, rewards = play(state, t)
        for a in totals:
            totals[a] += rewards[a]
        if move["done"]:
            break
    return move, totals


def _price_replay(manager: SimulationManager, row: SimSession, sup: PolicySpec,
                  ret: PolicySpec) -> dict[str, Any]:
    game = manager.engine.game(sup, ret, row.max_rounds, row.deterministic)
    _, state = game.reset.one(np.int32(row.seed), game.params,
                              np.float32(row.supplier_valuation),
                              np.float32(row.retailer_valuation))
    move, totals = _play_out(lambda s, t: play_move(game, row.seed, s, t), state,
                             row.max_rounds, AGENTS)
    deal = bool(move.get("deal"))
    price = move["price"] if deal else None
    utilities = ({"supplier": price - row.supplier_valuation,
                  "retailer": row.retailer_valuation - price} if deal else None)
    return {"deal": deal, "round": int(move.get("round", 0)), "rewards": totals,
            "utilities": utilities, "agreement": {"price": price} if deal else None}


def _table_replay(manager: SimulationManager, row: SimSession, table: Table,
                  private: dict[str, Any], spec: Any) -> dict[str, Any]:
    from eqx_jax import episode_reference as reference
    from eqx_jax.games.view import offer_from_dict
    from serve.tables import build_table, play_table_move

    bench = build_table(manager.engine, spec)
    _, state = bench.reset.one(np.int32(row.seed), bench.params)
    move, totals = _play_out(lambda s, t: play_table_move(bench, row.seed, s, t), state,
                             row.max_rounds, bench.agents)
    deal = bool(move.get("deal"))
    utilities = None
    if deal:
        natural = offer_from_dict(table.issues, move["offer"])
        utilities = reference.offer_utilities(table.game, table.env, table.params, private,
                                              natural)
    return {"deal": deal, "round": int(move.get("round", 0)), "rewards": totals,
            "utilities": utilities, "agreement": move["offer"] if deal else None}


async def human_results(manager: SimulationManager, row: SimSession, plan: Plan,
                        final: dict[str, Any], table: Table | None = None,
                        private: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One entry per seat a person played: their reward and utility, the equilibrium's, and the
    benchmark agent's in the same seat (same session replayed)."""
    seats = [i for i, s in enumerate(row.seats or []) if s.get("policy") == HUMAN]
    out = []
    for seat in seats:
        agent = row.seats[seat]["agent"]
        if plan.table is None:
            specs = [plan.sup, plan.ret]
        else:
            specs = list(plan.table.seats)
        bench = benchmark_spec(manager, specs, seat, agent, row.game_name)
        replaced = [bench if i == seat else s for i, s in enumerate(specs)]
        if plan.table is None:
            got = await to_thread.run_sync(_price_replay, manager, row, *replaced)
            eq_pay = (final.get("equilibrium_payoffs") or {}).get(agent)
            eq_u = None
            if final.get("equilibrium_price") is not None:
                p = final["equilibrium_price"]
                eq_u = (p - row.supplier_valuation if agent == "supplier"
                        else row.retailer_valuation - p)
            mine_u = (final["utilities"] or {}).get(agent) if final.get("utilities") else None
        else:
            spec = dataclasses.replace(plan.table, seats=tuple(replaced))
            got = await to_thread.run_sync(_table_replay, manager, row, table, private, spec)
            eq = final["equilibrium"]
            eq_pay = eq["payoffs"].get(agent)
            eq_u = (eq["utilities"] or {}).get(agent) if eq.get("utilities") else None
            mine_u = (final["utilities"] or {}).get(agent) if final.get("utilities") else None
        out.append({
            "seat": seat, "agent": agent, "reward": final["rewards"][agent], "utility": mine_u,
            "equilibrium": {"payoff": eq_pay, "utility": eq_u},
            "benchmark": {"policy": bench.name, "reward": got["rewards"][agent],
                          "utility": (got["utilities"] or {}).get(agent)
                          if got["utilities"] else None,
                          "deal": got["deal"], "round": got["round"],
                          "agreement": got["agreement"]}})
    return out
