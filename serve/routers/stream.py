"""``WS /api/v1/simulation/{id}/stream``: a session's stored moves, then its live ones, then
the result.

Auth, by the first of: the ``Authorization: Bearer <jwt>`` header of the upgrade request; the
subprotocols ``["bearer", "<jwt>"]`` (accepted as ``bearer``); ``?token=<jwt>`` (old clients;
redacted from the logs, see :mod:`serve.logredact`); else the first frame, ``{"type": "auth",
"token": ...}`` (or ``{"token": ...}``) or a config frame carrying ``"token"``, within
``ws_auth_timeout_s``. A bad or missing token closes with 1008; more than
``ws_max_unauthenticated_per_ip`` sockets of one address waiting to authenticate: 1013.

Client frames after that: ``{"type": "ping"}`` (answered ``{"type": "pong"}``), auth frames
(ignored), and config frames: ``SimulationStartRequest`` fields, optionally with
``"type": "config"``. Before the session's first move a config frame sets the configuration
(invalid: close 1008 naming the field) and starts it; after, it is compared with the running
configuration: equal gets no reply, different an ``{"type": "ERROR"}`` frame naming the fields.
More than ``ws_frames_per_minute`` frames (burst ``ws_frames_burst``), anything oversize
(> ``ws_max_message_bytes``), binary, or not a JSON object closes with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from serve import auth
from serve.bus import Gone, WorkerGone
from serve.db import SimSession
from serve.deps import API, Services, ServicesDep, principal_from_token
from serve.ratelimit import RateLimiter, WebSocketGuards
from serve.simulation import ACTIVE, ConfigError, end_message
from serve.workers import Sessions

router = APIRouter(prefix=API)

# WebSocket close codes (RFC 6455 + the application range 4000-4999).
WS_NORMAL = 1000
WS_POLICY_VIOLATION = 1008  # bad/missing token, oversize or malformed client frame
WS_TRY_AGAIN_LATER = 1013  # rate limited, or too many unauthenticated sockets
WS_NOT_FOUND = 4404  # unknown session id (mirrors HTTP 404)

#: The subprotocol that carries a token: the client offers ``["bearer", "<jwt>"]``.
BEARER_SUBPROTOCOL = "bearer"
#: Close reasons are at most 123 bytes (RFC 6455).
MAX_REASON_BYTES = 123
#: A person's frames (their seat's moves): see :mod:`serve.human`.
HUMAN_FRAMES = ("move", "say", "confirm")
#: Keys of a config frame that are not configuration.
FRAME_KEYS = ("type", "token")


class Violation(Exception):
    """A client frame the stream does not accept (closes with 1008)."""


class Refused(Exception):
    """The stream cannot be served: close with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def receive_checked(ws: WebSocket, limit: int) -> dict[str, Any] | None:
    """One client frame as a JSON object; None on disconnect; :class:`Violation` if too big,
    binary, not JSON, or not an object."""
    msg = await ws.receive()
    if msg["type"] == "websocket.disconnect":
        return None
    data = msg.get("text")
    if data is None:
        raise Violation("binary frames are not accepted")
    if len(data.encode()) > limit:
        raise Violation(f"frame larger than {limit} bytes")
    try:
        obj = json.loads(data)
    except ValueError:
        raise Violation("frame is not JSON") from None
    if not isinstance(obj, dict):
        raise Violation("frame must be a JSON object")
    return obj


def frame_kind(obj: dict[str, Any]) -> str:
    """``ping``, ``auth`` or ``config``; :class:`Violation` for any other ``type``."""
    kind = obj.get("type")
    if kind == "ping":
        return "ping"
    if kind in HUMAN_FRAMES:
        return kind
    if kind == "auth" or (kind is None and set(obj) == {"token"}):
        return "auth"
    if kind in (None, "config"):
        return "config"
    raise Violation(f"unexpected message type {str(kind)[:20]!r}: expected auth, config, ping, "
                    "move, say or confirm")


async def close(ws: WebSocket, code: int, reason: str = "") -> None:
    if ws.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code=code,
                           reason=reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore"))


def offered_token(ws: WebSocket) -> str | None:
    """The token of the upgrade request: Authorization header, bearer subprotocol, ?token=."""
    scheme, _, cred = ws.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and cred.strip():
        return cred.strip()
    protocols = ws.scope.get("subprotocols") or []
    if BEARER_SUBPROTOCOL in protocols:
        others = [p for p in protocols if p != BEARER_SUBPROTOCOL]
        if others:
            return others[0]
    return ws.query_params.get("token") or None


