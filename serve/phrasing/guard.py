"""The guard: may this text be sent for this move? ``check_message`` (price, intent, form) and its
intent half ``check_intent``, with the regular expressions that define each action's wording.

A false rejection costs one template message; a false acceptance would contradict the strategy,
so the rules lean towards rejecting (see docs/phrasing.md, "The guard").
"""

from __future__ import annotations

import re

from serve.phrasing.prices import price_mentions, whole_units

__all__ = ["check_intent", "check_message"]

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
