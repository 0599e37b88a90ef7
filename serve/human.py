"""A person at the table: a seat whose moves come from the session owner's WebSocket.

When a person's seat is to move, the session publishes a ``YOUR_TURN`` frame (the seat, the
round, the standing offer, the legal actions, the issues, the deadline) and waits. The person
answers with a structured move ``{"type": "move", "action": "COUNTER", "offer": {...}}`` (applied
at once when valid; an ``ERROR`` frame naming the field otherwise) or free text ``{"type":
"say", "text": ...}``, which is parsed (:mod:`serve.phrasing.parse`) and echoed back as a
``PROPOSED_MOVE`` to confirm with ``{"type": "confirm"}`` (text that is not a complete,
unambiguous move gets an ``ERROR`` naming what is missing; nothing is applied unconfirmed).
When the deadline passes the seat walks away (recorded with ``deadline_expired``; in the
bundles game, which has no walk-away, the session ends without a deal).

Offers are display values by issue name (:mod:`eqx_jax.games.view`); in the bundles game the
items the person keeps (the rest of the pool goes to the other side).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from eqx_jax.checks import FieldError
from eqx_jax.games.spec import ACCEPT, COUNTER, WALK_AWAY
from eqx_jax.games.view import IssueView, offer_from_dict, offer_to_dict

ACTION_TYPES = {"ACCEPT": ACCEPT, "COUNTER": COUNTER, "WALK_AWAY": WALK_AWAY}
#: The longest free text a person may send, characters.
MAX_SAY_CHARS = 500


class MoveError(ValueError):
    """A person's move that cannot be played now; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str, missing: Sequence[str] | None = None):
        super().__init__(message)
        self.field, self.missing = field, list(missing or [])


@dataclasses.dataclass
class HumanTurn:
    """A person's seat to move. ``standing``: the standing offer as display values (bundles:
    the items the person would keep under it), None without one."""

    session_id: str
    game: str
    seat: int
    agent: str
    round: int
    max_rounds: int
    issues: tuple[IssueView, ...]
    standing: dict[str, Any] | None
    deadline_s: float
    deadline_at: float
    pool: list[int] | None = None

    @property
    def legal(self) -> list[str]:
        out = ["COUNTER"]
        if self.standing is not None:
            out.insert(0, "ACCEPT")
        if self.game != "bundles":
            out.append("WALK_AWAY")
        return out

    def frame(self) -> dict[str, Any]:
        """The ``YOUR_TURN`` frame."""
        issues = [{"name": i.name, "kind": i.kind, "low": i.low,
                   "high": i.high if self.pool is None else None,
                   "values": list(i.labels) or None, "unit": i.unit} for i in self.issues]
        out = {"type": "YOUR_TURN", "session_id": self.session_id, "game": self.game,
               "seat": self.seat, "agent": self.agent, "round": self.round,
               "max_rounds": self.max_rounds, "standing_offer": self.standing,
               "legal_actions": self.legal, "issues": issues, "deadline_s": self.deadline_s,
               "deadline_at": self.deadline_at, "timestamp": time.time()}
        if self.pool is not None:
            out["pool"] = dict(zip([i.name for i in self.issues], self.pool, strict=True))
        return out


@dataclasses.dataclass
class HumanMove:
    """A person's move, ready for the env: ``action_type``, ``natural`` (D,) natural units
    (the price game: (1,) the price); ``offer`` as display values (None for ACCEPT / WALK_AWAY);
    ``via`` "form", "text" or "deadline"; ``raw_text`` and ``parsed`` for a move from text."""

    round: int
    action: str
    natural: np.ndarray
    offer: dict[str, Any] | None
    via: str
    raw_text: str | None = None
    parsed: dict[str, Any] | None = None

    @property
    def action_type(self) -> int:
        return ACTION_TYPES[self.action]

    def record(self) -> dict[str, Any]:
        """What a stored move says about the person's input."""
        return {"human": True, "via": self.via, "raw_text": self.raw_text,
                "parsed": self.parsed, "deadline_expired": self.via == "deadline"}


def human_payload(move: HumanMove, payload: dict[str, Any]) -> dict[str, Any]:
    """The stored fields of a person's move (added to its MOVE payload): their own words are
    the message when they typed it."""
    out = move.record()
    if move.raw_text:
        out.update(message=move.raw_text, phraser="human", quality=None, quality_detail={},
                   fallback_reason=None)
    return out


def price_issues(max_price: float) -> tuple[IssueView, ...]:
    """The price game's one issue as a person offers it (a price in [0, max_price])."""
    return (IssueView("price", "continuous", 0.0, max_price, unit="currency"),)


def _offer_values(turn: HumanTurn, offer: Any) -> np.ndarray:
    natural = offer_from_dict(turn.issues, offer)
    if turn.pool is not None:
        for i, (n, cap) in enumerate(zip(turn.issues, turn.pool, strict=True)):
            if natural[i] > cap:
                raise FieldError(f"offer.{n.name}", f"at most {cap} (the pool)", offer[n.name])
    return natural