async def first_frame_token(ws: WebSocket, svc: Services,
                            ) -> tuple[str, dict[str, Any] | None] | None:
    """The token of the first frame, and that frame if it is a config frame (to apply once
    authenticated); None if the client left. :class:`Refused` on timeout or a bad frame."""
    timeout = svc.settings.ws_auth_timeout_s
    try:
        first = await asyncio.wait_for(
            receive_checked(ws, svc.settings.ws_max_message_bytes), timeout)
        if first is None:
            return None
        kind = frame_kind(first)
    except TimeoutError:
        raise Refused(WS_POLICY_VIOLATION,
                      f"authentication timeout: no token within {timeout:g} s") from None
    except Violation as e:
        raise Refused(WS_POLICY_VIOLATION, str(e)) from None
    token = first.get("token")
    if kind == "ping" or not isinstance(token, str) or not token:
        raise Refused(WS_POLICY_VIOLATION, "missing token: send {\"type\": \"auth\", "
                                           "\"token\": ...} first")
    return token, first if kind == "config" else None


def client_ip(ws: WebSocket) -> str:
    return ws.client.host if ws.client else "unknown"


async def authenticate(ws: WebSocket, svc: Services, g: WebSocketGuards, counted: bool | None,
                       ) -> tuple[auth.Principal, dict[str, Any] | None] | None:
    """The caller and a config frame that came with its token (or None); None if the client
    left. ``counted``: whether this socket, which waits for its first frame, got a place among
    its address's unauthenticated sockets (None: its token came with the upgrade request); the
    place is given back here. :class:`Refused` for a missing or bad token, a caller over its
    rate limit, or too many sockets of the client's address waiting to authenticate."""
    token, pending = offered_token(ws), None
    if token is None:
        if not counted:
            raise Refused(WS_TRY_AGAIN_LATER, "try again later: too many unauthenticated "
                                              "connections from this address")
        try:
            got = await first_frame_token(ws, svc)
        finally:
            await g.leave(client_ip(ws))
        if got is None:
            return None
        token, pending = got
    try:
        principal = await principal_from_token(svc, token)
    except auth.AuthError as e:
        raise Refused(WS_POLICY_VIOLATION, str(e)) from None
    if svc.user_limits.take(principal.user_id) > 0:
        raise Refused(WS_TRY_AGAIN_LATER, "rate limit exceeded")
    return principal, pending


