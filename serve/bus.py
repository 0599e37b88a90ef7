"""What the worker processes share: a worker's identity and heartbeat, its sessions' live
feeds, and calls to the worker that runs a session.

:class:`LocalBus` (the embedded default, no ``REDIS_URL``): one process; every session is this
worker's, nothing is published, and there is no one else to call.

:class:`RedisBus` (``REDIS_URL`` set; ``eqx serve --workers N`` or several machines):

* **heartbeat**: ``eqx:worker:<id>`` is set every ``worker_ttl_s / 3`` seconds with a TTL of
  ``worker_ttl_s``; a worker whose key stays missing for ``worker_ttl_s`` is dead (see
  :meth:`RedisBus.dead_workers`: a Redis restart empties the keys for less than a third of that);
* **feeds**: every message of a session (the moves, YOUR_TURN frames, the end) is published on
  ``eqx:s:<session id>`` as ``{"i": index in the session's feed, "m": message}`` (``"i": -1`` for
  the end), in order, by one sender task;
* **calls**: ``eqx:w:<id>`` carries requests to a worker (``{"kind", "body", "req", "from"}``);
  the answer comes back on ``eqx:r:<caller id>``. A request to a worker with no listener fails at
  once (:class:`WorkerGone`).

A stream on another worker follows a session with :meth:`RedisBus.follow`: subscribe, ask the
owner for a snapshot of the feed, yield it, then yield the published messages from the next
index; a gap (messages lost while Redis restarted) or a lost connection takes a fresh snapshot,
so each message is sent once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger("eqx.serve.bus")

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

#: Seconds between reconnection attempts while Redis is unreachable.
RECONNECT_S = 0.5


class WorkerGone(Exception):
    """The worker that runs a session does not answer (dead, or Redis is down)."""


class Gone(Exception):
    """The session is no longer live on its worker: the database has its end."""


async def every(interval_s: float, sweep: Callable[[], Awaitable[Any]], what: str) -> None:
    """Run ``sweep`` every ``interval_s`` seconds until cancelled; a failed pass (Redis or the
    database down) is logged and the next one tried."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await sweep()
        except Exception as e:  # noqa: BLE001 - a dependency down: the next pass
            log.warning("%s pass failed (%s)", what, type(e).__name__)


def new_worker_id() -> str:
    return uuid.uuid4().hex[:16]


class LocalBus:
    """One process: every session is this worker's own."""

    scale_out = False

    def __init__(self) -> None:
        self.worker_id = new_worker_id()
        self.handlers: dict[str, Handler] = {}

    def handle(self, kind: str, fn: Handler) -> None:
        self.handlers[kind] = fn

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def publish(self, session_id: str, index: int, message: dict[str, Any]) -> None:
        return None

    async def call(self, worker_id: str, kind: str, body: dict[str, Any],
                   timeout_s: float | None = None) -> Any:
        raise WorkerGone(f"worker {worker_id} is not this process")

    async def alive(self, worker_id: str) -> bool:
        return worker_id == self.worker_id

    async def ping(self) -> str:
        return "not configured"


