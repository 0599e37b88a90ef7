"""The group game's rules by hand-computed cases (docs/rules.md, "Group negotiation"), its
equivalence with the two-party multi-issue game at N = 2, scenarios of 2-8 parties, and
validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.env import ACCEPT, COUNTER, WALK_AWAY
from eqx_jax.games.group import (
    GROUP_OBS_INDEX,
    GroupEnv,
    group_params_to_dict,
    make_group_params,
    utilities,
)
from eqx_jax.games.multi_issue import MultiIssueEnv, make_multi_issue_params
from eqx_jax.games.scenario import load_scenario, scenario_from_dict

KEY = jax.random.key(0)


def _env(scenario="supply-chain-3p", agents=None, **overrides):
    return GroupEnv(scenario, agents=agents), make_group_params(scenario, agents=agents,
                                                                **overrides)


def _act(env, a_type, offer):
    action = env.make_action(jnp.int32(a_type), jnp.asarray(offer, jnp.float32))
    return {a: action for a in env.agents}


def _play(env, params, moves, key=KEY):
    """Play ``moves`` [(type, offer)] from a reset; returns every step's outputs."""
    _, state = env.reset(key, params)
    out = []
    for a_type, offer in moves:
        obs, state, rewards, dones, info = env.step(jax.random.key(1), state,
                                                    _act(env, a_type, offer), params)
        out.append((obs, state, rewards, dones, info))
    return out


def test_three_parties_deal_when_both_others_accept_in_turn():
    env, p = _env(speed_bonus=0.0)
    offer = [10.0, 2, 2]
    steps = _play(env, p, [(COUNTER, offer), (ACCEPT, offer), (ACCEPT, offer)])
    (_, s1, r1, d1, _), (_, s2, r2, d2, _), (_, _, r3, d3, info) = steps
    assert int(s1.t) == 1 and int(s1.accepted) == 0 and not bool(d1["__all__"])
    assert int(s2.accepted) == 1 and not bool(d2["__all__"])  # one of two acceptances
    assert bool(d3["__all__"]) and bool(info["deal"]) and int(info["round"]) == 3
    np.testing.assert_allclose(np.asarray(info["agreement"]), offer)
    # Hand computation: seed model, T = 12, deal at step 3: D = (1 - 3/12)^2 = 0.5625.
    _, s0 = env.reset(KEY, p)
    w = np.asarray(s0.weights_array())
    u = np.asarray(utilities(jnp.asarray(offer), jnp.asarray(w), p))
    # price 10 is position 0.5 of [8, 12]; quantity index 2; delivery index 2
    by_hand = np.array([
        w[0] @ [0.5, 2 / 4, 2 / 3],
        w[1] @ [0.5, 1.0, 1 / 3],
        w[2] @ [0.5, 1 - 1 / 3, 2 / 3]])
    np.testing.assert_allclose(u, by_hand, rtol=1e-6)
    r = np.asarray(s0.reservation_array())
    expected = 100.0 * (u - r) * 0.5625
    got = np.array([float(r3[a]) for a in env.agents])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert all(float(r1[a]) == 0.0 and float(r2[a]) == 0.0 for a in env.agents)


def test_a_counter_resets_the_acceptances_and_becomes_the_standing_offer():
    env, p = _env()
    steps = _play(env, p, [(COUNTER, [12.0, 4, 3]), (ACCEPT, [0, 0, 0]),
                           (COUNTER, [9.0, 2, 0]), (ACCEPT, [0, 0, 0]), (ACCEPT, [0, 0, 0])])
    s3, s4 = steps[2][1], steps[3][1]
    assert int(s3.accepted) == 0
    np.testing.assert_allclose(np.asarray(s3.offer_array()), [9.0, 2, 0])
    assert int(s4.accepted) == 1 and not bool(steps[3][3]["__all__"])
    info = steps[4][4]  # the logistics provider countered at step 3: supplier, retailer accept
    assert bool(info["deal"]) and int(info["round"]) == 5
    np.testing.assert_allclose(np.asarray(info["agreement"]), [9.0, 2, 0])


