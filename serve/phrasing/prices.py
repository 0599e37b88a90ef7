"""Numbers in text: the one spelling every message uses (``format_price``: ``$6,695``), the
lenient price parser of the quality score (``price_mentions``) and the strict reader of the guard
(``read_numbers``: every number in any form, digits or words), shared by the prompt, the
templates, the guard and the quality score."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from text_to_num import alpha2digit

__all__ = ["NumberMention", "format_price", "normalize_text", "price_mentions", "read_numbers",
           "whole_units"]


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


# --- the guard's reader: every number, in any form -------------------------------------------

# Characters that hide inside a number or a word without showing: zero-width spaces and joiners,
# the soft hyphen, the byte-order mark.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\u00ad\ufeff"))
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                         "\u2013": "-", "\u2014": " - ", "\u2212": "-"})


def normalize_text(text: str) -> str:
    """NFKC (full-width digits, non-breaking spaces and ligatures become plain ASCII), invisible
    characters removed, typographic quotes and dashes made plain, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_QUOTES)
    return re.sub(r"\s+", " ", text).strip()


# A digit run with no word boundary on either side, so that "USD7000", "x7000" and "7000usd"
# are read too: currency before it, then a magnitude ("k", "grand", "thousand", ...), a money
# word, a percent sign or an ordinal / counted-noun ending after it.
_DIGITS_RE = re.compile(
    r"(?P<cur>(?:us\$|usd|eur|gbp|\$|€|£)\s?)?"
    r"(?P<num>\d(?:[\d,.']*\d)?)"
    r"(?P<mag>\s?-?(?:k|grand|thousands?|hundreds?|m|mil|mio|millions?|bn|billions?)(?![a-z]))?"
    r"(?P<unit>\s?(?:dollars?|usd|bucks|eur|euros?|\$|€|£)(?![a-z]))?"
    r"(?P<pct>\s?(?:%|percent\b|per ?cent\b|pct\b))?"
    r"(?P<ord>(?:st|nd|rd|th)\b)?",
    re.IGNORECASE,
)
_MAGNITUDE = {"k": 1e3, "grand": 1e3, "thousand": 1e3, "thousands": 1e3, "hundred": 1e2,
              "hundreds": 1e2, "m": 1e6, "mil": 1e6, "mio": 1e6, "million": 1e6,
              "millions": 1e6, "bn": 1e9, "billion": 1e9, "billions": 1e9}
# Number words that text2num leaves alone ("a grand", "two grand", "a few hundred", "half a
# million", "a couple thousand", "twice", "double"): each is read as an unparsed amount.
_AMOUNT_WORDS_RE = re.compile(
    r"\b(?:grand|hundreds?|thousands?|millions?|billions?|dozens?|twice|double(?![- ]check)|"
    r"triple|quadruple|half(?![- ]?way)|zero|nil)\b",
    re.IGNORECASE,
)
# Counted nouns: "3 rounds", "round 3 of 10", "within 30 days", "a 12-month contract". A number
# counting these is not an amount of money. Not "times", nor "quarters of the/it/your...": "2
# times the price" and "three quarters of it" change the amount.
_COUNTED_AFTER_RE = re.compile(
    r"\s?-?(?:more |other |further |extra )?(?:rounds?|sides?|parties|party|hours?|days?|weeks?|"
    r"months?|years?|minutes?|steps?|quarters?(?! of (?:the|it|that|this|your|my|our)\b))\b",
    re.IGNORECASE,
)
_ROUND_BEFORE_RE = re.compile(r"\b(?:rounds?|round \d+ ?(?:of|/))\s?$", re.IGNORECASE)
_ROUND_AFTER_RE = re.compile(r"\s?(?:of|/) ?\d+ rounds?\b", re.IGNORECASE)
#: The largest count (of rounds, days, hours, ...) that is not read as an amount.
MAX_COUNT = 365


@dataclass(frozen=True)
class NumberMention:
    """A number in a text. ``value`` is in currency units for an amount, NaN if unreadable
    ("1,2,3") or an amount word with no digits ("a grand"); ``kind`` is ``amount`` (money or any
    other quantity), ``percent`` or ``count`` (rounds, days, ordinals: not money)."""

    value: float
    kind: str
    text: str
    span: tuple[int, int]


def _parse_digits(num: str) -> float:
    """``"6,695.40"`` -> 6695.4, ``"6.695.000"`` -> 6695000; NaN for any other use of
    separators (the guard then treats it as a number it cannot match)."""
    if re.fullmatch(r"\d+(?:\.\d+)?", num):
        return float(num)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", num):
        return float(num.replace(",", ""))
    if re.fullmatch(r"\d{1,3}(?:[.']\d{3}){2,}|\d{1,3}(?:'\d{3})+", num):
        return float(re.sub(r"[.']", "", num))
    return math.nan


def _classify(m: re.Match[str], text: str, value: float) -> str:
    """``amount``, ``percent`` or ``count`` for the digit run ``m`` of ``text``."""
    if m.group("pct"):
        return "percent"
    money = m.group("cur") or m.group("mag") or m.group("unit")
    if money or "." in m.group("num") or "," in m.group("num") or not value <= MAX_COUNT:
        return "amount"
    before, after = text[: m.start()], text[m.end():]
    if (m.group("ord") or _COUNTED_AFTER_RE.match(after) or _ROUND_BEFORE_RE.search(before)
            or _ROUND_AFTER_RE.match(after)):
        return "count"
    return "amount"


def read_numbers(text: str) -> list[NumberMention]:
    """Every number in ``text``, in digits or words, in order: spelled-out numbers are turned
    into digits first (text2num: "six thousand nine hundred" -> 6900, "seventy-two hundred" ->
    7200; isolated "one" and "two" stay words), then every digit run is read with its currency,
    magnitude ("7k", "6.9 grand" -> 7000, 6900), unit and ending, glued to letters or not.
    Bare amount words with no digits ("a grand", "a few hundred", "twice") are reported with
    value NaN. Spans index the converted text."""
    try:
        converted = alpha2digit(normalize_text(text), "en")
    except Exception:  # noqa: BLE001 - an unparsable text is read as it is
        converted = normalize_text(text)
    out = []
    for m in _DIGITS_RE.finditer(converted):
        value = _parse_digits(m.group("num"))
        mag = (m.group("mag") or "").strip(" -").lower()
        value *= _MAGNITUDE.get(mag, 1.0)
        out.append(NumberMention(value, _classify(m, converted, value), m.group(0), m.span()))
    taken = [n.span for n in out]
    out += [NumberMention(math.nan, "amount", m.group(0), m.span())
            for m in _AMOUNT_WORDS_RE.finditer(converted)
            if not any(a <= m.start() < b for a, b in taken)]
    return sorted(out, key=lambda n: n.span)
