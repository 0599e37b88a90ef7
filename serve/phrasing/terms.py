"""Messages of the games beyond one price: every issue value of a move in words
(``describe_terms``: "300 units at $10.18 a unit, delivery in 8 weeks"), template sentences per
style and action around them (``terms_message``), and the guard that checks every number of a
message against the move's terms (``check_terms``).

The guard reads every number of the text in any spelling (digits or words, with currency or
magnitude: :func:`serve.phrasing.prices.read_numbers`) and requires each of the move's numbers
to be stated and no other number to appear (a quantity, price or delivery time that is not the
move's is never sent); then the intent check of the single-price guard. Money is stated to the
cent (a unit price of $10.18 is not $10), counts as whole numbers.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eqx_jax.games.view import as_seen_by, rest_of_pool
from serve.phrasing.guard import check_intent, form_reason, unprofessional
from serve.phrasing.prices import read_numbers

__all__ = ["TermsContext", "check_terms", "describe_terms", "term_numbers", "terms_message",
           "terms_quality"]


@dataclass(frozen=True)
class TermsContext:
    """One move of a game beyond one price to phrase.

    ``issues``: (name, unit) per issue in order (:class:`eqx_jax.games.view.IssueView`'s
    ``name`` / ``unit``); ``offer``: the move's display values by issue name (COUNTER the offer
    made, ACCEPT the offer accepted, WALK_AWAY the standing offer or None); ``pool`` (bundles
    game): the item counts, so that "the rest" is named from the speaker's side; ``first_seat``:
    whether the speaker is the seat whose items the bundles offer counts (the supplier)."""

    role: str
    style: str
    action: str
    issues: tuple[tuple[str, str], ...]
    offer: dict[str, Any] | None
    round: int
    max_rounds: int
    seed: int = 0
    first_seat: bool = True
    #: The issues as :class:`eqx_jax.games.view.IssueView` (ranges, labels): with them the guard
    #: also reads the message back as a move (:func:`serve.phrasing.parse.parse_move`).
    views: tuple[Any, ...] | None = None

    def validate(self) -> None:
        if self.action not in ("ACCEPT", "COUNTER", "WALK_AWAY"):
            raise ValueError(f"action must be ACCEPT, COUNTER or WALK_AWAY, got {self.action!r}")
        if self.action in ("ACCEPT", "COUNTER") and not self.offer:
            raise ValueError(f"{self.action} needs an offer")
        for name, _ in self.issues if self.offer else ():
            v = self.offer.get(name)
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                raise ValueError(f"offer.{name} must be a finite value, got {v!r}")


def _money(x: float) -> str:
    """$10.18, $45.50, $1,200 (cents only where there are any)."""
    cents = round(float(x) * 100)
    return f"${cents // 100:,}" if cents % 100 == 0 else f"${cents / 100:,.2f}"


def _count(x: float) -> str:
    """Whole numbers as such ("120"); a fractional quantity to the hundredth ("119.58")."""
    v = float(x)
    return f"{round(v):,}" if abs(v - round(v)) < 0.005 else f"{v:,.2f}".rstrip("0")


def _words(name: str) -> str:
    return name.replace("_", " ")


_ITEM_SINGULAR = {"books": "book", "hats": "hat", "balls": "ball"}


def _items(names: Sequence[str], counts: Sequence[float]) -> str:
    parts = [f"{_count(c)} {_ITEM_SINGULAR.get(n, n) if round(c) == 1 else n}"
             for n, c in zip(names, counts, strict=True) if round(c) > 0]
    if not parts:
        return "nothing"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _issue_phrase(name: str, unit: str, value: Any) -> str:
    if isinstance(value, str):
        return f"{_words(name)} {value}"
    n = name.lower()
    if unit == "currency":
        return f"{_money(value)} a unit" if n in ("price", "unit_price") else (
            f"{_words(name)} {_money(value)}")
    if unit == "units":
        return f"{_count(value)} units"
    if unit in ("days", "weeks", "months"):
        v, one = _count(value), unit[:-1]
        if n.startswith("delivery"):
            return f"delivery in {v} {one if v == '1' else unit}"
        if n.startswith("payment"):
            return f"payment in {v} {one if v == '1' else unit}"
        if n.startswith("warranty"):
            return f"a {v}-{one} warranty"
        return f"{_words(name)} {v} {one if v == '1' else unit}"
    shown = _count(value) if float(value) == round(float(value)) else f"{float(value):g}"
    return f"{_words(name)} {shown}"


def describe_terms(ctx: TermsContext, pool: Sequence[float] | None = None) -> str:
    """Every issue value of the move's offer in words, in the issues' order; the quantity
    first with the unit price after it ("120 units at $45.50 a unit"). The bundles game
    (``pool`` given): the speaker's items and "the rest for you" (or the other way round)."""
    assert ctx.offer is not None
    names = [n for n, _ in ctx.issues]
    if pool is not None:
        seen = _speaker_offer(ctx, pool)
        mine = [float(seen[n]) for n in names]
        return f"{_items(names, mine)} for me and the rest for you"
    phrases = {n: _issue_phrase(n, u, ctx.offer[n]) for n, u in ctx.issues}
    units = [n for n, u in ctx.issues if u == "units"]
    price = [n for n, u in ctx.issues if u == "currency" and n.lower() in ("price", "unit_price")]
    head: list[str] = []
    if units and price:
        head = [f"{phrases[units[0]]} at {phrases[price[0]]}"]
        rest = [phrases[n] for n in names if n not in (units[0], price[0])]
    else:
        rest = [phrases[n] for n in names]
    parts = head + rest
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# {terms}: describe_terms. Every sentence states the terms once and no other number.
_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "aggressive": {
        "COUNTER": ("My offer is {terms}. Take it seriously, because I will not keep bending.",
                    "Let's stop wasting time. I propose {terms}, and that is close to my limit."),
        "ACCEPT": ("Fine, I accept {terms}. We have a deal, so send the paperwork today.",),
        "WALK_AWAY": ("This is going nowhere. {terms_cap} does not work for me, so I am walking "
                      "away.",),
    },
    "cooperative": {
        "COUNTER": ("Thank you for working with me. Could we agree on {terms}? I think it works "
                    "for both of us.",
                    "We are getting closer. I would like to propose {terms}, which I believe is "
                    "fair to both sides."),
        "ACCEPT": ("Thank you, {terms} works for us. I accept, and I look forward to working "
                   "together.",),
        "WALK_AWAY": ("Thank you for your time, but {terms} does not work for us, so I will step "
                      "away for now.",),
    },
    "analytical": {
        "COUNTER": ("Based on our costs and the market, I propose {terms}. That reflects fair "
                    "value on every term.",
                    "Looking at the data, I offer {terms}; it balances the terms against our "
                    "requirements."),
        "ACCEPT": ("Having reviewed the terms, {terms} is a sound outcome for both parties. I "
                   "accept, so we have a deal.",),
        "WALK_AWAY": ("Our analysis shows that {terms} falls outside any viable range for us, so "
                      "I am walking away from this negotiation.",),
    },
}
_WALK_NO_OFFER = {
    "aggressive": "This is going nowhere, so I am walking away. I will take my business "
                  "elsewhere.",
    "cooperative": "Thank you for your time, but I do not see a way to make this work, so I "
                   "will step away for now.",
    "analytical": "Our analysis shows no terms that work for both sides, so I am walking away "
                  "from this negotiation.",
}