def test_movers_follow_the_fixed_order_and_the_observation_says_whose_turn():
    env, p = _env("supply-chain-4p")
    obs, state = env.reset(KEY, p)
    for t in range(9):
        mover = int(env.mover(state))
        assert mover == t % 4
        for i, a in enumerate(env.agents):
            assert float(obs[a][GROUP_OBS_INDEX["my_turn"]]) == float(i == mover)
            assert float(obs[a][GROUP_OBS_INDEX["role"]]) == float(i)
            assert np.asarray(obs[a][env.obs_layout["seat"]]).tolist() == \
                [float(j == i) for j in range(4)]
        a_type = COUNTER if t % 3 == 0 else ACCEPT
        obs, state, _, _, _ = env.step(KEY, state, _act(env, a_type, [10.0, 1, 1]), p)
    # The author field: seats from the author to me (/ N); acceptances (/ (N - 1)).
    _, state = env.reset(KEY, p)
    for a_type in (COUNTER, ACCEPT):
        obs, state, _, _, _ = env.step(KEY, state, _act(env, a_type, [10.0, 1, 1]), p)
    # Agent 0 offered at step 1, agent 1 accepted at step 2.
    for i, a in enumerate(env.agents):
        assert float(obs[a][GROUP_OBS_INDEX["author"]]) == pytest.approx(i / 4)
        assert float(obs[a][GROUP_OBS_INDEX["acceptances"]]) == pytest.approx(1 / 3)


def test_walk_away_ends_it_for_all_with_the_walk_payoffs():
    env, p = _env(walk_payoff=(1.0, -2.0, 3.0))
    steps = _play(env, p, [(COUNTER, [10.0, 2, 2]), (WALK_AWAY, [0, 0, 0])])
    _, _, rewards, dones, info = steps[1]
    assert bool(dones["__all__"]) and bool(info["walk_away"]) and not bool(info["deal"])
    assert [float(rewards[a]) for a in env.agents] == [1.0, -2.0, 3.0]
    assert all(bool(dones[a]) for a in env.agents)


def test_timeout_after_max_rounds_steps_even_on_an_incomplete_acceptance():
    env, p = _env(max_rounds=4, timeout_payoff=(-1.0, -1.0, -1.0))
    moves = [(COUNTER, [10.0, 2, 2])] * 3 + [(ACCEPT, [0, 0, 0])]
    steps = _play(env, p, moves)
    assert not any(bool(s[3]["__all__"]) for s in steps[:3])
    _, _, rewards, dones, info = steps[3]
    # Step 4 = T: one acceptance of two, so no deal: the negotiation times out.
    assert bool(info["timeout"]) and not bool(info["deal"]) and int(info["round"]) == 4
    assert [float(rewards[a]) for a in env.agents] == [-1.0] * 3


def test_an_accept_without_a_standing_offer_is_a_counter():
    env, p = _env()
    _, s1, _, _, info = _play(env, p, [(ACCEPT, [11.0, 3, 1])])[0]
    assert bool(info["illegal_accept"]) and int(s1.accepted) == 0
    np.testing.assert_allclose(np.asarray(s1.offer_array()), [11.0, 3, 1])


def test_discounted_rewards_per_party():
    env, p = _env(reward_model="discounted", discount=(0.9, 0.8, 0.7))
    offer = [10.0, 2, 2]
    info_r = _play(env, p, [(COUNTER, offer), (ACCEPT, offer), (ACCEPT, offer)])[-1]
    _, s0 = env.reset(KEY, p)
    u = np.asarray(utilities(jnp.asarray(offer), s0.weights_array(), p))
    gain = 100.0 * (u - np.asarray(s0.reservation_array()))
    expected = gain * np.array([0.9, 0.8, 0.7]) ** 3
    np.testing.assert_allclose([float(info_r[2][a]) for a in env.agents], expected, rtol=1e-5)


def test_two_parties_play_exactly_the_multi_issue_game():
    g, gp = GroupEnv("integrative-4"), make_group_params("integrative-4", max_rounds=10)
    m, mp = MultiIssueEnv("integrative-4"), make_multi_issue_params("integrative-4",
                                                                   max_rounds=10)

    def play(env, p, key):  # 150 random moves (auto-reset), both agents' view of each step
        _, state = env.reset(key, p)

        def body(state, k):
            k1, k2, k3 = jax.random.split(k, 3)
            a_type = jax.random.randint(k1, (), 0, 3)
            offer = jax.random.uniform(k2, (4,)) * 4
            acts = {a: env.make_action(a_type, offer) for a in env.agents}
            obs, state, r, d, _ = env.step(k3, state, acts, p)
            return state, ([obs[a][:10] for a in env.agents], [r[a] for a in env.agents],
                           d["__all__"])

        return jax.lax.scan(body, state, jax.random.split(jax.random.key(4), 150))[1]

    key = jax.random.key(3)
    got = jax.jit(lambda k: play(g, gp, k))(key)
    want = jax.jit(lambda k: play(m, mp, k))(key)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert int(np.asarray(got[2]).sum()) > 20


