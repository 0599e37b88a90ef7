"""The sessions of the games beyond one price: planning one from a request (seats, policies,
styles, the game's settings) and playing it move by move (:mod:`serve.tables`), phrased
(:mod:`serve.phrasing.terms`), stored before it is streamed, and ended with every agent's
utility, the exact equilibrium of the drawn private values and the optimality of the outcome
(:mod:`eqx_jax.episode_reference`).

Move payloads carry the founding design's fields (``agent``, ``round``, ``action``, ``price``
(the offer's unit price where the game has one), ``message``, ``timestamp``) plus ``game``,
``seat`` and ``offer`` (every issue's display value by name). The private values are not in the
moves; the final message reveals them with the equilibrium.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from eqx_jax import episode_reference as reference
from eqx_jax.games.registry import get_game
from eqx_jax.games.view import as_seen_by, offer_from_dict
from eqx_jax.negotiators import GAME_NEGOTIATORS
from serve.engine import HUMAN, PolicyError, PolicySpec
from serve.human import human_payload
from serve.human_result import human_results
from serve.phrasing.terms import TermsContext
from serve.schemas import MAX_SESSION_ROUNDS, SimulationStartRequest
from serve.tables import (
    FALLBACK_FIRST,
    FALLBACK_OTHERS,
    Table,
    TableSpec,
    build_table,
    freeze_settings,
    price_of,
    read_table_move,
    table_game,
    table_step_args,
)

if TYPE_CHECKING:
    from serve.db import SimSession
    from serve.simulation import LiveFeed, SimulationManager


#: Games whose classic negotiators include NegMAS's time-based ones (``negmas_boulware``, ...).
NEGMAS_GAMES = ("multi-issue", "group")


def _seat_agents(req: SimulationStartRequest) -> tuple[str, ...]:
    """The agents of the requested game (before any policy is resolved)."""
    g = get_game(req.game)
    options = {"agents": req.agents} if req.agents is not None else {}
    try:
        return tuple(g.env(req.scenario, **options).agents)
    except FileNotFoundError as e:
        raise PolicyError("scenario", str(e)) from None
    except ValueError as e:
        field = getattr(e, "field", None)
        raise PolicyError("agents" if field == "agents" else "scenario", str(e)) from None


def _names(req: SimulationStartRequest, agents: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """(request field, policy name or None for the default) per seat."""
    two = (req.supplier_policy, req.retailer_policy)
    if req.policies is not None:
        for f, v in zip(("supplier_policy", "retailer_policy"), two, strict=True):
            if v is not None:
                raise PolicyError(f, f"give either policies (one per seat) or {f}, not both")
        if len(req.policies) != len(agents):
            raise PolicyError("policies", f"{len(agents)} policies are needed, one per seat "
                              f"({', '.join(agents)}), got {len(req.policies)}")
        return [(f"policies[{i}]", n) for i, n in enumerate(req.policies)]
    if len(agents) != 2 and any(v is not None for v in two):
        f = "supplier_policy" if two[0] is not None else "retailer_policy"
        raise PolicyError(f, f"the {req.game} game has {len(agents)} seats: give policies, "
                          "one per seat")
    if len(agents) == 2:
        return [("supplier_policy", two[0]), ("retailer_policy", two[1])]
    return [(f"policies[{i}]", None) for i in range(len(agents))]


def _styles(req: SimulationStartRequest, agents: tuple[str, ...]) -> list[str]:
    if req.styles is not None:
        if len(req.styles) != len(agents):
            raise PolicyError("styles", f"{len(agents)} styles are needed, one per seat "
                              f"({', '.join(agents)}), got {len(req.styles)}")
        return list(req.styles)
    if len(agents) == 2:
        return [req.supplier_style, req.retailer_style]
    return ["cooperative"] * len(agents)


def resolve_seat(manager: SimulationManager, game: str, field: str, name: str | None,
                 first: bool) -> PolicySpec:
    """A seat's policy (blocking: DB lookup): a classic negotiator of the game or a registered
    trained policy; 404 naming the field for a name that is neither."""
    if name is None:
        name = FALLBACK_FIRST if first else FALLBACK_OTHERS
    if name == HUMAN:
        return PolicySpec("human", HUMAN)
    if name in GAME_NEGOTIATORS or (game in NEGMAS_GAMES and name.startswith("negmas_")):
        return PolicySpec("negotiator", name)
    from serve.db import Policy

    with manager.db.session() as s:
        pol = s.get(Policy, name)
    if pol is None:
        extra = ", negmas_boulware, negmas_linear, negmas_conceder" if game in NEGMAS_GAMES else ""
        raise PolicyError(field, f"unknown policy {name!r}: not a registered policy id nor a "
                          f"classic negotiator of the {game} game "
                          f"({', '.join(GAME_NEGOTIATORS)}{extra})", status=404)
    return PolicySpec("trained", pol.id, pol.path)


def plan_table(manager: SimulationManager, req: SimulationStartRequest,
               ) -> tuple[TableSpec, dict[str, Any]]:
    """The table a request plays and the session columns it sets (blocking: DB lookups, policy
    files). :class:`PolicyError` naming the field otherwise."""
    agents = _seat_agents(req)
    names = _names(req, agents)
    styles = _styles(req, agents)
    seats = tuple(resolve_seat(manager, req.game, f, n, i == 0)
                  for i, (f, n) in enumerate(names))
    settings = dict(req.settings or {})
    if req.max_rounds is not None:
        settings["max_turns" if req.game == "bundles" else "max_rounds"] = req.max_rounds
    spec = TableSpec(game=req.game, scenario=req.scenario, agents=req.agents,
                     settings=freeze_settings(settings), seats=seats,
                     deterministic=req.deterministic)
    env, params = table_game(manager.engine, spec)
    rounds = int(params.max_rounds)
    if rounds > MAX_SESSION_ROUNDS:
        key = "max_turns" if req.game == "bundles" else "max_rounds"
        raise PolicyError(f"settings.{key}", f"a session is at most {MAX_SESSION_ROUNDS} rounds "
                          f"(max_rounds), got {rounds}")
    scenario = getattr(getattr(env, "scenario", None), "name", None)
    seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
    seat_rows = [{"agent": a, "policy": s.name, "style": st}
                 for a, s, st in zip(env.agents, seats, styles, strict=True)]
    g = get_game(req.game)
    values = dict(
        game_name=req.game, scenario=scenario, seats=seat_rows,
        supplier_valuation=None, retailer_valuation=None, max_rounds=rounds,
        supplier_style=styles[0], retailer_style=styles[1], supplier_policy=seats[0].name,
        retailer_policy=seats[1].name, deterministic=req.deterministic,
        move_delay_s=req.move_delay_s, seed=seed,
        game={"game": req.game, "scenario": scenario, "agents": list(env.agents),
              "settings": g.params_to_dict(params), "request_settings": settings})
    return spec, values


def table_request(row: SimSession) -> dict[str, Any]:
    """A table session's configuration as ``POST /simulation/start`` fields."""
    seats = row.seats or []
    out: dict[str, Any] = {"game": row.game_name, "max_rounds": row.max_rounds,
                           "policies": [s["policy"] for s in seats],
                           "styles": [s["style"] for s in seats],
                           "settings": (row.game or {}).get("request_settings") or None,
                           "move_delay_s": row.move_delay_s, "seed": row.seed,
                           "deterministic": row.deterministic}
    if row.game_name in ("multi-issue", "group"):
        out["scenario"] = row.scenario
    if row.game_name == "group":
        out["agents"] = len(seats)
    return out


