"""Tests of the PettingZoo ParallelEnv adapter (eqx_jax/pettingzoo.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from eqx_jax.env import (
    ACCEPT,
    AGENTS,
    COUNTER,
    OBS_INDEX,
    WALK_AWAY,
    BargainingEnv,
    make_params,
)
from eqx_jax.pettingzoo import JaxBargainingParallelEnv, _jit_step, parallel_env


def _act(a_type: int, price: float = 0.0) -> dict:
    return {"action_type": a_type, "price": np.array([price], np.float32)}


def _both(a_type: int, price: float = 0.0) -> dict:
    return {a: _act(a_type, price) for a in AGENTS}


def test_parallel_api():
    parallel_api_test(JaxBargainingParallelEnv(), num_cycles=1000)


def test_parallel_api_other_settings():
    env = parallel_env(max_rounds=3, reward_model="discounted", num_history=1)
    parallel_api_test(env, num_cycles=1000)


def test_parallel_seed():
    parallel_seed_test(lambda: JaxBargainingParallelEnv(), num_cycles=100)


def test_seeding_reproducible_across_episodes():
    # parallel_seed_test stops after one step (it calls any() on dicts, i.e. on the agent names),
    # so check long runs with unseeded resets in between ourselves.
    def run(seed):
        env = JaxBargainingParallelEnv()
        env.reset(seed=seed)
        trace = []
        for _ in range(200):
            if not env.agents:
                obs, _ = env.reset()
                trace.append(obs)
            acts = {a: env.action_space(a).sample() for a in env.agents}
            trace.append(env.step(acts))
        return trace

    def same(x, y):
        jax.tree.map(np.testing.assert_array_equal, x, y)

    a, b = run(42), run(42)
    same(a, b)
    with pytest.raises((AssertionError, ValueError)):  # values or episode lengths differ
        same(a, run(43))
    # a seeded reset restarts the same sequence of valuations
    env = JaxBargainingParallelEnv()
    first = [env.reset(seed=7)[0]] + [env.reset()[0] for _ in range(3)]
    second = [env.reset(seed=7)[0]] + [env.reset()[0] for _ in range(3)]
    same(first, second)
    assert len({float(o["supplier"][OBS_INDEX["own_value"]]) for o in first}) == 4


def test_metadata_and_spaces():
    env = JaxBargainingParallelEnv(num_history=6)
    assert env.metadata["name"] == "eqx_bargaining_v0"
    assert env.metadata["render_modes"] == ["ansi"]
    assert env.possible_agents == ["supplier", "retailer"]
    n = env.jax_env.obs_size
    for a in AGENTS:
        space = env.observation_space(a)
        assert space is env.observation_space(a)
        assert space.shape == (n,) and space.dtype == np.float32
        assert space.low[OBS_INDEX["momentum"]] == -1.0
        assert np.all(np.delete(space.low, OBS_INDEX["momentum"]) == 0.0)
        assert np.all(space.high == 1.0)
        act = env.action_space(a)
        assert act["action_type"].n == 3
        assert act["price"].shape == (1,) and act["price"].high[0] == 10000.0
    assert env.state_space.shape == (2 * n,)


def _jax_episode(env: BargainingEnv, params, key, actions_seq):
    """Reference: BargainingEnv.reset / step_env called directly (no adapter)."""
    obs, state = env.reset(key, params)
    out = [({a: np.asarray(obs[a]) for a in AGENTS}, None, None, None)]
    for acts in actions_seq:
        jacts = {
            a: {"action_type": jnp.int32(acts[a][0]), "price": jnp.float32(acts[a][1])}
            for a in AGENTS
        }
        state, rewards, done, info = env.step_env(state, jacts, params)
        obs = env.get_obs(state, params)
        out.append(
            (
                {a: np.asarray(obs[a]) for a in AGENTS},
                {a: float(rewards[a]) for a in AGENTS},
                bool(done),
                {k: np.asarray(v).item() for k, v in info.items()},
            )
        )
        if done:
            break
    return out


@pytest.mark.parametrize(
    "settings, num_history, seq",
    [
        # counters, then the retailer accepts in round 4
        ({}, 4, [(1, 5500.0), (1, 7000.0), (1, 6200.0), (0, 0.0)]),
        # illegal accept in round 1, NaN and out-of-range prices, then a timeout
        (
            {"max_rounds": 5, "reward_model": "discounted", "discount": (0.9, 0.8)},
            2,
            [(0, 5000.0), (1, float("nan")), (1, 1e9), (1, -3.0), (1, 4000.0)],
        ),
        # walk-away
        ({"walk_payoff": (-3.0, -7.0)}, 4, [(1, 6000.0), (2, 0.0)]),
    ],
)
def test_agrees_with_jax_env(settings, num_history, seq):
    env = JaxBargainingParallelEnv(num_history=num_history, **settings)
    params = make_params(**settings)
    jenv = BargainingEnv(num_history)
    # Documented key schedule: key <- jax.random.key(seed); on each reset key, ep = split(key).
    key = jax.random.key(123)
    for episode in range(3):
        key, ep_key = jax.random.split(key)
        # the non-mover's action is ignored; give it something different to check that
        actions_seq = [
            {AGENTS[t % 2]: a, AGENTS[1 - t % 2]: (2, 1.0)} for t, a in enumerate(seq)
        ]
        ref = _jax_episode(jenv, params, ep_key, actions_seq)
        obs, infos = env.reset(seed=123) if episode == 0 else env.reset()
        for a in AGENTS:
            np.testing.assert_allclose(obs[a], ref[0][0][a], rtol=1e-6, atol=1e-7)
        for step, acts in enumerate(actions_seq[: len(ref) - 1], start=1):
            obs, rew, term, trunc, info = env.step({a: _act(*acts[a]) for a in AGENTS})
            r_obs, r_rew, r_done, r_info = ref[step]
            for a in AGENTS:
                assert obs[a].dtype == np.float32
                assert env.observation_space(a).contains(obs[a])
                np.testing.assert_allclose(obs[a], r_obs[a], rtol=1e-6, atol=1e-7)
                assert rew[a] == pytest.approx(r_rew[a], rel=1e-6, abs=1e-6)
                assert term[a] == (r_info["deal"] or r_info["walk_away"])
                assert trunc[a] == r_info["timeout"]
                assert term[a] or trunc[a] or not r_done
                assert set(info[a]) == set(r_info)
                for k, v in r_info.items():
                    assert type(info[a][k]) is type(v), k
                    assert info[a][k] == pytest.approx(v, rel=1e-6, abs=1e-6), k
        assert r_done and env.agents == []


def test_outcomes_timeout_walk_deal():
    env = JaxBargainingParallelEnv(max_rounds=3, timeout_payoff=(-1.0, -2.0))
    env.reset(seed=0)
    for t in range(3):
        obs, rew, term, trunc, info = env.step(_both(COUNTER, 5000.0 + t))
    assert trunc == {"supplier": True, "retailer": True}
    assert term == {"supplier": False, "retailer": False}
    assert rew == {"supplier": -1.0, "retailer": -2.0}
    assert info["supplier"]["timeout"] and info["supplier"]["round"] == 3
    assert env.agents == []

    env.reset()
    _, rew, term, trunc, info = env.step(_both(WALK_AWAY))
    assert term["retailer"] and not trunc["retailer"] and info["retailer"]["walk_away"]
    assert rew == {"supplier": -10.0, "retailer": -10.0}

    obs, _ = env.reset(options={"supplier_value": 5000.0, "retailer_value": 8000.0})
    env.step(_both(COUNTER, 6000.0))
    assert env.agents == list(AGENTS)
    _, rew, term, _, info = env.step(_both(ACCEPT))
    assert term["supplier"] and info["supplier"]["deal"] and info["supplier"]["price"] == 6000.0
    # seed model, round 2 of 3: D = (1 - 2/3)^2, no bonus (2 >= 0.3 * 3)
    assert rew["supplier"] == pytest.approx(1000.0 / 9, rel=1e-5)
    assert rew["retailer"] == pytest.approx(2000.0 / 9, rel=1e-5)


def test_action_formats_and_missing_actions():
    results = []
    for price in (6500.0, np.float32(6500.0), np.array(6500.0), np.array([6500.0])):
        env = JaxBargainingParallelEnv()
        env.reset(seed=5)
        obs, *_ = env.step({"supplier": {"action_type": np.int64(COUNTER), "price": price}})
        results.append(obs["retailer"])
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert results[0][OBS_INDEX["standing_offer"]] == pytest.approx(0.65)

    env = JaxBargainingParallelEnv()
    env.reset(seed=5)
    with pytest.raises(ValueError, match="supplier"):
        env.step({"retailer": _act(COUNTER, 1.0)})  # the supplier is to move
    with pytest.raises(ValueError, match="action_type"):
        env.step({"supplier": {"action_type": 1.5, "price": 1.0}})
    with pytest.raises(ValueError, match="price"):
        env.step({"supplier": {"action_type": 1, "price": np.zeros(2)}})
    # the env clips out-of-range action types (rules): 7 -> WALK_AWAY
    _, _, term, _, info = env.step({"supplier": {"action_type": 7}})
    assert term["supplier"] and info["supplier"]["walk_away"]


def test_fixed_valuations_through_options():
    env = JaxBargainingParallelEnv(max_price=20000.0)
    obs, _ = env.reset(seed=1, options={"supplier_value": 5100.0, "retailer_value": 8800.0})
    assert obs["supplier"][OBS_INDEX["own_value"]] == pytest.approx(5100.0 / 20000.0)
    assert obs["retailer"][OBS_INDEX["own_value"]] == pytest.approx(8800.0 / 20000.0)
    # beliefs still come from the priors, not from the fixed values
    assert obs["supplier"][OBS_INDEX["belief_mean"]] == pytest.approx(8000.0 / 20000.0)
    *_, info = env.step(_both(WALK_AWAY))
    assert info["supplier"]["supplier_value"] == 5100.0
    assert info["supplier"]["retailer_value"] == 8800.0

    # only one fixed: the other is drawn from its prior; other option keys are ignored
    for seed in range(5):
        obs, _ = env.reset(seed=seed, options={"retailer_value": 100.0, "other": 1})
        assert obs["retailer"][OBS_INDEX["own_value"]] == pytest.approx(100.0 / 20000.0)
        assert 0.2 <= obs["supplier"][OBS_INDEX["own_value"]] <= 0.3
    with pytest.raises(ValueError, match="supplier_value"):
        env.reset(options={"supplier_value": 20001.0})


def test_bad_settings_raise_value_error_naming_field():
    with pytest.raises(ValueError, match="max_rounds"):
        JaxBargainingParallelEnv(max_rounds=0)
    with pytest.raises(ValueError, match="retailer_high"):
        JaxBargainingParallelEnv(retailer_low=9000.0, retailer_high=8000.0)
    with pytest.raises(ValueError, match="discount"):
        parallel_env(reward_model="discounted", discount=(0.9, 1.5))
    with pytest.raises(ValueError, match="no_such_setting"):
        JaxBargainingParallelEnv(no_such_setting=1)
    with pytest.raises(ValueError, match="not both"):
        JaxBargainingParallelEnv(params=make_params(), max_rounds=5)
    with pytest.raises(ValueError, match="render_mode"):
        JaxBargainingParallelEnv(render_mode="human")
    # params built without make_params are validated too
    from eqx_jax.env import EnvParams

    with pytest.raises(ValueError, match="bonus_fraction"):
        JaxBargainingParallelEnv(params=EnvParams(bonus_fraction=2.0))


def test_params_equal_settings():
    a = JaxBargainingParallelEnv(params=make_params(max_rounds=6, speed_bonus=1.0))
    b = JaxBargainingParallelEnv(max_rounds=6, speed_bonus=1.0)
    for env in (a, b):
        env.reset(seed=9)
    for _ in range(6):
        oa, ra, *_ = a.step(_both(COUNTER, 5000.0))
        ob, rb, *_ = b.step(_both(COUNTER, 5000.0))
        assert ra == rb
        for ag in AGENTS:
            np.testing.assert_array_equal(oa[ag], ob[ag])


def test_step_before_reset_and_after_done_raise():
    env = JaxBargainingParallelEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(_both(COUNTER, 1.0))
    env.reset(seed=0)
    env.step(_both(WALK_AWAY))
    assert env.agents == []
    with pytest.raises(RuntimeError, match="over"):
        env.step(_both(COUNTER, 1.0))
    env.reset()  # and a reset makes it usable again
    assert env.agents == list(AGENTS)
    env.step(_both(COUNTER, 1.0))
    env.close()
    with pytest.raises(RuntimeError):
        env.step(_both(COUNTER, 1.0))


def test_render_and_state():
    env = JaxBargainingParallelEnv(render_mode="ansi")
    obs, _ = env.reset(seed=3)
    assert "round 0" in env.render()
    s = env.state()
    assert s.dtype == np.float32 and env.state_space.contains(s)
    np.testing.assert_array_equal(s, np.concatenate([obs["supplier"], obs["retailer"]]))
    env.step(_both(ACCEPT, 6123.0))  # illegal accept in round 1 -> counter at 6123
    line = env.render()
    assert "round 1" in line and "supplier" in line and "COUNTER" in line and "6123.00" in line
    assert "illegal" in line and "\n" not in line
    env.step(_both(ACCEPT))
    line = env.render()
    assert "round 2" in line and "retailer" in line and "ACCEPT" in line and "deal" in line
    with pytest.warns(UserWarning, match="render_mode"):
        assert JaxBargainingParallelEnv().render() is None  # no render_mode


@pytest.mark.filterwarnings("error")
def test_observations_in_space_extreme_settings():
    env = JaxBargainingParallelEnv(
        max_price=3.0, supplier_low=0.0, supplier_high=3.0, retailer_low=3.0, retailer_high=3.0,
        belief_alpha=1.0, belief_beta=0.0, num_history=8,
    )
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for a in AGENTS:
        env.action_space(a).seed(0)
    for _ in range(300):
        if not env.agents:
            obs, _ = env.reset()
        acts = {a: env.action_space(a).sample() for a in env.agents}
        if rng.random() < 0.2:
            acts["supplier"]["price"] = rng.choice([np.inf, -np.inf, np.nan, 1e300, -1e300])
        obs, *_ = env.step(acts)
        for a in AGENTS:
            assert env.observation_space(a).contains(obs[a]), obs[a]


def test_instances_with_different_settings_share_compiled_step():
    env = JaxBargainingParallelEnv(max_rounds=4)
    env.reset(seed=0)
    env.step(_both(COUNTER, 5000.0))
    size = _jit_step._cache_size()
    other = JaxBargainingParallelEnv(max_rounds=7, max_price=12000, reward_model="discounted")
    other.reset(seed=1)
    other.step(_both(COUNTER, 5000.0))
    assert _jit_step._cache_size() == size
