"""The guard's figures, ``python -m serve.phrasing.guard_report``: block rate on the labelled
contradictions and pass rate on the faithful messages of ``tests/serve/guard_corpus.jsonl``, and
the pass share of the recorded embedded-LLM sample ``tests/serve/llm_sample.jsonl``, for the
current guard and (with ``--old FILE``, e.g. ``git show HEAD~1:serve/phrasing/guard.py``) an
older one. ``--record-llm-sample N`` regenerates the sample with the embedded model (slow: a few
seconds per generation on one core) for one prompt form (``--prompt``), replacing that form's
rows; the rows of each prompt form are counted apart.

Both files are JSON lines. Corpus rows: ``text``, ``action``, ``price`` (currency units or null),
``label`` (``faithful`` | ``contradiction``), ``kind`` (how it contradicts, or ``faithful``),
``style``, ``set`` (``dev``: written first and used while building the guard; ``heldout``:
written once the guard was done and measured before any change made for it). Sample rows:
``prompt``, the move (``role``, ``style``, ``action``, ``price``, ``round``, ``max_rounds``,
``seed``), ``attempt`` (0 = first generation, 1 = the phraser's retry), the
model's ``raw`` answer and ``text`` (``clean_llm_text`` of it, what the guard reads).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.machinery
import importlib.util
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from serve.phrasing.guard import check_message

__all__ = ["by_prompt", "corpus_figures", "llm_figures", "load_jsonl", "main",
           "record_llm_sample"]

Guard = Callable[..., "str | None"]
ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "serve" / "guard_corpus.jsonl"
LLM_SAMPLE = ROOT / "tests" / "serve" / "llm_sample.jsonl"


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (blank lines skipped)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def corpus_figures(rows: Iterable[dict[str, Any]], guard: Guard = check_message
                   ) -> dict[str, Any]:
    """Block rate on contradictions, pass rate on faithful rows (shares in 0..1), per kind, per
    style and per set (right/total), and the rows the guard got wrong (``missed``:
    contradictions passed, ``rejected``: faithful rows blocked, with the reason)."""
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> [right, total]
    by_style: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_set: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed, rejected = [], []
    for row in rows:
        why = guard(row["text"], row["action"], row["price"])
        contradiction = row["label"] == "contradiction"
        right = (why is not None) if contradiction else (why is None)
        for table, key in ((by_kind, row["kind"]), (by_style, f"{row['style']}/{row['label']}"),
                           (by_set, f"{row.get('set', 'dev')}/{row['label']}")):
            table[key][0] += int(right)
            table[key][1] += 1
        if not right:
            (missed if contradiction else rejected).append(
                {"text": row["text"], "action": row["action"], "kind": row["kind"],
                 "reason": why})
    bad = [v for k, v in by_kind.items() if k != "faithful"]
    good = by_kind.get("faithful", [0, 0])
    blocked, n_bad = sum(v[0] for v in bad), sum(v[1] for v in bad)
    return {
        "contradictions": n_bad, "blocked": blocked,
        "block_rate": blocked / n_bad if n_bad else None,
        "faithful": good[1], "passed": good[0],
        "pass_rate": good[0] / good[1] if good[1] else None,
        "by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_kind.items())},
        "by_style": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_style.items())},
        "by_set": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_set.items())},
        "missed": missed, "rejected": rejected,
    }


def llm_figures(rows: Iterable[dict[str, Any]], guard: Guard = check_message) -> dict[str, Any]:
    """Pass share of recorded LLM texts: per generation (``generation_pass_share``) and per move
    with the phraser's one retry (``message_pass_share``: the first or the second generation
    passed, what ``Phraser.stats()["guard_pass_share"]`` measures), and the rejection reasons."""
    reasons: Counter[str] = Counter()
    per_move: dict[tuple[Any, ...], bool] = {}
    n = passed = 0
    for row in rows:
        why = guard(row["text"], row["action"], row["price"], max_rounds=row["max_rounds"])
        n += 1
        passed += why is None
        if why is not None:
            reasons[why] += 1
        key = (row["seed"], row["role"], row["round"], row["action"])
        per_move[key] = per_move.get(key, False) or why is None
    return {
        "generations": n, "generations_passed": passed,
        "generation_pass_share": passed / n if n else None,
        "moves": len(per_move), "moves_passed": sum(per_move.values()),
        "message_pass_share": sum(per_move.values()) / len(per_move) if per_move else None,
        "reasons": dict(reasons.most_common()),
    }


async def _record(n: int, attempts: int, threads: int, prompt: str) -> list[dict[str, Any]]:
    """Generate ``attempts`` texts for each of ``n`` sample moves with the embedded model, with
    the phraser's seeds and the prompt form ``prompt``."""
    from serve.phrasing import prompts
    from serve.phrasing.backends import EmbeddedBackend
    from serve.phrasing.measure import sample_contexts
    from serve.phrasing.phraser import _attempt_seed  # the phraser's own seeds, on purpose
    from serve.phrasing.types import PhrasingSettings

    # The placeholder prompt is answered under its output grammar, as the phraser does.
    grammar = getattr(prompts, "price_grammar", None) if prompt == "placeholder" else None

    backend = EmbeddedBackend(PhrasingSettings(backend="embedded", embedded_threads=threads,
                                               timeout_s=120.0))
    await backend.start()
    rows = []
    try:
        for ctx in sample_contexts(n, seed=13):
            messages = prompts.build_messages(ctx, prompt)
            extra = {"grammar": grammar(ctx)} if grammar else {}
            for attempt in range(attempts):
                raw = await backend.generate(messages, seed=_attempt_seed(ctx, attempt), **extra)
                rows.append({"prompt": prompt, "role": ctx.role, "style": ctx.style,
                             "action": ctx.action, "price": ctx.price, "round": ctx.round,
                             "max_rounds": ctx.max_rounds, "seed": ctx.seed,
                             "attempt": attempt, "raw": raw,
                             "text": prompts.clean_llm_text(raw, ctx)})
    finally:
        await backend.aclose()
    return rows


