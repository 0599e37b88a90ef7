"""Simulation sessions: start, run in the background, store every move, stream to WebSockets.

A session runs as an asyncio task (status ``created -> running -> completed | failed``; a server
stopped or killed mid-session leaves it ``interrupted``). Each move is one jitted ``eqx_jax``
step (:mod:`serve.engine`, in a worker thread), then phrased (:mod:`serve.phrasing`), then
stored in the database, *then* published to the session's in-memory feed. A WebSocket reads the
feed from its first message, so a client that connects late gets the stored moves first and then
follows the live ones, with nothing missed or repeated.

A session holds its first move (status ``created``) so that a stream client can still set its
configuration with a config frame (the founding design's protocol): until a config frame is
applied, or ``config_wait_s`` after its first stream client authenticated, or
``start_hold_s`` when no stream client has come (:meth:`SimulationManager._hold`). After that a
config frame is only compared with the configuration being played (:meth:`configure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from anyio import to_thread
from pydantic import ValidationError
from sqlalchemy import bindparam, case, func, insert, select, text, update

from eqx_jax.efficiency import episode_efficiency
from eqx_jax.env import AGENTS, game_settings, params_to_dict
from serve.auth import Principal
from serve.bus import LocalBus
from serve.db import Database, Message, Policy, SimSession, utcnow
from serve.engine import (
    FALLBACK_POLICIES,
    HUMAN,
    Engine,
    PolicyError,
    PolicySpec,
    equilibrium_for,
    outcome_metrics,
    read_move,
    step_args,
)
from serve.human import HumanMove, HumanTurn, Seat, human_payload, price_issues
from serve.human_result import human_results
from serve.phrasing import MoveContext, Phraser
from serve.schemas import SimulationStartRequest
from serve.settings import Settings
from serve.table_sessions import plan_table, play_table, table_request
from serve.tables import TableSpec

log = logging.getLogger("eqx.serve.simulation")

ACTIVE = ("created", "running")
#: The PostgreSQL advisory lock of the session caps (any constant apart from the migrations').
SESSION_CAP_LOCK = 0x657179
FINISHED = ("completed", "failed", "interrupted")


class TooManySessions(Exception):
    """More sessions running than a cap: ``scope`` "server" (``max_running_sessions``) or
    "user" (``max_running_sessions_per_user``), ``limit`` the cap."""

    def __init__(self, scope: str, limit: int):
        super().__init__(f"{scope} cap of {limit} running sessions reached")
        self.scope, self.limit = scope, limit


class ConfigError(ValueError):
    """A config frame that is not a valid session configuration; names the field."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class SessionRules:
    """How many sessions may run, and how long a new one holds its first move (seconds)."""

    max_running: int = 1000
    max_per_user: int = 20
    start_hold_s: float = 1.0
    config_wait_s: float = 0.5
    human_move_s: float = 120.0

    @classmethod
    def from_settings(cls, s: Settings) -> SessionRules:
        return cls(max_running=s.max_running_sessions,
                   max_per_user=s.max_running_sessions_per_user,
                   start_hold_s=s.session_start_hold_s, config_wait_s=s.ws_config_wait_s,
                   human_move_s=s.human_move_timeout_s)


@dataclass
class Plan:
    """What a session will play: its stored row and the two resolved players of the price
    game, or the table of another game (:class:`serve.tables.TableSpec`)."""

    row: SimSession
    sup: PolicySpec | None
    ret: PolicySpec | None
    table: TableSpec | None = None


