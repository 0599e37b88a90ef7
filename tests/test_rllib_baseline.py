"""Smoke test of the Ray RLlib PPO baseline (baselines/rllib_ppo.py): runs only if ray is installed.

It checks that a tiny run (quick=True: 2 iterations of 256 env steps) returns a well-formed
result and that Ray is shut down afterwards. It never asserts a speed. ~20-40 s on 2 cores, most
of it starting Ray.
"""

from __future__ import annotations

import json
import math

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("torch")
pytest.importorskip("psutil")

from baselines.rllib_ppo import AGENTS, DEFAULTS, resolve_settings, run_rllib  # noqa: E402

KEYS = ("rllib_env_steps_per_s", "env_steps", "train_seconds", "iterations", "setup_s",
        "time_to_quality_s", "steps_to_quality", "final_deal_rate", "curve", "peak_rss_mb",
        "versions", "hyperparameters", "action_encoding", "num_env_runners")


def _rate_ok(x) -> bool:
    return x is None or 0.0 <= x <= 1.0


def test_quick_run_is_well_formed():
    result = run_rllib(seconds=60.0, quick=True, seed=0)
    assert not ray.is_initialized()
    for key in KEYS:
        assert key in result, key
    json.dumps(result)  # JSON-able

    sps = result["rllib_env_steps_per_s"]
    assert math.isfinite(sps) and sps > 0
    assert result["env_steps"] > 0 and result["train_seconds"] > 0
    assert result["setup_s"] > 0
    assert 1 <= result["iterations"] <= 2
    assert result["num_env_runners"] == DEFAULTS["num_env_runners"]
    assert math.isfinite(result["peak_rss_mb"]) and result["peak_rss_mb"] > 0
    assert set(result["versions"]) == {"ray", "torch", "gymnasium", "pettingzoo", "python"}
    hp = result["hyperparameters"]
    assert hp["lr"] == 3e-4 and hp["gamma"] == 0.99 and hp["clip_param"] == 0.2
    assert hp["hidden"] == [32] and hp["quick"] is True
    assert hp["minibatch_size"] == hp["train_batch_size"] // 2
    assert hp["reward_scale"] == pytest.approx(10.0 / 10000.0)
    assert isinstance(result["action_encoding"], str) and result["action_encoding"]

    curve = result["curve"]
    assert len(curve) == result["iterations"]
    steps = [p["env_steps"] for p in curve]
    assert steps == sorted(steps) and steps[-1] == result["env_steps"]
    for point in curve:
        assert point["episodes"] > 0  # 256-step batches of 1-10 step episodes
        assert _rate_ok(point["deal_rate"]) and point["deal_rate"] is not None
        assert _rate_ok(point["walk_rate"]) and _rate_ok(point["timeout_rate"])
        assert point["deal_rate"] + point["walk_rate"] + point["timeout_rate"] == pytest.approx(1)
        assert 1.0 <= point["mean_rounds"] <= hp["game"]["max_rounds"]
        assert set(point["mean_reward"]) == set(AGENTS)
        assert all(math.isfinite(r) for r in point["mean_reward"].values())
    assert _rate_ok(result["final_deal_rate"])
    assert result["final_deal_rate"] == curve[-1]["deal_rate"]
    if result["time_to_quality_s"] is None:
        assert result["steps_to_quality"] is None
    else:
        assert result["steps_to_quality"] > 0


def test_settings_are_validated():
    with pytest.raises(ValueError, match="unknown setting"):
        resolve_settings(learning_rate=1e-3)
    with pytest.raises(ValueError, match="network"):
        resolve_settings(network="lstm")
    with pytest.raises(ValueError, match="max_rounds"):
        resolve_settings(env={"max_rounds": 0})
    assert resolve_settings(quick=True)["train_batch_size"] < DEFAULTS["train_batch_size"]


def test_role_features_match_the_jax_network_inputs():
    """The RLlib module's torch copy of eqx_jax.ppo.role_features (a torch network needs a torch
    function) must stay identical to ours, constant included."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("ray")
    import jax
    import numpy as np

    from baselines import rllib_ppo
    from eqx_jax import ppo
    from eqx_jax.env import BargainingEnv, EnvParams

    assert rllib_ppo.FEATURE_SCALE == ppo.FEATURE_SCALE
    env, params = BargainingEnv(), EnvParams()
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(0), 64), params)
    counter = {"action_type": np.ones(64, np.int32), "price": np.full(64, 6500.0, np.float32)}
    obs, *_ = jax.vmap(env.step, (0, 0, 0, None))(
        jax.random.split(jax.random.key(1), 64), state,
        {"supplier": counter, "retailer": counter}, params)
    for agent_obs in obs.values():  # a standing offer now exists: every feature is non-zero
        x = np.array(agent_obs)  # a writable copy for torch
        np.testing.assert_allclose(
            rllib_ppo.role_features(torch.from_numpy(x)).numpy(),
            np.asarray(ppo.role_features(agent_obs)), rtol=1e-6, atol=1e-6)
