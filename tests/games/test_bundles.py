"""The bundles game (OpenSpiel's ``bargaining``): hand-computed rules, and the differential test
against ``pyspiel``: the same instances, the same random choices, the same legal actions,
chance outcomes and returns at every step."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.env import ACCEPT, AGENTS, COUNTER, WALK_AWAY
from eqx_jax.games.bundles import (
    BUNDLES_OBS_INDEX,
    BundlesEnv,
    action_mask,
    bundles_params_to_dict,
    format_instances,
    from_openspiel_action,
    make_bundles_params,
    pack_instances,
    parse_instances,
    round_offer,
    to_openspiel_action,
    unpack_instance,
)
from eqx_jax.solvers.bundles import all_offers, pareto_mask, valid_instances

pyspiel = pytest.importorskip("pyspiel")

ENV = BundlesEnv(num_history=3)
RESET = jax.jit(ENV.reset)
STEP_ENV = jax.jit(ENV.step_env)
STEP = jax.jit(ENV.step)
END_DRAW = jax.jit(ENV.end_draw)
OBS = jax.jit(ENV.get_obs)
IX = BUNDLES_OBS_INDEX
SMALL = "1,2,3 8,1,0 4,0,2\n3,1,1 1,4,3 0,2,8\n\n1,3,1 2,2,2 10,0,0\n1,1,3 0,1,3 1,3,2\n"
AGREE = len(all_offers())


def _act(action_type: int, offer) -> dict:
    return ENV.make_action(jnp.int32(action_type), jnp.asarray(offer, jnp.float32))


def _both(mover: int, action: dict, rng: np.random.Generator) -> dict:
    """The mover's action, and a random one for the other agent (which the env ignores)."""
    other = _act(int(rng.integers(0, 3)), rng.uniform(-1, 8, 3))
    return {AGENTS[i]: action if i == mover else other for i in (0, 1)}


def _start(params, instance: int):
    return RESET(jax.random.key(instance), params.replace(instance=jnp.int32(instance)))


def _play(params, instance, moves):
    """Apply (action_type, offer) moves from a fresh episode; returns the step outputs."""
    _, state = _start(params, instance)
    rng = np.random.default_rng(0)
    out = []
    for a, offer in moves:
        mover = int(ENV.mover(state))
        state, rewards, done, info = STEP_ENV(state, _both(mover, _act(a, offer), rng), params)
        out.append((state, {k: float(v) for k, v in rewards.items()}, bool(done), info))
    return out


# ------------------------------------------------------------------------- hand-computed rules
def test_deal_returns_and_discount_by_hand():
    """Pool (1 book, 2 hats, 3 balls), values P0 (8, 1, 0), P1 (4, 0, 2)."""
    p = make_bundles_params(instances=SMALL, discount=0.5)
    # P0 keeps the book and the hats (8 + 2 = 10), P1 agrees at turn 2: 3 balls = 6, factor 1.
    out = _play(p, 0, [(COUNTER, [1, 2, 0]), (ACCEPT, [0, 0, 0])])
    _, rewards, done, info = out[-1]
    assert done and bool(info["deal"]) and int(info["round"]) == 2
    assert rewards == {"supplier": 10.0, "retailer": 6.0}
    assert [float(info[f"supplier_items_{k}"]) for k in range(3)] == [1, 2, 0]
    assert float(info["welfare"]) == 16.0 and bool(info["pareto_optimal"])
    # P1 counters keeping the balls (P0 gets book + hats), P0 agrees at turn 3: factor 0.5.
    out = _play(p, 0, [(COUNTER, [0, 0, 0]), (COUNTER, [0, 0, 3]), (ACCEPT, [0, 0, 0])])
    assert out[1][2] is False and out[-1][2] and out[-1][1] == {"supplier": 5.0, "retailer": 3.0}
    # Turn 4 (factor 0.25): P1 agrees to P0 keeping only 2 balls (worth 0 to P0): P0 gets 0,
    # P1 gets book + hats + 1 ball = 4 + 0 + 2 = 6, times 0.25; dominated by the split above.
    out = _play(p, 0, [(COUNTER, [0, 0, 0]), (COUNTER, [0, 0, 0]), (COUNTER, [0, 0, 2]),
                       (ACCEPT, [0, 0, 0])])
    _, rewards, _, info = out[-1]
    assert rewards == {"supplier": 0.0, "retailer": 1.5}
    assert float(info["welfare"]) == 6.0 and not bool(info["pareto_optimal"])


