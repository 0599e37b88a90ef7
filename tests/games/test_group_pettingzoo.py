"""The group game (N parties) through the PettingZoo adapter: PettingZoo's own API and seed
tests for N = 2, 3, 4, and episodes that match GroupEnv stepped directly with the same key."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from eqx_jax.env import ACCEPT, COUNTER, WALK_AWAY
from eqx_jax.games.group import GroupEnv, make_group_params
from eqx_jax.games.scenario import load_scenario
from eqx_jax.pettingzoo import JaxGameParallelEnv, game_parallel_env

#: (scenario, agents, N): the two shipped tables and the first two parties of the 8-party one.
TABLES = [("supply-chain-3p", None, 3), ("supply-chain-4p", None, 4), ("consortium-8p", 2, 2)]


def _make(scenario, agents):
    kw = {} if agents is None else {"agents": agents}
    return game_parallel_env("group", scenario=scenario, **kw)


@pytest.mark.parametrize(("scenario", "agents", "n"), TABLES)
def test_pettingzoo_api_and_seed_tests(scenario, agents, n):
    env = _make(scenario, agents)
    assert isinstance(env, JaxGameParallelEnv)
    assert env.possible_agents == list(load_scenario(scenario).parties[:n])
    k = env.jax_env.offer_size
    for a in env.possible_agents:
        space = env.action_space(a)
        assert space["action_type"].n == 3 and space["offer"].shape == (k,)
        assert env.observation_space(a).shape == (env.jax_env.obs_size,)
    parallel_api_test(env, num_cycles=100)
    parallel_seed_test(lambda: _make(scenario, agents))


def _scripted(n, k, plan, rng):
    """Per step, the mover's action for ``plan`` ('deal', 'walk', 'timeout'): counter, then
    (deal) N - 1 acceptances, (walk) a walk-away, (timeout) counters only."""
    def act(step):
        offer = rng.uniform(-1.0, 13.0, k).astype(np.float32)  # clipped / rounded by the env
        if plan == "deal" and 0 < step < n:
            return ACCEPT, offer
        if plan == "walk" and step == 1:
            return WALK_AWAY, offer
        return COUNTER, offer
    return act


@functools.cache
def _direct(scenario, agents):
    """(env, params, jitted step_env), compiled once per table for the three plans."""
    env = GroupEnv(scenario, agents=agents)
    return env, make_group_params(scenario, agents=agents), jax.jit(env.step_env)


def _direct_episode(scenario, agents, seed, act, max_steps):
    """(rewards, terminated, truncated) per step of GroupEnv stepped directly, with the episode
    key the adapter derives from ``reset(seed=seed)``: ``split(key(seed))[1]``."""
    env, params, step = _direct(scenario, agents)
    _, state = env.reset(jax.random.split(jax.random.key(seed))[1], params)
    out = []
    for s in range(max_steps):
        a_type, offer = act(s)
        mover = int(env.mover(state))
        actions = {a: env.make_action(np.int32(a_type if i == mover else COUNTER),
                                      offer if i == mover else np.full_like(offer, np.nan))
                   for i, a in enumerate(env.agents)}
        state, rewards, done, info = step(state, actions, params)
        out.append(([float(rewards[a]) for a in env.agents],
                    bool(info["deal"] | info["walk_away"]), bool(info["timeout"])))
        if bool(done):
            break
    return out


@pytest.mark.parametrize(("scenario", "agents", "n"), TABLES[:2] + [("consortium-8p", 8, 8)])
@pytest.mark.parametrize("plan", ["deal", "walk", "timeout"])
def test_episode_matches_group_env(scenario, agents, n, plan):
    env = _make(scenario, agents)
    k, seed = env.jax_env.offer_size, 11
    t_max = int(env.params.max_rounds)
    want = _direct_episode(scenario, agents, seed,
                           _scripted(n, k, plan, np.random.default_rng(0)), t_max + 1)
    env.reset(seed=seed)
    act = _scripted(n, k, plan, np.random.default_rng(0))
    got, infos = [], None
    for s in range(t_max + 1):
        a_type, offer = act(s)
        mover = env.possible_agents[s % n]
        # Every agent acts (a random counter for the others): only the mover's action counts.
        acts = {a: {"action_type": COUNTER, "offer": offer[::-1]} for a in env.agents}
        acts[mover] = {"action_type": a_type, "offer": offer}
        _, rew, term, trunc, infos = env.step(acts)
        got.append(([rew[a] for a in env.possible_agents], term[mover], trunc[mover]))
        assert len(set(term.values())) == len(set(trunc.values())) == 1
        if not env.agents:
            break
    assert len(got) == len(want) == {"deal": n, "walk": 2, "timeout": t_max}[plan]
    for (r_got, te_got, tr_got), (r_want, te_want, tr_want) in zip(got, want, strict=True):
        # float32 sums in another order: 1e-4 reward units is 1e-6 of utility_scale
        np.testing.assert_allclose(r_got, r_want, rtol=1e-6, atol=1e-4)
        assert (te_got, tr_got) == (te_want, tr_want)
    info = infos[env.possible_agents[0]]
    assert info[plan if plan != "walk" else "walk_away"] and info["round"] == len(got)
    assert len(info["utilities"]) == n and len(info["agreement"]) == k
    if plan == "deal":
        assert any(r != 0.0 for r in got[-1][0])
    else:
        assert all(r == 0.0 for r in got[-1][0])  # default walk / timeout payoffs are 0


def test_mover_only_and_bad_input():
    env = _make("supply-chain-3p", None)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="supplier"):  # the mover of step 1 must act
        env.step({"retailer": {"action_type": COUNTER}})
    with pytest.raises(ValueError, match="offer"):
        env.step({"supplier": {"action_type": COUNTER, "offer": [10.0, 1.0]}})
    # A missing offer is all-NaN (the NaN rule: step 1 opens at the mover's best values).
    _, rew, *_ = env.step({"supplier": {"action_type": ACCEPT}})
    assert set(rew) == set(env.possible_agents)
    assert env.state().shape == (3 * env.jax_env.obs_size,)


def test_options_and_params_must_agree():
    with pytest.raises(ValueError, match="agents"):
        game_parallel_env("group", scenario="consortium-8p", agents=3,
                          params=make_group_params("consortium-8p"))
    with pytest.raises(ValueError, match="agents"):
        game_parallel_env("group", scenario="consortium-8p", agents=9)
    with pytest.raises(ValueError, match="twice"):
        game_parallel_env("group", scenario="supply-chain-3p",
                          env_options={"scenario": "supply-chain-4p"})
    # settings still reach the params; the static options reach the env
    env = game_parallel_env("group", scenario="consortium-8p", agents=3, num_history=4,
                            speed_bonus=1.0)
    assert len(env.possible_agents) == 3 and env.jax_env.num_history == 4
    assert float(env.params.speed_bonus) == 1.0
