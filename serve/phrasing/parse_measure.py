"""The free-text parser measured on labelled corpora (``python -m serve.phrasing.parse_measure
DIR``: one ``<game>.jsonl`` per game, the labelling contract in docs/server.md).

A line is right when the parse is the label: the same action and, for a COUNTER, every issue's
value (to the cent; labels case-insensitive), or an ask where the label asks. ``guesses`` counts
lines labelled ask that got a move instead (the parser must ask, never guess): the target is 0.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from eqx_jax.games.registry import get_game
from eqx_jax.games.view import IssueView, issue_views
from serve.phrasing.parse import Parsed, parse_move

GAMES = ("price", "price-quantity", "multi-issue", "bundles", "group")


def corpus_issues(game: str, scenario: str | None = None) -> tuple[IssueView, ...]:
    """The issues a corpus line of ``game`` is parsed with (the price game: its price, below
    the server's default max price)."""
    if game == "price":
        from serve.schemas import MAX_PRICE

        return (IssueView("price", "continuous", 0.0, MAX_PRICE - 0.01, unit="currency"),)
    g = get_game(game)
    return issue_views(game, g.env(scenario), g.params(scenario))


def _matches(got: Parsed, expect: dict[str, Any]) -> bool:
    if "ask" in expect:
        return bool(got.ask)
    if got.action != expect["action"]:
        return False
    if expect["action"] != "COUNTER":
        return True
    assert got.offer is not None
    for k, v in expect["offer"].items():
        w = got.offer.get(k)
        if isinstance(v, str) or isinstance(w, str):
            if str(v).lower() != str(w).lower():
                return False
        elif w is None or not math.isclose(float(v), float(w), abs_tol=0.005):
            return False
    return True


def measure_corpus(path: Path, game: str) -> dict[str, Any]:
    """Accuracy of the parser on one corpus file, and the lines it gets wrong."""
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    wrong, guesses, cache = [], 0, {}
    for line in lines:
        key = line.get("scenario")
        if key not in cache:
            cache[key] = corpus_issues(game, key)
        got = parse_move(line["text"], cache[key], line.get("standing"), game=game,
                         pool=line.get("pool"))
        if not _matches(got, line["expect"]):
            wrong.append({"text": line["text"], "expect": line["expect"],
                          "got": {"action": got.action, "offer": got.offer,
                                  "ask": list(got.ask)}})
            guesses += int("ask" in line["expect"])
    asks = sum("ask" in x["expect"] for x in lines)
    return {"game": game, "lines": len(lines), "right": len(lines) - len(wrong),
            "accuracy": (len(lines) - len(wrong)) / len(lines), "ask_lines": asks,
            "guesses": guesses, "wrong": wrong}


def main(argv: list[str] | None = None) -> None:
    folder = Path((argv or sys.argv[1:] or ["tests/serve/parse_corpus"])[0])
    report = [measure_corpus(folder / f"{g}.jsonl", g) for g in GAMES
              if (folder / f"{g}.jsonl").exists()]
    print(json.dumps([{k: v for k, v in r.items() if k != "wrong"} for r in report], indent=1))
    for r in report:
        for w in r["wrong"]:
            print(r["game"], json.dumps(w))


if __name__ == "__main__":
    main()
