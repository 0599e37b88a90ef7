"""The guard of the games beyond one price on a labelled corpus (tests/serve/
terms_guard_corpus.jsonl, written independently of the guard): messages for moves of the
price-quantity, multi-issue, group and bundles games, faithful or contradicting the move (a wrong,
missing, extra or swapped number, an intent that is not the move's). Every number of a message is
checked: a contradiction of the terms is never sent."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from serve.phrasing.parse_measure import corpus_issues
from serve.phrasing.terms import TermsContext, check_terms

CORPUS = Path(__file__).parent / "terms_guard_corpus.jsonl"
#: Contradictions of tone alone (an insult the word list does not know) are not number or intent
#: contradictions; they are reported, not required.
TONE = ("unprofessional",)


def _playable(line: dict, issues) -> bool:
    """A move the game can produce: values in the issues' ranges; no walk-away in bundles."""
    if line["game"] == "bundles" and line["action"] == "WALK_AWAY":
        return False
    for i in issues:
        v = (line["offer"] or {}).get(i.name)
        if isinstance(v, int | float) and i.kind != "discrete" and not i.low <= v <= i.high:
            return False
    return True


def _run() -> tuple[Counter, list]:
    out, wrong = Counter(), []
    for raw in CORPUS.read_text().splitlines():
        line = json.loads(raw)
        issues = corpus_issues(line["game"], line.get("scenario"))
        if not _playable(line, issues):
            out["skipped"] += 1
            continue
        seat = line.get("seat", "supplier")
        ctx = TermsContext(seat, "cooperative", line["action"],
                           tuple((i.name, i.unit) for i in issues), line["offer"], 3, 10,
                           first_seat=seat == "supplier", views=issues)
        why = check_terms(line["text"], ctx, line.get("pool"))
        ok = (why is None) == (line["label"] == "faithful")
        out[(line["label"], ok)] += 1
        if not ok:
            wrong.append((line["kind"], why, line["text"]))
    return out, wrong


def test_every_contradiction_of_the_terms_is_blocked():
    counts, wrong = _run()
    missed = [w for w in wrong if w[1] is None and w[0] not in TONE]
    assert not missed, missed
    assert counts[("contradiction", True)] >= 60


def test_faithful_messages_pass():
    counts, wrong = _run()
    faithful = counts[("faithful", True)] + counts[("faithful", False)]
    rate = counts[("faithful", True)] / faithful
    assert faithful >= 80 and rate >= 0.9, [w for w in wrong if w[1] is not None]


@pytest.mark.parametrize(("text", "why"), [
    ("I can offer 120 units at $45.50 a unit.", None),
    ("I can offer one hundred twenty units at $45.50 a unit.", None),
    ("I can offer 125 units at $45.50 a unit.", "wrong_terms"),
    ("I can offer 120 units at $45.50 a unit plus $200 shipping.", "blocked"),
    ("I can offer 120 units at $45.50 a unit with a 5% discount.", "blocked"),
    ("Great, we have a deal: 120 units at $45.50 a unit.", "intent:claims_deal"),
])
def test_examples(text, why):
    issues = corpus_issues("price-quantity")
    ctx = TermsContext("supplier", "cooperative", "COUNTER",
                       tuple((i.name, i.unit) for i in issues),
                       {"price": 45.5, "quantity": 120.0}, 3, 10, views=issues)
    got = check_terms(text, ctx)
    assert got is not None if why == "blocked" else got == why


@pytest.mark.parametrize(("game", "scenario", "offer", "pool"), [
    ("price-quantity", None, {"price": 45.5, "quantity": 120.0}, None),
    ("multi-issue", "supply-chain-4", {"unit_price": 10.1775, "quantity": 300.0,
                                        "delivery_weeks": 1.0, "warranty_months": 6.0}, None),
    ("multi-issue", "integrative-4", {"price_level": 4.0, "payment_days": 0.0,
                                       "delivery_days": 2.0, "support_level": "standard"}, None),
    ("group", "supply-chain-3p", {"unit_price": 9.3041, "quantity": 300.0,
                                   "delivery_weeks": 8.0}, None),
    ("bundles", None, {"books": 2.0, "hats": 1.0, "balls": 0.0}, [2, 2, 1]),
])
def test_every_template_passes_the_guard(game, scenario, offer, pool):
    from serve.phrasing.terms import terms_message

    issues = corpus_issues(game, scenario)
    n = 0
    for style in ("aggressive", "cooperative", "analytical"):
        for action in ("COUNTER", "ACCEPT") + (("WALK_AWAY",) if pool is None else ()):
            for first in (True, False):
                for seed in range(6):
                    for o in ((offer, None) if action == "WALK_AWAY" else (offer,)):
                        ctx = TermsContext("supplier", style, action,
                                           tuple((i.name, i.unit) for i in issues), o, 3, 10,
                                           seed, first, views=issues)
                        text = terms_message(ctx, pool)
                        assert check_terms(text, ctx, pool) is None, text
                        n += 1
    assert n >= 72
