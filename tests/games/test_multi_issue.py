"""The multi-issue game: rules by hand-computed cases, priors, jit/vmap over episodes and
settings, auto-reset, and bad scenario files naming the field."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.games.multi_issue import (
    MI_OBS_INDEX,
    MultiIssueEnv,
    make_multi_issue_params,
    utilities,
)
from eqx_jax.games.scenario import (
    list_scenarios,
    load_scenario,
    scenario_from_dict,
    value_tables,
)

ACCEPT, COUNTER, WALK = 0, 1, 2


def _fixed_integrative():
    """integrative-4 with fixed raw weights and reservations (complete information)."""
    w = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 4.0, 4.0]])
    return load_scenario("integrative-4").fixed(w, np.array([0.2, 0.3]))


def _acts(env, a_type, offer):
    act = env.make_action(jnp.int32(a_type), jnp.asarray(offer, jnp.float32))
    return {"supplier": act, "retailer": act}


@pytest.fixture(scope="module")
def game():
    sc = _fixed_integrative()
    env = MultiIssueEnv(sc, num_history=2)
    params = make_multi_issue_params(sc)
    return env, params, jax.jit(env.step_env)


def test_shipped_scenarios_load():
    assert {"distributive-2", "integrative-4", "supply-chain-4"} <= set(list_scenarios())
    sc = load_scenario("supply-chain-4")
    assert [i.name for i in sc.issues] == ["unit_price", "quantity", "delivery_weeks",
                                           "warranty_months"]
    assert [i.discrete for i in sc.issues] == [False, True, True, True]
    assert sc.value_functions[1][1] == ("peaked", 2)


def test_counter_then_accept_by_hand(game):
    env, params, step = game
    _, state = env.reset(jax.random.key(0), params)
    # Weights normalised: supplier (0.4, 0.3, 0.2, 0.1), retailer (0.1, 0.1, 0.4, 0.4).
    np.testing.assert_allclose(state.weights_array(), [[0.4, 0.3, 0.2, 0.1], [0.1, 0.1, 0.4, 0.4]],
                               rtol=1e-6)
    # Offer: price level 3 of 0..4, payment 1 of 0..3, delivery 0 of 0..4, support 2 of 0..2.
    # Supplier: price increasing 3/4, payment decreasing 1 - 1/3, delivery increasing 0,
    # support decreasing 0 -> 0.4*0.75 + 0.3*(2/3) = 0.5.
    # Retailer: 0.1*0.25 + 0.1*(1/3) + 0.4*1 + 0.4*1 = 0.858333...
    offer = [3.2, 0.6, -3.0, 7.0]  # rounded to 3, 1; clipped to 0 and 2
    state, rewards, done, info = step(state, _acts(env, COUNTER, offer), params)
    assert not bool(done) and int(state.t) == 1
    np.testing.assert_allclose(state.offer_array(), [3, 1, 0, 2])
    np.testing.assert_allclose(state.offer_utility_array(), [0.5, 0.1 * 0.25 + 0.1 / 3 + 0.8],
                               rtol=1e-6)
    obs = env.get_obs(state, params)
    r_obs = obs["retailer"]
    assert float(r_obs[MI_OBS_INDEX["own_utility"]]) == pytest.approx(0.858333, abs=1e-5)
    assert float(r_obs[MI_OBS_INDEX["mask_accept"]]) == 1.0
    assert float(obs["supplier"][MI_OBS_INDEX["mask_accept"]]) == 0.0
    np.testing.assert_allclose(r_obs[env.obs_layout["standing_offer"]], [0.75, 1 / 3, 0, 1],
                               rtol=1e-6)
    np.testing.assert_allclose(r_obs[env.obs_layout["own_weights"]], [0.1, 0.1, 0.4, 0.4],
                               rtol=1e-6)
    # Retailer accepts in round 2 (seed model, T = 10): gain * (1 - 2/10)^2 + bonus 5.
    state, rewards, done, info = step(state, _acts(env, ACCEPT, [0, 0, 0, 0]), params)
    assert bool(done) and bool(info["deal"]) and int(info["round"]) == 2
    d = 0.8 ** 2
    assert float(rewards["supplier"]) == pytest.approx(100 * (0.5 - 0.2) * d + 5, rel=1e-5)
    assert float(rewards["retailer"]) == pytest.approx(100 * (0.858333 - 0.3) * d + 5,
                                                       rel=1e-5)
    np.testing.assert_allclose(info["agreement"], [3, 1, 0, 2])
    assert 0.0 < float(info["pareto_optimality"]) < 1.0


def test_illegal_accept_nan_rule_and_walk(game):
    env, params, step = game
    _, state = env.reset(jax.random.key(1), params)
    # Round 1: ACCEPT is illegal -> counter; NaN components open at the supplier's best values
    # (price 4, payment 0, delivery 4, support 0).
    state, _, done, info = step(state, _acts(env, ACCEPT, [jnp.nan, jnp.nan, 1.0, jnp.nan]),
                                params)
    assert bool(info["illegal_accept"]) and not bool(done)
    np.testing.assert_allclose(state.offer_array(), [4, 0, 1, 0])
    # Round 2: a NaN component repeats the standing offer's.
    state, _, _, info = step(state, _acts(env, COUNTER, [jnp.nan, 3.0, jnp.nan, 2.0]), params)
    assert not bool(info["illegal_accept"])
    np.testing.assert_allclose(state.offer_array(), [4, 3, 1, 2])
    np.testing.assert_allclose(state.history_array()[1] * np.array([4, 3, 4, 2]), [4, 0, 1, 0],
                               atol=1e-6)
    state, rewards, done, info = step(state, _acts(env, WALK, [0, 0, 0, 0]), params)
    assert bool(done) and bool(info["walk_away"]) and not bool(info["deal"])
    assert float(rewards["supplier"]) == 0.0 and float(rewards["retailer"]) == 0.0
    assert float(info["supplier_utility"]) == 0.0 and float(info["pareto_optimality"]) == 0.0


def test_walk_and_timeout_payoffs_configurable():
    sc = _fixed_integrative()
    env = MultiIssueEnv(sc)
    params = make_multi_issue_params(sc, max_rounds=3, walk_payoff=(-1, -2),
                                     timeout_payoff=(-3, -4), reward_model="discounted")
    step = jax.jit(env.step_env)
    _, state = env.reset(jax.random.key(0), params)
    for t in range(3):
        state, rewards, done, info = step(state, _acts(env, COUNTER, [1, 1, 1, 1]), params)
        assert bool(done) == (t == 2)
    assert bool(info["timeout"])
    assert (float(rewards["supplier"]), float(rewards["retailer"])) == (-3.0, -4.0)
    _, state = env.reset(jax.random.key(0), params)
    state, rewards, done, info = step(state, _acts(env, WALK, [1, 1, 1, 1]), params)
    assert (float(rewards["supplier"]), float(rewards["retailer"])) == (-1.0, -2.0)


def test_continuous_issue_utility_and_clipping():
    sc = load_scenario("supply-chain-4").fixed(np.array([[0.5, 0.2, 0.15, 0.15],
                                                        [0.4, 0.15, 0.2, 0.25]]))
    params = make_multi_issue_params(sc)
    w = jnp.asarray(sc.weight_low, jnp.float32)
    # unit price 9 of [8, 12]: supplier (increasing) 0.25, retailer 0.75; quantity index 1:
    # supplier 0.25, retailer peaked at 2: 1 - 1/2; delivery 3 of 0..3: supplier 1, retailer 0;
    # warranty 0: supplier 1, retailer 0.
    u = utilities(jnp.array([9.0, 1.0, 3.0, 0.0]), w, params)
    np.testing.assert_allclose(u, [0.5 * 0.25 + 0.2 * 0.25 + 0.15 + 0.15,
                                   0.4 * 0.75 + 0.15 * 0.5], rtol=1e-6)
    env = MultiIssueEnv(sc)
    _, state = env.reset(jax.random.key(0), params)
    state, *_ = jax.jit(env.step_env)(state, _acts(env, COUNTER, [jnp.inf, 1.4, 2.5, -jnp.inf]),
                                      params)
    # 2.5 rounds half to even
    np.testing.assert_allclose(state.offer_array(), [12.0, 1.0, 2.0, 0.0])


@pytest.mark.parametrize("name", ["distributive-2", "integrative-4", "supply-chain-4"])
def test_utilities_match_the_value_tables(name):
    """The env's closed-form value functions against the scenario's tables (what the frontier
    and the solver use), on random offers of every scenario."""
    sc = load_scenario(name)
    params = make_multi_issue_params(sc)
    tables = value_tables(sc)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 1.0, (2, sc.num_issues))
    fn = jax.jit(jax.vmap(utilities, (0, None, None)))
    offers = np.stack([rng.integers(0, i.num_values, 200) if i.discrete
                       else rng.uniform(i.low, i.high, 200) for i in sc.issues], axis=1)
    expected = np.zeros((200, 2))
    for k, issue in enumerate(sc.issues):
        if issue.discrete:
            f = tables[:, k, offers[:, k].astype(int)]
        else:
            y = (offers[:, k] - issue.low) / (issue.high - issue.low)
            f = tables[:, k, :1] + y * (tables[:, k, 1:2] - tables[:, k, :1])
        expected += (w[:, k:k + 1] * f).T
    np.testing.assert_allclose(fn(jnp.asarray(offers, jnp.float32), w, params), expected,
                               atol=1e-5)


def test_priors_and_reset():
    sc = load_scenario("integrative-4")
    env = MultiIssueEnv(sc)
    params = make_multi_issue_params(sc)
    keys = jax.random.split(jax.random.key(3), 4000)
    _, states = jax.vmap(env.reset, (0, None))(keys, params)
    w = np.asarray(states.weights_array())
    np.testing.assert_allclose(w.sum(axis=2), 1.0, rtol=1e-6)
    r = np.asarray(states.reservation_array())
    assert r.min() >= 0.1 and r.max() <= 0.3
    assert abs(r.mean() - 0.2) < 0.005  # U[0.1, 0.3]: sd of the mean 0.058 / sqrt(8000)
    # Raw weights within their priors: the normalised ratio w0 / w1 of the supplier is in
    # [0.35 / 0.35, 0.45 / 0.25].
    ratio = w[:, 0, 0] / w[:, 0, 1]
    assert ratio.min() >= 1.0 - 1e-6 and ratio.max() <= 0.45 / 0.25 + 1e-6
    assert len(np.unique(w[:, 0, 0])) > 3900  # private values differ by episode


def test_jit_vmap_over_episodes_and_settings_with_auto_reset():
    sc = load_scenario("distributive-2")
    env = MultiIssueEnv(sc)
    p1 = make_multi_issue_params(sc)
    p2 = make_multi_issue_params(sc, reward_model="discounted", utility_scale=10.0)
    batch = jax.tree.map(lambda a, b: jnp.stack([jnp.asarray(a), jnp.asarray(b)]), p1, p2)
    n = 64

    def run(params, key):
        keys = jax.random.split(key, n)
        _, st = jax.vmap(env.reset, (0, None))(keys, params)
        acts = _acts(env, COUNTER, [100.0, 2.0])
        st = jax.vmap(lambda k, s: env.step(k, s, acts, params)[1])(keys, st)
        accept = _acts(env, ACCEPT, [0.0, 0.0])
        return jax.vmap(lambda k, s: env.step(k, s, accept, params))(keys, st)

    obs, st, rewards, dones, info = jax.jit(jax.vmap(run))(batch, jax.random.split(
        jax.random.key(0), 2))
    assert obs["supplier"].shape == (2, n, env.obs_size)
    assert bool(jnp.all(dones["__all__"])) and bool(jnp.all(info["deal"]))
    assert bool(jnp.all(st.t == 0)) and bool(jnp.all(jnp.stack(st.history) == -1.0))  # auto-reset
    # Same deal utilities, different reward models: seed 100 gain (0.96) + 5; discounted 10 g.
    u = np.asarray(info["supplier_utility"])
    res = np.asarray(info["supplier_reservation"])
    np.testing.assert_allclose(rewards["supplier"][0], 100 * (u[0] - res[0]) * 0.64 + 5,
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rewards["supplier"][1], 10 * (u[1] - res[1]) * 0.95 ** 2,
                               rtol=1e-4, atol=1e-4)


def test_deal_on_a_frontier_vertex_is_pareto_optimal(game):
    env, params, step = game
    _, state = env.reset(jax.random.key(0), params)
    # The supplier's ideal outcome is the end vertex of the frontier.
    state, *_ = step(state, _acts(env, COUNTER, [4, 0, 4, 0]), params)
    _, _, _, info = step(state, _acts(env, ACCEPT, [0, 0, 0, 0]), params)
    assert float(info["supplier_utility"]) == pytest.approx(1.0)
    assert float(info["pareto_distance"]) == pytest.approx(0.0, abs=1e-6)
    assert float(info["pareto_optimality"]) == pytest.approx(1.0, abs=1e-6)
    assert set(env.info_keys) <= set(info) and set(env.deal_keys) <= set(env.info_keys)


GOOD = {
    "issues": [{"name": "a", "type": "continuous", "low": 0, "high": 1},
               {"name": "b", "type": "discrete", "values": 3},
               {"name": "c", "type": "discrete", "values": 4}],
    "utilities": {
        "supplier": {"value_functions": ["increasing", "peaked:1", "decreasing"],
                     "weights": [1, [0.5, 1.0], 1], "reservation": 0.2},
        "retailer": {"value_functions": ["decreasing", "increasing", "increasing"],
                     "weights": [1, 1, 1], "reservation": [0.1, 0.2]}},
}


def _bad(path: str, value):
    data = json.loads(json.dumps(GOOD))
    node = data
    keys = path.split("/")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if value is None:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize("path,value,message", [
    ("issues/2/values", 1, "issues[2].values must be an integer in [2, 100], got 1"),
    ("issues/1/type", "ordinal", "issues[1].type must be one of ['continuous', 'discrete']"),
    ("issues/0/high", -1, "issues[0].high must be in (0, 1000000000], got -1"),
    ("utilities/supplier/value_functions/0", "peaked:1",
     "utilities.supplier.value_functions[0] must be one of increasing, decreasing"),
    ("utilities/supplier/value_functions/1", "peaked:5",
     "utilities.supplier.value_functions[1] peak must be an integer in [0, 2], got 5"),
    ("utilities/retailer/weights", [1, 1], "utilities.retailer.weights must be a list of 3"),
    ("utilities/supplier/weights/1", [0.8, 0.2],
     "utilities.supplier.weights[1][1] must be in [0.8, 1000000], got 0.2"),
    ("utilities/retailer/reservation", 1.5,
     "utilities.retailer.reservation must be in [0, 1], got 1.5"),
    ("utilities/retailer", None, "utilities.retailer must be given"),
])
def test_bad_scenarios_name_the_field(path, value, message):
    scenario_from_dict(GOOD)  # the unmodified scenario is valid
    with pytest.raises(ValueError) as err:
        scenario_from_dict(_bad(path, value))
    assert message in str(err.value)


def test_bad_scenario_file_and_settings(tmp_path):
    too_many = dict(GOOD, issues=[{"name": f"i{k}", "type": "discrete", "values": 2}
                                  for k in range(9)])
    with pytest.raises(ValueError, match=r"issues must be a list of 2 to 8 issues"):
        scenario_from_dict(too_many)
    path = tmp_path / "bad.yaml"
    path.write_text("issues:\n  - {name: a, type: discrete, values: 2}\n"
                    "  - {name: b, type: discrete, values: 2}\n"
                    "  - {name: c, type: discrete, values: 1}\n")
    with pytest.raises(ValueError, match=r"issues\[2\]\.values must be an integer in \[2, 100\]"):
        load_scenario(path)
    with pytest.raises(ValueError, match="scenario must be a scenario file or one of"):
        load_scenario("no-such-scenario")
    with pytest.raises(ValueError, match=r"utility_scale must be in \(0, 1000000000\]"):
        make_multi_issue_params("integrative-4", utility_scale=-1)
    with pytest.raises(ValueError, match="unknown game setting"):
        make_multi_issue_params("integrative-4", max_price=3)
    with pytest.raises(ValueError, match="reward_model must be one of"):
        make_multi_issue_params("integrative-4", reward_model="nope")


def test_outcome_metrics_can_be_switched_off():
    sc = _fixed_integrative()
    env = MultiIssueEnv(sc, outcome_metrics=False)
    params = make_multi_issue_params(sc)
    _, state = env.reset(jax.random.key(0), params)
    state, *_ = env.step_env(state, _acts(env, COUNTER, [4, 0, 4, 0]), params)
    _, _, _, info = env.step_env(state, _acts(env, ACCEPT, [0, 0, 0, 0]), params)
    assert "pareto_optimality" not in info and "pareto_optimality" not in env.info_keys
    assert set(env.info_keys) <= set(info)
    assert float(info["supplier_utility"]) == pytest.approx(1.0)
