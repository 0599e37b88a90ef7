"""Sessions of the games beyond one price: the registry's env, one policy per seat, one jitted
call per move (the same env and policy code the trainer and ``eqx simulate`` run).

A *table* is a compiled game: ``reset(seed, params)`` draws the episode's private values from
the game's priors with the session's key (same seed, same values), ``step(seed, t, state,
params)`` plays move ``t + 1``: every seat's policy sees its own observation, the env applies
the mover's action. Compiled once per (game, scenario, options, seats) and cached on the
:class:`~serve.engine.Engine`; the settings are traced, so a session with other settings reuses
the compile. The price game keeps its own path (:mod:`serve.engine`), which sets the request's
valuations.

Units: natural units of the game (docs/games.md); offers leave here as display values by issue
name (:mod:`eqx_jax.games.view`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from eqx_jax.games.registry import get_game
from eqx_jax.games.view import IssueView, issue_views, offer_to_dict
from serve.batching import BatchedFn
from serve.engine import (
    HUMAN_PLACEHOLDER,
    Engine,
    PolicyError,
    PolicySpec,
    session_key,
    with_human,
)

#: Classic negotiators of the games beyond one price when a seat names none: the first seat
#: concedes late, the others early (the price game's fallback pair, extended to N seats).
FALLBACK_FIRST, FALLBACK_OTHERS = "boulware", "conceder"


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """What a session of a game beyond one price plays: the game, its scenario (None: the
    game's own), ``agents`` (group game: the first N parties; None: all), the request's
    ``settings`` overrides, and one resolved policy per seat."""

    game: str
    scenario: str | None
    agents: int | None
    settings: str  # freeze_settings(...) of the request's settings
    seats: tuple[PolicySpec, ...]
    deterministic: bool = True


@dataclasses.dataclass
class Table:
    """A compiled game: env, params, the issues as shown, and the jitted reset / step."""

    game: str
    env: Any
    params: Any
    issues: tuple[IssueView, ...]
    agents: tuple[str, ...]
    reset: BatchedFn
    step: BatchedFn


def freeze_settings(settings: dict[str, Any] | None) -> str:
    """Settings as canonical JSON: hashable (the compile cache's key) and stored as given."""
    return json.dumps(dict(settings or {}), sort_keys=True)


def _trained_config(engine: Engine, spec: TableSpec):
    """The config of the first trained seat (its env options and game settings), checked to
    be this game's; None when every seat is a classic negotiator."""
    config = None
    for i, seat in enumerate(spec.seats):
        if seat.kind != "trained":
            continue
        lp = engine.load(seat.name, seat.path)
        field = f"policies[{i}]"
        if lp.config.game != spec.game:
            raise PolicyError(field, f"policy {seat.name!r} was trained on the "
                              f"{lp.config.game} game, not the {spec.game} game")
        if spec.scenario is not None and lp.config.scenario not in (None, spec.scenario):
            raise PolicyError(field, f"policy {seat.name!r} was trained on the scenario "
                              f"{lp.config.scenario!r}, not {spec.scenario!r}")
        if config is not None and (config.num_history, config.env_options) != (
                lp.config.num_history, lp.config.env_options):
            raise PolicyError(field, "the trained policies observe different games "
                              "(offer history or env options differ)")
        config = config or lp.config
    return config


def table_game(engine: Engine, spec: TableSpec) -> tuple[Any, Any]:
    """(env, validated params) of a table; :class:`PolicyError` naming the request field
    (``settings`` for a game setting out of its range, ``scenario``, ``agents``)."""
    g = get_game(spec.game)
    config = _trained_config(engine, spec)
    options: dict[str, Any] = {}
    base: dict[str, Any] = {}
    scenario = spec.scenario
    if config is not None:
        options = {"num_history": config.num_history, **(config.env_options or {})}
        base = dict(config.env or {})
        scenario = scenario or config.scenario
    if spec.agents is not None:
        options["agents"] = spec.agents
    overrides = {**base, **json.loads(spec.settings)}
    try:
        env = g.env(scenario, **options)
        if spec.game == "group":
            params = g.make_params(env.scenario, **overrides)
        else:
            params = g.params(scenario, **overrides)
    except ValueError as e:
        field = getattr(e, "field", None)
        if field in ("agents", "parties", "scenario"):
            raise PolicyError("agents" if field == "agents" else "scenario", str(e)) from None
        raise PolicyError(f"settings.{field}" if field else "settings", str(e)) from None
    except FileNotFoundError as e:
        raise PolicyError("scenario", str(e)) from None
    if len(spec.seats) != len(env.agents):
        raise PolicyError("policies", f"{len(env.agents)} policies are needed, one per seat "
                          f"({', '.join(env.agents)}), got {len(spec.seats)}")
    return env, params


def seat_policy(engine: Engine, env: Any, seat: PolicySpec, agent: str,
                deterministic: bool) -> Callable:
    """The policy function of one seat (a classic negotiator built for ``env``'s game, or the
    trained network of the policy's ``agent`` role)."""
    from eqx_jax.negotiators import get_game_negotiator

    if seat.kind == "human":
        return get_game_negotiator(HUMAN_PLACEHOLDER, env)  # never applied: see with_human
    if seat.kind == "negotiator":
        return get_game_negotiator(seat.name, env)
    from eqx_jax.ppo import make_policy

    lp = engine.load(seat.name, seat.path)
    try:
        network = lp.config.network_for(agent)
    except (KeyError, ValueError) as e:
        raise PolicyError("policies", f"policy {seat.name!r} has no network for the {agent}: "
                          f"{e}") from None
    return make_policy(lp.params[network], lp.config, deterministic)


def _build(env: Any, policies: list[Callable]) -> tuple[BatchedFn, BatchedFn]:
    """Batched ``reset(seed, params) -> (obs, state)`` and
    ``step(seed, t, state, params, use_human, human_type, human_offer) -> (state, facts)``."""
    agents = tuple(env.agents)
    group = hasattr(env, "acceptances")

    def reset(seed, params):
        obs, state = env.reset(session_key(seed, 0), params)
        return obs, state

    def step(seed, t, state, params, use_human, human_type, human_offer):
        """Move t + 1 (t moves played): the new state and the move's facts; with
        ``use_human`` the mover plays (human_type, human_offer (D,)) (a person's move)."""
        obs = env.get_obs(state, params)
        keys = jax.random.split(session_key(seed, t + 1), len(agents))
        actions = {a: pol(keys[i], obs[a], params)
                   for i, (a, pol) in enumerate(zip(agents, policies, strict=True))}
        actions = with_human(actions, use_human, env.make_action(human_type, human_offer))
        new_state, rewards, done, info = env.step_env(state, actions, params)
        before, had = env.standing_offer(state)
        after, has = env.standing_offer(new_state)
        accepted = (env.acceptances(new_state) > env.acceptances(state)) if group else False
        facts = {"mover": env.mover(state), "rewards": jnp.stack([rewards[a] for a in agents]),
                 "done": done, "deal": info["deal"], "walk_away": info["walk_away"],
                 "timeout": info["timeout"], "chance_end": info.get("chance_end", False),
                 "illegal_accept": info["illegal_accept"], "round": info["round"],
                 "before": before, "had_offer": had, "after": after, "has_offer": has,
                 "accepted": accepted}
        return new_state, facts

    return BatchedFn(reset), BatchedFn(step)


def build_table(engine: Engine, spec: TableSpec) -> Table:
    """The compiled table of ``spec`` (cached on the engine; the first call per key compiles,
    concurrent first sessions wait for one compile)."""
    env, params = table_game(engine, spec)
    mtimes = tuple(engine.load(s.name, s.path).mtime if s.kind == "trained" else 0.0
                   for s in spec.seats)
    det = spec.deterministic or all(s.kind != "trained" for s in spec.seats)
    key = ("table", spec.game, spec.scenario, spec.agents, type(env).__name__,
           getattr(env, "num_history", None), tuple(env.agents),
           tuple((s.kind, s.name) for s in spec.seats), mtimes, det,
           getattr(env, "observe_other_values", None))
    entry, lock = engine.cached(key, lambda: _build(
        env, [seat_policy(engine, env, s, a, det)
              for s, a in zip(spec.seats, env.agents, strict=True)]))
    reset, step = entry
    with lock:
        if not engine.is_warm(key):
            t0 = time.perf_counter()
            _, state = reset.one(np.int32(0), params)
            step.one(np.int32(0), np.int32(0), state, params, *no_human(env))
            engine.mark_warm(key, time.perf_counter() - t0)
    return Table(game=spec.game, env=env, params=params,
                 issues=issue_views(spec.game, env, params), agents=tuple(env.agents),
                 reset=reset, step=step)


def describe(table: Table, facts: dict[str, Any]) -> dict[str, Any]:
    """A move in plain data (host values): ``agent`` (the mover), ``seat``, ``round`` (1-based
    step), ``action`` (ACCEPT / COUNTER / WALK_AWAY), ``offer`` (COUNTER: the offer made;
    ACCEPT: the standing offer accepted; WALK_AWAY: the standing offer walked away from, or
    None), and the outcome flags."""
    seat = int(facts["mover"])
    deal, walk = bool(facts["deal"]), bool(facts["walk_away"])
    if deal or bool(facts["accepted"]):
        action, offer = "ACCEPT", facts["before"]
    elif walk:
        action, offer = "WALK_AWAY", facts["before"] if bool(facts["had_offer"]) else None
    else:
        action, offer = "COUNTER", facts["after"]
    shown = None if offer is None else offer_to_dict(table.issues, offer)
    return {"agent": table.agents[seat], "seat": seat, "round": int(facts["round"]),
            "action": action, "offer": shown,
            "natural_offer": None if offer is None else np.asarray(offer, float).tolist(),
            "done": bool(facts["done"]), "deal": deal, "walk_away": walk,
            "timeout": bool(facts["timeout"]), "chance_end": bool(facts["chance_end"]),
            "illegal_accept": bool(facts["illegal_accept"])}


def no_human(env: Any) -> tuple[np.bool_, np.int32, np.ndarray]:
    """The step's human arguments when no person moves."""
    return np.bool_(False), np.int32(0), np.zeros(int(env.offer_size), np.float32)


def play_table_move(table: Table, seed: int, state: Any, t: int,
                    human: tuple[int, np.ndarray] | None = None,
                    ) -> tuple[Any, dict[str, Any], dict[str, float]]:
    """Move ``t + 1`` (blocking: call it on the engine's thread): the new state, the move
    (:func:`describe`) and every agent's reward of the step. ``human``: (action type, offer
    (D,) natural units) the mover plays instead of its policy."""
    new_state, facts = table.step.one(*table_step_args(table, seed, state, t, human))
    return (new_state, *read_table_move(table, facts))


def table_step_args(table: Table, seed: int, state: Any, t: int,
                    human: tuple[int, np.ndarray] | None = None) -> tuple:
    """The arguments of move ``t + 1`` for ``table.step`` (``human`` as in
    :func:`play_table_move`)."""
    args = no_human(table.env) if human is None else (
        np.bool_(True), np.int32(human[0]), np.asarray(human[1], np.float32))
    return (np.int32(seed), np.int32(t), state, table.params, *args)


def read_table_move(table: Table, facts: dict[str, Any],
                    ) -> tuple[dict[str, Any], dict[str, float]]:
    """A step's facts (host values) -> the move (:func:`describe`) and every agent's reward."""
    rewards = {a: float(facts["rewards"][i]) for i, a in enumerate(table.agents)}
    return describe(table, facts), rewards


def price_of(offer: dict[str, Any] | None) -> float | None:
    """The offer's price-like issue (``price``, ``unit_price``), the founding design's
    ``price`` field of a move; None where the game has none."""
    if not offer:
        return None
    for name in ("price", "unit_price"):
        if isinstance(offer.get(name), int | float):
            return float(offer[name])
    return None


__all__ = ["FALLBACK_FIRST", "FALLBACK_OTHERS", "Table", "TableSpec", "build_table", "describe",
           "freeze_settings", "play_table_move", "price_of", "read_table_move",
           "table_game", "table_step_args"]