def test_timeout_chance_end_and_illegal_moves_by_hand():
    p = make_bundles_params(instances=SMALL, max_turns=2)
    out = _play(p, 0, [(COUNTER, [1, 2, 0]), (COUNTER, [1, 0, 3])])
    _, rewards, done, info = out[-1]
    assert done and bool(info["timeout"]) and not bool(info["deal"])
    assert rewards == {"supplier": 0.0, "retailer": 0.0}
    # prob_end = 1: no chance after turn 1's offer, a certain end after turn 2's.
    p1 = make_bundles_params(instances=SMALL, prob_end=1.0)
    out = _play(p1, 0, [(COUNTER, [1, 2, 0]), (COUNTER, [1, 0, 3])])
    assert not out[0][2] and out[1][2] and bool(out[1][3]["chance_end"])
    assert not bool(out[1][3]["timeout"]) and out[1][1] == {"supplier": 0.0, "retailer": 0.0}
    # ACCEPT at turn 1 and WALK_AWAY are played as COUNTER with the submitted offer.
    out = _play(p, 0, [(ACCEPT, [1, 1, 1]), (WALK_AWAY, [0, 2, 0])])
    s1, _, done1, info1 = out[0]
    assert not done1 and bool(info1["illegal_accept"])
    assert [float(x) for x in s1.offers[0]] == [1, 1, 1]
    assert bool(out[1][3]["illegal_walk"]) and bool(out[1][3]["timeout"])
    assert not bool(out[1][3]["walk_away"])


def test_offer_rounding_and_clipping():
    p = make_bundles_params(instances=SMALL)
    out = _play(p, 0, [(COUNTER, [0.4, 1.6, 9.0])])
    assert [float(x) for x in out[0][0].offers[0]] == [0, 2, 3]
    out = _play(p, 0, [(COUNTER, [math.nan, -3.0, 1.5])])
    assert [float(x) for x in out[0][0].offers[0]] == [0, 0, 2]
    assert round_offer([math.nan, -3.0, 1.5], [1, 2, 3]).tolist() == [0, 0, 2]
    assert round_offer([0.5, 2.5, 2.49], [1, 2, 3]).tolist() == [1, 2, 2]


def test_observation_fields_by_hand():
    p = make_bundles_params(instances=SMALL, discount=0.5, max_turns=4)
    obs, state = _start(p, 0)
    o0, o1 = np.asarray(obs["supplier"]), np.asarray(obs["retailer"])
    assert o0.shape == (ENV.obs_size,)
    assert np.allclose(o0[IX["own_value_0"]:IX["own_value_2"] + 1], [0.8, 0.1, 0.0])
    assert np.allclose(o1[IX["own_value_0"]:IX["own_value_2"] + 1], [0.4, 0.0, 0.2])
    assert np.allclose(o0[IX["pool_0"]:IX["pool_2"] + 1], np.array([1, 2, 3]) / 7)
    assert action_mask(o0).tolist() == [False, True, False]
    assert action_mask(o1).tolist() == [False, True, False]
    state, *_ = STEP_ENV(state, {a: _act(COUNTER, [1, 2, 0]) for a in AGENTS}, p)
    obs = OBS(state, p)
    o0, o1 = np.asarray(obs["supplier"]), np.asarray(obs["retailer"])
    assert action_mask(o1).tolist() == [True, True, False]
    assert action_mask(o0).tolist() == [False, True, False]
    assert np.allclose(o0[IX["share_0"]:IX["share_2"] + 1], np.array([1, 2, 0]) / 7)
    assert np.allclose(o1[IX["share_0"]:IX["share_2"] + 1], np.array([0, 0, 3]) / 7)
    assert np.allclose([o0[IX["accept_value"]], o1[IX["accept_value"]]], [1.0, 0.6])
    assert np.isclose(o1[IX["round"]], 0.25) and o1[IX["my_turn"]] == 1 and o1[IX["role"]] == 1
    assert math.isclose(o1[IX["deal_factor"]], 1.0)  # a deal at turn 2 is not discounted
    hist = o1[len(IX):].reshape(3, 3)
    assert np.allclose(hist, np.array([[0, 0, 3], [0, 0, 0], [0, 0, 0]]) / 7)
    state, *_ = STEP_ENV(state, {a: _act(COUNTER, [0, 1, 3]) for a in AGENTS}, p)
    o0 = np.asarray(OBS(state, p)["supplier"])
    assert math.isclose(o0[IX["deal_factor"]], 0.5)  # turn 3
    assert np.allclose(o0[len(IX):].reshape(3, 3), np.array([[1, 1, 0], [1, 2, 0], [0, 0, 0]]) / 7)


