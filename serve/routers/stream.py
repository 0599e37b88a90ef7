"""``WS /api/v1/simulation/{id}/stream``: a session's stored moves, then its live ones, then
the result.

Auth: ``?token=<jwt>``, or a first frame ``{"token": "<jwt>"}`` within ``ws_auth_timeout_s``; a
bad or missing token closes with 1008. Client frames after that may only be ``{"type": "ping"}``
(answered with ``{"type": "pong"}``); anything oversize (> ``ws_max_message_bytes``), binary, or
not a JSON object closes with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from serve import auth
from serve.db import SimSession
from serve.deps import API, Services, ServicesDep, principal_from_token
from serve.simulation import end_message

router = APIRouter(prefix=API)

# WebSocket close codes (RFC 6455 + the application range 4000-4999).
WS_NORMAL = 1000
WS_POLICY_VIOLATION = 1008  # bad/missing token, oversize or malformed client frame
WS_TRY_AGAIN_LATER = 1013  # rate limited
WS_NOT_FOUND = 4404  # unknown session id (mirrors HTTP 404)


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


async def close(ws: WebSocket, code: int, reason: str = "") -> None:
    if ws.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code=code, reason=reason[:120])


async def authenticate(ws: WebSocket, svc: Services) -> auth.Principal | None:
    """The caller, from ``?token=`` or a first ``{"token"}`` frame; None if the client left.
    :class:`Refused` for a missing or bad token, or a caller over its rate limit."""
    token = ws.query_params.get("token")
    try:
        if not token:
            try:
                first = await asyncio.wait_for(
                    receive_checked(ws, svc.settings.ws_max_message_bytes),
                    svc.settings.ws_auth_timeout_s)
            except TimeoutError:
                first = {}
            if first is None:
                return None
            token = first.get("token") if isinstance(first.get("token"), str) else None
    except Violation as e:
        raise Refused(WS_POLICY_VIOLATION, str(e)) from None
    if not token:
        raise Refused(WS_POLICY_VIOLATION, "missing token")
    try:
        principal = await principal_from_token(svc, token)
    except auth.AuthError as e:
        raise Refused(WS_POLICY_VIOLATION, str(e)) from None
    if svc.user_limits.take(principal.user_id) > 0:
        raise Refused(WS_TRY_AGAIN_LATER, "rate limit exceeded")
    return principal


class Stream:
    """One connected client of one session: a writer (the session's messages) and a reader
    (pings) sharing the socket."""

    def __init__(self, ws: WebSocket, svc: Services, row: SimSession,
                 principal: auth.Principal):
        self.ws, self.svc, self.row, self.principal = ws, svc, row, principal
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
        else:
            # Finished (or interrupted) before we connected: the database has everything.
            fresh = await to_thread.run_sync(sims.get, sid, self.principal)
            for payload in await to_thread.run_sync(sims.stored_messages, sid):
                await self.send(payload)
            await self.send(end_message(fresh or self.row))
        return "done"

    async def reader(self) -> str:
        while True:
            obj = await receive_checked(self.ws, self.svc.settings.ws_max_message_bytes)
            if obj is None:
                return "disconnect"
            if obj.get("type") == "ping":
                await self.send({"type": "pong", "timestamp": time.time()})
            elif set(obj) == {"token"}:
                continue  # a client that sends its token again is harmless
            else:
                raise Violation("unexpected message: only {\"type\": \"ping\"} is accepted")

    async def run(self) -> None:
        """Until the session ends (close 1000), the client leaves, or it breaks the rules."""
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


@router.websocket("/simulation/{session_id}/stream")
async def stream(ws: WebSocket, session_id: str, svc: ServicesDep) -> None:
    """Stream a session to a client (see the module docstring for the protocol)."""
    await ws.accept()
    try:
        principal = await authenticate(ws, svc)
        if principal is None:
            return
        row = await to_thread.run_sync(svc.sims.get, session_id, principal)
        if row is None:
            raise Refused(WS_NOT_FOUND, "session not found")
    except Refused as e:
        await close(ws, e.code, e.reason)
        return
    await Stream(ws, svc, row, principal).run()