def terms_message(ctx: TermsContext, pool: Sequence[float] | None = None) -> str:
    """A deterministic message for ``ctx`` (the variant drawn from (seed, round, role))."""
    ctx.validate()
    if ctx.action == "WALK_AWAY" and not ctx.offer:
        return _WALK_NO_OFFER[ctx.style]
    rng = random.Random(f"{ctx.seed}:{ctx.round}:{ctx.role}")
    text = rng.choice(_TEMPLATES[ctx.style][ctx.action])
    terms = describe_terms(ctx, pool)
    return text.format(terms=terms, terms_cap=terms[:1].upper() + terms[1:])


_ROUND_RE = re.compile(r"\bround \d+(?: of \d+)?\b", re.IGNORECASE)


def _values(text: str) -> list[float]:
    return [n.value for n in read_numbers(_ROUND_RE.sub(" ", text))]


def term_numbers(ctx: TermsContext, pool: Sequence[float] | None = None) -> list[float]:
    """The numbers the move's terms state (what a message must say, and all it may say)."""
    return [] if not ctx.offer else _values(describe_terms(ctx, pool))


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 0.005 + 1e-9 * abs(b)


def check_terms(text: str, ctx: TermsContext, pool: Sequence[float] | None = None) -> str | None:
    """The guard for a move of a game beyond one price: None if ``text`` may be sent, else the
    reason: the form and tone checks of the single-price guard, then ``missing_term`` (a number
    of the move's terms not stated), ``other_number`` (a number that is not one of them; a
    number written so that it cannot be read counts as another number), then the intent."""
    why = form_reason(text)
    if why is None and unprofessional(text):
        why = "unprofessional"
    if why is not None:
        return why
    if ctx.views is not None:
        why = _read_back(text, ctx, pool)
        if why is not None:
            return why
        return _other_numbers(text, ctx, pool)
    expected = term_numbers(ctx, pool)
    stated = _values(text)
    if any(math.isnan(v) or not any(_same(v, e) for e in expected) for v in stated):
        return "other_number"
    if any(not any(_same(v, e) for v in stated) for e in expected):
        return "missing_term"
    return check_intent(text, ctx.action)


