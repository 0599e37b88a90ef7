"""The bundles game with complete information: the env option that shows the other player's
values, ``eqx solve --game bundles`` against the solver, and ``eqx evaluate``'s SPE keys
against scripted players (one that plays the SPE, some that do not); the quality script's
instance set against its own definition."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from eqx_jax import evaluate as evaluate_module
from eqx_jax.checks import FieldError
from eqx_jax.cli.main import main
from eqx_jax.games.bundles import (
    BUNDLES_OBS_FIELDS,
    BUNDLES_OBS_INDEX,
    OTHER_VALUE_FIELDS,
    BundlesEnv,
    make_bundles_params,
    parse_instances,
)
from eqx_jax.games.registry import get_game
from eqx_jax.ppo import PPOConfig
from eqx_jax.references import bundles_mean_surplus, bundles_spe_distance
from eqx_jax.simulate import play_batch
from eqx_jax.solvers.bundles import max_welfare, solve_spe
from scripts.quality_bundles import CONFIG, clear_instances, spe_outcomes

INSTANCES = "1,2,3 8,1,0 4,0,2\n3,1,1 0,8,2 2,1,3\n2,2,1 1,2,4 1,0,8\n"
SETTINGS = {"max_turns": 4, "discount": 0.9, "prob_end": 0.0}
BASE = len(BUNDLES_OBS_FIELDS)


def _params(**over):
    return make_bundles_params(instances=INSTANCES, **{**SETTINGS, **over})


# ----------------------------------------------------------------------------- the option
def test_the_option_adds_the_other_values_and_changes_nothing_else():
    plain, full = BundlesEnv(num_history=2), BundlesEnv(num_history=2, observe_other_values=True)
    assert not plain.observe_other_values and plain.obs_fields == BUNDLES_OBS_FIELDS
    assert full.obs_fields == BUNDLES_OBS_FIELDS + OTHER_VALUE_FIELDS
    assert full.obs_size == plain.obs_size + 3 and full.mask_slice == plain.mask_slice
    params = _params()
    key = jax.random.key(3)
    obs_p, state = plain.reset(key, params)
    obs_f, state_f = full.reset(key, params)
    # one offer so that the history is not empty
    act = {a: plain.make_action(jnp.int32(1), jnp.array([1.0, 1.0, 0.0])) for a in plain.agents}
    obs_p, state, *_ = plain.step(key, state, act, params)
    obs_f, state_f, *_ = full.step(key, state_f, act, params)
    values = (np.asarray(state.values0), np.asarray(state.values1))
    for i, agent in enumerate(plain.agents):
        p, f = np.asarray(obs_p[agent]), np.asarray(obs_f[agent])
        np.testing.assert_array_equal(f[:BASE], p[:BASE])
        np.testing.assert_array_equal(f[BASE + 3:], p[BASE:])  # the history, unchanged
        np.testing.assert_allclose(f[BASE:BASE + 3], values[1 - i] / 10.0, rtol=1e-6)
        np.testing.assert_allclose(
            [f[BUNDLES_OBS_INDEX[f"own_value_{k}"]] for k in range(3)], values[i] / 10.0,
            rtol=1e-6)
    assert np.asarray(obs_f["supplier"][BASE:BASE + 3]).tolist() != \
        np.asarray(obs_f["retailer"][BASE:BASE + 3]).tolist()


def test_the_option_is_validated_and_flows_through_the_registry_and_the_config():
    with pytest.raises(FieldError, match="observe_other_values must be a bool"):
        BundlesEnv(observe_other_values="yes")
    spec = get_game("bundles")
    assert "observe_other_values" in spec.env_options
    assert spec.env(observe_other_values=True).obs_size == BundlesEnv(2, True).obs_size
    config = PPOConfig(game="bundles", num_history=3,
                       env_options={"observe_other_values": True})
    env = config.make_env()
    assert env.observe_other_values and env.num_history == 3
    assert PPOConfig(game="bundles").make_env().observe_other_values is False
    with pytest.raises(ValueError, match="env_options must be a dict with keys among"):
        PPOConfig(game="bundles", env_options={"no_such_option": True})
    with pytest.raises(ValueError, match="observe_other_values must be a bool"):
        PPOConfig(game="bundles", env_options={"observe_other_values": 2})
    with pytest.raises(ValueError, match="env_options"):
        PPOConfig(game="price-quantity", env_options={"observe_other_values": True})


# ----------------------------------------------------------------------------- eqx solve
def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["solve", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize(("instance", "turns", "discount", "prob_end"), [
    ("1,2,3 8,1,0 4,0,2", 3, 1.0, 0.0),
    ("3,1,1 0,8,2 2,1,3", 4, 0.58, 0.1),
    ("2,2,1 1,2,4 1,0,8", 10, 0.9, 0.3),
])
def test_json_is_the_solver_result(capsys, instance, turns, discount, prob_end):
    rc, out, _ = run(capsys, "--game", "bundles", "--instance", instance, "--max-turns",
                     str(turns), "--discount", str(discount), "--prob-end", str(prob_end),
                     "--json")
    assert rc == 0
    d = json.loads(out)
    assert set(d) == {"game", "settings", "outcome", "returns", "agreement", "plan",
                      "explanation"}
    (pool,), (values,) = parse_instances(instance)
    ref = solve_spe(pool, values, turns, discount, prob_end)
    assert d["settings"] == {"instance": instance, "pool": pool.tolist(),
                             "values": values.tolist(), "max_turns": turns,
                             "discount": discount, "prob_end": prob_end}
    assert [d["returns"]["supplier"], d["returns"]["retailer"]] == pytest.approx(ref.returns)
    assert d["outcome"] == "agreement" and ref.agreement
    ag = d["agreement"]
    assert ag["offer"] == ref.offer.tolist() and ag["turn"] == ref.turn
    assert ag["offer_turn"] == ref.offer_turn == ref.turn - 1
    assert ag["proposer"] == ("supplier", "retailer")[ref.proposer]
    assert [ag["shares"]["supplier"], ag["shares"]["retailer"]] == ref.shares.tolist()
    assert [ag["values"]["supplier"], ag["values"]["retailer"]] == pytest.approx(ref.values)
    assert ag["pareto_optimal"] == ref.pareto_optimal
    assert ag["max_welfare"] == max_welfare(pool, values)
    assert len(d["plan"]) == turns
    for k, (row, (offer, value)) in enumerate(zip(d["plan"], ref.plan, strict=True), start=1):
        assert row["turn"] == k and row["mover"] == ("supplier", "retailer")[(k - 1) % 2]
        assert row["keeps"] == offer.tolist() and row["value"] == pytest.approx(value)
        assert row["gives"] == (pool - offer).tolist()
    moves = [row["on_path_move"] for row in d["plan"]]
    assert moves[:ref.turn] == ["offer"] * ref.offer_turn + ["accept"]
    assert all(m is None for m in moves[ref.turn:])
    assert len(d["explanation"]) >= 4


def test_hand_computed_examples(capsys):
    """docs/games.md's examples: the last responder accepts anything, so its opponent keeps
    everything it values at max_turns 2 (player 0) and at max_turns 3 (player 1)."""
    rc, out, _ = run(capsys, "--game", "bundles", "--max-turns", "2", "--json")
    d = json.loads(out)
    assert rc == 0 and d["returns"] == {"supplier": 10.0, "retailer": 6.0}
    assert d["settings"]["instance"] == "1,2,3 8,1,0 4,0,2" and d["settings"]["discount"] == 1.0
    rc, out, _ = run(capsys, "--game", "bundles", "--max-turns", "3", "--json")
    assert json.loads(out)["returns"] == {"supplier": 2.0, "retailer": 10.0}


def test_text_output(capsys):
    rc, out, _ = run(capsys, "--game", "bundles", "--instance", "3,1,1 0,8,2 2,1,3",
                     "--max-turns", "3", "--discount", "0.58")
    assert rc == 0
    assert "supplier keeps (0, 1, 1) (made at turn 1, accepted at turn 2)" in out
    assert "Per-turn plan" in out and "Explanation:" in out and ">= 5.8" in out
    assert "worth 6 to the retailer, at least the 5.8 it would get by countering" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--instance", "1,2"], "--instance: instances line 1 must be"),
    (["--instance", "8,1,1 1,1,1 1,1,1"], "--instance: instances line 1: pool[0] must be an "
                                          "integer in [0, 7], got 8"),
    (["--instance", "1,2,3 8,1,0 4,0,2\n1,2,3 8,1,0 4,0,2"], "--instance must be one instance"),
    (["--max-turns", "0"], "--max-turns must be an integer in [1, 1000], got 0"),
    (["--prob-end", "1.5"], "--prob-end must be in [0, 1], got 1.5"),
    (["--discount", "1.5"], "--discount must be in [0, 1], got 1.5"),
    (["--discount", "0.9", "0.8"], "the bundles game has one discount"),
    (["--rounds", "5"], "--rounds does not apply to --game bundles (use --max-turns)"),
    (["--reward", "discounted"], "--reward does not apply to --game bundles"),
    (["--unit-cost", "50"], "--unit-cost does not apply to --game bundles"),
    (["--supplier-value", "50"], "--supplier-value does not apply to --game bundles"),
])
def test_bad_options_name_the_option(capsys, argv, message):
    rc, out, err = run(capsys, "--game", "bundles", *argv)
    assert rc == 2 and out == ""
    assert message in err


def test_bundles_options_are_refused_with_the_other_games(capsys):
    rc, _, err = run(capsys, "--game", "price-quantity", "--instance", "1,2,3 8,1,0 4,0,2")
    assert rc == 2 and "--instance does not apply to --game price-quantity" in err
    with pytest.raises(SystemExit):
        main(["solve", "--game", "bundles", "--discount", "0.9", "0.9", "0.9"])


def test_one_discount_value_means_both_in_the_other_games(capsys):
    rc, one, _ = run(capsys, "--game", "price-quantity", "--reward", "discounted",
                     "--discount", "0.9", "--json")
    rc2, two, _ = run(capsys, "--game", "price-quantity", "--reward", "discounted",
                      "--discount", "0.9", "0.9", "--json")
    assert rc == rc2 == 0 and json.loads(one) == json.loads(two)


# ------------------------------------------------------------------------- the SPE keys
def _spe_player(params, env: BundlesEnv):
    """A complete-information policy that plays each instance's SPE path: it finds the
    instance from the observation (pool and both value vectors), offers the solver's plan offer
    of the turn and accepts at the SPE's turn."""
    table = np.asarray(params.table)
    spes = [solve_spe(r[:3], r[3:].reshape(2, 3), int(params.max_turns),
                      float(params.discount), float(params.prob_end)) for r in table]
    plan = jnp.asarray(np.stack([[o for o, _ in s.plan] for s in spes]), jnp.float32)
    turn = jnp.asarray([s.turn for s in spes])
    feats = jnp.asarray(np.stack([np.concatenate([table[:, :3], table[:, 3:6], table[:, 6:]], 1),
                                  np.concatenate([table[:, :3], table[:, 6:], table[:, 3:6]], 1)]),
                        jnp.float32)  # (2 roles, N, 9): pool, own values, other values
    ix = BUNDLES_OBS_INDEX

    def policy(key, obs, env_params):
        role = jnp.round(obs[ix["role"]]).astype(jnp.int32)
        mine = jnp.concatenate([obs[ix["pool_0"]:ix["pool_2"] + 1] * 7.0,
                                obs[ix["own_value_0"]:ix["own_value_2"] + 1] * 10.0,
                                obs[BASE:BASE + 3] * 10.0])
        n = jnp.argmin(jnp.sum(jnp.abs(feats[role] - mine), axis=1))
        k = jnp.round(obs[ix["round"]] * env_params.max_turns).astype(jnp.int32) + 1
        accept = (k == turn[n]) & (obs[ix["has_offer"]] > 0.5)
        return env.make_action(jnp.where(accept, 0, 1), plan[n, k - 1])

    return policy


