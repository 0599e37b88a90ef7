"""The measuring command, ``python -m serve.phrasing --backend embedded --n 30``: phrase sample
moves (``sample_contexts``) with one backend and print each message and the phraser's statistics
(guard pass share, latency, quality) as JSON; docs/phrasing.md's "Measured" table comes from it."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

from serve.phrasing.phraser import Phraser, make_phraser
from serve.phrasing.prices import format_price
from serve.phrasing.types import (
    ACTIONS,
    BACKENDS,
    PROMPTS,
    ROLES,
    STYLES,
    MoveContext,
    PhrasedMessage,
    PhrasingSettings,
)

__all__ = ["BEFORE", "main", "measure", "sample_contexts", "session_contexts"]


def sample_contexts(n: int, seed: int = 0) -> list[MoveContext]:
    """``n`` plausible moves cycling through styles, actions and roles, with prices in the game's
    default range (4,000..9,000 currency units), deterministic per ``seed``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        action = ACTIONS[i % 3]
        role = ROLES[(i // 3) % 2]
        style = STYLES[(i // 6) % 3]
        rnd = rng.randint(2, 10)
        history = tuple((ROLES[(k + 1) % 2], float(rng.randint(4000, 9000)))
                        for k in range(rnd - 1))
        if action == "WALK_AWAY" and i % 4 == 0:
            price = None
        else:
            price = round(rng.uniform(4000, 9000), 2)
        out.append(MoveContext(role=role, style=style, action=action, price=price, round=rnd,
                               max_rounds=10, offer_history=history, seed=seed + i))
    return out


def session_contexts(sessions: int, moves: int, seed: int = 0) -> list[list[MoveContext]]:
    """``sessions`` negotiations as the simulation phrases them: each has one style per role
    (cycling through the styles), ``moves - 1`` counter-offers by alternating roles with prices
    converging from 9,000 and 4,000, then an ACCEPT or (every third session) a WALK_AWAY."""
    rng = random.Random(seed)
    out = []
    for s in range(sessions):
        styles = {"supplier": STYLES[s % 3], "retailer": STYLES[(s + s // 3) % 3]}
        hi, lo = 9000.0, 4000.0
        history: list[tuple[str, float]] = []
        session = []
        for m in range(moves):
            role = ROLES[m % 2]
            last = moves - 1
            if m < last:
                action = "COUNTER"
                if role == "supplier":
                    hi = round(hi - rng.uniform(100, 400), 2)
                    price: float | None = hi
                else:
                    lo = round(lo + rng.uniform(100, 400), 2)
                    price = lo
            else:
                action = "WALK_AWAY" if s % 3 == 2 else "ACCEPT"
                price = history[-1][1] if history else 6000.0
            session.append(MoveContext(role=role, style=styles[role], action=action,
                                       price=price, round=m // 2 + 1, max_rounds=10,
                                       offer_history=tuple(history), seed=seed + s))
            if price is not None:
                history.append((role, price))
        out.append(session)
    return out


def _message_line(ctx: MoveContext, msg: PhrasedMessage) -> str:
    price = format_price(ctx.price) if ctx.price is not None else "-"
    return (f"[{msg.phraser:8s} {ctx.style:11s} {ctx.action:9s} {price:>7s} "
            f"{msg.latency_ms:6.0f} ms q={msg.quality:.2f} "
            f"fails={msg.guard_failures}] {msg.text}")


async def _session(phraser: Phraser, contexts: list[MoveContext], show: bool,
                   pause_s: float = 0.0) -> None:
    """One session: its moves phrased one after another, as the simulation does, ``pause_s``
    seconds apart (the simulation's ``move_delay_s``)."""
    for i, ctx in enumerate(contexts):
        if i and pause_s > 0:
            await asyncio.sleep(pause_s)
        msg = await phraser.phrase(ctx)
        if show:
            print(_message_line(ctx, msg))


async def measure(settings: PhrasingSettings, n: int, show: bool, concurrency: int = 1,
                  mix: str = "uniform", warmup_s: float = 0.0,
                  pause_s: float = 0.0) -> dict[str, Any]:
    """Start a phraser for ``settings``, phrase ``n`` moves as ``concurrency`` sessions running
    at once (each phrasing its moves in sequence; printing each message if ``show``) and return
    the start-up time, prompt form, health, wall time (s) and ``stats()``. ``mix="uniform"``:
    ``sample_contexts`` (every kind of move in turn, the worst case for the prompt cache and the
    ready texts); ``"sessions"``: ``n // 12`` negotiations of 12 moves (``session_contexts``,
    mostly counter-offers). ``warmup_s > 0``: phrase the same moves once first, wait that many
    seconds (the prompt cache and the ready texts fill as in a server that has been running),
    then zero the statistics and measure. ``pause_s``: seconds between a session's moves."""
    phraser = make_phraser(settings)
    t0 = time.perf_counter()
    await phraser.start()
    start_s = time.perf_counter() - t0
    try:
        health = await phraser.health()
        k = max(1, concurrency)
        if mix == "sessions":
            # Negotiations of 12 moves, ``k`` of them running at any time.
            per_session = session_contexts(max(1, n // 12), 12)
        else:
            contexts = sample_contexts(n)
            per_session = [contexts[i::k] for i in range(k)]
        running = asyncio.Semaphore(k)

        async def one(moves: list[MoveContext]) -> None:
            async with running:
                await _session(phraser, moves, show, pause_s)

        if warmup_s > 0:
            await asyncio.gather(*(_session(phraser, c, False) for c in per_session))
            await asyncio.sleep(warmup_s)
            phraser.reset_stats()
        t1 = time.perf_counter()
        await asyncio.gather(*(one(c) for c in per_session))
        return {"start_s": round(start_s, 2), "prompt": phraser.prompt, "concurrency": k,
                "wall_s": round(time.perf_counter() - t1, 2), "health": health,
                "stats": phraser.stats()}
    finally:
        await phraser.aclose()


#: ``--profile before``: the phrasing settings as they were before the speed work (one slot,
#: the chat prompt with the price in it, 60 tokens, no grammar, no deadline), so that before and
#: after can be measured in one run on the same load.
BEFORE = {"prompt": "chat", "embedded_parallel": 1, "max_concurrent": 1, "num_predict": 60,
          "grammar": False, "deadline_s": 120.0, "prefetch": 0}


def main(argv: list[str] | None = None) -> int:
    """Phrase ``--n`` sample moves with a backend and print the stats (LLM share, guard pass
    share, latency, quality) as JSON."""
    parser = argparse.ArgumentParser(prog="python -m serve.phrasing",
                                     description="Measure a phrasing backend on sample moves.")
    parser.add_argument("--backend", default="embedded", choices=BACKENDS)
    parser.add_argument("--n", type=int, default=30, help="number of messages")
    parser.add_argument("--threads", type=int, default=1, help="embedded llama.cpp threads")
    parser.add_argument("--ollama-host", default=PhrasingSettings().ollama_host)
    parser.add_argument("--ollama-model", default=PhrasingSettings().ollama_model)
    parser.add_argument("--openai-base-url", default=PhrasingSettings().openai_base_url)
    parser.add_argument("--prompt", default=None, choices=PROMPTS)
    parser.add_argument("--deadline", type=float, default=None, help="deadline_s (seconds)")
    parser.add_argument("--parallel", type=int, default=None, help="embedded slots, and "
                                                                   "max_concurrent")
    parser.add_argument("--num-predict", type=int, default=None)
    parser.add_argument("--grammar", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--prefetch", type=int, default=None, help="ready texts per kind")
    parser.add_argument("--profile", choices=("after", "before"), default="after",
                        help="before: the settings before the speed work (see BEFORE)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="sessions phrasing at once (each its moves in sequence)")
    parser.add_argument("--mix", choices=("uniform", "sessions"), default="uniform",
                        help="uniform: every kind of move in turn; sessions: negotiations")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds between a session's moves (move_delay_s)")
    parser.add_argument("--warmup", type=float, default=0.0,
                        help="phrase the moves once, wait this many seconds, then measure")
    parser.add_argument("--quiet", action="store_true", help="do not print each message")
    args = parser.parse_args(argv)
    fields: dict[str, Any] = dict(BEFORE) if args.profile == "before" else {}
    given = {"prompt": args.prompt, "deadline_s": args.deadline, "num_predict": args.num_predict,
             "grammar": args.grammar, "prefetch": args.prefetch, "embedded_parallel": args.parallel,
             "max_concurrent": args.parallel}
    fields.update({k: v for k, v in given.items() if v is not None})
    settings = PhrasingSettings(backend=args.backend, embedded_threads=args.threads,
                                ollama_host=args.ollama_host, ollama_model=args.ollama_model,
                                openai_base_url=args.openai_base_url, **fields)
    result = asyncio.run(measure(settings, args.n, not args.quiet, args.concurrency, args.mix,
                                 args.warmup, args.pause))
    result.update(profile=args.profile, mix=args.mix, warmup_s=args.warmup, pause_s=args.pause)
    print(json.dumps(result, indent=2, default=str))
    return 0