def test_pareto_info_matches_the_solver():
    p = make_bundles_params(instances=SMALL)
    pool, values = np.array([3, 1, 1]), np.array([[1, 4, 3], [0, 2, 8]])
    for share0 in ([3, 1, 0], [0, 0, 1], [2, 1, 1], [3, 0, 0]):
        # P1 proposes keeping pool - share0; P0 agrees at turn 2.
        out = _play(p, 1, [(COUNTER, [0, 0, 0]), (COUNTER, list(pool - share0)),
                           (ACCEPT, [0, 0, 0])])
        info = out[-1][3]
        assert [float(info[f"supplier_items_{k}"]) for k in range(3)] == share0
        assert bool(info["pareto_optimal"]) == bool(pareto_mask(pool, values, share0))


# ----------------------------------------------------------------------- instances and params
def test_parse_format_pack_roundtrip_and_the_generator_space():
    pools, values = parse_instances(SMALL)
    assert pools.shape == (4, 3) and values.shape == (4, 2, 3)
    assert pools[2].tolist() == [1, 3, 1] and values[2].tolist() == [[2, 2, 2], [10, 0, 0]]
    assert format_instances(pools, values) == SMALL.replace("\n\n", "\n")
    assert parse_instances(SMALL, max_num_instances=2)[0].shape == (2, 3)
    rows = valid_instances()
    for code, row in zip(pack_instances(rows), rows, strict=True):
        pool, v0, v1 = unpack_instance(code)
        assert [float(x) for x in (*pool, *v0, *v1)] == row.tolist()
        break  # one through JAX here; all of them below with NumPy
    bits = pack_instances(rows).astype(np.int64)
    assert np.array_equal(bits & 7, rows[:, 0]) and np.array_equal((bits >> 9) % 11, rows[:, 3])
    game = pyspiel.load_game("bargaining")
    space = {tuple(r) for r in rows}
    theirs = [tuple(i.pool + i.values[0] + i.values[1]) for i in game.all_instances()]
    assert len(theirs) == 1000 and all(t in space for t in theirs)