def _greedy_supplier(env: BundlesEnv):
    """Player 0 keeps the whole pool; player 1 accepts anything."""
    ix = BUNDLES_OBS_INDEX

    def policy(key, obs, env_params):
        pool = obs[ix["pool_0"]:ix["pool_2"] + 1] * 7.0
        accept = obs[ix["has_offer"]] > 0.5
        return env.make_action(jnp.where(accept, 0, 1), jnp.round(pool))

    return policy


def _record(params, env, sup, ret, n=600, seed=0):
    rec = jax.jit(lambda k: play_batch(k, params, sup, ret, n, env))(jax.random.key(seed))
    return {k: np.asarray(v) for k, v in rec.items()}


def test_a_player_of_the_spe_scores_one_and_one_that_is_not_less():
    env, params = BundlesEnv(2, observe_other_values=True), _params()
    spe = _spe_player(params, env)
    d = bundles_spe_distance(_record(params, env, spe, spe), params)
    for key in ("spe_agreement_share", "spe_returns_share", "spe_turn_match",
                "spe_agreement_instances", "spe_returns_instances"):
        assert d[key] == 1.0, key
    assert d["spe_turn_error"] == 0.0 and d["spe_episodes"] == 600
    assert d["spe_supplier_return_error"] < 1e-4 and d["spe_retailer_return_error"] < 1e-4

    greedy = _greedy_supplier(env)
    rec = _record(params, env, greedy, greedy)
    d = bundles_spe_distance(rec, params)
    table = np.asarray(params.table)
    hits = [np.array_equal(solve_spe(r[:3], r[3:].reshape(2, 3), **SETTINGS).shares[0], r[:3])
            for r in table]  # where keeping everything is the SPE split
    expected = np.mean([hits[int(i)] for i in rec["instance"]])
    assert d["spe_agreement_share"] == pytest.approx(expected) and expected < 1.0
    assert d["spe_turn_match"] == 1.0  # a deal at turn 2, as every SPE deal here
    # a non-SPE proposer against the SPE path player: off the SPE too
    d = bundles_spe_distance(_record(params, env, greedy, spe), params)
    assert d["spe_agreement_share"] < 1.0


