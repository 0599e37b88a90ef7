"""Tests of the phrasing guard (serve/phrasing/guard.py, prices.read_numbers): the labelled corpus
figures, the contradictions the guard was built against, every template still passing, the
recorded embedded-LLM sample and the report command. No server and no model: all offline."""

from __future__ import annotations

import inspect
import math
from collections import Counter

import pytest

from serve.phrasing import ACTIONS, ROLES, STYLES, MoveContext, check_message, template_message
from serve.phrasing.guard import unprofessional
from serve.phrasing.guard_report import (
    CORPUS,
    LLM_SAMPLE,
    by_prompt,
    corpus_figures,
    llm_figures,
    load_jsonl,
    main,
)
from serve.phrasing.prices import format_price, read_numbers
from serve.phrasing.quality import quality_score

ROWS = load_jsonl(CORPUS)
SAMPLE = load_jsonl(LLM_SAMPLE)


def test_corpus_is_large_balanced_and_covers_every_style_and_action() -> None:
    assert len(ROWS) >= 200
    labels = Counter(r["label"] for r in ROWS)
    assert set(labels) == {"faithful", "contradiction"}
    assert 0.4 <= labels["contradiction"] / len(ROWS) <= 0.6, labels
    for label in labels:
        assert {r["style"] for r in ROWS if r["label"] == label} == set(STYLES)
        assert {r["action"] for r in ROWS if r["label"] == label} == set(ACTIONS)
    kinds = Counter(r["kind"] for r in ROWS if r["label"] == "contradiction")
    assert len(kinds) >= 20, kinds  # many different ways to contradict, not one repeated
    assert {r.get("set") for r in ROWS} == {"dev", "heldout"}


def test_corpus_figures_meet_the_targets() -> None:
    fig = corpus_figures(ROWS)
    assert fig["block_rate"] >= 0.99, fig["missed"]
    assert fig["pass_rate"] >= 0.90, fig["rejected"]
    # The held-out rows (written after the guard) on their own, too.
    held = corpus_figures([r for r in ROWS if r["set"] == "heldout"])
    assert held["block_rate"] >= 0.99 and held["pass_rate"] >= 0.90, held


ISSUE_EXAMPLES = [
    ("I would never accept $6,695 for this order.", "ACCEPT"),
    ("I am unable to accept $6,695 on these terms.", "ACCEPT"),
    ("I accept $6,695? Not a chance.", "ACCEPT"),
    ("Done at $6,695, we are in agreement.", "COUNTER"),
    ("I can do $6,695, though honestly it is worth 7 grand.", "COUNTER"),
    ("I can do $6,695 today, but USD7000 is the list price.", "COUNTER"),
    ("I am not ready to walk away from $6,695 yet.", "WALK_AWAY"),
]


@pytest.mark.parametrize("text, action", ISSUE_EXAMPLES)
def test_issue_examples_are_blocked(text: str, action: str) -> None:
    assert check_message(text, action, 6695.0) is not None


@pytest.mark.parametrize("text, action, reason", [
    # numbers in any form other than the move's price
    ("How about $6,695? We were hoping for 6.9k.", "COUNTER", "other_price"),
    ("My offer is $6,695; fair value is six thousand nine hundred.", "COUNTER", "other_price"),
    ("My offer is $6,695; the market is seventy-two hundred.", "COUNTER", "other_price"),
    ("My offer is $6,695, or 7000usd with the warranty.", "COUNTER", "other_price"),
    ("My offer is $6,695, and that is a grand under value.", "COUNTER", "other_price"),
    ("My offer is $6,695 and not 7 000.", "COUNTER", "other_price"),
    ("We accept $6,695 plus 10% on the next order.", "ACCEPT", "other_percentage"),
    ("We accept $6,695 per unit.", "ACCEPT", "price_modifier"),
    # intent
    ("I accept $6,695. NOT.", "ACCEPT", "intent:refusal"),
    ("We would accept $6,695 if you pay shipping.", "ACCEPT", "intent:conditional_acceptance"),
    ("We accept $6,695, but not before March.", "ACCEPT", "intent:qualified_acceptance"),
    ("Deal at $6,695? Really?", "ACCEPT", "intent:questioned_acceptance"),
    ("Wonderful, $6,695 it is. We have a deal!", "COUNTER", "intent:claims_deal"),
    ("Your final offer is $6,695, take it or leave it.", "COUNTER", "intent:price_attributed"),
    ("We can't do $6,695, I'm afraid.", "COUNTER", "intent:negated_offer"),
    ("I might walk away if $6,695 is your best.", "WALK_AWAY", "intent:conditional_walk"),
    ("Walk away from $6,695? Why would I?", "WALK_AWAY", "intent:questioned_walk"),
    ("We walk away from $6,695. Just kidding.", "WALK_AWAY", "intent:retraction"),
    # tone: blocked, not only scored
    ("Pay $6,695, you idiot.", "COUNTER", "unprofessional"),
    ("My price is $6,695, take it or go to hell.", "COUNTER", "unprofessional"),
    ("THIS IS FINAL: $6,695.", "COUNTER", "unprofessional"),
])
def test_guard_rules(text: str, action: str, reason: str) -> None:
    assert check_message(text, action, 6695.0) == reason