@dataclass
class LiveFeed:
    """The in-memory feed of a running session: every payload in order, then the end; and,
    until its first move, the gate that holds it (``joined``, ``go``, ``configurable``)."""

    session_id: str
    user_id: int | None = None
    plan: Plan | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: A stream client has authenticated for this session.
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    #: A config frame was applied: play now.
    go: asyncio.Event = field(default_factory=asyncio.Event)
    #: True until the first move is about to be played; changed only under ``config_lock``.
    configurable: bool = True
    config_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The seats a person plays (their moves come from the owner's WebSocket: ``seat``).
    human_seats: frozenset[int] = frozenset()
    seat: Seat | None = None
    human_timeout_s: float = 120.0
    #: Where the feed is also published for streams on other workers (:mod:`serve.bus`).
    bus: LocalBus | None = None

    def moves(self) -> int:
        """Moves published so far (not counting YOUR_TURN frames)."""
        return sum(1 for m in self.messages if m.get("type") == "MOVE")

    def publish(self, payload: dict[str, Any]) -> None:
        self.messages.append(payload)
        if self.bus is not None:
            self.bus.publish(self.session_id, len(self.messages) - 1, payload)
        self._wake()

    def finish(self, final: dict[str, Any]) -> None:
        self.final = final
        if self.bus is not None:
            self.bus.publish(self.session_id, -1, final)
        self._wake()

    def _wake(self) -> None:
        # Wake every waiting reader, then arm a fresh event for the next change.
        ev, self.changed = self.changed, asyncio.Event()
        ev.set()

    async def follow(self):
        """Yield every payload from the first, waiting for live ones, then the final one."""
        i = 0
        while True:
            while i < len(self.messages):
                yield self.messages[i]
                i += 1
            if self.final is not None:
                yield self.final
                return
            await self.changed.wait()


class MoveWriter:
    """Stores moves in the database in batches: every move waiting when a write starts goes in
    the same transaction (one commit for many sessions instead of one per move).

    ``await store(...)`` returns once the move is committed, so a move is still stored before it
    is streamed. Measured with 100 concurrent sessions (docs/server.md): one commit per move
    capped the server near 100 moves/s on the 2-core CI machine.
    """

    def __init__(self, db: Database):
        self.db = db
        self._pending: list[tuple[str, dict[str, Any], asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.batches = 0
        self.moves = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="move-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def store(self, session_id: str, payload: dict[str, Any]) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((session_id, payload, fut))
        self._wake.set()
        await fut

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await to_thread.run_sync(self._write, [(sid, p) for sid, p, _ in batch])
            except Exception as e:  # noqa: BLE001 - the sessions concerned fail, not the writer
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            self.batches += 1
            self.moves += len(batch)
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        now = utcnow()
        rows = [dict(session_id=sid, seq=p["seq"], agent=p["agent"], round=p["round"],
                     action=p["action"], price=p["price"], text=p["message"],
                     phraser=p["phraser"], quality=p["quality"], payload=p, created_at=now)
                for sid, p in batch]
        last_round: dict[str, int] = {}
        for sid, p in batch:
            last_round[sid] = max(last_round.get(sid, 0), p["round"])
        table = SimSession.__table__
        bump = (table.update().where(table.c.id == bindparam("b_id"))
                .values(current_round=bindparam("b_round"), updated_at=bindparam("b_ts")))
        with self.db.write() as s:
            # Core executemany: a fraction of the ORM's per-object cost.
            s.execute(insert(Message), rows)
            s.connection().execute(bump, [{"b_id": sid, "b_round": r, "b_ts": now}
                                          for sid, r in last_round.items()])

    def stats(self) -> dict[str, Any]:
        return {"batches": self.batches, "moves": self.moves,
                "moves_per_batch": round(self.moves / self.batches, 2) if self.batches else None}


class SimulationManager:
    """Starts sessions, runs them, and knows which are live in this process."""

    def __init__(self, db: Database, engine: Engine, phraser: Phraser, *,
                 max_running: int = 1000, default_supplier: str | None = None,
                 default_retailer: str | None = None, bus: LocalBus | None = None):
        #: This worker's identity and the other workers (one process: :class:`LocalBus`).
        self.bus = bus or LocalBus()
        self.db = db
        self.engine = engine
        self.phraser = phraser
        self.max_running = max_running
        self.default_supplier = default_supplier
        self.default_retailer = default_retailer
        self.live: dict[str, LiveFeed] = {}
        self._tasks: set[asyncio.Task] = set()
        # Starts between their cap check and their live feed (a worker-thread hop), per user.
        self._starting: Counter[int] = Counter()
        self.writer = MoveWriter(db)

    # ------------------------------------------------------------------ startup / shutdown
    def mark_interrupted(self, workers: Any = None,
                         error: str = "the server stopped during this session") -> list[str]:
        """Mark ``interrupted`` the created/running sessions of ``workers`` (worker ids; None:
        every worker, as at the start of the one-process server). The ids marked: only the
        worker that changed a row reports it (another worker doing the same at once gets
        nothing), so each end is announced once."""
        table = SimSession.__table__
        q = table.update().where(table.c.status.in_(ACTIVE))
        if workers is not None:
            q = q.where(table.c.worker_id.in_(list(workers)))
        q = q.values(status="interrupted", updated_at=utcnow(), finished_at=utcnow(),
                     error=error)
        with self.db.write() as s:
            if self.db.engine.dialect.name in ("postgresql", "sqlite"):
                return list(s.execute(q.returning(table.c.id)).scalars())
            return [""] * (s.execute(q).rowcount or 0)

    def active_workers(self) -> set[str]:
        """Workers named by created/running sessions in the database."""
        with self.db.session() as s:
            return {w for w in s.scalars(select(SimSession.worker_id).distinct().where(
                SimSession.status.in_(ACTIVE), SimSession.worker_id.is_not(None)))}

    async def shutdown(self) -> None:
        """Cancel running sessions; each marks itself ``interrupted``."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.writer.stop()
        await self.engine.stop()

    # ------------------------------------------------------------------ policies
    def resolve(self, name: str | None, role: str) -> PolicySpec:
        """A request's policy field -> what plays (blocking: DB lookup)."""
        from eqx_jax.negotiators import NEGOTIATORS

        if name is None:
            name = self.default_supplier if role == "supplier" else self.default_retailer
            if name is None:
                with self.db.session() as s:
                    has_default = s.get(Policy, "default") is not None
                name = "default" if has_default else FALLBACK_POLICIES[role]
        if name == HUMAN:
            return PolicySpec("human", HUMAN)
        if name in NEGOTIATORS:
            return PolicySpec("negotiator", name)
        with self.db.session() as s:
            pol = s.get(Policy, name)
            if pol is None:
                raise PolicyError(f"{role}_policy",
                                  f"unknown policy {name!r}: not a registered policy id nor a "
                                  f"classic negotiator ({', '.join(NEGOTIATORS)})", status=404)
            return PolicySpec("trained", pol.id, pol.path)

    # ------------------------------------------------------------------ start
    def _plan(self, req: SimulationStartRequest) -> tuple[Plan | None, dict[str, Any]]:
        """Resolve the policies and check the game (blocking: DB lookups, policy files): the
        players (a :class:`Plan` without its row) and the session columns the request sets.
        :class:`PolicyError` naming the field otherwise."""
        if req.game != "price":
            spec, values = plan_table(self, req)
            return Plan(None, None, None, spec), values  # type: ignore[arg-type]
        sup = self.resolve(req.supplier_policy, "supplier")
        ret = self.resolve(req.retailer_policy, "retailer")
        params, _ = self.engine.game_params(sup, ret, req.max_rounds)
        for side in ("supplier", "retailer"):
            v = getattr(req, f"{side}_valuation")
            if not v < params.max_price:
                raise PolicyError(f"{side}_valuation",
                                  f"{side}_valuation must be below the game's max price "
                                  f"{params.max_price:g}, got {v:g}")
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        values = dict(
            game_name="price", scenario=None,
            seats=[{"agent": "supplier", "policy": sup.name, "style": req.supplier_style},
                   {"agent": "retailer", "policy": ret.name, "style": req.retailer_style}],
            supplier_valuation=req.supplier_valuation, retailer_valuation=req.retailer_valuation,
            max_rounds=req.max_rounds, supplier_style=req.supplier_style,
            retailer_style=req.retailer_style, supplier_policy=sup.name,
            retailer_policy=ret.name, deterministic=req.deterministic,
            move_delay_s=req.move_delay_s, seed=seed, game=params_to_dict(params))
        return Plan(None, sup, ret), values  # type: ignore[arg-type]

    def _prepare(self, principal: Principal, req: SimulationStartRequest,
                 rules: SessionRules) -> Plan:
        """Plan the session and store it ``created`` (blocking)."""
        plan, values = self._plan(req)
        row = SimSession(id=str(uuid.uuid4()), user_id=principal.user_id, status="created",
                         worker_id=self.bus.worker_id, created_at=utcnow(),
                         updated_at=utcnow(), **values)
        with self.db.write() as s:
            if self.bus.scale_out:
                self._check_shared_caps(s, principal.user_id, rules)
            s.add(row)
        plan.row = row
        return plan

    def _check_shared_caps(self, s: Any, user_id: int, rules: SessionRules) -> None:
        """The caps over every worker: the database's created/running sessions, counted in the
        transaction that inserts the new one. On PostgreSQL under a transaction-scoped advisory
        lock, so that starts on several workers take turns (a few milliseconds each) and the
        caps hold exactly."""
        if self.db.engine.dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SESSION_CAP_LOCK})
        mine = func.sum(case((SimSession.user_id == user_id, 1), else_=0))
        total, own = s.execute(select(func.count(), mine)
                               .where(SimSession.status.in_(ACTIVE))).one()
        if total >= rules.max_running:
            raise TooManySessions("server", rules.max_running)
        if (own or 0) >= rules.max_per_user:
            raise TooManySessions("user", rules.max_per_user)

    def _check_caps(self, user_id: int, rules: SessionRules) -> None:
        running = [f for f in self.live.values() if f.final is None]
        if len(running) + self._starting.total() >= rules.max_running:
            raise TooManySessions("server", rules.max_running)
        mine = sum(1 for f in running if f.user_id == user_id) + self._starting[user_id]
        if mine >= rules.max_per_user:
            raise TooManySessions("user", rules.max_per_user)

    async def start(self, principal: Principal, req: SimulationStartRequest,
                    rules: SessionRules | None = None) -> SimSession:
        """Validate, store the session (``created``) and launch its task.
        :class:`TooManySessions` over the server's or the caller's cap."""
        rules = rules or SessionRules(max_running=self.max_running)
        uid = principal.user_id
        self._check_caps(uid, rules)
        # Counted while in the thread hop, so that concurrent starts cannot pass the caps.
        self._starting[uid] += 1
        try:
            # One worker-thread hop for all the blocking work (policy lookups, loading a
            # policy file, the insert): with 100 starts at once, each hop waits for a thread.
            plan = await to_thread.run_sync(self._prepare, principal, req, rules)
        finally:
            self._starting[uid] -= 1
            if self._starting[uid] <= 0:
                del self._starting[uid]
        feed = LiveFeed(plan.row.id, user_id=uid, plan=plan,
                        human_timeout_s=rules.human_move_s, bus=self.bus)
        set_human_seats(feed)
        self.live[plan.row.id] = feed
        task = asyncio.create_task(self._run(feed, rules), name=f"session-{plan.row.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return plan.row

    # ------------------------------------------------------------------ the first move's gate
    def join(self, session_id: str) -> None:
        """A stream client authenticated for this session (starts its config window)."""
        feed = self.live.get(session_id)
        if feed is not None:
            feed.joined.set()

    async def _hold(self, feed: LiveFeed, rules: SessionRules) -> None:
        """Wait until the first move may be played, then close the configuration."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feed.joined.wait(), rules.start_hold_s)
        if feed.joined.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.go.wait(), rules.config_wait_s)
        # Under the lock: a config frame being applied right now still counts.
        async with feed.config_lock:
            feed.configurable = False

    async def configure(self, session_id: str, principal: Principal,
                        fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """A config frame's fields (``SimulationStartRequest`` keys): before the first move
        they override the stored request (the session then starts); after it they are compared
        with the configuration being played. Only the owner sets a configuration (an admin
        watching someone's session gets the comparison). Returns the differing fields as
        ``{name: {"running": ..., "requested": ...}}`` (empty when applied or equal);
        :class:`ConfigError` naming the field for invalid input."""
        feed = self.live.get(session_id)
        if feed is not None and feed.plan is not None:
            feed.joined.set()
            async with feed.config_lock:
                if feed.configurable and feed.user_id == principal.user_id:
                    if fields:
                        self.replanned(feed, await to_thread.run_sync(self._replan, feed.plan,
                                                                      fields))
                    feed.go.set()
                    return {}
            row: SimSession | None = feed.plan.row
        else:
            row = await to_thread.run_sync(self.get, session_id, principal)
        if row is None:
            raise ConfigError("session_id", "the session no longer exists")
        return await to_thread.run_sync(self._differences, row, fields)

    @staticmethod
    def _validated(row: SimSession, fields: dict[str, Any]) -> SimulationStartRequest:
        try:
            return SimulationStartRequest.model_validate({**stored_request(row), **fields})
        except ValidationError as e:
            err = e.errors()[0]
            name = ".".join(str(x) for x in err["loc"]) or "config"
            raise ConfigError(name, err["msg"]) from None

    def _replan(self, plan: Plan, fields: dict[str, Any]) -> Plan:
        """Apply a config frame to a session that has not played yet (blocking)."""
        req = self._validated(plan.row, fields)
        try:
            new, values = self._plan(req)
        except PolicyError as e:
            raise ConfigError(e.field, str(e)) from None
        self._update(plan.row.id, **values)
        for k, v in values.items():
            setattr(plan.row, k, v)
        new.row = plan.row
        return new

    def replanned(self, feed: LiveFeed, plan: Plan) -> None:
        """A config frame changed the plan: the person's seats follow it."""
        feed.plan = plan
        set_human_seats(feed)

    def _differences(self, row: SimSession,
                     fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The fields of a config frame that differ from the session's (blocking)."""
        req = self._validated(row, fields)
        stored = stored_request(row)
        out: dict[str, dict[str, Any]] = {}
        for name in fields:
            wanted = getattr(req, name)
            if name.endswith("_policy") and wanted is None and row.game_name == "price":
                try:
                    wanted = self.resolve(None, name.removesuffix("_policy")).name
                except PolicyError as e:
                    raise ConfigError(name, str(e)) from None
            running = stored.get(name)
            if name == "seed" and wanted is None:
                continue  # "any seed": the session's own
            if wanted != running:
                out[name] = {"running": running, "requested": wanted}
        return out

    # ------------------------------------------------------------------ the game loop
    def _update(self, session_id: str, **values: Any) -> None:
        with self.db.write() as s:
            s.execute(update(SimSession).where(SimSession.id == session_id).values(
                updated_at=utcnow(), **values))

    async def _play_price(self, feed: LiveFeed, row: SimSession) -> dict[str, Any]:
        """Play a price-game session to its end (moves stored, then published); the final
        message."""
        sid = feed.session_id
        plan = feed.plan
        assert plan is not None and plan.sup is not None and plan.ret is not None
        game = await to_thread.run_sync(self.engine.game, plan.sup, plan.ret, row.max_rounds,
                                        row.deterministic)
        _, state = await self.engine.batched(
            game.reset, np.int32(row.seed), game.params,
            np.float32(row.supplier_valuation), np.float32(row.retailer_valuation))
        styles = {"supplier": row.supplier_style, "retailer": row.retailer_style}
        offers: list[tuple[str, float]] = []
        totals = {"supplier": 0.0, "retailer": 0.0}
        move: dict[str, Any] = {}
        issues = price_issues(float(game.params.max_price))
        for t in range(row.max_rounds):
            hm = None
            if t % 2 in feed.human_seats:
                standing = {"price": offers[-1][1]} if offers else None
                hm = await self.human_turn(feed, row, t % 2, AGENTS[t % 2], t, issues, standing)
            state, facts = await self.engine.batched(game.step, *step_args(
                game, row.seed, state, t,
                None if hm is None else (hm.action_type, float(hm.natural[0]))))
            move, rewards = read_move(facts)
            for a in totals:
                totals[a] += rewards[a]
            ctx = MoveContext(role=move["agent"], style=styles[move["agent"]],
                              action=move["action"], price=move["price"],
                              round=move["round"], max_rounds=row.max_rounds,
                              offer_history=tuple(offers[-6:]), seed=row.seed)
            phrased = await self.phraser.phrase(ctx)
            payload = {
                "type": "MOVE", "session_id": sid, "seq": t,
                "agent": move["agent"], "round": move["round"], "action": move["action"],
                "price": move["price"], "message": phrased.text, "timestamp": time.time(),
                "phraser": phrased.phraser, "quality": phrased.quality,
                "quality_detail": phrased.quality_detail,
                "phrasing_latency_ms": round(phrased.latency_ms, 3),
                "fallback_reason": phrased.fallback_reason,
                "illegal_accept": move["illegal_accept"],
            }
            if hm is not None:
                payload.update(human_payload(hm, payload))
            await self.writer.store(sid, payload)
            feed.publish(payload)
            if move["action"] == "COUNTER":
                offers.append((move["agent"], move["price"]))
            if move["done"]:
                break
            if row.move_delay_s > 0:
                await asyncio.sleep(row.move_delay_s)
        final = await self.engine.run_step(self._final, row, game.params, move, totals)
        if feed.human_seats:
            final["human"] = await human_results(self, row, plan, final)
        return final

    async def human_turn(self, feed: LiveFeed, row: SimSession, seat: int, agent: str, t: int,
                         issues: tuple, standing: dict[str, Any] | None,
                         pool: list[int] | None = None) -> HumanMove:
        """Publish a person's ``YOUR_TURN`` and wait for their move (or the deadline)."""
        assert feed.seat is not None
        timeout = feed.human_timeout_s
        turn = HumanTurn(row.id, row.game_name, seat, agent, t + 1, row.max_rounds, issues,
                         standing, timeout, time.time() + timeout, pool)
        feed.publish(turn.frame())
        return await feed.seat.wait(turn)

    async def _run(self, feed: LiveFeed, rules: SessionRules) -> None:
        sid = feed.session_id
        try:
            await self._hold(feed, rules)
            assert feed.plan is not None
            row = feed.plan.row
            await to_thread.run_sync(lambda: self._update(sid, status="running",
                                                          started_at=utcnow()))
            if feed.plan.table is not None:
                final = await play_table(self, feed, row, feed.plan.table)
            else:
                final = await self._play_price(feed, row)
            await to_thread.run_sync(lambda: self._update(
                sid, status="completed", finished_at=utcnow(), result=final,
                **result_columns(final)))
            feed.finish(final)
        except asyncio.CancelledError:
            # Server shutdown: the session cannot finish; say so in the DB and to readers.
            await asyncio.shield(to_thread.run_sync(lambda: self._update(
                sid, status="interrupted", finished_at=utcnow(),
                error="the server stopped during this session")))
            feed.finish({"type": "SIMULATION_INTERRUPTED", "session_id": sid,
                         "error": "the server stopped during this session"})
            raise
        except Exception as e:  # noqa: BLE001 - a failed session must not take the server down
            log.exception("session %s failed", sid)
            msg = f"{type(e).__name__}: {e}"[:500]
            try:
                await to_thread.run_sync(lambda: self._update(
                    sid, status="failed", finished_at=utcnow(), error=msg))
            except Exception:  # noqa: BLE001
                log.exception("could not mark session %s failed", sid)
            feed.finish({"type": "SIMULATION_FAILED", "session_id": sid, "error": msg})
        finally:
            self.live.pop(sid, None)

    @staticmethod
    def _final(row: SimSession, params, move: dict[str, Any],
               totals: dict[str, float]) -> dict[str, Any]:
        deal = bool(move.get("deal"))
        price = move["price"] if deal else None
        end = ("deal" if deal else "walk_away" if move.get("walk_away")
               else "timeout" if move.get("timeout") else "none")
        eq = equilibrium_for(row.supplier_valuation, row.retailer_valuation, params)
        return {
            "type": "SIMULATION_COMPLETE", "session_id": row.id, "game": "price",
            "deal_reached": deal, "final_price": price,
            "total_rounds": int(move.get("round", 0)), "end": end,
            "rewards": dict(totals),
            "utilities": ({"supplier": price - row.supplier_valuation,
                           "retailer": row.retailer_valuation - price} if deal else None),
            **outcome_metrics(deal, price, row.supplier_valuation, row.retailer_valuation),
            **eq,
            # Against the largest welfare the session allowed and the complete-information
            # equilibrium of its valuations (eqx_jax.efficiency).
            **episode_efficiency(row.supplier_valuation, row.retailer_valuation, totals,
                                 eq["equilibrium_payoffs"], game_settings(params)),
            "supplier_policy": row.supplier_policy, "retailer_policy": row.retailer_policy,
            "seed": row.seed, "timestamp": time.time(),
        }

    # ------------------------------------------------------------------ reading
    def get(self, session_id: str, principal: Principal) -> SimSession | None:
        """The session if it exists and the caller may see it (owner or admin)."""
        with self.db.session() as s:
            row = s.get(SimSession, session_id)
            if row is None or (row.user_id != principal.user_id and not principal.is_admin):
                return None
            return row

    def recent(self, principal: Principal, limit: int) -> list[SimSession]:
        """The caller's newest sessions (an admin's: everyone's), newest first."""
        q = select(SimSession).order_by(SimSession.created_at.desc()).limit(limit)
        if not principal.is_admin:
            q = q.where(SimSession.user_id == principal.user_id)
        with self.db.session() as s:
            return list(s.scalars(q))

    def stored_messages(self, session_id: str) -> list[dict[str, Any]]:
        with self.db.session() as s:
            return [m.payload for m in s.scalars(
                select(Message).where(Message.session_id == session_id).order_by(Message.seq))]

    def move_count(self, session_id: str) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(Message)
                            .where(Message.session_id == session_id)) or 0


def set_human_seats(feed: LiveFeed) -> None:
    """The seats of the feed's plan that a person plays (from its stored seats)."""
    row = feed.plan.row if feed.plan is not None else None
    seats = frozenset(i for i, s in enumerate((row.seats if row is not None else None) or [])
                      if s.get("policy") == HUMAN)
    feed.human_seats = seats
    if seats and feed.seat is None:
        feed.seat = Seat()


def result_columns(final: dict[str, Any]) -> dict[str, Any]:
    """The session columns a final message fills (the two-party ones: seat 0 and 1 of a group
    session; None where the game has no such figure)."""
    rewards = list(final.get("rewards", {}).values())
    return dict(deal_reached=final["deal_reached"], final_price=final.get("final_price"),
                total_rounds=final["total_rounds"],
                supplier_reward=rewards[0] if rewards else None,
                retailer_reward=rewards[1] if len(rewards) > 1 else None,
                nash_distance=final.get("nash_distance"),
                pareto_efficiency=final.get("pareto_efficiency"),
                equilibrium_price=final.get("equilibrium_price"))


def stored_request(row: SimSession) -> dict[str, Any]:
    """A session's configuration as ``POST /simulation/start`` fields (policies resolved)."""
    if row.game_name != "price":
        return table_request(row)
    return {"supplier_valuation": row.supplier_valuation,
            "retailer_valuation": row.retailer_valuation, "max_rounds": row.max_rounds,
            "supplier_style": row.supplier_style, "retailer_style": row.retailer_style,
            "supplier_policy": row.supplier_policy, "retailer_policy": row.retailer_policy,
            "move_delay_s": row.move_delay_s, "seed": row.seed,
            "deterministic": row.deterministic}


def end_message(row: SimSession) -> dict[str, Any]:
    """The last WebSocket message for a session that is no longer live."""
    if row.status == "completed" and row.result:
        return row.result
    if row.status == "failed":
        return {"type": "SIMULATION_FAILED", "session_id": row.id, "error": row.error}
    return {"type": "SIMULATION_INTERRUPTED", "session_id": row.id,
            "error": row.error or "the server stopped during this session"}