def test_params_roundtrip_and_bad_params_name_the_field():
    p = make_bundles_params(instances=SMALL, max_turns=6, discount=0.9, prob_end=0.1, instance=2)
    d = bundles_params_to_dict(p)
    q = make_bundles_params(**d)
    assert bundles_params_to_dict(q) == d and q.num_instances == 4 and q.max_rounds == 6
    assert make_bundles_params().num_instances == 1000
    assert make_bundles_params(max_num_instances=10).num_instances == 10
    bad = [({"max_turns": 0}, "max_turns must be an integer in [1, 1000]"),
           ({"discount": 1.5}, "discount must be in [0, 1]"),
           ({"prob_end": -0.1}, "prob_end must be in [0, 1]"),
           ({"instance": 5000}, "instance must be an integer in [-1, 999]"),
           ({"max_num_instances": 0}, "max_num_instances must be an integer >= 1"),
           ({"instances": "1,2,3 8,1,0"}, "instances line 1 must be"),
           ({"instances": "\n4,2,3 1,1,1 1,1,1"}, "instances line 2: pool total must be"),
           ({"instances": "1,2,3 8,1,0 4,0,x"}, "instances line 1 must be 3 groups"),
           ({"instances": "1,2,3 11,1,0 4,0,2"}, "instances line 1: values 0[0] must be"),
           ({"instances_file": "/nonexistent/file"}, "instances_file must be an existing"),
           ({"rounds": 3}, "unknown bundles setting")]
    for overrides, message in bad:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            make_bundles_params(**overrides)
    with pytest.raises(ValueError, match="num_history"):
        BundlesEnv(num_history=0)


def test_openspiel_action_mapping():
    pool = [1, 2, 3]
    for action_id in range(AGREE + 1):
        a, offer = from_openspiel_action(action_id)
        if action_id == AGREE:
            assert a == ACCEPT
        elif np.all(offer <= pool):
            assert to_openspiel_action(a, offer, pool) == action_id
    assert to_openspiel_action(ACCEPT, [1, 1, 1], pool, has_offer=False) == \
        to_openspiel_action(COUNTER, [1, 1, 1], pool)
    assert to_openspiel_action(WALK_AWAY, [0.6, 9, -1], pool) == \
        pyspiel.load_game("bargaining").get_offer_by_quantities([1, 2, 0])[1]
    with pytest.raises(ValueError, match="action_id"):
        from_openspiel_action(AGREE + 1)


# --------------------------------------------------------------------------- JAX properties
def test_jit_vmap_shapes_over_episodes_and_settings_and_auto_reset():
    p = make_bundles_params(instances=SMALL)
    n = 64
    obs, state = jax.vmap(ENV.reset, (0, None))(jax.random.split(jax.random.key(0), n), p)
    assert obs["supplier"].shape == (n, ENV.obs_size) and state.turn.shape == (n,)
    acts = {a: ENV.make_action(jnp.full(n, COUNTER), jnp.zeros((n, 3))) for a in AGENTS}
    step = jax.jit(jax.vmap(ENV.step, (0, 0, 0, None)))
    for t in range(10):
        obs, state, rewards, dones, info = step(jax.random.split(jax.random.key(t + 1), n),
                                                state, acts, p)
    assert bool(jnp.all(dones["__all__"])) and bool(jnp.all(info["timeout"]))
    assert bool(jnp.all(state.turn == 0)) and rewards["supplier"].shape == (n,)
    assert int(info["round"][0]) == 10
    # Settings batch: 3 horizons in one vmap.
    ps = jax.tree.map(lambda *x: jnp.stack(x), *[make_bundles_params(instances=SMALL,
                                                                    max_turns=k)
                                                for k in (1, 2, 3)])
    step_s = jax.jit(jax.vmap(ENV.step_env, (0, 0, 0)))
    keys = jax.random.split(jax.random.key(9), 3)
    _, st = jax.vmap(ENV.reset)(keys, ps)
    a3 = {a: ENV.make_action(jnp.full(3, COUNTER), jnp.zeros((3, 3))) for a in AGENTS}
    dones = []
    for _ in range(3):
        st, _, d, _ = step_s(st, a3, ps)
        dones.append(np.asarray(d))
    assert np.array_equal(np.array(dones), [[1, 0, 0], [1, 1, 0], [1, 1, 1]])