def test_same_returns_is_not_same_split():
    """Two splits worth the same to both (items 0 and 1 alike): the mirrored split has the
    SPE's returns but not its items."""
    params = make_bundles_params(instances="1,1,1 4,4,2 3,3,4\n", max_turns=3, discount=0.58)
    spe = solve_spe([1, 1, 1], [[4, 4, 2], [3, 3, 4]], 3, 0.58)
    items = spe.shares[0].copy()
    items[[0, 1]] = items[[1, 0]]
    assert spe.shares[0].tolist() == [1, 0, 0] and items.tolist() == [0, 1, 0]
    rec = {"instance": np.zeros(2), "deal": np.ones(2), "round": np.full(2, 2.0),
           "chance_end": np.zeros(2), "supplier_reward": np.full(2, spe.values[0]),
           "retailer_reward": np.full(2, spe.values[1]),
           **{f"supplier_items_{k}": np.array([spe.shares[0][k], items[k]], float)
              for k in range(3)}}
    d = bundles_spe_distance(rec, params)
    assert d["spe_returns_share"] == 1.0 and d["spe_agreement_share"] == 0.5


def test_evaluate_reports_the_spe_keys(monkeypatch):
    """``evaluate_policies`` on a complete-information bundles config: the SPE keys of each
    mode (both players replaced by the scripted SPE player), the surplus, the flag."""
    config = PPOConfig(game="bundles", env={"instances": INSTANCES, **SETTINGS},
                       env_options={"observe_other_values": True}, num_history=2,
                       num_envs=16, num_steps=4, total_timesteps=64, num_minibatches=1)
    player = _spe_player(config.env_params, config.make_env())
    monkeypatch.setattr(evaluate_module, "resolve_policy", lambda *a, **k: player)
    out = evaluate_module.evaluate_policies(config, {}, jax.random.key(0), 300)
    assert out["complete_information"] is True
    assert out["mean_available_surplus"] == pytest.approx(np.mean(
        [max_welfare(p, v) for p, v in zip(*parse_instances(INSTANCES), strict=True)]))
    assert out["mean_available_surplus"] == bundles_mean_surplus(config.env_params)
    for mode in ("greedy", "stochastic"):
        assert out[mode]["spe_agreement_share"] == 1.0
        assert out[mode]["spe_returns_share"] == 1.0
    plain = PPOConfig(game="bundles", env={"instances": INSTANCES, **SETTINGS}, num_history=2,
                      num_envs=16, num_steps=4, total_timesteps=64, num_minibatches=1)
    assert evaluate_module._game_reference(plain)[0] is False


