"""NegMAS's time-based negotiators: our exact re-implementation vs NegMAS itself.

The NegMAS tests are skipped when negmas is not installed (``pip install -e ".[negmas]"``); the
pure-eqx tests of :func:`eqx_jax.negotiators.negmas_time_based` always run.
"""

from __future__ import annotations

import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.env import ACCEPT, AGENTS, COUNTER, BargainingEnv, make_params
from eqx_jax.negotiators import (
    NEGMAS_EXPONENTS,
    NEGMAS_NEGOTIATORS,
    NEGOTIATORS,
    negmas_tb_action,
    negmas_time_based,
)
from eqx_jax.simulate import play


# ------------------------------------------------------------------------- pure eqx (no NegMAS)
def _offers(supplier: str, retailer: str, v_s: float, v_r: float) -> list:
    """Play one episode in the env step by step; the mover's price each round, then
    ("ACCEPT", price, round) if it ends in a deal."""
    params = make_params(supplier_low=v_s, supplier_high=v_s, retailer_low=v_r,
                         retailer_high=v_r)
    env = BargainingEnv()
    policies = (NEGMAS_NEGOTIATORS[f"negmas_{supplier}"], NEGMAS_NEGOTIATORS[f"negmas_{retailer}"])

    @jax.jit
    def one_round(state):
        obs = env.get_obs(state, params)
        actions = {a: policies[i](None, obs[a], params) for i, a in enumerate(AGENTS)}
        return actions, *env.step_env(state, actions, params)

    state = jax.jit(env.reset)(jax.random.key(0), params)[1]
    out = []
    for rnd in range(1, params.max_rounds + 1):
        mover = (rnd - 1) % 2
        actions, state, _, done, info = one_round(state)
        if int(actions[AGENTS[mover]]["action_type"]) == ACCEPT:
            out.append(("ACCEPT", float(info["price"]), int(info["round"])))
        else:
            assert int(actions[AGENTS[mover]]["action_type"]) == COUNTER
            out.append(float(actions[AGENTS[mover]]["price"]))
        if bool(done):
            break
    return out


def test_negmas_linear_vs_conceder_offers_by_hand():
    # V_s = 5000, V_r = 9000 (both exact through the normalized observation), T = 10, so
    # t = round / 11; supplier (Linear, e = 1) asks ceil(V_s + (1 - t)(10000 - V_s) - 1e-4),
    # retailer (Conceder, e = 0.25) bids floor(V_r - (1 - t^0.25) V_r + 1e-4):
    #   r1: 5000 + 5000 * 10/11 = 9545.45 -> 9546   r2: 9000 * (2/11)^0.25 = 5876.7 -> 5876
    #   r3: 5000 + 5000 * 8/11  = 8636.36 -> 8637   r4: 9000 * (4/11)^0.25 = 6988.9 -> 6988
    #   r5: 5000 + 5000 * 6/11  = 7727.27 -> 7728
    #   r6: the retailer accepts 7728: 9000 - 7728 = 1272 >= 9000 (1 - (6/11)^0.25) = 1265.4.
    assert _offers("linear", "conceder", 5000.0, 9000.0) == [
        9546.0, 5876.0, 8637.0, 6988.0, 7728.0, ("ACCEPT", 7728.0, 6)]


def test_negmas_boulware_vs_linear_deal_in_the_last_round():
    # Boulware (e = 4) opens at the bound: 10000 - 5000 (1/11)^4 = 9999.66 -> 10000; Linear bids
    # floor(9000 * 2/11) = 1636. Agreement only in round T = 10 (t = 10/11 < 1 still).
    offers = _offers("boulware", "linear", 5000.0, 9000.0)
    assert offers[:2] == [10000.0, 1636.0]
    assert offers[-1] == ("ACCEPT", 7760.0, 10)
    assert offers[-2] == 7760.0  # round 9's ask: ceil(5000 + 5000 (1 - (9/11)^4)) = ceil(7759.37)


def test_negmas_negotiators_in_play_batch_and_kept_apart():
    params = make_params(supplier_low=5000.0, supplier_high=5000.0, retailer_low=9000.0,
                         retailer_high=9000.0)
    rec = play(jax.random.key(1), params, NEGMAS_NEGOTIATORS["negmas_conceder"],
               NEGMAS_NEGOTIATORS["negmas_conceder"], num_episodes=64)
    assert rec["deal"].all() and (rec["price"] == 6387.0).all() and (rec["round"] == 4).all()
    assert set(NEGMAS_NEGOTIATORS) == {f"negmas_{k}" for k in NEGMAS_EXPONENTS}
    assert not set(NEGMAS_NEGOTIATORS) & set(NEGOTIATORS)
    with pytest.raises(ValueError, match="boulware"):
        negmas_time_based("hardball")
    with pytest.raises(ValueError, match="> 0"):
        negmas_time_based(0.0)