class RedisBus(LocalBus):
    """Shared through Redis (see the module docstring)."""

    scale_out = True

    def __init__(self, url: str, *, ttl_s: float = 10.0, call_timeout_s: float = 5.0):
        super().__init__()
        import redis.asyncio as aioredis

        self.url, self.ttl_s, self.call_timeout_s = url, ttl_s, call_timeout_s
        self.redis = aioredis.from_url(url, decode_responses=True, socket_timeout=5,
                                       socket_connect_timeout=2, health_check_interval=10)
        self._pending: dict[str, asyncio.Future] = {}
        self._outbox: list[tuple[str, str]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._missing_since: dict[str, float] = {}
        self.published = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self._beat()
        self._tasks = [asyncio.create_task(self._heartbeat(), name="bus-heartbeat"),
                       asyncio.create_task(self._listen(), name="bus-listen"),
                       asyncio.create_task(self._send(), name="bus-send")]

    async def stop(self) -> None:
        await self._flush()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.redis.delete(self._key(self.worker_id))
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    @staticmethod
    def _key(worker_id: str) -> str:
        return f"eqx:worker:{worker_id}"

    async def _beat(self) -> None:
        await self.redis.set(self._key(self.worker_id), str(time.time()),
                             ex=max(1, round(self.ttl_s)))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self._beat()
            except Exception as e:  # noqa: BLE001 - Redis down: try again next beat
                log.warning("heartbeat failed (%s); retrying", type(e).__name__)

    async def alive(self, worker_id: str) -> bool:
        if worker_id == self.worker_id:
            return True
        return bool(await self.redis.exists(self._key(worker_id)))

    async def dead_workers(self, worker_ids: set[str]) -> set[str]:
        """Of ``worker_ids``, those whose heartbeat has been missing for ``ttl_s`` seconds or
        more (seen by this worker's successive checks). Raises when Redis is unreachable: no
        one is declared dead then."""
        now, dead = time.monotonic(), set()
        for wid in worker_ids - {self.worker_id}:
            if await self.alive(wid):
                self._missing_since.pop(wid, None)
                continue
            first = self._missing_since.setdefault(wid, now)
            if now - first >= self.ttl_s:
                dead.add(wid)
        for wid in list(self._missing_since):
            if wid not in worker_ids:
                del self._missing_since[wid]
        return dead

    async def ping(self) -> str:
        try:
            return "connected" if await self.redis.ping() else "unreachable"
        except Exception:  # noqa: BLE001 - any failure: unreachable
            return "unreachable"

    # ------------------------------------------------------------------ feeds
    def publish(self, session_id: str, index: int, message: dict[str, Any]) -> None:
        """Queue one feed message (``index`` -1: the end); sent in order by one task."""
        self._outbox.append((f"eqx:s:{session_id}", json.dumps({"i": index, "m": message})))
        self._wake.set()

    async def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        if not batch:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for channel, data in batch:
                    pipe.publish(channel, data)
                await pipe.execute()
            self.published += len(batch)
        except Exception as e:  # noqa: BLE001 - followers re-snapshot after an outage
            log.warning("could not publish %d feed message(s) (%s)", len(batch),
                        type(e).__name__)

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def follow(self, session_id: str, owner: str) -> AsyncIterator[dict[str, Any]]:
        """Every message of a session another worker runs, from the first, then its end.
        Raises :class:`WorkerGone` when the owner dies (or stops answering), :class:`Gone`
        when the session is no longer live there."""
        sent = 0
        while True:
            try:
                async with self.redis.pubsub() as ps:
                    await ps.subscribe(f"eqx:s:{session_id}")
                    snap = await self.call(owner, "snapshot", {"session_id": session_id})
                    if snap.get("gone"):
                        raise Gone(session_id)
                    for m in snap["messages"][sent:]:
                        yield m
                        sent += 1
                    if snap.get("final") is not None:
                        yield snap["final"]
                        return
                    async for item in self._published(ps, owner):
                        if item["i"] == -1:
                            yield item["m"]
                            return
                        if item["i"] > sent:  # a gap: messages were lost; take a snapshot
                            break
                        if item["i"] == sent:
                            yield item["m"]
                            sent += 1
            except (Gone, WorkerGone):
                raise
            except Exception as e:  # noqa: BLE001 - Redis went away: reconnect, re-snapshot
                log.info("following %s: %s; reconnecting", session_id, type(e).__name__)
                await asyncio.sleep(RECONNECT_S)
                if not await self._owner_alive(owner):
                    raise WorkerGone(owner) from None

    async def _owner_alive(self, owner: str) -> bool:
        with contextlib.suppress(Exception):
            return await self.alive(owner)
        return True  # Redis itself is down: the owner may well be fine

    async def _published(self, ps, owner: str) -> AsyncIterator[dict[str, Any]]:
        """The channel's messages; checks the owner's heartbeat when it has been quiet."""
        quiet_since = time.monotonic()
        while True:
            msg = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is None:
                if time.monotonic() - quiet_since > self.ttl_s / 2:
                    if not await self.alive(owner):
                        raise WorkerGone(owner)
                    quiet_since = time.monotonic()
                continue
            quiet_since = time.monotonic()
            yield json.loads(msg["data"])

    # ------------------------------------------------------------------ calls
    async def call(self, worker_id: str, kind: str, body: dict[str, Any],
                   timeout_s: float | None = None) -> Any:
        """Ask ``worker_id`` to run its ``kind`` handler on ``body``; its answer. Raises
        :class:`WorkerGone` when nobody listens or no answer comes in ``timeout_s`` (default
        ``call_timeout_s``), and re-raises a handler's :class:`ValueError` subclasses as
        :class:`RemoteError`."""
        timeout = timeout_s if timeout_s is not None else self.call_timeout_s
        if worker_id == self.worker_id:
            return await self.handlers[kind](body)
        req = uuid.uuid4().hex
        fut = asyncio.get_running_loop().create_future()
        self._pending[req] = fut
        try:
            listeners = await self.redis.publish(f"eqx:w:{worker_id}", json.dumps(
                {"kind": kind, "body": body, "req": req, "from": self.worker_id}))
            if not listeners:
                raise WorkerGone(f"worker {worker_id} is not listening")
            answer = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise WorkerGone(f"worker {worker_id} did not answer in {timeout:g} s") from None
        finally:
            self._pending.pop(req, None)
        if "error" in answer:
            raise RemoteError(**answer["error"])
        return answer["result"]

    async def _listen(self) -> None:
        """Requests for this worker and answers to its calls, reconnecting after an outage."""
        while True:
            try:
                async with self.redis.pubsub() as ps:
                    await ps.subscribe(f"eqx:w:{self.worker_id}", f"eqx:r:{self.worker_id}")
                    while True:
                        # get_message with a timeout, not listen(): a quiet channel must not
                        # trip the client's socket timeout (and a reconnect window).
                        msg = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if msg is None or msg.get("type") != "message":
                            continue
                        data = json.loads(msg["data"])
                        if msg["channel"].startswith("eqx:r:"):
                            fut = self._pending.get(data.get("req"))
                            if fut is not None and not fut.done():
                                fut.set_result(data)
                        else:
                            asyncio.create_task(self._answer(data))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - Redis down: listen again when it is back
                log.warning("bus listener: %s; reconnecting", type(e).__name__)
                await asyncio.sleep(RECONNECT_S)

    async def _answer(self, data: dict[str, Any]) -> None:
        try:
            out: dict[str, Any] = {"req": data["req"],
                                   "result": await self.handlers[data["kind"]](data["body"])}
        except ValueError as e:
            out = {"req": data["req"], "error": {"kind": type(e).__name__, "message": str(e),
                                                 "field": getattr(e, "field", None)}}
        except Exception as e:  # noqa: BLE001 - the caller gets the failure, not a timeout
            log.exception("handling %s", data.get("kind"))
            out = {"req": data["req"], "error": {"kind": type(e).__name__,
                                                 "message": str(e)[:300], "field": None}}
        with contextlib.suppress(Exception):
            await self.redis.publish(f"eqx:r:{data['from']}", json.dumps(out))


class RemoteError(ValueError):
    """A handler on another worker refused the request (``kind``: its exception's class)."""

    def __init__(self, kind: str, message: str, field: str | None = None):
        super().__init__(message)
        self.kind, self.field = kind, field


def make_bus(redis_url: str | None, ttl_s: float = 10.0,
             call_timeout_s: float = 5.0) -> LocalBus:
    """:class:`RedisBus` when ``redis_url`` is set, else :class:`LocalBus`."""
    if redis_url:
        return RedisBus(redis_url, ttl_s=ttl_s, call_timeout_s=call_timeout_s)
    return LocalBus()
