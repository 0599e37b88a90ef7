"""Prices in text: the one spelling every message uses (``format_price``: ``$6,695``) and the
parser that finds every price-like number in a text (``price_mentions``), shared by the prompt,
the templates, the guard and the quality score."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["format_price", "price_mentions", "whole_units"]


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