def test_negmas_traced_exponent_matches_static():
    # The benchmark passes the exponent per episode (a traced array); same moves as the static
    # policies on random observations of both roles in every round.
    env, params = BargainingEnv(), make_params()

    @jax.jit  # (eager vmapped reset + get_obs dispatch op by op: ~10 s on a busy 2-core VM)
    def observations():
        _, states = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(3), 256),
                                                   params)
        offers = jnp.round(jax.random.uniform(jax.random.key(4), (256,)) * 10000.0)
        rounds = jnp.arange(256, dtype=jnp.int32) % params.max_rounds
        states = states.replace(t=rounds, history=(offers,) + states.history[1:])
        return jax.vmap(env.get_obs, (0, None))(states, params)

    obs = observations()
    kinds = tuple(NEGMAS_EXPONENTS.values())
    both = jnp.concatenate([obs[AGENTS[0]], obs[AGENTS[1]]])  # 512 lanes, both roles
    kind = np.arange(512) % 3
    x = jnp.asarray(np.asarray(kinds, np.float32)[kind])

    @jax.jit
    def moves(both, x):  # one compiled program
        static = [jax.vmap(lambda o, e=e: negmas_time_based(e)(None, o, params))(both)
                  for e in kinds]
        traced = jax.vmap(lambda o, x: negmas_tb_action(o, params, x, kinds))(both, x)
        general = jax.vmap(lambda o, x: negmas_tb_action(o, params, x))(both, x)
        return static, traced, general

    static, traced, general = moves(both, x)
    for key in ("action_type", "price"):
        expected = np.choose(kind, [np.asarray(s[key]) for s in static])
        np.testing.assert_array_equal(expected, traced[key])
        np.testing.assert_array_equal(expected, general[key])
    assert np.all(np.asarray(traced["price"]) == np.round(traced["price"]))
    assert 0 < np.mean(np.asarray(traced["action_type"]) == ACCEPT) < 1  # both moves occur


def test_missing_negmas_names_the_extra(monkeypatch):
    from baselines import negmas_tournament

    monkeypatch.setitem(sys.modules, "negmas", None)  # makes `import negmas` fail
    with pytest.raises(ImportError, match=r'pip install -e "\.\[negmas\]"'):
        negmas_tournament.negmas_negotiate("linear", "linear", 5000.0, 9000.0)


# ------------------------------------------------------------------------------ against NegMAS
@pytest.mark.parametrize("v_s, v_r", [(5000.0, 8000.0), (4123.37, 8765.43), (5999.9, 7000.1)])
def test_same_agreement_as_negmas_for_every_pair(v_s, v_r):
    pytest.importorskip("negmas")
    from baselines.negmas_tournament import PAIRS, compare_fixed

    rows = compare_fixed(v_s, v_r)
    assert [(r["supplier"], r["retailer"]) for r in rows] == list(PAIRS)
    for r in rows:
        assert r["match"], r
        assert r["negmas_price"] == r["eqx_price"] and r["negmas_step"] == r["eqx_round"], r
        # NegMAS got the valuations our negotiators observe: within one float32 rounding.
        assert abs(r["supplier_observed"] - v_s) <= 1e-3
        assert abs(r["retailer_observed"] - v_r) <= 1e-3
    assert any(r["negmas_price"] is not None for r in rows)  # not vacuous: some deals


def test_quick_benchmark_is_well_formed():
    pytest.importorskip("negmas")
    from baselines.negmas_tournament import run_negmas_benchmark

    r = run_negmas_benchmark(quick=True)
    assert r["n"] == 27 and r["quick"]
    for k in ("negmas_negotiations_per_s", "eqx_negotiations_per_s", "negotiation_speedup"):
        assert math.isfinite(r[k]) and r[k] > 0, k
    assert 0.0 <= r["agreement_match_rate"] <= 1.0
    assert len(r["pairs"]["kinds"]) == 9 and sum(p["n"] for p in r["per_pair"]) == r["n"]
    assert set(r["versions"]) >= {"negmas", "jax", "python"}
    import json

    json.dumps(r)  # JSON-able
