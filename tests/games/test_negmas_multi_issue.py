"""NegMAS's time-based negotiators on the multi-issue game: our exact re-implementation
(:func:`eqx_jax.negotiators.negmas_game_time_based`) against NegMAS itself.

The NegMAS tests are skipped when negmas is not installed (``pip install -e ".[negmas]"``); the
pure-eqx tests always run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.env import ACCEPT, AGENTS, COUNTER
from eqx_jax.games.multi_issue import MultiIssueEnv, make_multi_issue_params
from eqx_jax.games.scenario import scenario_from_dict
from eqx_jax.negotiators import (
    MAX_NEGMAS_OUTCOMES,
    NEGMAS_CONTINUOUS_LEVELS,
    _worst_in,
    negmas_game_time_based,
    negmas_outcome_grid,
)

# Two discrete issues (2 and 3 values), fixed weights and reservation values, T = 4:
#   supplier u_s(a, b) = 0.6 a + 0.4 b/2:
#     (0,0) 0, (0,1) .2, (0,2) .4, (1,0) .6, (1,1) .8, (1,2) 1
#   retailer u_r(a, b) = 0.3 (1-a) + 0.7 (1 - b/2):
#     (0,0) 1, (0,1) .65, (0,2) .3, (1,0) .7, (1,1) .35, (1,2) 0
TINY = {
    "name": "tiny", "issues": [{"name": "a", "type": "discrete", "values": 2},
                               {"name": "b", "type": "discrete", "values": 3}],
    "utilities": {
        "supplier": {"value_functions": ["increasing", "increasing"], "weights": [0.6, 0.4],
                     "reservation": 0.1},
        "retailer": {"value_functions": ["decreasing", "decreasing"], "weights": [0.3, 0.7],
                     "reservation": 0.1}},
    "settings": {"max_rounds": 4},
}


def _moves(scenario, kinds: tuple[str, str]) -> list:
    """Play one episode step by step: each round's (mover's action type, its offer as indices;
    on ACCEPT, the agreement)."""
    env = MultiIssueEnv(scenario)
    params = make_multi_issue_params(scenario)
    policies = [negmas_game_time_based(env, k) for k in kinds]

    @jax.jit
    def one_round(state):
        obs = env.get_obs(state, params)
        actions = {a: policies[i](None, obs[a], params) for i, a in enumerate(AGENTS)}
        return actions, *env.step_env(state, actions, params)

    state = env.reset(jax.random.key(0), params)[1]
    out = []
    for rnd in range(params.max_rounds):
        actions, state, _, done, info = one_round(state)
        kind = int(actions[AGENTS[rnd % 2]]["action_type"])
        offer = info["agreement"] if kind == ACCEPT else actions[AGENTS[rnd % 2]]["offer"]
        out.append((kind, tuple(int(x) for x in offer)))
        if bool(done):
            break
    return out


def test_linear_vs_linear_by_hand():
    # t = round / 5; level lo = (1 - r) (1 - t) + r - 1e-4 with r = 0.1 (u_min = 0 raised to r);
    # the offer is the outcome of lowest own utility >= lo:
    #   r1 supplier lo .8199: (1,2) [u_s 1]         r2 retailer lo .6399: u_r(1,2) = 0, (0,1) [.65]
    #   r3 supplier lo .4599: u_s(0,1) = .2, (1,0) [.6]
    #   r4 retailer lo .2799: u_r(1,0) = .7 >= lo: ACCEPT in round 4.
    sc = scenario_from_dict(TINY)
    assert _moves(sc, ("linear", "linear")) == [
        (COUNTER, (1, 2)), (COUNTER, (0, 1)), (COUNTER, (1, 0)), (ACCEPT, (1, 0))]


def test_boulware_holds_out_and_conceder_gives_in():
    # Boulware (1 - t^4): r1 lo = .9 (1 - .2^4) + .1 - 1e-4 = .99846 -> (1,2); r3 (t = .6)
    # lo = .9 (1 - .1296) + .1 - 1e-4 = .88326 -> (1,2) again. Conceder (1 - t^.25), r2 (t = .4):
    # lo = .9 (1 - .7953) + .1 - 1e-4 = .2841 -> (0,2) [u_r .3]; r4 (t = .8): lo = .1488, and
    # u_r(1,2) = 0 < lo; the supplier never reaches (0,2), so no deal (timeout in round 4).
    sc = scenario_from_dict(TINY)
    moves = _moves(sc, ("boulware", "conceder"))
    assert moves[0] == (COUNTER, (1, 2)) and moves[2] == (COUNTER, (1, 2))
    assert moves[1] == (COUNTER, (0, 2))
    assert len(moves) == 4 and all(m[0] == COUNTER for m in moves)


def test_outcome_grid_matches_negmas_enumeration_rules():
    grid = negmas_outcome_grid("supply-chain-4")  # unit price is continuous in [8, 12]
    assert grid.continuous == (True, False, False, False)
    np.testing.assert_allclose(grid.values[0], np.linspace(8, 12, NEGMAS_CONTINUOUS_LEVELS))
    assert grid.size == NEGMAS_CONTINUOUS_LEVELS * 5 * 4 * 4
    assert tuple(grid.outcomes[1]) == (0, 0, 0, 1)  # itertools.product: the last issue fastest
    # the retailer's quantity value peaks at index 2 of 5: 1 - |v - 2| / 2
    np.testing.assert_allclose(grid.tables[1][1], [0.0, 0.5, 1.0, 0.5, 0.0])
    big = {**TINY, "issues": [{"name": f"i{k}", "type": "discrete", "values": 20}
                              for k in range(4)]}
    for agent in ("supplier", "retailer"):
        big["utilities"] = {**big["utilities"], agent: {
            **TINY["utilities"][agent], "value_functions": ["increasing"] * 4,
            "weights": [1, 1, 1, 1]}}
    with pytest.raises(ValueError, match=f"at most {MAX_NEGMAS_OUTCOMES}"):
        negmas_outcome_grid(scenario_from_dict(big))
    with pytest.raises(ValueError, match="boulware"):
        negmas_game_time_based(MultiIssueEnv(), "hardball")


# ------------------------------------------------------------------------------ against NegMAS
def _negmas_worst_in(u_table: np.ndarray, reserved: float, lo: float, hi: float):
    """NegMAS's own PresortingInverseUtilityFunction over a one-issue space whose outcome i has
    utility u_table[i]; returns the index it picks (None: no outcome)."""
    import negmas
    from negmas.preferences import LinearAdditiveUtilityFunction
    from negmas.preferences.inv_ufun import PresortingInverseUtilityFunction
    from negmas.preferences.value_fun import TableFun

    issues = [negmas.make_issue(len(u_table), "x")]
    ufun = LinearAdditiveUtilityFunction(
        [TableFun({i: float(v) for i, v in enumerate(u_table)})], weights=[1.0],
        issues=issues, reserved_value=reserved)
    inv = PresortingInverseUtilityFunction(ufun, rational_only=True)
    inv.init()
    out = inv.worst_in((lo, hi), normalized=False)
    return None if out is None else int(out[0])


def test_worst_in_is_negmas_presorting_worst_in():
    pytest.importorskip("negmas")
    rng = np.random.default_rng(7)
    checked = near = 0
    for _ in range(60):
        u = rng.uniform(0, 1, 40)
        reserved = float(rng.uniform(0.0, 0.4))
        # lo just above an outcome (NegMAS then takes that one, 1e-6 below), far above one,
        # or anywhere; hi is the best utility, as negotiators ask.
        m = int(rng.integers(40))
        for lo in (u[m] + 5e-7, u[m] + 3e-6, float(rng.uniform(reserved, u.max()))):
            lo = float(min(max(lo, max(reserved, u.min())), u.max()))
            theirs = _negmas_worst_in(u, reserved, lo, float(u.max()))
            mine = _our_worst_in(u, reserved, lo)
            assert mine == theirs, (lo, reserved)
            checked += 1
            near += u[mine] < lo
    assert checked == 180 and near > 10  # the "just below lo" rule was exercised
    # No rational outcome: NegMAS's worst_in gives None and propose offers the best outcome.
    u = rng.uniform(0, 0.5, 40)
    assert _negmas_worst_in(u, 0.9, 0.9, 0.9) is None
    assert _our_worst_in(u, 0.9, 0.9) == int(np.argmax(u))


def _our_worst_in(u: np.ndarray, reserved: float, lo: float) -> int:
    with jax.enable_x64(True):
        f = jnp.float64
        u_max, u_min = f(u.max()), f(max(u.min(), reserved))
        mask = _worst_in(jnp.asarray(u), f(lo), jnp.maximum(u_min, u_max), u_min, u_max,
                         f(reserved))
        return int(np.argmax(np.asarray(mask)))


@pytest.mark.parametrize("scenario", ["integrative-4", "distributive-2", "supply-chain-4"])
def test_same_agreement_as_negmas_for_every_pair(scenario):
    pytest.importorskip("negmas")
    from baselines.negmas_multi_issue import PAIRS, compare

    # Six negotiations of every pair (three on distributive-2, the program the quick benchmark
    # test reuses).
    pairs = [PAIRS[i % len(PAIRS)] for i in range(27 if scenario == "distributive-2" else 54)]
    verdicts, theirs, ours = compare(scenario, pairs, seed=3)
    assert "unexplained" not in verdicts, [
        (pairs[i], theirs[i], ours["agreement"][i]) for i, v in enumerate(verdicts)
        if v == "unexplained"]
    by_pair = {p: [v for q, v in zip(pairs, verdicts, strict=True) if q == p] for p in PAIRS}
    assert all("match" in v for v in by_pair.values())
    if scenario != "supply-chain-4":  # no two outcomes of exactly equal utility: exact
        assert verdicts == ["match"] * len(pairs)
    else:  # the retailer's peaked quantity: values 1 and 3 tie; NegMAS orders ties by argsort
        assert verdicts.count("match") >= 0.7 * len(pairs)
    assert 0 < np.mean([t["deal"] for t in theirs]) < 1  # deals and timeouts both occur
    assert len({t["step"] for t in theirs}) > 2


def test_quick_benchmark_is_well_formed():
    pytest.importorskip("negmas")
    import json

    from baselines.negmas_multi_issue import run_benchmark

    r = run_benchmark("distributive-2", quick=True)
    assert r["n"] == 27 and r["outcomes"] == NEGMAS_CONTINUOUS_LEVELS * 5
    assert r["agreement_match_rate"] == 1.0 and r["counts"]["match"] == 27
    assert r["negotiation_speedup"] > 0 and r["eqx_large_batch"] is None
    json.dumps(r)