class Stream:
    """One connected client of one session: a writer (the session's messages) and a reader
    (pings, config frames) sharing the socket."""

    def __init__(self, ws: WebSocket, svc: Services, row: SimSession,
                 principal: auth.Principal, frames: RateLimiter):
        self.ws, self.svc, self.row, self.principal = ws, svc, row, principal
        self.frames, self.key = frames, uuid.uuid4().hex
        self.calls = Sessions(svc.sims)
        self.send_lock = asyncio.Lock()

    async def send(self, obj: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(json.dumps(obj))

    async def writer(self) -> str:
        sims, sid = self.svc.sims, self.row.id
        feed = sims.live.get(sid)
        if feed is not None:
            async for payload in feed.follow():
                await self.send(payload)
            return "done"
        last_seq, sent = -1, 0
        owner = self.calls.owner(self.row)
        # A session stored an instant ago may not have its feed on the owner yet: a "gone"
        # before anything was sent is asked again, briefly.
        for attempt in range(3 if owner is not None else 0):
            try:
                async for payload in sims.bus.follow(sid, owner):  # type: ignore[attr-defined]
                    await self.send(payload)
                    sent += 1
                    if payload.get("type") == "MOVE":
                        last_seq = payload["seq"]
                return "done"
            except Gone:
                if sent or attempt == 2:
                    break
                await asyncio.sleep(0.1)
            except WorkerGone:
                break  # its worker died: the database has the rest
        # Finished (or interrupted) before we connected, or its worker died: every stored move
        # the client has not had, then the end (once the reaper has marked it).
        fresh = await self._settled(owner is not None)
        for payload in await to_thread.run_sync(sims.stored_messages, sid):
            if payload["seq"] > last_seq:
                await self.send(payload)
        await self.send(end_message(fresh or self.row))
        return "done"

    async def _settled(self, wait: bool) -> SimSession | None:
        """The session's row; with ``wait``, once it has ended (a dead worker's sessions are
        marked within about twice ``worker_ttl_s``), polling every half second."""
        sims = self.svc.sims
        deadline = time.monotonic() + 3 * self.svc.settings.worker_ttl_s
        while True:
            fresh = await to_thread.run_sync(sims.get, self.row.id, self.principal)
            if not wait or fresh is None or fresh.status not in ACTIVE:
                return fresh
            if time.monotonic() > deadline:
                return fresh
            await asyncio.sleep(0.5)

    async def config(self, obj: dict[str, Any]) -> None:
        """Apply or compare a config frame; an ERROR frame when it differs from the running
        configuration; :class:`Violation` when it is invalid."""
        fields = {k: v for k, v in obj.items() if k not in FRAME_KEYS}
        try:
            diff = await self.calls.configure(self.row, self.principal, fields)
        except ConfigError as e:
            raise Violation(f"invalid config: {e}") from None
        if diff:
            await self.send({
                "type": "ERROR", "error": "config_mismatch", "session_id": self.row.id,
                "message": "the session is already playing another configuration; differing "
                           f"fields: {', '.join(diff)}",
                "fields": diff, "timestamp": time.time()})

    async def human(self, kind: str, obj: dict[str, Any]) -> None:
        """A person's frame for their seat (applied by the worker that runs the session: see
        :func:`serve.human.human_frames`); sends what it answers."""
        for frame in await self.calls.human(self.row, self.principal, self.key, kind, obj):
            await self.send(frame)

    async def reader(self) -> str:
        limit = self.svc.settings.ws_max_message_bytes
        while True:
            obj = await receive_checked(self.ws, limit)
            if obj is None:
                return "disconnect"
            if self.frames.take(self.key) > 0:
                s = self.svc.settings
                raise Violation(f"too many client frames: at most {s.ws_frames_burst} at once, "
                                f"{s.ws_frames_per_minute:g} per minute")
            kind = frame_kind(obj)
            if kind == "ping":
                await self.send({"type": "pong", "timestamp": time.time()})
            elif kind == "config":
                await self.config(obj)
            elif kind in HUMAN_FRAMES:
                await self.human(kind, obj)
            # An auth frame after authentication is harmless: ignored.

    async def run(self, pending: dict[str, Any] | None) -> None:
        """Until the session ends (close 1000), the client leaves, or it breaks the rules."""
        await self.calls.join(self.row)
        try:
            if pending is not None:
                await self.config(pending)
        except Violation as e:
            await close(self.ws, WS_POLICY_VIOLATION, str(e))
            return
        w, r = asyncio.create_task(self.writer()), asyncio.create_task(self.reader())
        try:
            done, _ = await asyncio.wait({w, r}, return_when=asyncio.FIRST_COMPLETED)
            if w in done:
                w.result()
                await close(self.ws, WS_NORMAL, "simulation finished")
            else:
                try:
                    r.result()
                except Violation as e:
                    await close(self.ws, WS_POLICY_VIOLATION, str(e))
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            pass  # the client went away mid-send
        finally:
            for t in (w, r):
                t.cancel()
            await asyncio.gather(w, r, return_exceptions=True)


async def admit(ws: WebSocket, svc: Services, session_id: str, g: WebSocketGuards,
                counted: bool | None,
                ) -> tuple[auth.Principal, SimSession, dict[str, Any] | None] | None:
    """Authenticate the caller and find its session; None if the client left.
    :class:`Refused` otherwise."""
    got = await authenticate(ws, svc, g, counted)
    if got is None:
        return None
    principal, pending = got
    row = await to_thread.run_sync(svc.sims.get, session_id, principal)
    if row is None:
        raise Refused(WS_NOT_FOUND, "session not found")
    return principal, row, pending


@router.websocket("/simulation/{session_id}/stream")
async def stream(ws: WebSocket, session_id: str, svc: ServicesDep) -> None:
    """Stream a session to a client (see the module docstring for the protocol)."""
    offered = ws.scope.get("subprotocols") or []
    g = svc.ws_guards
    # Only a socket that has to wait for its first frame counts as unauthenticated; it is
    # counted before the handshake completes, so that the count is in place (in Redis too)
    # by the time the client can open its next socket.
    counted = await g.enter(client_ip(ws)) if offered_token(ws) is None else None
    try:
        await ws.accept(subprotocol=BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in offered
                        else None)
    except BaseException:
        if counted:
            await g.leave(client_ip(ws))
        raise
    try:
        admitted = await admit(ws, svc, session_id, g, counted)
    except Refused as e:
        await close(ws, e.code, e.reason)
        return
    if admitted is not None:
        principal, row, pending = admitted
        await Stream(ws, svc, row, principal, g.frames).run(pending)
