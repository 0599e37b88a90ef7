"""Sessions across worker processes: what a stream on one worker asks of the worker that runs
its session, and the reaper that ends the sessions of a worker that died.

A session runs on the worker that started it (``sessions.worker_id``). A WebSocket on any
worker streams it (:meth:`serve.bus.RedisBus.follow`) and forwards to the owner what only the
owner can do: the stream's arrival (``join``, which opens the config window), a config frame
(``configure``) and a person's move (``human``); the owner answers with what the socket must
send. With one process (:class:`serve.bus.LocalBus`) all of it is a local call.

The reaper (every worker, every ``worker_ttl_s / 2`` seconds) marks ``interrupted`` the
created/running sessions of workers whose heartbeat has been missing for ``worker_ttl_s``, and
publishes their end, so that a client streaming such a session from another worker gets its end
frame; no stored move is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from anyio import to_thread

from serve.auth import Principal
from serve.bus import LocalBus, RemoteError, WorkerGone, every
from serve.human import human_frames
from serve.simulation import ACTIVE, ConfigError

if TYPE_CHECKING:
    from serve.db import SimSession
    from serve.simulation import SimulationManager

log = logging.getLogger("eqx.serve.workers")

#: The ``error`` of a session whose worker died.
WORKER_DIED = "the worker running this session stopped"


def _principal(body: dict[str, Any]) -> Principal:
    return Principal(**body["principal"])


def register_handlers(sims: SimulationManager, bus: LocalBus) -> None:
    """What this worker answers about the sessions it runs."""

    async def snapshot(body: dict[str, Any]) -> dict[str, Any]:
        feed = sims.live.get(body["session_id"])
        if feed is None:
            return {"gone": True}
        return {"messages": list(feed.messages), "final": feed.final}

    async def join(body: dict[str, Any]) -> None:
        sims.join(body["session_id"])

    async def configure(body: dict[str, Any]) -> dict[str, Any]:
        return await sims.configure(body["session_id"], _principal(body), body["fields"])

    async def human(body: dict[str, Any]) -> list[dict[str, Any]]:
        return local_human(sims, body["session_id"], body["principal"]["user_id"],
                           body["key"], body["kind"], body["frame"])

    for name, fn in (("snapshot", snapshot), ("join", join), ("configure", configure),
                     ("human", human)):
        bus.handle(name, fn)


def local_human(sims: SimulationManager, session_id: str, user_id: int, key: str, kind: str,
                frame: dict[str, Any]) -> list[dict[str, Any]]:
    feed = sims.live.get(session_id)
    return human_frames(session_id, feed.seat if feed else None,
                        feed.user_id if feed else None, user_id, key, kind, frame)


class Sessions:
    """A stream's calls about its session, wherever the session runs."""

    def __init__(self, sims: SimulationManager):
        self.sims = sims
        self.bus = sims.bus

    def owner(self, row: SimSession) -> str | None:
        """The other worker that runs ``row``'s session (None: this one, or none)."""
        if (not self.bus.scale_out or row.id in self.sims.live or row.status not in ACTIVE
                or not row.worker_id or row.worker_id == self.bus.worker_id):
            return None
        return row.worker_id

    async def join(self, row: SimSession) -> None:
        owner = self.owner(row)
        if owner is None:
            self.sims.join(row.id)
            return
        with contextlib.suppress(WorkerGone, RemoteError):
            await self.bus.call(owner, "join", {"session_id": row.id})

    async def configure(self, row: SimSession, principal: Principal,
                        fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
        owner = self.owner(row)
        if owner is not None:
            try:
                return await self.bus.call(owner, "configure", {
                    "session_id": row.id, "principal": dataclasses.asdict(principal),
                    "fields": fields})
            except RemoteError as e:
                if e.kind == "ConfigError":
                    raise ConfigError(e.field or "config",
                                      str(e).removeprefix(f"{e.field}: ")) from None
                raise
            except WorkerGone:
                pass  # compared with the stored configuration below
        return await self.sims.configure(row.id, principal, fields)

    async def human(self, row: SimSession, principal: Principal, key: str, kind: str,
                    frame: dict[str, Any]) -> list[dict[str, Any]]:
        owner = self.owner(row)
        if owner is None:
            return local_human(self.sims, row.id, principal.user_id, key, kind, frame)
        try:
            return await self.bus.call(owner, "human", {
                "session_id": row.id, "principal": dataclasses.asdict(principal), "key": key,
                "kind": kind, "frame": frame})
        except WorkerGone:
            return local_human(self.sims, row.id, principal.user_id, key, kind, frame)


class Reaper:
    """Ends the sessions of dead workers (see the module docstring)."""

    def __init__(self, sims: SimulationManager, interval_s: float):
        self.sims, self.interval_s = sims, interval_s
        self.reaped = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self.sims.bus.scale_out:
            self._task = asyncio.create_task(self._loop(), name="reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def sweep(self) -> list[str]:
        """One pass: the ids of the sessions marked interrupted."""
        bus = self.sims.bus
        workers = await to_thread.run_sync(self.sims.active_workers)
        dead = await bus.dead_workers(workers)  # type: ignore[attr-defined]
        if not dead:
            return []
        ids = await to_thread.run_sync(
            lambda: self.sims.mark_interrupted(dead, error=WORKER_DIED))
        for sid in ids:
            bus.publish(sid, -1, {"type": "SIMULATION_INTERRUPTED", "session_id": sid,
                                  "error": WORKER_DIED})
        if ids:
            log.warning("%d session(s) of dead worker(s) %s marked interrupted", len(ids),
                        ", ".join(sorted(dead)))
        self.reaped += len(ids)
        return ids

    async def _loop(self) -> None:
        await every(self.interval_s, self.sweep, "session reaper")