def test_reset_draws_instances_uniformly_and_can_fix_one():
    p = make_bundles_params(instances=SMALL)
    n = 8000
    _, state = jax.vmap(ENV.reset, (0, None))(jax.random.split(jax.random.key(3), n), p)
    counts = np.bincount(np.asarray(state.instance), minlength=4)
    assert np.all(np.abs(counts - n / 4) < 5 * math.sqrt(n / 4))
    pool = np.stack([np.asarray(x) for x in state.pool], 1)
    table = np.asarray(p.table)
    assert np.array_equal(pool, table[np.asarray(state.instance), :3])
    _, fixed = jax.vmap(ENV.reset, (0, None))(jax.random.split(jax.random.key(3), 50),
                                              p.replace(instance=jnp.int32(2)))
    assert bool(jnp.all(fixed.instance == 2))
    # The chance draws are well spread over the turns and the episodes.
    draws = np.asarray(jax.vmap(ENV.end_draw)(state))
    assert abs(draws.mean() - 0.5) < 0.02 and draws.min() >= 0 and draws.max() < 1


# -------------------------------------------------------------------------- differential test
def _tensor_counts(tensor: np.ndarray, max_turns: int):
    """(pool (3,), own values (3,), last offer (3,) or None) from OpenSpiel's observation
    tensor (thermometer codes: a count n sets n + 1 ones)."""
    off = 1 + max_turns + 1
    pool = [int(tensor[off + 8 * k: off + 8 * k + 8].sum()) - 1 for k in range(3)]
    off += 24
    vals = [int(tensor[off + 11 * k: off + 11 * k + 11].sum()) - 1 for k in range(3)]
    off += 33
    last = [int(tensor[off + 8 * k: off + 8 * k + 8].sum()) - 1 for k in range(3)]
    return pool, vals, (None if min(last) < 0 else last)


def _choose(rng, legal: list[int], pool, has_offer: bool):
    """A random env action and its OpenSpiel id: an OpenSpiel legal action (agree 30 % of the
    time when legal), or a raw continuous / illegal move the env reads as one."""
    if has_offer and rng.random() < 0.3:
        return _act(ACCEPT, rng.uniform(0, 7, 3)), AGREE
    if rng.random() < 0.5:
        a, offer = from_openspiel_action(int(rng.choice([x for x in legal if x != AGREE])))
        return _act(a, offer), to_openspiel_action(a, offer, pool, has_offer)
    a = int(rng.choice([COUNTER, WALK_AWAY, ACCEPT if not has_offer else COUNTER]))
    offer = rng.uniform(-1.0, 8.0, 3)
    if rng.random() < 0.1:
        offer[rng.integers(0, 3)] = np.nan
    return _act(a, offer), to_openspiel_action(a, offer, pool, has_offer)


def _differential_episode(game, params, instance: int, rng) -> int:
    """One episode in both; asserts equality at every step; returns the number of steps."""
    state_os = game.new_initial_state()
    state_os.apply_action(instance)
    _, state = _start(params, instance)
    max_turns, prob_end = game.max_turns(), game.prob_end()
    steps = 0
    while True:
        mover = int(ENV.mover(state))
        assert state_os.current_player() == mover
        obs = {a: np.asarray(o) for a, o in OBS(state, params).items()}
        pool = np.rint(obs[AGENTS[mover]][IX["pool_0"]:IX["pool_2"] + 1] * 7).astype(int)
        legal_ours = [i for i, o in enumerate(all_offers()) if np.all(o <= pool)]
        if action_mask(obs[AGENTS[mover]])[ACCEPT]:
            legal_ours.append(AGREE)
        legal = state_os.legal_actions()
        assert legal_ours == legal
        for p in (0, 1):
            t_pool, t_vals, t_last = _tensor_counts(np.asarray(state_os.observation_tensor(p)),
                                                    max_turns)
            o = obs[AGENTS[p]]
            assert np.rint(o[IX["pool_0"]:IX["pool_2"] + 1] * 7).tolist() == t_pool
            assert np.rint(o[IX["own_value_0"]:IX["own_value_2"] + 1] * 10).tolist() == t_vals
            if t_last is not None:  # own share of the last offer, made by the non-mover
                share = t_last if p != mover else list(np.array(t_pool) - t_last)
                assert np.rint(o[IX["share_0"]:IX["share_2"] + 1] * 7).tolist() == share
        action, action_id = _choose(rng, legal, pool, bool(obs[AGENTS[mover]][IX["has_offer"]]))
        assert action_id in legal
        draw = float(END_DRAW(state))
        state, rewards, done, info = STEP_ENV(state, _both(mover, action, rng), params)
        state_os.apply_action(action_id)
        steps += 1
        if state_os.is_chance_node():  # OpenSpiel's end chance, driven by our draw
            assert prob_end > 0 and steps >= 2
            end = draw < prob_end
            state_os.apply_action(game.max_chance_outcomes() - 2 + int(end))
            assert bool(info["chance_end"]) == end
        else:
            assert not bool(info["chance_end"])
        assert bool(done) == state_os.is_terminal()
        returns = state_os.returns() if state_os.is_terminal() else [0.0, 0.0]
        assert np.allclose([float(rewards[a]) for a in AGENTS], returns, atol=1e-5)
        if done:
            assert bool(info["deal"]) == (action_id == AGREE)
            return steps


