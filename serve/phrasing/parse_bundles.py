"""Free text to a move of the bundles game: which items the speaker keeps.

"I'll take both books and the ball, you can have the hats" (pool 2 books, 2 hats, 1 ball) keeps
2 books, 0 hats, 1 ball. Each clause gives items to the speaker ("I take", "give me", "for me")
or to the other side ("you get", "you can have", "yours"); "the rest" / "everything else" goes
to whoever the clause names; an item type left undetermined, or more items than the pool has,
is asked about. The game has no walk-away: a person who wants to end is asked for a move.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from serve.phrasing.parse import Parsed, _ask, _intent, _prepare, _same_offer

_SINGULAR = {"books": "book", "hats": "hat", "balls": "ball"}
_ITEM = re.compile(r"\b(?:(?P<q>\d+|the other|the last|the remaining|the only|another|"
                   r"all(?: of)?(?: the)?|all|both(?: of the)?|both|every|no|zero|none of the|"
                   r"a|an|one|the|my|your|his|her|its)\s+(?:of (?:the|my|your)\s+)?)?"
                   r"(?:(?:other|extra|remaining)\s+)?(?P<item>books?|hats?|balls?|basketballs?)\b",
                   re.I)
_SPEAKER = re.compile(r"\b(?:i|i'll|i'd|i'm|i've|me|my|mine|myself|we|we'll|us|our|ours|"
                      r"let me|give me)\b", re.I)
_OTHER = re.compile(r"\b(?:you|you'll|you'd|your|yours|yourself)\b", re.I)
_REST = re.compile(r"\b(?:the rest|rest'?s|rest(?= (?:to|for|is|are|goes|go)\b)|everything else|"
                   r"all the rest|all else|whatever(?:'s| is) left|the remainder|remainder|"
                   r"remaining items|the others|rest is|rest are|"
                   r"rest of (?:it|them|the items)|everything|nothing else|the leftovers)\b",
                   re.I)
_SENTENCES = re.compile(r"\s*(?:[;.!?]| - )\s*")
_CLAUSES = re.compile(r"\s*(?:,|\band\b(?= (?:you|i|me|give|let|the rest|everything else)"
                      r"\b)|\bbut\b(?! the)|\bwhile\b|"
                      r"\bwhereas\b|\bthen\b|\bif\b|\bas long as\b|\bin exchange for\b|"
                      r"\bin return for\b)\s*", re.I)
_EXCEPT = re.compile(r"\b(?:everything|it all|all of it|all|the lot|nothing|none)\s+(?:else\s+)?"
                     r"(?:but|except(?: for)?|other than|apart from|besides)\b", re.I)
_EACH = re.compile(r"\b(\d+) (books?|hats?|balls?) each\b", re.I)
_GIVE_TO_YOU = re.compile(r"\b(?:i(?:'ll| will)? give you|i(?:'ll| will)? let you have|"
                          r"you (?:can |could |may |get to )?(?:have|keep|take|get)|"
                          r"for you|to you|yours|you'?re getting|leaving you|you'll get)\b", re.I)
_GIVE_TO_ME = re.compile(r"\b(?:give me|let me (?:have|keep|take)|i(?:'ll| will| would|'d)? "
                         r"(?:like to )?(?:take|keep|get|have|want|need|claim)|for me|to me|"
                         r"mine|i'?m (?:taking|keeping)|me the)\b", re.I)


def _owner(clause: str) -> str | None:
    """'me' or 'you': who the clause gives its items to."""
    me, you = _GIVE_TO_ME.search(clause), _GIVE_TO_YOU.search(clause)
    if me and you:
        return "me" if me.start() < you.start() else "you"
    if me:
        return "me"
    if you:
        return "you"
    if _SPEAKER.search(clause) and not _OTHER.search(clause):
        return "me"
    if _OTHER.search(clause) and not _SPEAKER.search(clause):
        return "you"
    return None


def _item_name(word: str) -> str:
    """The issue an item word names: "Ball", "basketball", "balls" -> "balls"."""
    name = word.lower().removeprefix("basket")
    return name if name.endswith("s") else name + "s"


def _count(q: str | None, item: str, pool: dict[str, int]) -> int | None:
    """The count a quantifier names (None: ambiguous)."""
    name = _item_name(item)
    total = pool.get(name, 0)
    q = (q or "").lower().strip()
    plural = item.lower().endswith("s")
    if q.isdigit():
        return int(q)
    if q in ("a", "an", "one", "another", "the other", "the last", "the only") or (
            not plural and q in ("the remaining", "remaining")):
        return 1
    if q in ("no", "zero", "none of the"):
        return 0
    if q.startswith("all") or q in ("both", "every", "the remaining", "remaining"):
        return total
    if q in ("the", "my", "your", "his", "her", "its", ""):
        if plural:
            return total if q or total else 0
        return 1 if total == 1 or q == "" else None
    return None


def _clause(clause: str, owner: str | None, counts: dict[str, int],
            mine: dict[str, list[int]], asked: list[str], each: bool, loose: set[str]) -> bool:
    """Add the clause's items (as the speaker's counts) to ``mine``; whether it named any."""
    stated = False
    ex = _EXCEPT.search(clause)
    for m in _EACH.finditer(clause):
        item = m.group(2).lower()
        name = _item_name(item)
        mine.setdefault(name, []).append(int(m.group(1)))
        stated = True
    skip = {m.start(2) for m in _EACH.finditer(clause)}
    for m in _ITEM.finditer(clause):
        if m.start("item") in skip:
            continue
        stated = True
        if _NOT.search(clause[max(0, m.start() - 12):m.start()]):
            continue  # "not the hats": not an offer of them
        item = m.group("item").lower().removeprefix("basket")
        name = _item_name(item)
        q = (m.group("q") or "").lower()
        if item.endswith("s") and q in ("the other", "the remaining", "the last"):
            continue  # "the other hats": whatever the other clauses leave
        n = _count(m.group("q"), m.group("item"), counts)
        if (_VAGUE.search(clause[:m.start()]) or q in ("some", "few", "several", "half")
                or _LATER.search(clause)):
            n = None  # "some of the books", "1 or 2 hats", "maybe a hat"
        who = owner
        if ex is not None and m.start() > ex.end() and who is not None:
            flip = not ex.group(0).lower().startswith(("nothing", "none"))
            who = ("you" if who == "me" else "me") if flip else who
        if each and re.search(r"\bof each\b", clause):
            n = 1
        if who is None:
            loose.add(name)  # named without an owner: asked only if nothing else decides it
            continue
        if n is None or n > counts[name]:
            asked.append(name)
            continue
        mine.setdefault(name, []).append(n if who == "me" else counts[name] - n)
    if each and re.search(r"\bof each\b", clause) and owner is not None:
        for name in counts:
            mine.setdefault(name, []).append(1 if owner == "me" else counts[name] - 1)
        stated = True
    return stated


_VAGUE = re.compile(r"\b(?:some|a few|few|several|most|half|maybe|perhaps|possibly|roughly|"
                    r"(?<!how )(?<!what )about|around|a couple|couple|or so|"
                    r"between\s+\S+\s+and|(?:\d+|one|two|three|four|five|six|seven)\s+(?:or|to))"
                    r"\s+(?:of\s+)?$", re.I)
#: "we'll figure out the book later": that item is not decided.
_LATER = re.compile(r"\b(?:later|figure (?:it |that |this )?out|decide|tbd|to be decided|"
                    r"undecided|discuss)\b", re.I)
_NOT = re.compile(r"\b(?:not|no)\s+(?:the\s+|my\s+|your\s+)?$", re.I)


def parse_bundles(text: str, issues: Sequence[Any], standing: dict[str, Any] | None,
                  pool: Sequence[int]) -> Parsed:
    """The bundles game's :func:`serve.phrasing.parse.parse_move` (see the module docstring)."""
    names = [i.name for i in issues]
    counts = dict(zip(names, (int(x) for x in pool), strict=True))
    t = _prepare(text)
    accept, walk = _intent(t)
    mine: dict[str, list[int]] = {}
    rest_to: str | None = None
    asked: list[str] = []
    loose: set[str] = set()
    stated = False
    each = re.search(r"\b(?:1|one) of each\b", t, re.I)
    for sentence in (x for x in _SENTENCES.split(t) if x and x.strip()):
        clauses = [c for c in _CLAUSES.split(sentence) if c and c.strip()]
        owners = [_owner(c) for c in clauses]
        for k, clause in enumerate(clauses):
            # A clause naming nobody belongs to the one before it in the sentence ("I take 1
            # book, 2 hats"), else to the one after ("the books and the ball go to you").
            owner = owners[k] or next((o for o in reversed(owners[:k]) if o), None) or next(
                (o for o in owners[k + 1:] if o), None)
            if owner is None and _EXCEPT.search(clause):
                owner = "me"  # "Everything except the book.": the speaker claims the rest
            stated |= _clause(clause, owner, counts, mine, asked, bool(each), loose)
            rest = _REST.search(clause)
            if rest and owner is not None and not _EXCEPT.search(clause):
                nothing = rest.group(0).lower() == "nothing else"
                rest_to = ("you" if owner == "me" else "me") if nothing else owner
                stated = True
            ex = _EXCEPT.search(clause)
            if ex and owner is not None:
                # "I get everything but the hat": the rest to the clause's owner ("nothing but
                # the hat": to the other side), the items after "but" the other way.
                rest_to = owner if not ex.group(0).lower().startswith(("nothing", "none")) else (
                    "you" if owner == "me" else "me")
                stated = True
    if stated:
        offer: dict[str, int] = {}
        for name in names:
            vs = sorted(set(mine.get(name, [])))
            if name in asked or len(vs) > 1:
                asked.append(name)
            elif vs:
                offer[name] = vs[0]
            elif rest_to is not None and name not in loose:
                offer[name] = counts[name] if rest_to == "me" else 0
            elif counts[name] == 0:
                offer[name] = 0
        missing = [n for n in names if n not in offer]
        named = {n: mine[n][0] for n in names if n in mine and len(set(mine[n])) == 1}
        if (missing or asked) and accept and standing is not None and named and not asked \
                and _same_offer(named, standing):
            return Parsed(action="ACCEPT")  # "Fine, I'll take the two books and the ball, deal."
        if missing or asked:
            return _ask(asked + missing, "Please say which items you keep for every item type ("
                        + ", ".join(names) + "), or who gets the rest.")
        full = {n: offer[n] for n in names}
        if accept and standing is not None and _same_offer(full, standing):
            return Parsed(action="ACCEPT")
        return Parsed(action="COUNTER", offer=full)
    if accept and not walk and "?" not in t:
        if standing is None:
            return _ask(["action"], "There is no offer on the table to accept yet: say which "
                                    "items you keep.")
        return Parsed(action="ACCEPT")
    return _ask(["action"], "What is your move? Accept the offer on the table, or say which "
                            "items you keep (" + ", ".join(names) + ").")