# --------------------------------------------------------------------------- the set
def test_spe_outcomes_holds_the_solver_outcome():
    for instance in INSTANCES.strip().split("\n"):
        (pool,), (values,) = parse_instances(instance)
        for turns, discount in ((2, 1.0), (3, 0.58), (4, 0.9)):
            ref = solve_spe(pool, values, turns, discount)
            outcomes = spe_outcomes(pool, values, turns, discount)
            assert any(abs(a - ref.values[0]) < 1e-6 and abs(b - ref.values[1]) < 1e-6
                       and t == ref.turn for a, b, t in outcomes)
    # the ultimatum game (max_turns 2): the responder is indifferent at an offer worth 0, so
    # "accept" and "reject" are both subgame perfect: more than one outcome
    assert len(spe_outcomes([1, 2, 3], [[8, 1, 0], [4, 0, 2]], 2, 1.0)) > 1


def test_the_config_holds_the_clear_instances():
    d = yaml.safe_load(open(CONFIG, encoding="utf-8"))
    assert d["env_options"] == {"observe_other_values": True}
    pools, values = parse_instances(d["env"]["instances"])
    rows = clear_instances(d["env"]["max_turns"], d["env"]["discount"], len(pools))
    np.testing.assert_array_equal(pools, rows[:, :3])
    np.testing.assert_array_equal(values.reshape(-1, 6), rows[:, 3:])
    for p, v in zip(pools, values, strict=True):
        assert len(spe_outcomes(p, v, d["env"]["max_turns"], d["env"]["discount"])) == 1