@pytest.mark.parametrize("settings", [
    {"max_turns": 10, "discount": 1.0, "prob_end": 0.0},
    {"max_turns": 6, "discount": 0.9, "prob_end": 0.3},
    {"max_turns": 4, "discount": 0.5, "prob_end": 0.7},
])
def test_differential_against_openspiel_default_instances(settings):
    game = pyspiel.load_game("bargaining", settings)
    insts = game.all_instances()
    text = format_instances([i.pool for i in insts], [i.values for i in insts])
    params = make_bundles_params(instances=text, **settings)
    rng = np.random.default_rng(settings["max_turns"])
    steps = sum(_differential_episode(game, params, int(rng.integers(0, 1000)), rng)
                for _ in range(25))
    assert steps >= 25


def test_differential_against_openspiel_instances_from_a_file(tmp_path):
    path = tmp_path / "instances.txt"
    path.write_text(SMALL)
    settings = {"max_turns": 5, "discount": 0.8, "prob_end": 0.4}
    game = pyspiel.load_game("bargaining", {"instances_file": str(path), **settings})
    assert len(game.all_instances()) == 4
    params = make_bundles_params(instances_file=str(path), **settings)
    rng = np.random.default_rng(5)
    for _ in range(40):
        _differential_episode(game, params, int(rng.integers(0, 4)), rng)
    # Also the chance end happens at the rate prob_end (over our own draws).
    _, st = jax.vmap(ENV.reset, (0, None))(jax.random.split(jax.random.key(0), 4000), params)
    ends = float(jnp.mean(jax.vmap(ENV.end_draw)(st) < 0.4))
    assert abs(ends - 0.4) < 0.03


def test_env_protocol_pieces():
    """What eqx_jax/games/spec.py asks of every game (the registry's API test runs the rest)."""
    p = make_bundles_params()
    obs, state = RESET(jax.random.key(0), p)
    assert ENV.agents == tuple(AGENTS) and ENV.num_actions == 3 and ENV.offer_size == 3
    for a in AGENTS:
        assert obs[a].shape == (ENV.obs_size,) and obs[a].dtype == jnp.float32
        assert np.asarray(obs[a][ENV.mask_slice]).tolist() in ([0, 1, 0], [0, 0, 0])
    assert int(ENV.mover(state)) == 0
    lo, hi = ENV.offer_bounds(p)
    assert lo.tolist() == [0, 0, 0] and np.asarray(hi).tolist() == \
        np.asarray(p.table)[:, :3].max(0).tolist()
    e_lo, e_hi = ENV.explore_bounds(p)
    assert bool(jnp.all(e_lo >= lo)) and bool(jnp.all(e_hi <= hi)) and bool(jnp.all(e_hi > e_lo))
    assert set(ENV.deal_keys) <= set(ENV.info_keys) and ENV.gain_scale(p) == 10.0
    _, _, _, info = STEP_ENV(state, {a: _act(COUNTER, [1, 1, 1]) for a in AGENTS}, p)
    assert set(ENV.info_keys) <= set(info) and all(np.ndim(v) == 0 for v in info.values())