def test_vmap_jit_and_same_seed_same_episodes():
    env, p = _env("consortium-8p", agents=5)
    assert env.agents == ("p1", "p2", "p3", "p4", "p5")

    @jax.jit
    def run(key):
        keys = jax.random.split(key, 64)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, p)

        def body(carry, k):
            state = carry
            ka, ko, ks = jax.random.split(k, 3)
            a_type = jax.random.randint(ka, (64,), 0, 3)
            offer = jax.random.uniform(ko, (64, 3)) * 12
            acts = {a: env.make_action(a_type, offer) for a in env.agents}
            _, state, rewards, dones, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ks, 64), state, acts, p)
            return state, (rewards["p1"], dones["__all__"], info["deal"])

        return jax.lax.scan(body, state, jax.random.split(key, 40))[1]

    a, b = run(jax.random.key(5)), run(jax.random.key(5))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert int(np.asarray(a[1]).sum()) > 0


def test_scenarios_of_two_to_eight_parties_and_agents_option():
    for name, n in (("supply-chain-3p", 3), ("supply-chain-4p", 4), ("consortium-8p", 8)):
        sc = load_scenario(name)
        assert sc.num_parties == n
        assert GroupEnv(name).num_agents == n
        assert load_scenario(f"{name}-fixed").complete_information if n < 8 else True
    assert GroupEnv("consortium-8p", agents=2).agents == ("p1", "p2")
    with pytest.raises(ValueError, match=r"agents must be an integer in \[2, 3\]"):
        GroupEnv("supply-chain-3p", agents=4)
    with pytest.raises(ValueError, match="parties"):
        MultiIssueEnv("supply-chain-3p")  # a group scenario in a two-party game


def test_per_party_settings_are_validated_by_name():
    with pytest.raises(ValueError, match="discount must be a list of 3 numbers"):
        make_group_params("supply-chain-3p", discount=(0.9, 0.9))
    with pytest.raises(ValueError, match=r"discount\[logistics\]"):
        make_group_params("supply-chain-3p", discount=(0.9, 0.9, 1.5))
    with pytest.raises(ValueError, match="max_rounds"):
        make_group_params("supply-chain-3p", max_rounds=0)
    with pytest.raises(ValueError, match="unknown game setting"):
        make_group_params("supply-chain-3p", rounds=3)
    d = group_params_to_dict(make_group_params("supply-chain-3p", walk_payoff=[1, 2, 3]))
    assert d["walk_payoff"] == [1.0, 2.0, 3.0] and d["max_rounds"] == 12


def test_scenario_file_validation_of_parties():
    base = load_scenario("supply-chain-3p")
    issues = [{"name": i.name, "type": "continuous", "low": 0, "high": 1} for i in base.issues]
    agent = {"value_functions": ["increasing"] * 3, "weights": [1, 1, 1], "reservation": 0.1}
    ok = {"parties": ["a", "b", "c"], "issues": issues,
          "utilities": {"a": agent, "b": agent, "c": agent}}
    assert scenario_from_dict(ok).num_parties == 3
    with pytest.raises(ValueError, match="utilities.c"):
        scenario_from_dict({**ok, "utilities": {"a": agent, "b": agent}})
    with pytest.raises(ValueError, match="parties must be a list of 2 to 8 distinct names"):
        scenario_from_dict({**ok, "parties": ["a"] * 3})
    with pytest.raises(ValueError, match="parties must be a list of 2 to 8"):
        scenario_from_dict({**ok, "parties": [f"x{i}" for i in range(9)]})


@pytest.mark.parametrize("scenario", ["supply-chain-3p", "supply-chain-4p"])
def test_classic_negotiators_play_every_seat(scenario):
    """The utility-space time-dependent negotiators in self-play: the conceders agree early,
    the linear ones later (measured: 3p 3.7 / 9.8 steps, 4p 6.4 / 13.9 steps)."""
    from eqx_jax.negotiators import get_game_negotiator

    env, p = _env(scenario)
    n = 128

    def run(name):
        pol = get_game_negotiator(name, env)

        @jax.jit
        def go(key):
            obs, st = jax.vmap(env.reset, (0, None))(jax.random.split(key, n), p)

            def body(c, k):
                obs, st, seen, deal, steps = c
                ks = jax.random.split(k, n)
                acts = {a: jax.vmap(pol, (0, 0, None))(ks, obs[a], p) for a in env.agents}
                obs, st, _, d, info = jax.vmap(env.step, (0, 0, 0, None))(ks, st, acts, p)
                first = d["__all__"] & ~seen
                return (obs, st, seen | d["__all__"], deal | (first & info["deal"]),
                        jnp.where(first, info["round"], steps)), None

            z = jnp.zeros(n, bool)
            out, _ = jax.lax.scan(body, (obs, st, z, z, jnp.zeros(n, jnp.int32)),
                                  jax.random.split(key, p.max_rounds))
            return out[3].mean(), out[4].mean()

        return [float(x) for x in go(jax.random.key(0))]

    conceder, linear = run("conceder"), run("linear")
    assert conceder[0] == 1.0 and linear[0] > 0.9
    assert conceder[1] < linear[1] <= p.max_rounds