@pytest.mark.parametrize("text, action", [
    ("At round 4 of 10, the numbers support $6,695 as our offer.", "COUNTER"),
    ("With payment within 30 days, $6,695 is the price our model supports.", "COUNTER"),
    ("I won't go below $6,695. That's my price.", "COUNTER"),
    ("Do we have a deal at $6,695?", "COUNTER"),
    ("I accept $6,695. Send the contract today and do not make me wait.", "ACCEPT"),
    ("We have no choice but to walk away from $6,695.", "WALK_AWAY"),
    ("$6,695? Not a chance. I'm walking away.", "WALK_AWAY"),
    ("How about 6695 for the lot?", "COUNTER"),
    ("My final offer is $6,695.00, take it or leave it.", "COUNTER"),
    ("We accept ６,６９５ dollars.", "ACCEPT"),  # full-width digits are read as digits
])
def test_guard_passes_faithful_wording(text: str, action: str) -> None:
    assert check_message(text, action, 6695.0) is None


@pytest.mark.parametrize("text, values", [
    ("worth 7 grand", [7000.0]),
    ("USD7000 list", [7000.0]),
    ("7,900USD", [7900.0]),
    ("about 6.9k", [6900.0]),
    ("six thousand nine hundred", [6900.0]),
    ("seventy-two hundred", [7200.0]),
    ("$6,695.40", [6695.4]),
    ("round 3 of 10", [3.0, 10.0]),
])
def test_read_numbers_reads_every_form(text: str, values: list[float]) -> None:
    assert [n.value for n in read_numbers(text)] == values


def test_read_numbers_kinds() -> None:
    kinds = {n.text: n.kind for n in read_numbers("In round 3 of 10, within 30 days, 5% off 2 "
                                                  "units, a grand")}
    assert kinds == {"3": "count", "10": "count", "30": "count", "5%": "percent", "2": "amount",
                     "grand": "amount"}
    assert math.isnan(read_numbers("a grand")[0].value)
    assert read_numbers("the two of us, one more round") == []


def test_every_template_passes_the_guard() -> None:
    n = 0
    for style in STYLES:
        for action in ACTIONS:
            for role in ROLES:
                for price in ((None, 4420.0, 6695.4) if action == "WALK_AWAY" else
                              (4420.0, 6695.4, 8999.5)):
                    for seed in range(6):
                        for rnd in (1, 5, 10):
                            ctx = MoveContext(role=role, style=style, action=action, price=price,
                                              round=rnd, max_rounds=10, seed=seed)
                            text = template_message(ctx)
                            assert check_message(text, action, price) is None, text
                            n += 1
    assert n == 3 * 3 * 2 * 3 * 6 * 3


def test_recorded_llm_sample_pass_share() -> None:
    """The embedded SmolLM2-135M sample (tests/serve/llm_sample.jsonl): 100 moves x 2
    generations for each prompt form, ``chat`` (few-shot with the price) and ``placeholder``
    (what the embedded backend uses: the model writes {price} under a grammar that opens with
    the move's intent and allows no digits). The target is 0.80 of moves passing with the
    phraser's retry: the placeholder form reaches 0.97; the chat form, which the server no
    longer uses for the embedded model, 0.78 (prompt echoes, prices given to the other side,
    price modifiers, looping text: docs/phrasing.md). The floors catch a guard or prompt change
    that loses more real messages."""
    groups = by_prompt(SAMPLE)
    assert set(groups) == {"chat", "placeholder"}
    floors = {"chat": 0.78, "placeholder": 0.95}
    for prompt, rows in groups.items():
        assert len(rows) >= 100 and {r["action"] for r in rows} == set(ACTIONS)
        assert {r["style"] for r in rows} == set(STYLES)
        fig = llm_figures(rows)
        assert fig["message_pass_share"] >= floors[prompt], (prompt, fig)
        assert fig["generation_pass_share"] >= {"chat": 0.50, "placeholder": 0.80}[prompt], (
            prompt, fig)


def test_check_message_signature_and_results() -> None:
    sig = inspect.signature(check_message)
    assert list(sig.parameters)[:3] == ["text", "action", "price"]
    assert sig.parameters["max_rounds"].kind is inspect.Parameter.KEYWORD_ONLY
    good = f"Could we meet at {format_price(6695.4)} for mutual benefit?"
    assert check_message(good, "COUNTER", 6695.4) is None
    assert isinstance(check_message(good, "ACCEPT", 6695.4), str)
    with pytest.raises(ValueError, match="action must be one of"):
        check_message(good, "MAYBE", 6695.4)


def test_unprofessional_is_blocked_and_scored() -> None:
    text = "Fine, I accept $6,695, you stupid clown."
    assert unprofessional(text) and check_message(text, "ACCEPT", 6695.0) == "unprofessional"
    assert quality_score(text, "ACCEPT", 6695.0)[1]["professional_tone"] == 0.0
    assert unprofessional("What the f*** is $6,695?") and unprofessional("No sh*t.")
    assert not unprofessional("USD is fine, as is $6,695!")


def test_guard_report_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "| current |" in out and "contradictions blocked" in out
