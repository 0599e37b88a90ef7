"""Free text to a move: what a person at the table typed, as ACCEPT / COUNTER with every
issue's value / WALK_AWAY, or a question back when the text is not a complete, unambiguous
move (the parser never guesses).

The rules (measured on the labelled corpora in ``tests/serve/parse_corpus``, docs/server.md):

- a COUNTER states every issue ("120 units at $45.50 a unit"); a missing issue, a range
  ("between 40 and 45"), two values for one issue, an approximate ("about $45") or relative
  ("5 % less") value, or a value outside the issue's range or values is asked about, naming the
  issue;
- numbers in digits, with currency, "k", or spelled out ("six thousand five hundred"); a number
  is given to an issue by its unit or cue ($ / each / a unit: the price, units: the quantity,
  weeks / days / months, "net 30", "level 3", a label such as "premium"); one bare number left
  over goes to the one issue left over ("120 at $45"); quoted numbers ("you said $50") and
  negated ones ("I can't go to $40") are not offers, nor are round counts;
- ACCEPT: agreement with no new terms (or the standing offer restated); agreement with other
  terms is a COUNTER; with nothing on the table it is asked about;
- WALK_AWAY: the person ends the negotiation (not in the bundles game, which has none);
- anything else (a bare refusal, a question without terms) is asked about ("action").

The bundles game's offers are the items the speaker keeps: "I'll take both books and the ball,
you can have the hats", "give me the hats, you keep the rest".
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

from text_to_num import alpha2digit

from serve.phrasing.prices import normalize_text

__all__ = ["Parsed", "parse_move"]


@dataclasses.dataclass(frozen=True)
class Parsed:
    """A parse: ``action`` and ``offer`` (display values by issue name, COUNTER only), or
    ``ask`` (what is missing or ambiguous: issue names, or "action") with the ``question`` to
    send back."""

    action: str | None = None
    offer: dict[str, Any] | None = None
    ask: tuple[str, ...] = ()
    question: str = ""


def _ask(items: Sequence[str], question: str) -> Parsed:
    return Parsed(ask=tuple(dict.fromkeys(items)), question=question)


# ------------------------------------------------------------------------------ intent
_WALK = re.compile(
    r"\b(?:walk(?:ing)? away|i'?m (?:out|done|leaving)|i am (?:out|done|leaving)|we'?re done|"
    r"we are done|done here|end it here|end this|ending this|end of (?:the )?negotiation|"
    r"(?:we|i) stop (?:the|this) negotiation|stop(?:ping)? (?:the|this) negotiation|"
    r"take my business elsewhere|"
    r"i quit|i'?m quitting|end (?:this|the) (?:negotiation|talks?|discussion)|"
    r"ending (?:this|the) (?:negotiation|talks?)|forget it|goodbye|good bye|\bbye\b|"
    r"leave the table|leaving the table|not interested|call it off|calling it off|"
    r"pull(?:ing)? out|withdraw(?:ing)?|stop (?:here|negotiating)|go elsewhere|"
    r"find (?:another|a different) (?:supplier|buyer|partner|retailer)|i give up|"
    r"no point (?:in )?continuing|that'?s it for me|have to pass|i'?ll pass|i pass|"
    r"we'?ll pass|we pass|we'?re (?:out|walking|leaving)|we are (?:out|walking|leaving)|"
    r"(?:i'?m|we'?re) walking|out of here|ending (?:the )?talks|end (?:the )?talks|"
    r"(?:find|go with|going with|try|switch to|take (?:it|this|my business|our business) to) "
    r"(?:another|a different|other) (?:vendor|supplier|buyer|partner|retailer|seller)|"
    r"(?:buy|sell|source) (?:it )?elsewhere|'s out\b|\w+ walks\b|walks away|"
    r"business (?:to|elsewhere)|no agreement|we'?re finished|i'?m finished|"
    r"(?:i|we) (?:will|'ll) (?:walk|leave)|time to walk|walk(?:ing)? out|(?:we|i) walk|"
    r"(?:is|are|am) out\b|step(?:ping)? away|stepping back)\b", re.I)
_ACCEPT = re.compile(
    r"\b(?:deal|accept(?:ed|s)?|agreed?|agrees|agreeable|sounds (?:good|great|fair|fine)|"
    r"let'?s do (?:it|that|this)|you'?ve got a deal|you have a deal|it'?s a deal|"
    r"ok(?:ay)?|fine|works for me|that works|i'?ll take it|i will take it|yes|yep|yeah|sure|"
    r"done|i'?m in|count me in|happy with (?:that|this|it)|go ahead|perfect|"
    r"we have an agreement|i can live with (?:that|this|it)|shake on it|settled|"
    r"i'?m good with (?:that|this|it)|good with (?:that|this|it)|i second|"
    r"on board|fair enough|absolutely|close (?:it|at|the deal|this)|happy with (?:those|these|"
    r"your|the)|as it stands|your number|those terms|that offer|shake hands|we'?re good|"
    r"i'?m fine with|fine by me|you win|lock (?:it|that|this) in|take your offer|acceptable|"
    r"let'?s close|go with (?:that|this|it|your|the)|i support|support the|what you offered|"
    r"what you proposed)\b", re.I)
_NOT_ACCEPT = re.compile(
    r"\b(?:no deal|not (?:a )?deal|(?:can'?t|cannot|won'?t|don'?t|do not|not) "
    r"(?:\w+ )?(?:accept|agree|take|do (?:it|that))|not ok(?:ay)?|not fine|not good|"
    r"not happy|not agreed|no way|never|unacceptable|not acceptable|reject|decline|refuse|"
    r"too (?:high|low|much|little|expensive|cheap|steep|long|short|slow)|not enough|not sure|"
    r"unsure|not convinced|hmm+)\b", re.I)


_COUNTER_CUE = re.compile(r"\b(?:i'?d say|meet at|i'?ll do|(?:i|we) can do(?=\s*\$?\d)|how about|"
                          r"what about|would you|"
                          r"could you|can you|counter\w*|i offer|we offer|i propose|we propose|"
                          r"let'?s say|i'?d do|make it|i'?ll pay|we'?ll pay|i'?ll give|"
                          r"i'?ll take(?! (?:my|our) business)|we'?ll take(?! (?:my|our) "
                          r"business)|drop to|come down to|go (?:up|down) to)\b",
                          re.I)


_WEAK_WALK = re.compile(r"\b(?:and )?(?:we'?re|we are|i'?m|i am) done\b(?: here)?|\bdone here\b",
                        re.I)
_NO_DEAL = re.compile(r"\bno deal\W*$", re.I)
#: Agreement that names terms only counts as an acceptance with an explicit deal word and no
#: condition ("fine with 4 weeks" alone leaves the other issues open).
_EXPLICIT = re.compile(r"\b(?:deal|accept\w*|agree\w*|it'?s a deal|i'?ll take it)\b", re.I)
_CONDITION = re.compile(r"\b(?:but|however|if|unless|except|only if|provided|leave|faster|"
                        r"sooner|cheaper|more|less)\b", re.I)


def _intent(text: str) -> tuple[bool, bool]:
    """(reads as an acceptance, reads as a walk-away)."""
    walk = bool(_WALK.search(text) or _NO_DEAL.search(text))
    if walk and _WEAK_WALK.search(text) and not _WALK.search(_WEAK_WALK.sub(" ", text)) \
            and re.search(r"\d", text):
        walk = False  # "6.5k and we're done": the offer closes the talks, it does not end them
    accept = bool(_ACCEPT.search(text)) and not _NOT_ACCEPT.search(text)
    return accept and not walk, walk


# ------------------------------------------------------------------------------ numbers
_SMALL = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
          "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
          "a": 1, "an": 1, "single": 1}
_NOUNS = (r"(?:weeks?|months?|years?|days?|units?|pieces?|books?|hats?|balls?|basketballs?|"
          r"items?)")
_SMALL_BEFORE = re.compile(
    r"\b(?:(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)(\s*-\s*|\s+)"
    r"(?=" + _NOUNS + r"\b|of each\b)|(a|an|single)(\s*-\s*|\s+)(?=(?:weeks?|months?|years?|"
    r"books?|hats?|balls?|basketballs?)\b))", re.I)
_SMALL_AFTER = re.compile(r"\b(level|tier|net|round)\s+(zero|one|two|three|four|five|six|seven|"
                          r"eight|nine|ten)\b", re.I)
_NUM = re.compile(
    r"(?P<cur>\$|usd\s?|us\$\s?|€)?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<mag>\s?(?:k|grand|thousand)\b)?", re.I)


@dataclasses.dataclass
class _Tok:
    value: float
    start: int
    end: int
    money: bool = False
    per_unit: bool = False
    unit: str = ""  # units | weeks | days | months | years | items:<name>
    ignore: bool = False  # a round count, a quoted or negated number
    count: bool = False  # a count of rounds, minutes, parties: never a term
    vague: str = ""  # "approximate" | "relative" | "range" | "percent"
    before: str = ""
    after: str = ""


_ABBREVIATIONS = ((r"\bPL\b", "price level"), (r"\blvl\b", "level"), (r"\bprem\b", "premium"),
                  (r"\bstd\b", "standard"),
                  (r"\bqty\b", "quantity"), (r"\bnet(\d)", r"net \1"),
                  (r"(\d)\s?d\b", r"\1 days"), (r"(\d)\s?wks?\b", r"\1 weeks"),
                  (r"(\d)\s?mos?\b", r"\1 months"), (r"(\d)u\b", r"\1 units"))


def _prepare(text: str) -> str:
    t = normalize_text(text).replace("--", " - ").replace("_", " ")
    t = re.sub(r"\b([a-z]+)-(days?|weeks?|months?|years?|units?)\b", r"\1 \2", t, flags=re.I)
    t = re.sub(r"\ba fortnight'?s?\b|\bone fortnight\b", "2 weeks", t, flags=re.I)
    t = re.sub(r"\bu\b", "you", t, flags=re.I)
    for short, full in _ABBREVIATIONS:
        t = re.sub(short, full, t, flags=re.I)
    t = re.sub(r"\bhalf a year\b", "6 months", t, flags=re.I)
    t = re.sub(r"\b(payment|delivery) days:? (\d+)", r"\1 in \2 days", t, flags=re.I)
    t = re.sub(r"(?<![\d,.])(\d{1,3}) (\d{3})(?![\d,.])", r"\1\2", t)  # "6 700": 6700
    t = re.sub(r"(?<![\d,.])(\d+),(\d{2})(?![\d,])", r"\1.\2", t)  # "38,50 dollar": 38.50
    t = re.sub(r"\s\bn\b\s", " and ", t)
    try:
        t = alpha2digit(t, "en")
    except Exception:  # noqa: BLE001 - unconvertible text is read as it is
        pass
    t = re.sub(r"(\d)(?:-|–)(\d)|(\d)\s+to\s+(\d)",
               lambda m: f"{m.group(1) or m.group(3)} to {m.group(2) or m.group(4)}", t)
    # "10 dollars 50" is $10.50.
    t = re.sub(r"\b(\d+) (dollars?|bucks) (\d{2})\b", r"\1.\3 \2", t)
    t = re.sub(r"\b(\d+) thousand and (\d+)\b", lambda m: str(int(m.group(1)) * 1000
                                                             + int(m.group(2))), t)
    t = re.sub(r"\b(\d+(?:\.\d+)?) 1000\b", lambda m: f"{float(m.group(1)) * 1000:g}", t)
    t = re.sub(r"\b(\d{1,2}) (\d{2}) (a unit|per unit|each)\b", r"\1.\2 \3", t)
    t = re.sub(r"\b(\d+) (dollars?|bucks) and (\d{1,2}) cents?\b",
               lambda m: f"{m.group(1)}.{int(m.group(3)):02d} {m.group(2)}", t)
    t = _SMALL_BEFORE.sub(lambda m: f"{_SMALL[(m.group(1) or m.group(3)).lower()]}"
                                    f"{m.group(2) or m.group(4)}", t)
    return _SMALL_AFTER.sub(lambda m: f"{m.group(1)} {_SMALL[m.group(2).lower()]}", t)


#: A number right after one of these is someone else's (quoted), not an offer.
_QUOTE_ADJ = (
    r"\w+ (?:suggests|suggested|proposes|proposed|offers|offered|wants|asks for|asked for|said)"
    r"|(?:your|their|his|her|\w+'s) (?:offer|price|proposal|bid) (?:was|is|of)|paid|i pay now"
    r"|we pay now|you'?re offering|you are offering|you (?:both|all) want|you said|you offered"
    r"|you quoted|you proposed|you asked for|you want(?:ed)?|you'?re asking|you had"
    r"|your (?:offer|price|proposal|bid|number|quote)|yours at|instead of|rather than|up from"
    r"|down from|last time|previously|earlier|i hear you on|hear you on|hear you at"
    r"|(?<!\bit)(?<!\bthat)(?<!\bwhat)(?<!\bhere)(?<!\blet)(?<!\bthere)'s|your|their")
#: ... and anywhere before it in its clause ("you offered 100 units at $55").
_QUOTE_ANY = (r"you said|you offered|you quoted|you proposed|you want(?:ed)?|you asked for"
              r"|you'?re asking|(?<!\bi )(?<!\bwe )(?:\w+ )(?:quoted|wants|wanted|asked for)"
              r"|your (?:offer|price|proposal|bid|number|quote)"
              r"|(?:list|market|retail|going|sticker|asking) (?:price|rate)|budget|we wanted"
              r"|i wanted|i was at|we were at|i was hoping for|we were hoping for")
_QUOTE = re.compile(rf"\b(?:{_QUOTE_ADJ})\s*\$?$|\b(?:{_QUOTE_ANY})\b", re.I)
_NEGATE = re.compile(r"(?:\bnot|n't|cannot|never|no way|refuse to|no to)\b", re.I)
#: Where a clause ends: a quote or a negation does not reach past it.
_COMMA_BOUNDARY = re.compile(r",|[.;:!?]| - |\bbut\b|\bso\b", re.I)
_NOT_BEFORE = re.compile(r"\b(?:not|no|n't|never)\s+(?:\w+\s+)?$", re.I)
_APPROX = re.compile(r"(?:(?<!how )(?<!what )about|more than|less than|at least|at most|"
                     r"no more than|no less than|a few|few|several|around|roughly|"
                     r"approximately|approx\.?|circa|~|some|in the region of|ballpark|close to|"
                     r"near|nearly|almost|"
                     r"or so)\s*\$?$",
                     re.I)
_RELATIVE_BEFORE = re.compile(r"\b(?:raise|lower|drop|cut|increase|decrease|reduce|bump|"
                              r"move|come down|go up|go down)\w*\s+(?:it\s+|that\s+|the price\s+)?"
                              r"(?:up\s+|down\s+)?by\s+(?:a couple\s+|another\s+)?\$?$", re.I)
_RELATIVE = re.compile(r"^\s*(?:%|percent|per ?cent|(?:dollars? |bucks )?(?:less|more|lower|"
                       r"higher|off|cheaper|below|above|under|over|extra|fewer)\b)", re.I)


def _tokens(t: str) -> list[_Tok]:
    out = []
    for m in _NUM.finditer(t):
        if m.start() > 0 and t[m.start() - 1].isalpha():
            continue
        value = float(m.group("num").replace(",", ""))
        if m.group("mag"):
            value *= 1000.0
        before, after = t[max(0, m.start() - 40):m.start()], t[m.end():m.end() + 40]
        tok = _Tok(value, m.start(), m.end(), before=before.lower(), after=after.lower())
        tok.money = bool(m.group("cur") or m.group("mag")) or bool(
            re.match(r"\s?(?:dollars?|bucks|usd|\$)\b", after, re.I))
        tok.per_unit = bool(re.match(r"\s?(?:dollars?\s|bucks\s|usd\s)?(?:a|per|/|an?) ?"
                                     r"(?:unit|piece|item|pc)\b|\s?(?:dollars?\s|bucks\s)?"
                                     r"(?:each|apiece|a pop|per)\b", after, re.I))
        tok.unit = _unit_after(after)
        short = _COMMA_BOUNDARY.split(before)[-1]
        rnd = re.search(r"\bround\s*(?:\d+\s*(?:of|/)\s*)?$", before, re.I) or re.match(
            r"\s?(?:of \d+ )?rounds?\b|\s?(?:more )?(?:offers?|turns?|steps?|minutes?|mins?|"
            r"seconds?|secs?|hours?|of us|of you|parties|people|sides|partners)\b|"
            r"\s?(?:st|nd|rd|th)\b", after, re.I) or re.search(r"\ball\s*$|\bthe\s*$",
                                                                before, re.I) and tok.value <= 8
        tok.count = bool(rnd)
        tok.ignore = bool(rnd or _QUOTE.search(short) or _NEGATE.search(short)
                          or re.search(r"\bfrom\s*\$?$", before, re.I)
                          or re.match(r"\s?(?:[^\s.;!?,]+\s){0,3}?(?:you|they|he|she|the \w+) "
                                      r"(?:proposed|offered|said|want|wanted|asked|suggested)\b",
                                      after, re.I)
                          or re.match(r"\s?(?:[^\s.;!?,]+\s){0,3}?(?:is|was|were|'s)\s+(?:\w+\s+)?"
                                      r"(?:steep|high|expensive|low|cheap|much|insulting|"
                                      r"ridiculous|absurd|a joke|crazy|robbery|unacceptable|"
                                      r"too|way|far|not|"
                                      r"tight|a stretch|impossible|hard|difficult|out)\b", after))
        if (_APPROX.search(before) or re.match(r"\s?(?:ish\b|or so\b|-ish|range\b|s\b)", after,
                                                re.I)
                or re.search(r"\b(?:mid|low|high|upper|lower)[- ]?\$?$", before, re.I)):
            tok.vague = "approximate"
        elif _RELATIVE.match(after) or _RELATIVE_BEFORE.search(short):
            tok.vague = "relative"
        out.append(tok)
    for a, b in zip(out, out[1:], strict=False):
        gap = t[a.end:b.start].lower()
        # "40-45" became "40 to 45" in _prepare; " - " is a dash between clauses.
        if re.fullmatch(r"\s*(?:to|or|and|/)\s*(?:\$\s?)?", gap) and (
                re.search(r"between\s*\$?$", a.before) or " or " in f" {gap} "
                or gap.strip().rstrip("$ ") == "to"):
            a.vague = b.vague = a.vague or "range"
    return out


def _unit_after(after: str) -> str:
    m = re.match(r"\s?-?\s?(?:(?:more |extra |additional )?(units?|pieces?|pcs|items?|boxes|"
                 r"crates|cases|pallets|widgets|products|goods)|(weeks?|wks?)|(days?)|"
                 r"(months?|mos?)|(years?|yrs?))\b", after, re.I)
    if not m:
        return ""
    return ("units", "weeks", "days", "months", "years")[
        next(i for i, g in enumerate(m.groups()) if g)]


# ------------------------------------------------------------------------------ issues
_PAY = re.compile(r"\b(?:pay\w*|paid|net|invoic\w*|credit|terms)\b", re.I)
_DELIVER = re.compile(r"\b(?:deliver\w*|ship\w*|arriv\w*|lead time|dispatch\w*|receive|"
                      r"turnaround)\b", re.I)
_WARRANTY = re.compile(r"\b(?:warrant\w*|guarantee\w*|cover\w*)\b", re.I)


def _near(rx: re.Pattern[str], tok: _Tok) -> int:
    """How close the cue ``rx`` is to the token within its clause (smaller is closer; 99 when
    absent)."""
    before = _COMMA_BOUNDARY.split(tok.before)[-1]
    after = re.split(r",|[.;!?]| - |\band\b|\bwith\b", tok.after)[0]
    best = 99
    for m in rx.finditer(before):
        best = min(best, len(before) - m.end())
    for m in rx.finditer(after):
        best = min(best, m.start())
    return best


def _issue_candidates(tok: _Tok, issues: Sequence[Any]) -> list[str]:
    """The issues ``tok`` may give a value to (by unit and cue)."""
    by_unit: dict[str, list[str]] = {}
    for i in issues:
        by_unit.setdefault(i.unit, []).append(i.name)
    names = [i.name for i in issues]
    if re.search(r"\b(?:price )?(?:level|tier)\s*$", tok.before) and "price_level" in names:
        return ["price_level"]
    if re.search(r"\bnet\s*$", tok.before) and "payment_days" in names:
        return ["payment_days"]
    if tok.money or tok.per_unit:
        return [n for n in by_unit.get("currency", [])]
    if tok.unit == "units":
        return by_unit.get("units", [])
    if tok.unit == "weeks":
        return by_unit.get("weeks", [])
    if tok.unit in ("months", "years"):
        return by_unit.get("months", [])
    if tok.unit == "days":
        days = by_unit.get("days", [])
        if len(days) > 1:
            pay, dl = _near(_PAY, tok), _near(_DELIVER, tok)
            if pay == dl:
                return days
            return [n for n in days if ("payment" in n) == (pay < dl)]
        return days or by_unit.get("weeks", [])
    if re.search(r"\b(?:quantity|order of|volume|batch of|lot of)\s*$", tok.before):
        return by_unit.get("units", [])
    if re.search(r"\b(?:price|cost|rate)(?: per unit| a unit)?\s*(?:of|at|is|:)?\s*\$?$",
                 tok.before) or re.search(r"@\s*$", tok.before):
        return by_unit.get("currency", [])
    return []


def _value_for(issue: Any, tok: _Tok) -> float:
    """The token's value in the issue's display units (days -> weeks, years -> months)."""
    v = tok.value
    if issue.unit == "weeks" and tok.unit == "days":
        return v / 7.0
    if issue.unit == "months" and tok.unit == "years":
        return v * 12.0
    return v


def _allowed(issue: Any, v: float) -> bool:
    if issue.kind == "discrete":
        return any(isinstance(x, float) and abs(x - v) < 1e-9 for x in issue.labels)
    return issue.low - 1e-9 <= v <= issue.high + 1e-9


_PHRASES: tuple[tuple[re.Pattern[str], str, float], ...] = (
    (re.compile(r"\bno warrant\w*|without (?:a |any )?warrant\w*|zero warrant\w*|"
                r"warrant\w*:? none\b|warrant\w* of 0\b", re.I),
     "warranty_months", 0.0),
    (re.compile(r"\b(?:pay(?:ment)? (?:on|at|upon) delivery|(?:payment|pay|paid|cash) "
                r"(?:up ?front|in advance|immediately|upon delivery|on delivery|right away)|"
                r"up ?front payment|immediate payment|pay now|cash on delivery|prepay\w*|"
                r"pay(?:ment)? in full (?:now|up ?front))\b", re.I), "payment_days", 0.0),
    (re.compile(r"\b(?:within|in|next) (?:a |one )week\b|"
                r"\bone-week\b|\b(?:a|one) week'?s delivery\b", re.I), "delivery_weeks", 1.0),
)
_MONTH_DELIVERY = re.compile(r"\b(?:in|within) (?:a|one|1) month\b", re.I)


def _phrase_values(t: str, issues: Sequence[Any]) -> tuple[dict[str, list[float]], list[str]]:
    """Values stated without digits (labels such as "premium", "no warranty", "pay on
    delivery"), and the issues such a phrase leaves ambiguous ("in a month")."""
    names = {i.name: i for i in issues}
    out: dict[str, list[float]] = {}
    vague = []
    for i in issues:
        for label in i.labels:
            if not isinstance(label, str):
                continue
            for m in re.finditer(rf"\b{re.escape(label)}\b", t, re.I):
                clause = _COMMA_BOUNDARY.split(t[:m.start()])[-1]
                if not (_NOT_BEFORE.search(clause) or _NEGATE.search(clause)):
                    out.setdefault(i.name, []).append(label)  # type: ignore[arg-type]
    for rx, name, v in _PHRASES:
        if name in names and rx.search(t):
            out.setdefault(name, []).append(v)
    if "delivery_weeks" in names and _MONTH_DELIVERY.search(t):
        vague.append("delivery_weeks")
    return out, vague


def _terms(t: str, issues: Sequence[Any]) -> tuple[dict[str, Any], list[str], bool]:
    """(issue -> value, the issues asked about, whether any term was stated)."""
    toks = [k for k in _tokens(t) if not k.ignore]
    values, vague = _phrase_values(t, issues)
    stated = bool(values) or bool(vague)
    asked: list[str] = list(vague)
    relative: list[str] = []  # "300 above your offer": asked unless a value is stated too
    open_days: list[list[str]] = []
    bare: list[_Tok] = []
    by_name = {i.name: i for i in issues}
    for tok in toks:
        stated = True
        cands = _issue_candidates(tok, issues) if len(issues) > 1 else [issues[0].name]
        if len(cands) > 1 and tok.vague:
            asked += cands
            continue
        if len(cands) > 1:
            open_days.append(cands)  # "6 days": payment or delivery, settled below if it can be
            continue
        if not cands:
            bare.append(tok)
            continue
        if tok.vague == "relative":
            relative.append(cands[0])
            continue
        if tok.vague:
            asked.append(cands[0])
            continue
        values.setdefault(cands[0], []).append(_value_for(by_name[cands[0]], tok))
    asked += [n for n in relative if n not in values]
    for cands in open_days:
        # "net 30, 6 days": the day issue the text has not given yet.
        free = [c for c in cands if c not in values]
        if len(free) == 1 and len(open_days) == 1:
            tok = next(k for k in toks if _issue_candidates(k, issues) == cands)
            values[free[0]] = [_value_for(by_name[free[0]], tok)]
        else:
            asked += cands
    left = [i.name for i in issues if i.name not in values and i.name not in asked]
    # A bare number repeating a value already given ("the quantity has to be 200 ... 200
    # units") adds nothing.
    given = {v for vs in values.values() for v in vs if not isinstance(v, str)}
    bare = [b for b in bare if not any(abs(b.value - v) < 1e-9 for v in given)]
    if bare:
        if len(bare) == 1 and len(left) == 1 and not bare[0].vague:
            values[left[0]] = [_value_for(by_name[left[0]], bare[0])]
        else:
            asked += left or [i.name for i in issues]
    out: dict[str, Any] = {}
    for name, vs in values.items():
        distinct = list(dict.fromkeys(vs))
        if len(distinct) != 1:
            asked.append(name)
            continue
        v = distinct[0]
        if not isinstance(v, str) and not _allowed(by_name[name], v):
            asked.append(name)
            continue
        out[name] = v
    return out, asked, stated


def _question(asked: Sequence[str], issues: Sequence[Any]) -> str:
    if "action" in asked:
        return ("What is your move? Accept the offer on the table, walk away, or make an offer "
                "naming " + ", ".join(i.name.replace("_", " ") for i in issues) + ".")
    return ("Please state exactly one value for " + ", ".join(
        a.replace("_", " ") for a in asked) + " (every issue of an offer, no range or estimate).")


def parse_move(text: str, issues: Sequence[Any], standing: dict[str, Any] | None, *,
               game: str = "price", pool: Sequence[int] | None = None) -> Parsed:
    """``text`` as a move of the game whose offers have ``issues``
    (:class:`eqx_jax.games.view.IssueView`) with ``standing`` (display values, None without
    one) on the table; the bundles game (``pool`` given) reads the items the speaker keeps."""
    if pool is not None:
        from serve.phrasing.parse_bundles import parse_bundles

        return parse_bundles(text, issues, standing, pool)
    t = _prepare(text)
    accept, walk = _intent(t)
    values, asked, stated = _terms(t, issues)
    complete = not asked and len(values) == len(issues)
    if walk and not (complete and _COUNTER_CUE.search(t)):
        return Parsed(action="WALK_AWAY")  # "No deal at $50; I'll do $45" is a counter-offer
    if complete:
        offer = {i.name: values[i.name] for i in issues}
        if accept and standing is not None and _same_offer(offer, standing):
            return Parsed(action="ACCEPT")
        return Parsed(action="COUNTER", offer=offer)
    if (accept and standing is not None and values and not asked and _same_offer(values, standing)
            and _EXPLICIT.search(t) and not _CONDITION.search(t)):
        return Parsed(action="ACCEPT")  # "OK, $45 a unit it is": the standing terms agreed
    if stated:
        missing = asked + [i.name for i in issues if i.name not in values and i.name not in asked]
        if walk and not values:
            return Parsed(action="WALK_AWAY")
        return _ask(missing, _question(missing, issues))
    if walk:
        return Parsed(action="WALK_AWAY")
    if accept and "?" not in t:
        if standing is None:
            return _ask(["action"], "There is no offer on the table to accept yet: make an "
                                    "offer naming " + ", ".join(i.name.replace("_", " ")
                                                                for i in issues) + ".")
        return Parsed(action="ACCEPT")
    return _ask(["action"], _question(["action"], issues))


def _same_offer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for k, v in a.items():
        w = b.get(k)
        if isinstance(v, str) or isinstance(w, str):
            if str(v).lower() != str(w).lower():
                return False
        elif w is None or not math.isclose(float(v), float(w), rel_tol=1e-6, abs_tol=0.0051):
            return False
    return True