def structured_move(turn: HumanTurn, frame: dict[str, Any], via: str = "form",
                    raw_text: str | None = None) -> HumanMove:
    """A ``move`` frame checked against the turn; :class:`MoveError` naming the field."""
    action = frame.get("action")
    if action not in ACTION_TYPES:
        raise MoveError("action", f"action must be one of {', '.join(turn.legal)}, got "
                        f"{str(action)[:20]!r}")
    if action not in turn.legal:
        why = ("there is no standing offer to accept" if action == "ACCEPT"
               else "the bundles game has no walk-away")
        raise MoveError("action", f"{action} is not legal now ({why}); legal: "
                        f"{', '.join(turn.legal)}")
    offer = frame.get("offer")
    if action == "COUNTER" and offer is None and "price" in frame and len(turn.issues) == 1:
        offer = {"price": frame["price"]}  # the price game's short form
    if action == "COUNTER":
        try:
            natural = _offer_values(turn, offer)
        except FieldError as e:
            raise MoveError(e.field, str(e)) from None
        shown = offer_to_dict(turn.issues, natural)
    else:
        natural = np.zeros(len(turn.issues), np.float32)
        if turn.standing is not None:
            natural = offer_from_dict(turn.issues, turn.standing)
        shown = None
    parsed = {"action": action, "offer": shown} if via == "text" else None
    return HumanMove(turn.round, action, natural, shown, via, raw_text, parsed)


def expired_move(turn: HumanTurn) -> HumanMove:
    """The move of a seat whose deadline passed: a walk-away."""
    return HumanMove(turn.round, "WALK_AWAY", np.zeros(len(turn.issues), np.float32), None,
                     "deadline")


def parse_say(turn: HumanTurn, text: Any) -> HumanMove:
    """Free text as a move to confirm; :class:`MoveError` (``field`` "text", ``missing`` the
    issues or "action") when it is not a complete, unambiguous, legal move."""
    from serve.phrasing.parse import parse_move

    if not isinstance(text, str) or not text.strip():
        raise MoveError("text", "text must be a non-empty string", ["action"])
    if len(text) > MAX_SAY_CHARS:
        raise MoveError("text", f"text must be at most {MAX_SAY_CHARS} characters")
    got = parse_move(text, turn.issues, turn.standing, game=turn.game, pool=turn.pool)
    if got.ask:
        raise MoveError("text", got.question, got.ask)
    frame = {"action": got.action, "offer": got.offer}
    try:
        return structured_move(turn, frame, via="text", raw_text=text)
    except MoveError as e:
        raise MoveError("text", str(e), [e.field.removeprefix("offer.")]) from None


@dataclasses.dataclass
class Seat:
    """The person's side of a live session: the turn waiting for a move, the queue the
    WebSocket puts moves into, and the proposals waiting for confirmation (per stream)."""

    turn: HumanTurn | None = None
    moves: asyncio.Queue = dataclasses.field(default_factory=asyncio.Queue)
    proposals: dict[str, HumanMove] = dataclasses.field(default_factory=dict)

    def submit(self, move: HumanMove) -> None:
        self.moves.put_nowait(move)

    async def wait(self, turn: HumanTurn) -> HumanMove:
        """The person's move for ``turn``, or the walk-away when its deadline passes."""
        self.turn = turn
        try:
            while True:
                left = turn.deadline_at - time.time()
                if left <= 0:
                    return expired_move(turn)
                try:
                    move = await asyncio.wait_for(self.moves.get(), left)
                except TimeoutError:
                    return expired_move(turn)
                if move.round == turn.round:
                    return move
        finally:
            self.turn = None
            self.proposals.clear()


def _error(session_id: str, error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "ERROR", "error": error, "session_id": session_id, "message": message,
            **extra, "timestamp": time.time()}


def human_frames(session_id: str, seat: Seat | None, owner_id: int | None, user_id: int,
                 key: str, kind: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply a person's frame (``kind`` ``move``, ``say`` or ``confirm``) from the socket
    ``key`` of ``user_id`` to the session's ``seat``: a move is submitted when valid, free text
    is parsed and proposed, a confirmation submits the socket's proposal. The frames to send
    back to that socket (a ``PROPOSED_MOVE``, or an ``ERROR`` saying what is wrong). Runs on the
    worker that plays the session, whichever worker the socket is on."""
    if seat is None:
        return [_error(session_id, "no_seat", "this session has no seat a person plays (or it "
                                              "has ended)")]
    if owner_id != user_id:
        return [_error(session_id, "not_owner", "only the session's owner plays its seats")]
    turn = seat.turn
    if turn is None:
        return [_error(session_id, "not_your_turn",
                       "it is not your seat's turn; wait for YOUR_TURN")]
    try:
        if kind == "move":
            seat.submit(structured_move(turn, obj))
        elif kind == "say":
            proposal = parse_say(turn, obj.get("text"))
            seat.proposals[key] = proposal
            return [{"type": "PROPOSED_MOVE", "session_id": session_id, "round": turn.round,
                     "text": proposal.raw_text,
                     "move": {"action": proposal.action, "offer": proposal.offer},
                     "message": "reply {\"type\": \"confirm\"} to play this move",
                     "timestamp": time.time()}]
        else:
            proposal = seat.proposals.pop(key, None)
            if proposal is None or proposal.round != turn.round:
                return [_error(session_id, "nothing_to_confirm", "no proposed move for this "
                               "turn: send a say or a move frame first")]
            seat.submit(proposal)
    except MoveError as e:
        return [_error(session_id, "unparsed" if kind == "say" else "invalid_move", str(e),
                       field=e.field, missing=e.missing, round=turn.round)]
    return []