def _context(table: Table, move: dict[str, Any], style: str, row: SimSession) -> TermsContext:
    return TermsContext(role=move["agent"], style=style, action=move["action"],
                       issues=tuple((i.name, i.unit) for i in table.issues), offer=move["offer"],
                       round=move["round"], max_rounds=row.max_rounds, seed=row.seed,
                       first_seat=move["seat"] == 0, views=table.issues)


def _payload(sid: str, t: int, game: str, move: dict[str, Any], phrased: Any) -> dict[str, Any]:
    return {
        "type": "MOVE", "session_id": sid, "seq": t, "game": game, "agent": move["agent"],
        "seat": move["seat"], "round": move["round"], "action": move["action"],
        "offer": move["offer"], "price": price_of(move["offer"]), "message": phrased.text,
        "timestamp": time.time(), "phraser": phrased.phraser, "quality": phrased.quality,
        "quality_detail": phrased.quality_detail,
        "phrasing_latency_ms": round(phrased.latency_ms, 3),
        "fallback_reason": phrased.fallback_reason, "illegal_accept": move["illegal_accept"],
    }


async def play_table(manager: SimulationManager, feed: LiveFeed, row: SimSession,
                     spec: TableSpec) -> dict[str, Any]:
    """Play a table session to its end (moves stored, then published); the final message."""
    engine, sid = manager.engine, row.id
    from anyio import to_thread

    table = await to_thread.run_sync(build_table, engine, spec)
    _, state = await engine.batched(table.reset, np.int32(row.seed), table.params)
    private = await engine.run_step(reference.private_values, table.game, table.env, state)
    pool = private.get("pool") if table.game == "bundles" else None
    styles = {s["agent"]: s["style"] for s in row.seats or []}
    totals = {a: 0.0 for a in table.agents}
    counters: list[dict[str, Any]] = []
    move: dict[str, Any] = {}
    standing: dict[str, Any] | None = None
    n = len(table.agents)
    for t in range(row.max_rounds):
        hm = None
        if t % n in feed.human_seats:
            hm = await manager.human_turn(feed, row, t % n, table.agents[t % n], t, table.issues,
                                          _seen_by(standing, t % n, pool), pool)
        if hm is not None and hm.via == "deadline" and table.game == "bundles":
            move, rewards = _abandoned(table, t), {a: 0.0 for a in table.agents}
        else:
            state, facts = await engine.batched(table.step, *table_step_args(
                table, row.seed, state, t, None if hm is None else (hm.action_type, hm.natural)))
            move, rewards = read_table_move(table, facts)
        for a in totals:
            totals[a] += rewards[a]
        ctx = _context(table, move, styles[move["agent"]], row)
        phrased = await manager.phraser.phrase_terms(ctx, pool)
        payload = _payload(sid, t, table.game, move, phrased)
        if hm is not None:
            payload.update(human_payload(hm, payload))
        if move["action"] == "COUNTER":
            standing = move["offer"]
        await manager.writer.store(sid, payload)
        feed.publish(payload)
        if move["action"] == "COUNTER":
            counters.append({"agent": move["agent"], "round": move["round"],
                             "natural": move["natural_offer"]})
        if move["done"]:
            break
        if row.move_delay_s > 0:
            await asyncio.sleep(row.move_delay_s)
    final = await to_thread.run_sync(final_message, table, row, move, totals, private, counters)
    if feed.human_seats:
        assert feed.plan is not None
        final["human"] = await human_results(manager, row, feed.plan, final, table, private)
    return final


