"""Sessions of every game through the API, against the real server: a scripted client plays a
price-quantity, a multi-issue, a bundles and a 3-party session to SIMULATION_COMPLETE over the
WebSocket; every move carries every issue's value and a message stating them (the guard of
the games beyond one price); the end carries each agent's utility, the exact equilibrium of
the drawn private values (the CLI's solver, recomputed here) and the optimality; replay,
status and export work for every game; bad input is a 422 naming the field."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import httpx
import numpy as np
import pytest
from server_helpers import SIM, stream_all

from eqx_jax.games.group import solve_group_scenario_spe
from eqx_jax.games.registry import get_game
from eqx_jax.references import pq_spe_kwargs
from eqx_jax.solvers.price_quantity import solve_pq_spe
from serve.phrasing.terms import TermsContext, check_terms

# Also run on 2 workers sharing Redis and PostgreSQL (make test's second run).
pytestmark = pytest.mark.shared_state

API = "/api/v1"


def start(server, body: dict, user: str = "alice") -> httpx.Response:
    return httpx.post(f"{server.url}{API}/simulation/start", json=body,
                      headers=server.headers(user), timeout=60)


def play(server, body: dict, user: str = "alice") -> tuple[dict, list[dict]]:
    r = start(server, body, user)
    assert r.status_code == 201, r.text
    sid = r.json()["session_id"]
    msgs, code = asyncio.run(stream_all(server, sid, server.token(user)))
    assert code == 1000
    assert msgs[-1]["type"] == "SIMULATION_COMPLETE", msgs[-1]
    return r.json(), msgs


def views_of(final: dict, game: str):
    from eqx_jax.games.view import issue_views

    g = get_game(game)
    env = g.env(final.get("scenario"))
    return issue_views(game, env, g.params(final.get("scenario")))


def check_moves(moves: list[dict], final: dict, game: str, agents: list[str]) -> None:
    """Every move: its agent in turn order, every issue valued, and a message the guard of the
    games beyond one price passes (every number of the move stated, no other)."""
    views = views_of(final, game)
    issues = tuple((i.name, i.unit) for i in views)
    names = [n for n, _ in issues]
    pool = final["private_values"].get("pool") if game == "bundles" else None
    for i, m in enumerate(moves):
        assert m["game"] == game and m["seq"] == i and m["round"] == i + 1
        assert m["agent"] == agents[i % len(agents)] and m["seat"] == i % len(agents)
        assert m["action"] in ("ACCEPT", "COUNTER", "WALK_AWAY")
        if m["action"] != "WALK_AWAY":
            assert list(m["offer"]) == names
        ctx = TermsContext(m["agent"], "cooperative", m["action"], issues, m["offer"],
                           m["round"], 10, first_seat=m["seat"] == 0, views=views)
        assert check_terms(m["message"], ctx, pool) is None, m["message"]
        assert m["phraser"] == "template" and m["quality"] > 0.7


def test_price_quantity_session_streams_every_issue_and_ends_with_the_equilibrium(server):
    body = {"game": "price-quantity", "settings": {"cost_low": 50, "cost_high": 50,
                                                   "demand_low": 160, "demand_high": 160},
            "supplier_policy": "boulware", "retailer_policy": "linear", "seed": 11}
    started, msgs = play(server, body)
    assert started["supplier_policy"] == "boulware" and started["retailer_policy"] == "linear"
    moves, final = msgs[:-1], msgs[-1]
    check_moves(moves, final, "price-quantity", ["supplier", "retailer"])
    assert all(m["price"] == m["offer"]["price"] for m in moves if m["offer"])
    assert final["private_values"] == {"unit_cost": 50.0, "demand_intercept": 160.0}
    p = get_game("price-quantity").params(cost_low=50, cost_high=50, demand_low=160,
                                          demand_high=160)
    spe = solve_pq_spe(50.0, 160.0, 1.0, 10, **pq_spe_kwargs(p))
    eq = final["equilibrium"]
    assert eq["outcome"] == spe.outcome and eq["round"] == spe.round
    assert eq["agreement"]["price"] == pytest.approx(spe.price, abs=1e-3)
    assert eq["agreement"]["quantity"] == pytest.approx(spe.quantity, abs=1e-3)
    assert eq["payoffs"]["supplier"] == pytest.approx(spe.supplier_payoff)
    if final["deal_reached"]:
        a = final["agreement"]
        assert a == moves[-1]["offer"] and moves[-1]["action"] == "ACCEPT"
        gain_s = (a["price"] - 50.0) * a["quantity"]
        assert final["utilities"]["supplier"] == pytest.approx(gain_s, rel=1e-4)
        assert 0 < final["optimality"]["efficiency"] <= 1 + 1e-9
    assert set(final["rewards"]) == {"supplier", "retailer"}


def test_three_party_session_streams_each_agents_moves(server):
    body = {"game": "group", "scenario": "supply-chain-3p-fixed",
            "policies": ["boulware", "conceder", "linear"],
            "styles": ["aggressive", "cooperative", "analytical"], "seed": 5}
    started, msgs = play(server, body)
    moves, final = msgs[:-1], msgs[-1]
    agents = ["supplier", "retailer", "logistics"]
    assert final["agents"] == agents and final["game"] == "group"
    check_moves(moves, final, "group", agents)
    assert final["policies"] == dict(zip(agents, ["boulware", "conceder", "linear"],
                                         strict=True))
    spe = solve_group_scenario_spe("supply-chain-3p-fixed")
    eq = final["equilibrium"]
    assert eq["outcome"] == spe.outcome and eq["round"] == spe.step
    assert [eq["utilities"][a] for a in agents] == pytest.approx(list(spe.utilities))
    assert set(final["rewards"]) == set(agents)
    if final["deal_reached"]:
        assert set(final["utilities"]) == set(agents)
        assert 0 <= final["optimality"]["pareto_optimality"] <= 1 + 1e-9
    # Every counter-offer's utilities for the charts, one per agent.
    counters = [m for m in moves if m["action"] == "COUNTER"]
    assert len(final["offer_utilities"]) == len(counters)
    assert all(set(o["utilities"]) == set(agents) for o in final["offer_utilities"])
    # Status and replay of an N-party session.
    sid = started["session_id"]
    st = httpx.get(f"{server.url}{API}/simulation/{sid}/status", headers=server.headers("alice"))
    assert st.status_code == 200 and st.json()["status"] == "completed"
    assert st.json()["moves"] == len(moves)
    tr = httpx.get(f"{server.url}{API}/simulation/{sid}", headers=server.headers("alice")).json()
    assert tr["messages"] == moves and tr["result"] == final
    assert tr["request"]["game"] == "group" and tr["request"]["policies"] == [
        "boulware", "conceder", "linear"]
    assert tr["game"]["agents"] == agents


def test_multi_issue_and_bundles_sessions(server):
    _, msgs = play(server, {"game": "multi-issue", "scenario": "supply-chain-4", "seed": 3,
                            "policies": ["negmas_boulware", "conceder"]})
    final = msgs[-1]
    check_moves(msgs[:-1], final, "multi-issue", ["supplier", "retailer"])
    assert set(final["private_values"]) == {"weights", "reservation"}
    assert final["equilibrium"]["outcome"] in ("deal", "walk_away", "timeout")
    _, msgs = play(server, {"game": "bundles", "seed": 8, "max_rounds": 6})
    final = msgs[-1]
    check_moves(msgs[:-1], final, "bundles", ["supplier", "retailer"])
    assert len(msgs) - 1 <= 6
    if final["deal_reached"]:
        pool = np.asarray(final["private_values"]["pool"])
        items = np.asarray(list(final["agreement"].values()))
        assert np.all(items <= pool)
        values = final["private_values"]["values"]
        assert final["utilities"]["supplier"] == pytest.approx(
            float(np.dot(values["supplier"], items)))


def test_same_seed_same_session(server):
    body = {"game": "group", "scenario": "supply-chain-3p", "seed": 21}
    _, a = play(server, body)
    _, b = play(server, body)
    strip = lambda ms: [(m.get("offer"), m.get("action"), m.get("message")) for m in ms[:-1]]  # noqa: E731
    assert strip(a) == strip(b)
    assert a[-1]["private_values"] == b[-1]["private_values"]
    # Private values are drawn, not fixed: this scenario's weights are priors.
    _, c = play(server, {**body, "seed": 22})
    assert c[-1]["private_values"] != a[-1]["private_values"]


def test_export_and_list_name_the_game(server):
    started, _ = play(server, {"game": "price-quantity", "seed": 2})
    sid = started["session_id"]
    rows = httpx.get(f"{server.url}{API}/simulations", headers=server.headers("alice")).json()
    row = next(r for r in rows if r["session_id"] == sid)
    assert row["game"] == "price-quantity" and row["supplier_valuation"] is None
    r = httpx.post(f"{server.url}{API}/metrics/export", json={"session_ids": [sid],
                                                             "format": "csv"},
                   headers=server.headers("alice"))
    assert r.status_code in (200, 201), r.text
    got = httpx.get(f"{server.url}{r.json()['download_url']}", headers=server.headers("alice"))
    table = list(csv.DictReader(io.StringIO(got.text)))
    assert table[0]["game"] == "price-quantity"
    r = httpx.post(f"{server.url}{API}/metrics/export", json={"session_ids": [sid]},
                   headers=server.headers("alice"))
    doc = json.loads(httpx.get(f"{server.url}{r.json()['download_url']}",
                               headers=server.headers("alice")).text)
    assert doc["sessions"][0]["result"]["game"] == "price-quantity"


def test_founding_request_still_plays_the_price_game(server):
    _, msgs = play(server, SIM)
    assert msgs[-1]["game"] == "price"
    assert "equilibrium_price" in msgs[-1] and "offer" not in msgs[0]


@pytest.mark.parametrize(("body", "loc", "status"), [
    ({"game": "chess"}, "game", 422),
    ({"game": "price-quantity", "supplier_valuation": 5000}, "supplier_valuation", 422),
    ({**SIM, "scenario": "supply-chain-3p"}, "scenario", 422),
    ({**SIM, "agents": 3}, "agents", 422),
    ({"game": "group", "scenario": "../../etc/passwd"}, "scenario", 422),
    ({"game": "group", "scenario": "no-such-scenario"}, "scenario", 422),
    ({"game": "multi-issue", "scenario": "supply-chain-3p"}, "scenario", 422),
    ({"game": "group", "agents": 9}, "agents", 422),
    ({"game": "group", "scenario": "supply-chain-3p", "agents": 5}, "agents", 422),
    ({"game": "group", "policies": ["boulware", "conceder"]}, "policies", 422),
    ({"game": "group", "supplier_policy": "boulware"}, "supplier_policy", 422),
    ({"game": "price-quantity", "policies": ["boulware", "conceder"],
      "supplier_policy": "linear"}, "supplier_policy", 422),
    ({"game": "price-quantity", "policies": ["boulware", "tit_for_tat"]}, "policies[1]", 404),
    ({"game": "price-quantity", "styles": ["cooperative"]}, "styles", 422),
    ({"game": "price-quantity", "settings": {"cost_low": -5}}, "settings.cost_low", 422),
    ({"game": "price-quantity", "settings": {"colour": "red"}}, "settings", 422),
    ({"game": "price-quantity", "settings": {"max_rounds": 500}}, "settings.max_rounds", 422),
    ({"game": "bundles", "max_rounds": 101}, "max_rounds", 422),
])
def test_bad_game_requests_are_refused_naming_the_field(server, body, loc, status):
    r = start(server, body)
    assert r.status_code == status, r.text
    locs = [e["loc"][-1] for e in r.json()["detail"]]
    assert loc in locs, r.json()
    assert "Traceback" not in r.text
