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

from serve.phrasing.phraser import make_phraser
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

__all__ = ["main", "measure", "sample_contexts"]


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


def _message_line(ctx: MoveContext, msg: PhrasedMessage) -> str:
    price = format_price(ctx.price) if ctx.price is not None else "-"
    return (f"[{msg.phraser:8s} {ctx.style:11s} {ctx.action:9s} {price:>7s} "
            f"{msg.latency_ms:6.0f} ms q={msg.quality:.2f} "
            f"fails={msg.guard_failures}] {msg.text}")


async def measure(settings: PhrasingSettings, n: int, show: bool) -> dict[str, Any]:
    """Start a phraser for ``settings``, phrase ``n`` sample moves (printing each if ``show``)
    and return the start-up time, prompt form, health and ``stats()``."""
    phraser = make_phraser(settings)
    t0 = time.perf_counter()
    await phraser.start()
    start_s = time.perf_counter() - t0
    try:
        health = await phraser.health()
        for ctx in sample_contexts(n):
            msg = await phraser.phrase(ctx)
            if show:
                print(_message_line(ctx, msg))
        return {"start_s": round(start_s, 2), "prompt": phraser.prompt, "health": health,
                "stats": phraser.stats()}
    finally:
        await phraser.aclose()


def main(argv: list[str] | None = None) -> int:
    """Phrase ``--n`` sample moves with a backend and print the stats (guard pass share, latency,
    quality) as JSON."""
    parser = argparse.ArgumentParser(prog="python -m serve.phrasing",
                                     description="Measure a phrasing backend on sample moves.")
    parser.add_argument("--backend", default="embedded", choices=BACKENDS)
    parser.add_argument("--n", type=int, default=30, help="number of messages")
    parser.add_argument("--threads", type=int, default=1, help="embedded llama.cpp threads")
    parser.add_argument("--ollama-host", default=PhrasingSettings().ollama_host)
    parser.add_argument("--ollama-model", default=PhrasingSettings().ollama_model)
    parser.add_argument("--openai-base-url", default=PhrasingSettings().openai_base_url)
    parser.add_argument("--prompt", default="auto", choices=PROMPTS)
    parser.add_argument("--quiet", action="store_true", help="do not print each message")
    args = parser.parse_args(argv)
    settings = PhrasingSettings(backend=args.backend, embedded_threads=args.threads,
                                ollama_host=args.ollama_host, ollama_model=args.ollama_model,
                                openai_base_url=args.openai_base_url, prompt=args.prompt)
    result = asyncio.run(measure(settings, args.n, not args.quiet))
    print(json.dumps(result, indent=2, default=str))
    return 0