def _seen_by(standing: dict[str, Any] | None, seat: int,
             pool: list[int] | None) -> dict[str, Any] | None:
    """The standing offer as a person in ``seat`` sees it (bundles: the items they would keep;
    the streamed offer counts the supplier's)."""
    return as_seen_by(standing, pool, seat == 0)


def _abandoned(table: Table, t: int) -> dict[str, Any]:
    """The bundles game has no walk-away: a person's expired deadline ends it without a deal
    (both players' no-agreement value, 0), recorded as their walk-away."""
    seat = t % len(table.agents)
    return {"agent": table.agents[seat], "seat": seat, "round": t + 1, "action": "WALK_AWAY",
            "offer": None, "natural_offer": None, "done": True, "deal": False,
            "walk_away": True, "timeout": False, "chance_end": False, "illegal_accept": False}


def end_of(move: dict[str, Any]) -> str:
    """How a session ended: deal, walk_away, timeout, chance_end (bundles) or none."""
    for key in ("deal", "walk_away", "chance_end", "timeout"):
        if move.get(key):
            return key
    return "none"


def final_message(table: Table, row: SimSession, move: dict[str, Any],
                  totals: dict[str, float], private: dict[str, Any],
                  counters: list[dict[str, Any]]) -> dict[str, Any]:
    """``SIMULATION_COMPLETE`` of a table session (blocking: the solver runs here)."""
    g, env, params = table.game, table.env, table.params
    deal = bool(move.get("deal"))
    agreement = move["offer"] if deal else None
    natural = offer_from_dict(table.issues, agreement) if deal else None
    utilities = (reference.offer_utilities(g, env, params, private, natural) if deal
                 else None)
    spe = reference.episode_equilibrium(g, env, params, private, table.issues)
    offers_u = [{"agent": c["agent"], "round": c["round"],
                 "utilities": reference.offer_utilities(g, env, params, private, c["natural"])}
                for c in counters]
    return {
        "type": "SIMULATION_COMPLETE", "session_id": row.id, "game": g,
        "scenario": row.scenario, "agents": list(table.agents), "deal_reached": deal,
        "agreement": agreement, "final_price": price_of(agreement) if deal else None,
        "total_rounds": int(move.get("round", 0)), "end": end_of(move),
        "rewards": dict(totals), "utilities": utilities,
        "optimality": reference.outcome_optimality(g, env, params, private, natural),
        "equilibrium": spe, "private_values": private, "offer_utilities": offers_u,
        "frontier": reference.utility_frontier(g, env, params, private),
        "policies": {s["agent"]: s["policy"] for s in row.seats or []},
        "supplier_policy": row.supplier_policy, "retailer_policy": row.retailer_policy,
        "seed": row.seed, "timestamp": time.time(),
    }