def record_llm_sample(path: Path, n: int, attempts: int = 2, threads: int = 1,
                      prompt: str = "chat") -> int:
    """Record ``n`` moves x ``attempts`` embedded-LLM generations with ``prompt`` into ``path``,
    replacing the rows of that prompt form and keeping the others; the number recorded."""
    rows = asyncio.run(_record(n, attempts, threads, prompt))
    old = load_jsonl(path) if path.exists() else []
    kept = [r for r in old if r.get("prompt", "chat") != prompt]
    with path.open("w", encoding="utf-8") as fh:
        for row in kept:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def _load_guard(path: Path) -> Guard:
    """``check_message`` of another guard module file (e.g. the previous version's)."""
    # An explicit loader, so that a path without ".py" (``<(git show ...)``) loads too.
    loader = importlib.machinery.SourceFileLoader("_old_guard", str(path))
    spec = importlib.util.spec_from_loader("_old_guard", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module.check_message


def _share(right: int, total: int, share: float | None) -> str:
    return f"{right}/{total} = {share:.3f}" if share is not None else "-"


def _table(results: dict[str, dict[str, Any]]) -> str:
    """A markdown table: one row per guard; the LLM columns once per prompt form."""
    prompts = sorted({p for r in results.values() for p in r["llm"]})
    head = ["guard", "contradictions blocked", "faithful passed"]
    for p in prompts:
        head += [f"LLM generations passed ({p})", f"LLM moves passed, with retry ({p})"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, r in results.items():
        c = r["corpus"]
        cells = [name, _share(c["blocked"], c["contradictions"], c["block_rate"]),
                 _share(c["passed"], c["faithful"], c["pass_rate"])]
        for p in prompts:
            llm = r["llm"][p]
            cells += [_share(llm["generations_passed"], llm["generations"],
                             llm["generation_pass_share"]),
                      _share(llm["moves_passed"], llm["moves"], llm["message_pass_share"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def by_prompt(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The LLM sample's rows grouped by the prompt form that produced them."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row.get("prompt", "chat")].append(row)
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    """Print the guard's figures as a markdown table (``--json``: everything, with the rows the
    guard got wrong), or record a new LLM sample."""
    parser = argparse.ArgumentParser(prog="python -m serve.phrasing.guard_report",
                                     description="The guard's corpus and LLM-sample figures.")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--llm-sample", type=Path, default=LLM_SAMPLE)
    parser.add_argument("--old", type=Path, help="another guard.py to compare with")
    parser.add_argument("--json", action="store_true", help="print all figures as JSON")
    parser.add_argument("--record-llm-sample", type=int, metavar="N",
                        help="regenerate the LLM sample with N moves (2 generations each)")
    parser.add_argument("--threads", type=int, default=1, help="embedded llama.cpp threads")
    parser.add_argument("--prompt", default="chat", help="prompt form for --record-llm-sample")
    args = parser.parse_args(argv)
    if args.record_llm_sample:
        count = record_llm_sample(args.llm_sample, args.record_llm_sample, threads=args.threads,
                                  prompt=args.prompt)
        print(f"recorded {count} {args.prompt} generations in {args.llm_sample}")
        return 0
    guards: dict[str, Guard] = {"current": check_message}
    if args.old:
        guards = {f"old ({args.old})": _load_guard(args.old), **guards}
    corpus, sample = load_jsonl(args.corpus), load_jsonl(args.llm_sample)
    groups = by_prompt(sample)
    results = {name: {"corpus": corpus_figures(corpus, g),
                      "llm": {p: llm_figures(rows, g) for p, rows in groups.items()}}
               for name, g in guards.items()}
    print(json.dumps(results, indent=2) if args.json else _table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