def test_the_quality_table_reports_both_shares():
    from scripts.quality_bundles import markdown

    inst = {"pool": [3, 1, 1], "values": [[0, 8, 2], [2, 1, 3]], "spe_split": [0, 1, 1],
            "spe_turn": 2, "spe_values": [10.0, 6.0], "played_deal": True,
            "played_split": [0, 1, 0], "played_turn": 2, "played_values": [8.0, 9.0],
            "spe_agreement_share": 0.0, "spe_returns_share": 0.0}
    greedy = {"spe_agreement_share": 0.5, "spe_returns_share": 0.75, "deal_rate": 1.0,
              "mean_rounds": 2.0, "spe_turn": 2.0, "pareto_optimal": 0.9,
              "supplier_reward": 7.0, "retailer_reward": 7.5, "spe_supplier_return": 7.8,
              "spe_retailer_return": 7.2}
    row = {"setting": "s", "train_steps": 1000, "instances_at_spe_split": 0.9,
           "instances_at_spe_returns": 0.95, "greedy": greedy,
           "per_instance": [inst, {**inst, "played_split": [0, 1, 1], "played_values":
                                   [10.0, 6.0], "spe_agreement_share": 1.0,
                                   "spe_returns_share": 1.0}]}
    table = markdown([row])
    assert "| s | 1,000 | 90 % (95 %) | 50.0 % (75.0 %) |" in table
    assert "| `3,1,1 0,8,2 2,1,3` | (0, 1, 1) at turn 2 | 10 / 6 | (0, 1, 0) at turn 2 | " \
           "8 / 9 | no |" in table
    assert table.count("| yes |") == 1
