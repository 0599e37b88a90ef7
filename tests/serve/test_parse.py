"""The free-text parser of a person's moves on the labelled corpora (tests/serve/parse_corpus:
``*.jsonl`` the development set, ``heldout*/`` sets written independently of the parser), and
the person's move checks (serve/human.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eqx_jax.games.view import IssueView
from serve.human import HumanTurn, MoveError, parse_say, structured_move
from serve.phrasing.parse import parse_move
from serve.phrasing.parse_measure import GAMES, corpus_issues, measure_corpus

CORPUS = Path(__file__).parent / "parse_corpus"
SETS = sorted([CORPUS] + [p for p in CORPUS.glob("heldout*") if p.is_dir()])
#: The target of the issue: at least 95 % of each game's utterances parsed as labelled, and no
#: utterance labelled ambiguous turned into a move (the parser asks instead of guessing).
MIN_ACCURACY = 0.95


@pytest.mark.parametrize("folder", SETS, ids=lambda p: p.name)
@pytest.mark.parametrize("game", GAMES)
def test_corpus_accuracy_and_no_guesses(folder, game):
    path = folder / f"{game}.jsonl"
    if not path.exists():
        pytest.skip(f"no {game} corpus in {folder.name}")
    r = measure_corpus(path, game)
    assert r["lines"] >= 100 or folder != CORPUS
    assert r["guesses"] == 0, [w for w in r["wrong"] if "ask" in w["expect"]]
    assert r["accuracy"] >= MIN_ACCURACY, r["wrong"]


def test_every_game_has_a_corpus_of_at_least_100_utterances():
    for game in GAMES:
        lines = (CORPUS / f"{game}.jsonl").read_text().splitlines()
        assert len([x for x in lines if x.strip()]) >= 100


def test_parse_examples():
    price = corpus_issues("price")
    assert parse_move("I can do 6.5k", price, None).offer == {"price": 6500.0}
    assert parse_move("six thousand five hundred dollars", price, None).offer == {"price": 6500.0}
    assert parse_move("between 6000 and 6500", price, None).ask == ("price",)
    assert parse_move("deal", price, None).ask == ("action",)  # nothing to accept yet
    assert parse_move("deal", price, {"price": 6000.0}).action == "ACCEPT"
    assert parse_move("I'm walking away", price, {"price": 6000.0}).action == "WALK_AWAY"
    pq = corpus_issues("price-quantity")
    got = parse_move("I can do 120 units at $45.50 a unit", pq, None)
    assert got.offer == {"price": 45.5, "quantity": 120.0}
    assert parse_move("make it $45", pq, {"price": 50, "quantity": 120}).ask == ("quantity",)
    sc = corpus_issues("multi-issue", "supply-chain-4")
    got = parse_move("300 units at $10.20 a unit, delivery in 2 weeks, a one-year warranty",
                     sc, None)
    assert got.offer == {"unit_price": 10.2, "quantity": 300.0, "delivery_weeks": 2.0,
                         "warranty_months": 12.0}
    assert "quantity" in parse_move("250 units at $10, 2 weeks, no warranty", sc, None).ask


def _turn(game="price-quantity", standing=None, pool=None):
    issues = (corpus_issues(game) if pool is None else
              tuple(IssueView(n, "count", 0, 7, unit="items") for n in ("books", "hats", "balls")))
    return HumanTurn("s", game, 1, "retailer", 2, 10, issues, standing, 60.0, 1e12, pool)


def test_structured_moves_are_checked_naming_the_field():
    t = _turn()
    assert t.legal == ["COUNTER", "WALK_AWAY"]
    m = structured_move(t, {"action": "COUNTER", "offer": {"price": 45, "quantity": 120}})
    assert m.action_type == 1 and np.allclose(m.natural, [45, 120])
    for frame, field in [({"action": "ACCEPT"}, "action"), ({"action": "PASS"}, "action"),
                         ({"action": "COUNTER", "offer": {"price": 45}}, "offer.quantity"),
                         ({"action": "COUNTER", "offer": {"price": 45, "quantity": 500}},
                          "offer.quantity"),
                         ({"action": "COUNTER", "offer": {"price": 45, "quantity": 1,
                                                          "colour": 2}}, "offer.colour"),
                         ({"action": "COUNTER", "offer": "cheap"}, "offer")]:
        with pytest.raises(MoveError) as e:
            structured_move(t, frame)
        assert e.value.field == field
    b = _turn("bundles", standing={"books": 1, "hats": 0, "balls": 0}, pool=[2, 2, 1])
    assert b.legal == ["ACCEPT", "COUNTER"]  # no walk-away in bundles
    with pytest.raises(MoveError) as e:
        structured_move(b, {"action": "COUNTER", "offer": {"books": 3, "hats": 0, "balls": 0}})
    assert e.value.field == "offer.books" and "pool" in str(e.value)


def test_text_is_parsed_into_a_move_to_confirm_or_asked_about():
    t = _turn(standing={"price": 50.0, "quantity": 100.0})
    m = parse_say(t, "ok, 100 units at $48 then")
    assert m.action == "COUNTER" and m.offer == {"price": 48.0, "quantity": 100.0}
    assert m.via == "text" and m.raw_text == "ok, 100 units at $48 then"
    assert parse_say(t, "deal").action == "ACCEPT"
    with pytest.raises(MoveError) as e:
        parse_say(t, "around $45 for 100 units")
    assert e.value.missing == ["price"]
    with pytest.raises(MoveError):
        parse_say(t, "x" * 501)
