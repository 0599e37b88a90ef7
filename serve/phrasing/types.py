"""The phrasing vocabulary: the move to word (``MoveContext``), the worded result
(``PhrasedMessage``), the settings (``PhrasingSettings``) and the constants they draw on.

Units: prices are in currency units (the game's dollars), times in seconds unless named ``_ms``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from serve.settings import BACKENDS, PROMPTS, LLMSettings

__all__ = ["ACTIONS", "BACKENDS", "LOGGER", "PROMPTS", "ROLES", "STYLES", "MoveContext",
           "PhrasedMessage", "PhrasingSettings"]

STYLES = ("aggressive", "cooperative", "analytical")
ACTIONS = ("ACCEPT", "COUNTER", "WALK_AWAY")
ROLES = ("supplier", "retailer")
#: The logger every phrasing module writes to (one name, so one switch for all of them).
LOGGER = "eqx.serve.phrasing"

#: Phrasing configuration. The same class as ``serve.settings.LLMSettings`` (``Settings.llm``),
#: so the server hands its settings to the phraser as they are.
PhrasingSettings = LLMSettings


@dataclass(frozen=True)
class MoveContext:
    """One move to phrase. Prices are in currency units; rounds are 1-based."""

    role: str  # "supplier" | "retailer"
    style: str  # one of STYLES
    action: str  # one of ACTIONS
    # COUNTER: the price offered; ACCEPT: the price accepted; WALK_AWAY: the standing offer walked
    # away from (or None).
    price: float | None
    round: int  # 1-based round of this move
    max_rounds: int
    offer_history: tuple[tuple[str, float], ...] = ()  # (role, price) of earlier offers, oldest 1st
    seed: int = 0  # the template phraser is deterministic per (seed, round, role)

    def validate(self) -> None:
        """Raise ValueError for a context the strategy layer should never produce."""
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.action in ("ACCEPT", "COUNTER") and self.price is None:
            raise ValueError(f"{self.action} needs a price")
        if self.price is not None and not math.isfinite(self.price):
            raise ValueError(f"price must be finite, got {self.price!r}")


@dataclass
class PhrasedMessage:
    """A worded move. ``latency_ms`` is the wall time of ``Phraser.phrase`` (queue + LLM calls)."""

    text: str
    phraser: str  # which backend wrote it: "ollama" | "openai" | "embedded" | "template"
    quality: float  # founding design's quality score, 0..1
    quality_detail: dict[str, float]
    latency_ms: float
    llm_attempts: int  # LLM generations tried for this message (0 for template-only)
    # Did an LLM text pass the guard? None if no LLM text came back (template backend, queue
    # full, unreachable, timeout before any text).
    guard_passed: bool | None
    fallback_reason: str | None  # e.g. "unreachable", "timeout", "guard", "queue_full"
    guard_failures: list[str] = field(default_factory=list)  # reasons of rejected LLM texts
