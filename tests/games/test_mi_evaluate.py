"""``eqx evaluate`` on the multi-issue game (``evaluate_policies`` -> ``evaluate_game_policies``):
the distances from the SPE, with scripted players (the trained pair replaced by a policy that
plays a given opening offer and accepts it), so every figure is known by hand; and the quality
script's target rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqx_jax.evaluate as evaluate_mod
from eqx_jax.env import ACCEPT, COUNTER
from eqx_jax.games.multi_issue import MI_OBS_INDEX, solve_scenario_spe, utilities
from eqx_jax.ppo import PPOConfig
from eqx_jax.references import MI_SPE_EPISODES
from scripts.quality_multi_issue import meets_target

EPISODES = 128


def opening_policy(offer):
    """Counter ``offer`` when there is no standing offer (the supplier in round 1), else
    accept (the retailer in round 2): a deal on ``offer`` in round 2."""
    offer = jnp.asarray(offer, jnp.float32)

    def policy(key, obs, env_params):
        first = obs[MI_OBS_INDEX["has_offer"]] < 0.5
        return {"action_type": jnp.where(first, COUNTER, ACCEPT).astype(jnp.int32),
                "offer": offer}

    return policy


def evaluate_scripted(monkeypatch, scenario: str, offer) -> dict:
    policy = opening_policy(offer)
    monkeypatch.setattr(evaluate_mod, "resolve_policy", lambda *a, **k: policy)
    config = PPOConfig(game="multi-issue", scenario=scenario)
    return evaluate_mod.evaluate_policies(config, {}, jax.random.key(0), EPISODES)


def test_playing_the_spe_is_distance_zero(monkeypatch):
    spe = solve_scenario_spe("integrative-4-fixed")
    ev = evaluate_scripted(monkeypatch, "integrative-4-fixed", spe.agreement)
    assert ev["complete_information"]
    assert ev["spe"]["offer"] == list(spe.agreement) and ev["spe"]["round"] == 2
    assert ev["spe"]["agreement"]["support_level"] == "standard"
    for mode in ("greedy", "stochastic"):
        m = ev[mode]
        assert m["deal_rate"] == 1.0 and m["spe_episodes"] == EPISODES
        assert m["spe_round_match"] == 1.0 and m["spe_round_error"] == 0.0
        assert m["spe_supplier_utility_rel_error"] < 1e-6
        assert m["spe_retailer_utility_rel_error"] < 1e-6
        assert m["spe_utility_within_2pct"] == 1.0
        assert m["spe_supplier_payoff_error"] < 1e-4 and m["spe_retailer_payoff_error"] < 1e-4
        assert m["spe_supplier_utility"] == pytest.approx(spe.utilities[0])


def test_a_tied_offer_is_a_retailer_utility_error(monkeypatch):
    # integrative-4-fixed: (top price, 0 days, delivery index 2, premium) is worth the same
    # 0.8333 to the supplier as the SPE's offer (7/9 + (1/2) / 9 either way), but 4/9 * 1/2 +
    # 3/9 = 5/9 to the retailer instead of 11/18: a relative error of (1/18) / (11/18) = 1/11.
    ev = evaluate_scripted(monkeypatch, "integrative-4-fixed", (4, 0, 2, 2))
    m = ev["greedy"]
    assert m["retailer_utility"] == pytest.approx(5 / 9, abs=1e-6)
    assert m["spe_supplier_utility_rel_error"] < 1e-6
    assert m["spe_retailer_utility_rel_error"] == pytest.approx(1 / 11, abs=1e-5)
    assert m["spe_utility_within_2pct"] == 0.0 and m["spe_round_match"] == 1.0
    # The payoff gap is the seed reward of the utility gap in round 2: 100 (1/18) (1 - 2/10)^2.
    assert m["spe_retailer_reward_gap"] == pytest.approx(-100 / 18 * 0.64, abs=1e-3)


def test_private_weights_are_measured_against_each_episodes_full_info_spe(monkeypatch):
    offer = (2, 1, 2, 1)
    ev = evaluate_scripted(monkeypatch, "integrative-4", offer)
    assert not ev["complete_information"] and "spe" not in ev
    m = ev["greedy"]
    assert m["full_info_spe_episodes"] == min(MI_SPE_EPISODES, EPISODES)
    assert not any(k.startswith("spe_") for k in m)
    for key in ("round", "round_match", "supplier_utility_rel_error", "utility_within_2pct",
                "supplier_payoff", "retailer_reward_gap"):
        assert np.isfinite(m[f"full_info_spe_{key}"]), key
    # Each episode's SPE differs with its drawn weights, so the mean SPE utility is not the
    # SPE at the prior means, and a fixed offer is not within 2 % of every episode's SPE.
    at_mean = solve_scenario_spe("integrative-4")
    assert m["full_info_spe_supplier_utility"] != pytest.approx(at_mean.utilities[0], abs=1e-6)
    assert m["full_info_spe_utility_within_2pct"] < 1.0


def test_recorded_weights_are_the_episodes(monkeypatch):
    # The recorded weights reproduce the env's utilities of the fixed deal in every episode.
    from eqx_jax.references import MIRecordingEnv, mi_record_draws
    from eqx_jax.simulate import play_batch

    offer = (10.5, 2, 1, 0)  # natural units: unit price 10.5, quantity 300, ...
    config = PPOConfig(game="multi-issue", scenario="supply-chain-4")
    env, p = MIRecordingEnv(config.make_env()), config.env_params
    pol = opening_policy(offer)
    rec = jax.jit(lambda k: play_batch(k, p, pol, pol, 64, env))(jax.random.key(3))
    w, r = mi_record_draws({k: np.asarray(v) for k, v in rec.items()}, env.offer_size)
    np.testing.assert_allclose(w.sum(axis=2), 1.0, rtol=1e-6)
    assert np.all((r >= 0.15) & (r <= 0.35)) and np.ptp(w[:, 0, 0]) > 0.01
    u = jax.vmap(lambda wi: utilities(jnp.asarray(offer, jnp.float32), wi, p))(
        jnp.asarray(w, jnp.float32))
    np.testing.assert_allclose(np.asarray(u[:, 0]), np.asarray(rec["supplier_utility"]),
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(u[:, 1]), np.asarray(rec["retailer_utility"]),
                               atol=1e-6)


def _row(complete, deal=1.0, s_err=0.01, r_err=0.01, pareto=0.97, exploit=0.03):
    return {"complete_information": complete, "exploitability_gain_share": exploit,
            "greedy": {"deal_rate": deal, "pareto_optimality": pareto,
                       "spe": {"supplier_utility_rel_error": s_err,
                               "retailer_utility_rel_error": r_err}}}


@pytest.mark.parametrize("row, met", [
    (_row(True), True), (_row(True, r_err=0.021), False), (_row(True, deal=0.99), False),
    (_row(True, s_err=float("nan")), False),
    (_row(False, deal=0.96), True), (_row(False, deal=0.95), False),
    (_row(False, pareto=0.949), False), (_row(False, exploit=0.051), False),
])
def test_quality_targets(row, met):
    assert meets_target(row) is met