_COUNTER_CONTRADICTIONS = ("intent:claims_deal", "intent:walk_language", "intent:retraction")


def _speaker_offer(ctx: TermsContext, pool: Sequence[float] | None) -> dict[str, Any] | None:
    """The move's offer as its speaker states it (bundles: the items the speaker keeps)."""
    return as_seen_by(ctx.offer, pool, ctx.first_seat)


def _read_back(text: str, ctx: TermsContext, pool: Sequence[float] | None) -> str | None:
    """The message read back as a move (the parser a person's words go through) must be the
    move: the same action and, for a counter-offer, every issue's value."""
    from serve.phrasing.parse import _same_offer, parse_move

    mine = _speaker_offer(ctx, pool)
    standing = mine if ctx.action in ("ACCEPT", "WALK_AWAY") else None
    got = parse_move(text, ctx.views, standing, game="bundles" if pool is not None else "",
                     pool=list(pool) if pool is not None else None)
    if ctx.action == "COUNTER":
        if got.action != "COUNTER":
            return "intent:" + (got.action.lower() if got.action else "unclear_offer")
        if not _same_offer(got.offer, mine):
            return "wrong_terms"
        # The read-back is a counter-offer; the intent check adds what it cannot see: "we have
        # a deal", walk-away language or a retraction around the terms.
        why = check_intent(text, "COUNTER")
        return why if why in _COUNTER_CONTRADICTIONS else None
    if ctx.action == "ACCEPT":
        return None if got.action == "ACCEPT" else "intent:not_an_acceptance"
    if got.action == "WALK_AWAY" or (pool is not None and got.ask == ("action",)):
        return None
    return "intent:not_a_walk_away"


def _other_numbers(text: str, ctx: TermsContext, pool: Sequence[float] | None) -> str | None:
    """``other_number`` when the message states a number that is none of the move's terms (in
    their units or the equivalent ones: days for weeks, years for months; both sides' counts in
    the bundles game), such as "plus $200 shipping" or "a 5 % discount"."""
    from serve.phrasing.parse import _prepare, _tokens

    allowed: list[float] = []
    sides = [ctx.offer or {}]
    if pool is not None and ctx.offer:
        sides.append(rest_of_pool(ctx.offer, pool))
    for name, unit in ctx.issues:
        for offer in sides:
            v = offer.get(name)
            if isinstance(v, int | float):
                allowed += [float(v)]
                allowed += [float(v) * 7] if unit == "weeks" else []
                allowed += [float(v) / 12] if unit == "months" else []
    for tok in _tokens(_prepare(text)):
        if tok.count:
            continue  # round counts and the like
        if tok.vague or not any(_same(tok.value, a) for a in allowed):
            return "other_number"
    return None


def terms_quality(text: str, ctx: TermsContext, pool: Sequence[float] | None = None,
                  ) -> tuple[float, dict[str, float]]:
    """The founding design's quality score for a move of a game beyond one price: the mean of
    ``contains_terms`` (every number of the terms stated and no other: the guard's number
    check), ``appropriate_length`` (10 < words < 50), ``action_alignment`` (the intent check)
    and ``professional_tone``."""
    if ctx.views is not None:
        numbers_ok = (_read_back(text, ctx, pool) is None
                      and _other_numbers(text, ctx, pool) is None)
    else:
        expected, stated = term_numbers(ctx, pool), _values(text)
        numbers_ok = (all(any(_same(v, e) for e in expected) for v in stated)
                      and not any(math.isnan(v) for v in stated)
                      and all(any(_same(v, e) for v in stated) for e in expected))
    words = len(text.split())
    detail = {"contains_terms": float(numbers_ok), "appropriate_length": float(10 < words < 50),
              "action_alignment": float(check_intent(text, ctx.action) is None),
              "professional_tone": float(not unprofessional(text))}
    return sum(detail.values()) / len(detail), detail
