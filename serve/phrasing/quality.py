"""The founding design's message quality score ("LLM Quality Metrics"): ``quality_score``, the mean
of four 0/1 checks, computed for every message."""

from __future__ import annotations

from serve.phrasing.guard import check_intent, unprofessional
from serve.phrasing.prices import price_mentions, whole_units

__all__ = ["quality_score"]


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
    - ``professional_tone``: none of the design's words (stupid, idiot, dumb) nor the guard's
      other insults, swear words or shouting (``guard.unprofessional``; the guard also blocks
      them, so only a template-free scoring of raw text can see a 0 here).
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
        "professional_tone": float(not unprofessional(text)),
    }
    return sum(detail.values()) / len(detail), detail
