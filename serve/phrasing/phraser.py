"""The phraser: ``Phraser`` words moves with an LLM backend (or none), guarded, with the template
as fallback, bounded in concurrency, and keeps the statistics; ``make_phraser`` builds one for a
``PhrasingSettings``.

Concurrency: LLM calls run on the event loop as non-blocking HTTP requests; at most
``max_concurrent`` run at once and at most ``max_pending`` wait or run; beyond that a message gets
the template immediately (``fallback_reason="queue_full"``), so a burst of sessions never piles up.

Deadline: a message waits at most ``deadline_s`` for the LLM (slot wait, calls and retries
together); then the call in flight is cancelled (its HTTP request closed, which llama.cpp's server
notices and stops) and the template answers (``fallback_reason="deadline"``), so no message is
later than ``deadline_s`` plus the template's time (well under a millisecond).

Ready texts (``prefetch``, with the placeholder prompt only): that prompt depends only on the kind
of move (style, action, role, with or without a price), so texts for a kind can be written before
the move exists. Once a kind has been asked for, a background task keeps ``prefetch`` texts
of it ready, one LLM call at a time; a message of that kind takes one
(filled with its price, guarded like any other) and does not wait for the LLM at all. Without a
ready text it is phrased live, as above; but while the LLM's recent calls take longer than the
deadline (the machine is busy), a message with no ready text gets the template at once
(``fallback_reason="llm_slow"``) instead of starting a call that would be cancelled, so the LLM's
time goes to ready texts, which are never wasted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from serve.phrasing.backends import (
    EmbeddedBackend,
    LLMBackend,
    LLMUnavailable,
    OllamaBackend,
    OpenAIBackend,
)
from serve.phrasing.guard import check_message
from serve.phrasing.prompts import build_messages, clean_llm_text, price_grammar
from serve.phrasing.quality import quality_score
from serve.phrasing.templates import template_message
from serve.phrasing.terms import (
    TermsContext,
    check_terms,
    describe_terms,
    terms_message,
    terms_quality,
)
from serve.phrasing.types import LOGGER, ROLES, MoveContext, PhrasedMessage, PhrasingSettings

__all__ = ["Phraser", "make_phraser"]

log = logging.getLogger(LOGGER)

#: A kind of move as the placeholder prompt sees it: (style, action, role, has a price).
Kind = tuple[str, str, str, bool]


def _kind(ctx: MoveContext) -> Kind:
    return (ctx.style, ctx.action, ctx.role, ctx.price is not None)


def _kind_context(kind: Kind, seed: int) -> MoveContext:
    """A move of ``kind`` to write a ready text for (its price is never shown to the model)."""
    style, action, role, has_price = kind
    return MoveContext(role=role, style=style, action=action, price=1.0 if has_price else None,
                       round=1, max_rounds=10, seed=seed)


def _terms_kind_context(ctx: TermsContext) -> MoveContext:
    """The price-move context whose placeholder prompt words ``ctx``: same style, action and
    round; a party other than supplier or retailer is prompted as a supplier (it sells its
    part)."""
    return MoveContext(role=ctx.role if ctx.role in ROLES else "supplier", style=ctx.style,
                       action=ctx.action, price=1.0 if ctx.offer else None, round=ctx.round,
                       max_rounds=ctx.max_rounds, seed=ctx.seed)


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None if empty."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100.0 * len(s)) - 1))]


def _attempt_seed(ctx: MoveContext, attempt: int) -> int:
    """The LLM seed of one generation: a different one per attempt, so a retry is a different
    sample, and the same for the same move, so a session replays the same way."""
    return (ctx.seed * 1_000_003 + ctx.round * 101 + ROLES.index(ctx.role)
            + attempt * 7919) % (2**31)


class Phraser:
    """Words moves with an LLM backend (or none), guarded, with template fallback.

    Safe to share between sessions: all state is updated on the event loop; LLM calls are bounded
    by ``max_concurrent`` (in flight) and ``max_pending`` (in flight + waiting).
    """

    def __init__(self, settings: PhrasingSettings, backend: LLMBackend | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self._sem = asyncio.Semaphore(max(1, settings.max_concurrent))
        self._pending = 0
        self._unreachable_until = 0.0  # time.monotonic() before which the LLM is not tried
        self._started = False
        self._start_lock = asyncio.Lock()
        self.reset_stats()
        # Ready texts per kind of move (raw, placeholder unfilled), and the task that refills
        # them; a kind is in ``_ready`` once it has been asked for.
        self._ready: dict[Kind, deque[str]] = {}
        self._refill = asyncio.Event()
        # One refill task: two decoding side by side on one thread wrote no more texts per
        # second, and made each call slower than the deadline, i.e. live calls stopped
        # (measured: docs/phrasing.md, "Speed"). A list, so that aclose() stops whatever runs.
        self._prefetchers: list[asyncio.Task[None]] = []
        self._writing: Counter[Kind] = Counter()  # ready texts being written, per kind
        self._prefetch_seq = 0  # seeds the ready texts: each one a different sample
        # Seconds of the last LLM calls (a call cancelled by the deadline counts as infinite):
        # their median says whether a live call can make the deadline.
        self._recent_call_s: deque[float] = deque(maxlen=9)

    def reset_stats(self) -> None:
        """Zero the counters and latencies of ``stats()`` (not the ready texts, nor the recent
        call times behind ``llm_slow``): ``measure`` calls it after its warm-up."""
        self._messages = 0
        self._llm_messages = 0
        self._guard_passed = 0
        self._attempts = 0
        self._attempts_passed = 0
        self._by_phraser: Counter[str] = Counter()
        self._fallbacks: Counter[str] = Counter()
        self._guard_reasons: Counter[str] = Counter()
        self._latency_ms: deque[float] = deque(maxlen=2000)
        self._llm_call_ms: deque[float] = deque(maxlen=2000)
        self._quality_sum = 0.0
        self._prefetch_calls = 0
        self._prefetched = 0

    @property
    def prompt(self) -> str:
        """The prompt form in use: ``settings.prompt``, with "auto" resolved per backend."""
        if self.settings.prompt != "auto":
            return self.settings.prompt
        return "placeholder" if self.backend_name == "embedded" else "design"

    @property
    def backend_name(self) -> str:
        return self.backend.name if self.backend is not None else "template"

    async def start(self) -> None:
        """Start the backend (the embedded server's child process). Never raises for an LLM that
        is unavailable: ``health()`` says so and messages fall back to templates. Idempotent;
        ``phrase()`` calls it if the caller did not."""
        async with self._start_lock:
            if self._started:
                return
            self._started = True
            if self.backend is not None:
                try:
                    await self.backend.start()
                except Exception:  # noqa: BLE001 - an LLM problem must not stop the server
                    log.exception("phrasing backend %s failed to start", self.backend_name)

    async def phrase(self, ctx: MoveContext) -> PhrasedMessage:
        """Word one move. Never raises for LLM problems; the text always passes the guard (a
        template is used when the LLM fails). Raises ValueError only for an invalid ``ctx``."""
        ctx.validate()
        t0 = time.perf_counter()
        if self.backend is None:
            return self._finish(ctx, t0, None, attempts=0, guard_passed=None, reason=None)
        if not self._started:
            await self.start()
        if time.monotonic() < self._unreachable_until:
            return self._finish(ctx, t0, None, attempts=0, guard_passed=None,
                                reason="unreachable")
        if self._pending >= self.settings.max_pending:
            return self._finish(ctx, t0, None, attempts=0, guard_passed=None,
                                reason="queue_full")
        failures: list[str] = []
        attempts = [0]
        if self._prefetching:
            ready = self._take_ready(ctx, t0, failures, attempts)
            if ready is not None:
                return ready
            if self._llm_slow:
                return self._finish(ctx, t0, None, attempts=attempts[0], guard_passed=None,
                                    reason="llm_slow", failures=failures)
        self._pending += 1
        try:
            async with asyncio.timeout(self.settings.deadline_s):
                return await self._phrase_llm(ctx, t0, failures, attempts)
        except TimeoutError:
            # Raised by the deadline only: the slot wait and the calls catch their own timeouts.
            return self._finish(ctx, t0, None, attempts=attempts[0], guard_passed=None,
                                reason="deadline", failures=failures)
        finally:
            self._pending -= 1

    async def phrase_terms(self, ctx: TermsContext,
                           pool: Sequence[float] | None = None) -> PhrasedMessage:
        """Word a move of a game beyond one price. With an LLM backend the model writes around
        the placeholder prompt's ``{price}`` (the same texts as a price move of its kind, so
        ready texts are shared), the placeholder is filled with every issue value of the move
        (:func:`serve.phrasing.terms.describe_terms`) and the text is sent only if the terms
        guard passes (:func:`serve.phrasing.terms.check_terms`: read back as exactly the move,
        no other number); else, or past ``deadline_s``, the game's template. Never raises for
        LLM problems; ValueError for an invalid ``ctx``."""
        ctx.validate()
        t0 = time.perf_counter()
        if self.backend is None:
            return self._terms_finish(ctx, pool, t0, None, 0, None)
        if not self._started:
            await self.start()
        if time.monotonic() < self._unreachable_until:
            return self._terms_finish(ctx, pool, t0, None, 0, "unreachable")
        if self._pending >= self.settings.max_pending:
            return self._terms_finish(ctx, pool, t0, None, 0, "queue_full")
        failures: list[str] = []
        attempts = [0]
        self._pending += 1
        try:
            async with asyncio.timeout(self.settings.deadline_s):
                text, reason = await self._terms_llm(ctx, pool, failures, attempts)
        except TimeoutError:
            text, reason = None, "deadline"
        finally:
            self._pending -= 1
        return self._terms_finish(ctx, pool, t0, text, attempts[0], reason, failures)

    async def _terms_llm(self, ctx: TermsContext, pool: Sequence[float] | None,
                         failures: list[str], attempts: list[int]) -> tuple[str | None, str | None]:
        """(text that passed the terms guard, None) or (None, the fallback reason)."""
        kctx = _terms_kind_context(ctx)
        fill = describe_terms(ctx, pool) if ctx.offer else None

        def judge(raw: str) -> str | None:
            attempts[0] += 1
            self._attempts += 1
            text = clean_llm_text(raw, kctx, fill=fill)
            why = check_terms(text, ctx, pool)
            if why is None:
                self._attempts_passed += 1
                return text
            failures.append(why)
            self._guard_reasons[why] += 1
            return None

        if self._prefetching:
            ready = self._ready.setdefault(_kind(kctx), deque())
            if not self._prefetchers:
                self._prefetchers = [asyncio.create_task(self._prefetch_loop())]
            self._refill.set()
            while ready:
                text = judge(ready.popleft())
                if text is not None:
                    self._prefetched += 1
                    return text, None
            if self._llm_slow:
                return None, "llm_slow"
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                await self._sem.acquire()
        except TimeoutError:
            return None, "queue_timeout"
        try:
            messages = build_messages(kctx, "placeholder")
            grammar = price_grammar(kctx) if self.settings.grammar else None
            for attempt in range(1 + max(0, self.settings.retries)):
                raw, reason = await self._generate(messages, _attempt_seed(kctx, attempt),
                                                   grammar)
                if reason is not None:
                    return None, reason
                text = judge(raw)
                if text is not None:
                    return text, None
            return None, "guard"
        finally:
            self._sem.release()

    def _terms_finish(self, ctx: TermsContext, pool: Sequence[float] | None, t0: float,
                      llm_text: str | None, attempts: int, reason: str | None,
                      failures: list[str] | None = None) -> PhrasedMessage:
        text = llm_text if llm_text is not None else terms_message(ctx, pool)
        quality, detail = terms_quality(text, ctx, pool)
        return PhrasedMessage(
            text=text, phraser=self.backend_name if llm_text is not None else "template",
            quality=quality, quality_detail=detail,
            latency_ms=(time.perf_counter() - t0) * 1000, llm_attempts=attempts,
            guard_passed=True if llm_text is not None else (False if reason == "guard" else None),
            fallback_reason=reason, guard_failures=list(failures or []))

    async def _phrase_llm(self, ctx: MoveContext, t0: float, failures: list[str],
                          attempts: list[int]) -> PhrasedMessage:
        """Wait (bounded by ``timeout_s``) for an LLM slot, then phrase with the LLM in it.
        ``failures`` and ``attempts`` (a one-item counter) are filled in as it goes, so that a
        message cut off by the deadline still reports them."""
        try:
            # asyncio.timeout, not wait_for: no extra task, so a permit granted as the deadline
            # cancels the wait is handed on by the semaphore, never lost.
            async with asyncio.timeout(self.settings.timeout_s):
                await self._sem.acquire()
        except TimeoutError:
            return self._finish(ctx, t0, None, attempts=0, guard_passed=None,
                                reason="queue_timeout")
        try:
            return await self._generate_guarded(ctx, t0, failures, attempts)
        finally:
            self._sem.release()

    @property
    def _prefetching(self) -> bool:
        return (self.settings.prefetch > 0 and self.backend is not None
                and self.prompt == "placeholder")

    def _take_ready(self, ctx: MoveContext, t0: float, failures: list[str],
                    attempts: list[int]) -> PhrasedMessage | None:
        """The first ready text of this kind of move that passes the guard once filled with the
        move's price, or None (then the move is phrased live); wakes the refill task."""
        pool = self._ready.setdefault(_kind(ctx), deque())
        if not self._prefetchers:
            self._prefetchers = [asyncio.create_task(self._prefetch_loop())]
        self._refill.set()
        while pool:
            text = clean_llm_text(pool.popleft(), ctx)
            attempts[0] += 1
            self._attempts += 1
            why = check_message(text, ctx.action, ctx.price, max_rounds=ctx.max_rounds)
            if why is None:
                self._attempts_passed += 1
                self._prefetched += 1
                return self._finish(ctx, t0, text, attempts=attempts[0], guard_passed=True,
                                    reason=None, failures=failures)
            failures.append(why)
            self._guard_reasons[why] += 1
        return None

    @property
    def _llm_slow(self) -> bool:
        """Do the recent LLM calls (at least 5) take longer than the deadline, in the median?"""
        recent = sorted(self._recent_call_s)
        return len(recent) >= 5 and recent[len(recent) // 2] > self.settings.deadline_s

    def _short_kind(self) -> Kind | None:
        """The asked-for kind with the fewest ready (or being written) texts, if below
        ``prefetch``."""
        if not self._ready:
            return None
        kind = min(self._ready, key=lambda k: len(self._ready[k]) + self._writing[k])
        short = len(self._ready[kind]) + self._writing[kind] < self.settings.prefetch
        return kind if short else None

    async def _prefetch_loop(self) -> None:
        """One refill task: write ready texts one LLM call at a time, in an LLM slot like a
        live call; an unreachable LLM stops it until the next message wakes it, another failure
        pauses it for ``deadline_s``."""
        while True:
            await self._refill.wait()
            self._refill.clear()
            while (kind := self._short_kind()) is not None:
                if time.monotonic() < self._unreachable_until:
                    break
                self._prefetch_seq += 1
                kctx = _kind_context(kind, self._prefetch_seq)
                self._writing[kind] += 1
                try:
                    async with self._sem:
                        raw, reason = await self._generate(
                            build_messages(kctx, "placeholder"), _attempt_seed(kctx, 0),
                            self._grammar(kctx))
                finally:
                    self._writing[kind] -= 1
                if reason == "unreachable":
                    break  # the cooldown applies; the next message wakes the task again
                if reason is not None:
                    # A timeout or a bad answer: back off, so a failing LLM is not hammered.
                    await asyncio.sleep(self.settings.deadline_s)
                    continue
                self._prefetch_calls += 1
                self._ready[kind].append(raw)

    def _grammar(self, ctx: MoveContext) -> str | None:
        """The output grammar for this move: only with the placeholder prompt and ``grammar``
        on (backends that cannot use one ignore it)."""
        if self.settings.grammar and self.prompt == "placeholder":
            return price_grammar(ctx)
        return None

    async def _generate_guarded(self, ctx: MoveContext, t0: float, failures: list[str],
                                attempts: list[int]) -> PhrasedMessage:
        """Up to ``1 + retries`` generations: the first text that passes the guard is sent; a
        failed call, or a guard failure on the last try, sends the template."""
        messages = build_messages(ctx, self.prompt)
        grammar = self._grammar(ctx)
        for attempt in range(1 + max(0, self.settings.retries)):
            attempts[0] += 1
            raw, reason = await self._generate(messages, _attempt_seed(ctx, attempt), grammar)
            if reason is not None:
                return self._finish(ctx, t0, None, attempts=attempts[0], guard_passed=None,
                                    reason=reason, failures=failures)
            text = clean_llm_text(raw, ctx)
            why = check_message(text, ctx.action, ctx.price, max_rounds=ctx.max_rounds)
            self._attempts += 1
            if why is None:
                self._attempts_passed += 1
                return self._finish(ctx, t0, text, attempts=attempts[0], guard_passed=True,
                                    reason=None, failures=failures)
            failures.append(why)
            self._guard_reasons[why] += 1
            log.debug("guard rejected (%s): %r", why, text)
        return self._finish(ctx, t0, None, attempts=attempts[0], guard_passed=False,
                            reason="guard", failures=failures)

    async def _generate(self, messages: list[dict[str, str]], seed: int,
                        grammar: str | None) -> tuple[str, str | None]:
        """One LLM call, bounded by ``timeout_s``: ``(text, None)``, or ``("", reason)`` with the
        fallback reason ("timeout", "unreachable", "error") when no text came back."""
        assert self.backend is not None
        tc = time.perf_counter()
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
            # that arrives as the call completes, and the deadline or aclose() would be lost.
            async with asyncio.timeout(self.settings.timeout_s):
                raw = await self.backend.generate(messages, seed=seed, grammar=grammar)
        except TimeoutError:
            self._recent_call_s.append(time.perf_counter() - tc)
            return "", "timeout"
        except asyncio.CancelledError:
            # Cut off by the deadline: whether it started late (a queue) or ran long, a call
            # like it would not have made it, so it counts as too slow.
            self._recent_call_s.append(math.inf)
            raise
        except LLMUnavailable as exc:
            self._unreachable_until = time.monotonic() + self.settings.unreachable_cooldown_s
            log.warning("LLM %s unreachable: %s", self.backend_name, exc)
            return "", "unreachable"
        except Exception as exc:  # noqa: BLE001 - any LLM error falls back
            log.warning("LLM %s error: %s: %s", self.backend_name, type(exc).__name__, exc)
            return "", "error"
        self._llm_call_ms.append((time.perf_counter() - tc) * 1000.0)
        self._recent_call_s.append(time.perf_counter() - tc)
        return raw, None

    def _finish(self, ctx: MoveContext, t0: float, llm_text: str | None, *, attempts: int,
                guard_passed: bool | None, reason: str | None,
                failures: list[str] | None = None) -> PhrasedMessage:
        """Build the message (the template if ``llm_text`` is None), score, count and log it."""
        text = llm_text if llm_text is not None else template_message(ctx)
        phraser = self.backend_name if llm_text is not None else "template"
        quality, detail = quality_score(text, ctx.action, ctx.price, max_rounds=ctx.max_rounds)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        msg = PhrasedMessage(text=text, phraser=phraser, quality=quality, quality_detail=detail,
                             latency_ms=latency_ms, llm_attempts=attempts,
                             guard_passed=guard_passed, fallback_reason=reason,
                             guard_failures=list(failures or []))
        self._messages += 1
        self._by_phraser[phraser] += 1
        self._latency_ms.append(latency_ms)
        self._quality_sum += quality
        if attempts and guard_passed is not None:
            self._llm_messages += 1
            self._guard_passed += int(guard_passed)
        if reason is not None:
            self._fallbacks[reason] += 1
        log.info("phrased %s %s %s round %d by %s in %.1f ms (attempts %d, guard %s, "
                 "fallback %s, quality %.2f)", ctx.role, ctx.style, ctx.action, ctx.round,
                 phraser, latency_ms, attempts, guard_passed, reason, quality)
        return msg

    async def health(self) -> dict[str, Any]:
        """``{"backend", "reachable", "model", "model_present", "detail"}``; never raises."""
        if self.backend is None:
            return {"backend": "template", "reachable": True, "model": None,
                    "model_present": True, "detail": "templates only, no LLM"}
        return await self.backend.health()

    def stats(self) -> dict[str, Any]:
        """Counters since start. ``llm_share`` = messages the LLM wrote / all messages (the rest
        are templates: deadline, guard, queue, unreachable; see ``fallbacks``);
        ``guard_pass_share`` = LLM messages whose text passed the guard (first try or retry) /
        LLM messages that got a text back (a call cut off by the deadline or a timeout got
        none); latencies are per message (the last 2,000), in ms."""
        lat = list(self._latency_ms)
        calls = list(self._llm_call_ms)
        llm_written = self._messages - self._by_phraser.get("template", 0)
        return {
            "backend": self.backend_name,
            "prompt": self.prompt,
            "deadline_s": self.settings.deadline_s,
            "messages": self._messages,
            "by_phraser": dict(self._by_phraser),
            "llm_share": (llm_written / self._messages
                          if self._messages and self.backend is not None else None),
            "llm_messages": self._llm_messages,
            "guard_passed": self._guard_passed,
            "guard_pass_share": (self._guard_passed / self._llm_messages
                                 if self._llm_messages else None),
            "llm_attempts": self._attempts,
            "llm_attempts_passed": self._attempts_passed,
            "guard_failures": dict(self._guard_reasons),
            "fallbacks": dict(self._fallbacks),
            "pending": self._pending,
            "latency_ms_p50": _percentile(lat, 50),
            "latency_ms_p95": _percentile(lat, 95),
            "latency_ms_max": max(lat) if lat else None,
            "prefetched": self._prefetched,
            "prefetch_calls": self._prefetch_calls,
            "ready_texts": sum(len(q) for q in self._ready.values()),
            "llm_call_ms_p50": _percentile(calls, 50),
            "llm_call_ms_p95": _percentile(calls, 95),
            "quality_mean": self._quality_sum / self._messages if self._messages else None,
        }

    async def aclose(self) -> None:
        """Stop the refill task, close HTTP clients and stop the embedded server, if any."""
        for task in self._prefetchers:
            task.cancel()
        for task in self._prefetchers:
            with suppress(asyncio.CancelledError):
                await task
        self._prefetchers = []
        if self.backend is not None:
            await self.backend.aclose()


def make_phraser(settings: PhrasingSettings) -> Phraser:
    """The phraser for ``settings.backend``; call ``await phraser.start()`` before use."""
    backend: LLMBackend | None
    if settings.backend == "ollama":
        backend = OllamaBackend(settings)
    elif settings.backend == "openai":
        backend = OpenAIBackend(settings)
    elif settings.backend == "embedded":
        backend = EmbeddedBackend(settings)
    else:
        backend = None
    return Phraser(settings, backend)
