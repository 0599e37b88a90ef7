"""Trained agents against the truth (eqx_jax/evaluate.py) and PPO against a fixed policy.

CPU budget: compile time dominates. No self-play training here: the "trained" policies are
random-init networks whose action-type bias is set by hand (greedy: accept any standing offer,
else counter at ~max_price / 2), which makes the greedy outcome exactly predictable. One
compilation each for evaluate_policies, the tournament and exploitability (both best responses
train in one run); the fixed-policy opponent is checked against the named negotiator by comparing
the traced training programs (identical programs give bitwise identical results).
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.env import AGENTS, BargainingEnv, make_params
from eqx_jax.equilibrium import solve_spe
from eqx_jax.evaluate import (
    best_response_config,
    evaluate_policies,
    exploitability,
    mean_available_surplus,
    tournament_vs_negotiators,
)
from eqx_jax.negotiators import NEGOTIATORS
from eqx_jax.ppo import (
    PPOConfig,
    init_network,
    make_train,
    make_train_chunked,
    warm_start,
)

FIXED = {"supplier_low": 5000, "supplier_high": 5000, "retailer_low": 8000, "retailer_high": 8000}
# The learning tests were tuned with these knobs (separate networks, the Beta head, more gradient
# work per env step than the throughput-oriented defaults).
TUNED = dict(update_epochs=4, num_minibatches=4, hidden=(64, 64), price_head="beta",
             shared_network=False, explore_starts=0.0, anneal_lr=False, anneal_ent=False)
CFG = PPOConfig(**TUNED, num_envs=64, num_steps=16, total_timesteps=64 * 16 * 30, env=FIXED)


def _pushover_params(config: PPOConfig = CFG) -> dict:
    """Untrained networks whose greedy play is: accept any standing offer, else counter at
    ~max_price / 2 (the price head starts at mode sigmoid(~0) = 0.5); never walk away."""
    obs_size = BargainingEnv(config.num_history).obs_size
    params = {}
    for i, role in enumerate(AGENTS):
        p = init_network(jax.random.key(10 + i), config.hidden, obs_size)
        p["params"]["type_logits"]["bias"] = jnp.array([1.0, 0.0, -1.0])  # ACCEPT > COUNTER
        params[role] = p
    return params


def _snapshot(tree) -> list[np.ndarray]:
    return [np.array(x) for x in jax.tree.leaves(tree)]


# ------------------------------------------------------------------- evaluate_policies
def test_evaluate_policies_greedy_stochastic_and_spe_distances():
    cfg = PPOConfig(**TUNED, num_envs=64, num_steps=16, total_timesteps=64 * 16 * 30)  # U priors
    ev = evaluate_policies(cfg, _pushover_params(cfg), jax.random.key(1), num_episodes=1000,
                           supplier_value=5000, retailer_value=8000)
    json.dumps(ev)  # JSON-ready
    assert ev["complete_information"] and ev["num_episodes"] == 1000
    assert (ev["supplier"], ev["retailer"]) == ("ppo", "ppo")
    assert (ev["supplier_value"], ev["retailer_value"]) == (5000.0, 8000.0)
    assert ev["mean_available_surplus"] == pytest.approx(3000.0)
    keys = ("deal_rate", "mean_rounds", "nash_distance", "pareto_score", "negotiation_efficiency",
            "supplier_share", "supplier_reward", "retailer_reward", "spe_price_error",
            "spe_price_rel_error", "spe_round_error", "spe_supplier_payoff_error",
            "spe_retailer_payoff_error")
    for mode in ("greedy", "stochastic"):
        for k in keys:
            assert math.isfinite(ev[mode][k]), (mode, k)
    # The SPE of the seed game 5000/8000, T = 10 (solve_spe's own test values).
    spe = solve_spe(5000.0, 8000.0, 10)
    assert ev["spe"]["price"] == pytest.approx(6695.3125) == spe.price
    assert ev["spe"]["round"] == 2 == spe.round
    assert ev["spe"]["supplier_payoff"] == pytest.approx(spe.supplier_payoff)
    assert ev["spe"]["retailer_payoff"] == pytest.approx(spe.retailer_payoff)
    assert ev["nbs"]["price"] == pytest.approx(6500.0)
    # Greedy: the supplier opens at ~5000 in round 1, the retailer accepts in round 2.
    g = ev["greedy"]
    assert g["deal_rate"] == 1.0 and g["mean_rounds"] == 2.0
    assert g["mean_price"] == pytest.approx(5000.0, abs=50.0)
    assert g["spe_price_error"] == pytest.approx(spe.price - g["mean_price"], rel=1e-6)
    assert g["spe_price_rel_error"] == pytest.approx(g["spe_price_error"] / spe.price)
    assert g["spe_round_error"] == 0.0
    assert g["spe_supplier_payoff_error"] == pytest.approx(
        abs(g["supplier_reward"] - spe.supplier_payoff))
    assert g["supplier_reward"] == pytest.approx((g["mean_price"] - 5000) * 0.64 + 5, abs=0.1)
    assert g["retailer_reward"] == pytest.approx((8000 - g["mean_price"]) * 0.64 + 5, abs=0.1)
    # Stochastic play differs (it sometimes walks away or delays).
    s = ev["stochastic"]
    assert s["deal_rate"] < 1.0 and s["mean_rounds"] != g["mean_rounds"]


def test_evaluate_policies_validates_values_and_surplus_is_exact():
    with pytest.raises(ValueError, match=r"supplier_value must be in \[0, 10000\]"):
        evaluate_policies(CFG, _pushover_params(), jax.random.key(0), supplier_value=-1.0)
    with pytest.raises(ValueError, match=r"num_episodes must be an integer >= 1"):
        evaluate_policies(CFG, _pushover_params(), jax.random.key(0), num_episodes=0)
    assert mean_available_surplus(make_params(**FIXED)) == pytest.approx(3000.0)
    assert mean_available_surplus(make_params()) == pytest.approx(3000.0)  # no overlap
    no_gains = make_params(supplier_low=6000, supplier_high=7000, retailer_low=5000,
                           retailer_high=6000)
    assert mean_available_surplus(no_gains) == 0.0
    # Overlapping priors against a large Monte Carlo sample.
    p = make_params(supplier_low=3000, supplier_high=7000, retailer_low=5000, retailer_high=6000)
    rng = np.random.default_rng(0)
    vs, vr = rng.uniform(3000, 7000, 2_000_000), rng.uniform(5000, 6000, 2_000_000)
    assert mean_available_surplus(p) == pytest.approx(np.maximum(vr - vs, 0).mean(), rel=3e-3)
    fixed_s = make_params(supplier_low=5500, supplier_high=5500, retailer_low=5000,
                          retailer_high=6000)
    assert mean_available_surplus(fixed_s) == pytest.approx(500 ** 2 / 2 / 1000)


# ------------------------------------------------------------------------- tournament
def test_tournament_rows_both_roles_with_confidence_intervals():
    rows = tournament_vs_negotiators(CFG, _pushover_params(), jax.random.key(2),
                                     num_episodes=200)
    json.dumps(rows)
    assert len(rows) == 2 * len(NEGOTIATORS)
    assert [r["retailer"] for r in rows[:len(NEGOTIATORS)]] == list(NEGOTIATORS)
    assert all(r["supplier"] == "ppo" and r["ppo_role"] == "supplier"
               for r in rows[:len(NEGOTIATORS)])
    assert [r["supplier"] for r in rows[len(NEGOTIATORS):]] == list(NEGOTIATORS)
    assert all(r["retailer"] == "ppo" for r in rows[len(NEGOTIATORS):])
    for r in rows:
        assert r["episodes"] == 200 and 0.0 <= r["deal_rate"] <= 1.0
        for side in AGENTS:
            lo, mean, hi = (r[f"{side}_reward_ci_low"], r[f"{side}_reward"],
                            r[f"{side}_reward_ci_high"])
            assert lo <= mean <= hi and math.isfinite(lo) and math.isfinite(hi)
    by = {(r["supplier"], r["retailer"]): r for r in rows}
    # The pushover accepts any first offer: against the midpoint supplier (asks the midpoint of
    # its value and its belief, (5000 + 8000) / 2) the deal is at 6500 in round 2, every time.
    mid = by[("midpoint", "ppo")]
    assert mid["deal_rate"] == 1.0 and mid["mean_price"] == pytest.approx(6500.0)
    assert mid["supplier_reward_ci_low"] == pytest.approx(mid["supplier_reward_ci_high"])
    # The random retailer is random: a CI of positive width.
    rnd = by[("ppo", "random")]
    assert rnd["supplier_reward_ci_low"] < rnd["supplier_reward_ci_high"]


# ----------------------------------------------------------------------- exploitability
def test_exploitability_of_a_pushover_is_large_and_frozen_params_unchanged():
    params = _pushover_params()
    before = _snapshot(params)
    ex = exploitability(CFG, params, jax.random.key(3), num_episodes=500)
    json.dumps(ex)
    after = _snapshot(params)  # the frozen networks were constants, never updated
    assert len(after) == len(before)
    assert all(np.array_equal(a, b) for a, b in zip(after, before, strict=True))
    assert ex["total_timesteps"] == CFG.total_timesteps and ex["num_seeds"] == 1
    assert ex["mean_available_surplus"] == pytest.approx(3000.0)
    for side in AGENTS:
        r = ex[side]
        assert r["trained"] == r["frozen_opponent"] == "ppo"
        assert r["gain"] == pytest.approx(r["best_response_reward"] - r["trained_reward"])
        assert r["gain_share"] == pytest.approx(r["gain"] / 3000.0)
        assert math.isfinite(r["best_response_train_return"])
    # Self-play of the pushovers: deal at ~5000 in round 2 (supplier 5 + a little).
    assert ex["supplier"]["trained_reward"] == pytest.approx(5.0, abs=50.0)
    # The supplier's best response asks far more of a retailer that accepts anything
    # (the optimum asks max_price: (10000 - 5000) * 0.64 + 5 = 3205).
    assert ex["supplier"]["gain"] > 1000.0 and ex["supplier"]["gain_share"] > 0.3
    assert ex["supplier"]["best_response_mean_price"] > 7000.0
    assert ex["max_gain"] == max(ex["supplier"]["gain"], ex["retailer"]["gain"])
    assert ex["max_gain_share"] == pytest.approx(ex["max_gain"] / 3000.0)
    assert ex["retailer"]["gain"] > -50.0  # a lower bound; here it should not lose


def test_best_response_config_gives_each_side_the_original_budget():
    br = best_response_config(CFG, total_timesteps=64 * 16 * 5, num_seeds=2)
    assert (br.opponent, br.ppo_roles, br.shared_network) == ("policy", "both", False)
    assert br.num_envs == 2 * CFG.num_envs and br.num_updates == 5 and br.num_seeds == 2
    assert br.ppo_envs("supplier").sum() == CFG.num_envs == br.ppo_envs("retailer").sum()
    assert (br.lr, br.hidden, br.env) == (CFG.lr, CFG.hidden, CFG.env)


# ------------------------------------------------------- ppo.py: a fixed policy opponent
def test_fixed_policy_opponent_is_the_same_program_as_the_named_negotiator():
    small = dict(num_envs=16, num_steps=8, total_timesteps=16 * 8 * 2, num_minibatches=2,
                 update_epochs=1, hidden=(16,), ppo_roles="supplier", env=FIXED)
    conceder = NEGOTIATORS["conceder"]

    def wrapped(key, obs, env_params):
        return conceder(key, obs, env_params)

    key = jax.random.key(0)
    named = jax.make_jaxpr(make_train(PPOConfig(opponent="conceder", **small)))(key)
    as_policy = jax.make_jaxpr(make_train(PPOConfig(opponent="policy", **small),
                                          opponent_policy=wrapped))(key)
    # Identical traced programs: the same seed gives bitwise the same training run.
    assert str(as_policy) == str(named)
    other = jax.make_jaxpr(make_train(PPOConfig(opponent="policy", **small),
                                      opponent_policy=NEGOTIATORS["boulware"]))(key)
    assert str(other) != str(named)  # the given policy is the one that plays


def test_fixed_policy_opponent_validation():
    small = dict(num_envs=16, num_steps=8, total_timesteps=16 * 8, num_minibatches=2)
    with pytest.raises(ValueError, match=r"opponent='policy' needs an opponent_policy"):
        make_train_chunked(PPOConfig(opponent="policy", ppo_roles="supplier", **small))
    with pytest.raises(ValueError, match=r"opponent_policy was given but config.opponent is "
                                         r"'self'"):
        make_train(PPOConfig(**small), opponent_policy=NEGOTIATORS["linear"])
    with pytest.raises(ValueError, match=r"opponent_policy was given but config.opponent is "
                                         r"'linear'"):
        make_train(PPOConfig(opponent="linear", **small), opponent_policy=NEGOTIATORS["linear"])
    with pytest.raises(ValueError, match=r"opponent_policy must be a callable"):
        make_train(PPOConfig(opponent="policy", **small), opponent_policy="linear")
    with pytest.raises(ValueError, match=r"or 'policy' \(with an opponent_policy"):
        PPOConfig(opponent="nobody")
    with pytest.raises(ValueError, match=r"ppo_roles must be 'both' when opponent is 'self'"):
        PPOConfig(ppo_roles="retailer")
    assert PPOConfig(opponent="policy", ppo_roles="retailer", shared_network=False).learners == {
        "retailer": ("retailer",)}
    assert PPOConfig(opponent="policy", ppo_roles="retailer").learners == {
        "shared": ("retailer",)}


def test_best_responses_start_from_the_incumbent_weights_or_fresh():
    params = _pushover_params()
    br = best_response_config(CFG, total_timesteps=CFG.num_envs * CFG.num_steps, num_seeds=2)
    init, _ = make_train_chunked(br, opponent_policy=lambda k, o, p: {
        "action_type": jnp.zeros(o.shape[:-1], jnp.int32),
        "price": jnp.zeros(o.shape[:-1], jnp.float32)})
    runner = init(jax.random.key(0))
    warm = warm_start(runner, CFG, params, "incumbent")
    for role in AGENTS:
        for seed in range(2):
            got = jax.tree.map(lambda x, s=seed: x[s], warm.params[role])
            assert all(np.array_equal(a, b) for a, b in zip(
                jax.tree.leaves(got), jax.tree.leaves(params[CFG.network_for(role)]),
                strict=True))
    assert warm_start(runner, CFG, params, "fresh") is runner
    with pytest.raises(ValueError, match="br_init"):
        exploitability(CFG, params, jax.random.key(0), br_init="warm")
