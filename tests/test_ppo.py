"""Multi-agent PPO (eqx_jax/ppo/): config validation, the hybrid action's log-probability, the
action mask, the turn-taking advantage estimator, and short training runs (learning,
determinism, chunked == unchunked).

CPU budget: compile time, not run time, dominates; all self-play training tests share one small
config and its single compilation (every chunk length shares one program), plus one tiny run
against a fixed negotiator.
"""

from __future__ import annotations

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_jax.env import ACCEPT, COUNTER, OBS_INDEX, WALK_AWAY, BargainingEnv, make_params
from eqx_jax.ppo import (
    MASKED_LOGIT,
    ActorCritic,
    PPOConfig,
    _digamma_ge1,
    _lgamma_ge1,
    _mine_first,
    action_log_prob,
    evaluate,
    init_network,
    make_train_chunked,
    permutation,
    policy_action,
    price_entropy,
    price_log_prob,
    price_log_prob_and_entropy,
    sample_beta,
    seed_params,
    turn_based_gae,
    type_entropy,
    type_log_prob,
)

# ------------------------------------------------------------------------------ config
# The learning tests were tuned with these knobs (separate networks, the Beta head, more gradient
# work per env step than the throughput-oriented defaults).
TUNED = dict(update_epochs=4, num_minibatches=4, hidden=(64, 64), price_head="beta",
             shared_network=False, explore_starts=0.0, anneal_lr=False, anneal_ent=False)
CFG = PPOConfig(**TUNED, num_envs=64, num_steps=16, total_timesteps=64 * 16 * 48)  # 48 updates


def test_config_defaults_and_derived_values():
    cfg = PPOConfig()
    assert (cfg.lr, cfg.gamma, cfg.gae_lambda, cfg.clip_eps) == (3e-4, 0.99, 0.95, 0.2)
    assert (cfg.num_envs, cfg.num_steps, cfg.update_epochs, cfg.num_minibatches) == (2048, 8, 2, 2)
    assert cfg.hidden == (32,) and cfg.price_head == "tanh_normal" and cfg.opponent == "self"
    assert cfg.anneal_lr and cfg.anneal_ent and cfg.explore_starts == 0.3
    assert cfg.num_updates == 4_000_000 // (2048 * 8)
    assert cfg.learners == {"shared": ("supplier", "retailer")}
    assert PPOConfig(shared_network=False).learners == {"supplier": ("supplier",),
                                                        "retailer": ("retailer",)}
    solo = PPOConfig(opponent="boulware", ppo_roles="retailer", shared_network=False)
    assert solo.learners == {"retailer": ("retailer",)} and not solo.ppo_envs("supplier").any()
    split = PPOConfig(opponent="linear", num_envs=8)
    assert split.ppo_envs("supplier").tolist() == [True] * 4 + [False] * 4
    assert (split.ppo_envs("retailer") == ~split.ppo_envs("supplier")).all()
    assert PPOConfig(env={"max_rounds": 6}).env_params.max_rounds == 6


@pytest.mark.parametrize("overrides, message", [
    ({"lr": 0.0}, r"lr must be > 0"),
    ({"lr": float("nan")}, r"lr must be > 0"),
    ({"gamma": 1.5}, r"gamma must be in \[0, 1\]"),
    ({"gae_lambda": -0.1}, r"gae_lambda must be in \[0, 1\]"),
    ({"clip_eps": 0}, r"clip_eps must be > 0"),
    ({"ent_coef": -1.0}, r"ent_coef must be >= 0"),
    ({"max_grad_norm": 0.0}, r"max_grad_norm must be > 0"),
    ({"num_envs": 0}, r"num_envs must be an integer >= 1"),
    ({"num_steps": 2.5}, r"num_steps must be an integer >= 1"),
    ({"update_epochs": True}, r"update_epochs must be an integer >= 1"),
    ({"num_minibatches": 3}, r"num_minibatches must divide num_envs \* num_steps \(= 16384\)"),
    ({"total_timesteps": 100}, r"total_timesteps must be >= num_envs \* num_steps"),
    ({"hidden": ()}, r"hidden must be a non-empty tuple of integers >= 1"),
    ({"hidden": (64, 0)}, r"hidden must be a non-empty tuple of integers >= 1"),
    ({"price_head": "gaussian"}, r"price_head must be one of \['beta', 'tanh_normal'\]"),
    ({"opponent": "nobody"}, r"opponent must be 'self' or one of \['random', 'boulware'"),
    ({"ppo_roles": "supplier"}, r"ppo_roles must be 'both' when opponent is 'self'"),
    ({"ppo_roles": "buyer", "opponent": "linear"}, r"ppo_roles must be one of"),
    ({"opponent": "linear", "num_envs": 7, "num_minibatches": 1}, r"num_envs must be even"),
    ({"anneal_lr": "yes"}, r"anneal_lr must be a bool"),
    ({"num_seeds": 0}, r"num_seeds must be an integer >= 1"),
    ({"reward_scale": -1.0}, r"reward_scale must be > 0"),
    ({"explore_starts": 1.5}, r"explore_starts must be in \[0, 1\]"),
    ({"env": {"max_rounds": 0}}, r"max_rounds must be an integer in \[1, 1000\]"),
    ({"env": {"colour": 1}}, r"unknown game setting"),
])
def test_config_validation_names_field_and_range(overrides, message):
    with pytest.raises(ValueError, match=message):
        PPOConfig(**overrides)


def test_from_dict_rejects_unknown_keys_and_round_trips():
    with pytest.raises(ValueError, match=r"unknown PPOConfig key\(s\) \['learning_rate'\]; "
                                         r"allowed: \[.*'lr'.*\]"):
        PPOConfig.from_dict({"learning_rate": 1e-3})
    cfg = PPOConfig.from_dict({"lr": 1e-3, "hidden": [32], "env": {"max_rounds": 6}})
    assert cfg.hidden == (32,) and cfg.lr == 1e-3
    assert PPOConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="gamma must be in"):
        PPOConfig.from_dict({"gamma": 2})


# ----------------------------------------------------------- hybrid action log-probability
def _lbeta(a, b):
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def test_beta_price_log_prob_matches_closed_form_and_integrates_to_one():
    max_price = 10000.0
    m, s = 0.7, 1.3  # network outputs: mode sigmoid(m), concentration exp(s)
    pp = jnp.array([m, s], jnp.float32)
    mu, kappa = 1 / (1 + math.exp(-m)), math.exp(s)
    a, b = 1 + mu * kappa, 1 + (1 - mu) * kappa
    units = np.linspace(0.001, 0.999, 999)
    got = np.asarray(jax.jit(lambda u: price_log_prob(pp, u, "beta", max_price))(units))
    ref = [(a - 1) * math.log(u) + (b - 1) * math.log(1 - u) - _lbeta(a, b)
           - math.log(max_price) for u in units]
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5)
    # A density of the *scaled* price: integrates to 1 over [0, max_price].
    prices = units * max_price
    assert np.trapezoid(np.exp(got), prices) == pytest.approx(1.0, abs=2e-3)
    # The hand-written Beta agrees with distrax's (log-density on the unit interval, entropy).
    ref_u = distrax.Beta(a, b).log_prob(jnp.float32(0.3))
    assert float(price_log_prob(pp, 0.3, "beta", 1.0)) == pytest.approx(float(ref_u), abs=1e-5)
    assert float(price_entropy(pp, "beta")) == pytest.approx(
        float(distrax.Beta(a, b).entropy()), abs=1e-5)


def test_fast_lgamma_digamma_match_the_library_on_the_beta_heads_range():
    xs = np.concatenate([np.linspace(1.0, 30.0, 300), np.geomspace(30.0, 2.2e4, 60)])
    lg = np.asarray(jax.jit(_lgamma_ge1)(jnp.asarray(xs, jnp.float32)))
    dg = np.asarray(jax.jit(_digamma_ge1)(jnp.asarray(xs, jnp.float32)))
    ref_lg = np.array([math.lgamma(x) for x in xs])
    # float32 rounding of a value ~2e5 is ~0.02: compare relatively, as for jax.lax.lgamma.
    np.testing.assert_allclose(lg, ref_lg, rtol=3e-6, atol=2e-6)
    ref_dg = np.asarray(jax.lax.digamma(jnp.asarray(xs, jnp.float32)))
    np.testing.assert_allclose(dg, ref_dg, rtol=1e-5, atol=3e-6)
    # Its derivative (autodiff) is the trigamma function: psi'(1) = pi^2 / 6, psi'(x) ~ 1/x.
    tri = jax.grad(_digamma_ge1)
    assert float(tri(1.0)) == pytest.approx(math.pi ** 2 / 6, rel=1e-5)
    assert float(tri(1000.0)) == pytest.approx(1 / 1000 + 1 / (2 * 1000 ** 2), rel=1e-4)
    # One evaluation for the PPO loss gives the two separate functions' values.
    pp = jnp.array([[0.7, 1.3], [-2.0, 8.0]], jnp.float32)
    raw = jnp.array([0.3, 0.1], jnp.float32)
    for head in ("beta", "tanh_normal"):
        lp, ent = price_log_prob_and_entropy(pp, raw, head, 1e4)
        np.testing.assert_allclose(lp, price_log_prob(pp, raw, head, 1e4), rtol=1e-6)
        np.testing.assert_allclose(ent, price_entropy(pp, head), rtol=1e-6)


def test_tanh_normal_price_log_prob_matches_finite_difference_of_cdf():
    max_price = 10000.0
    mean, log_std = 0.3, -0.4
    pp = jnp.array([mean, log_std], jnp.float32)
    sd = math.exp(log_std)

    def cdf(price):  # P(max_price * (tanh(z) + 1) / 2 <= price), z ~ N(mean, sd)
        z = math.atanh(2 * price / max_price - 1)
        return 0.5 * (1 + math.erf((z - mean) / (sd * math.sqrt(2))))

    h = 0.5
    for price in (800.0, 3000.0, 5000.0, 6500.0, 9300.0):
        z = math.atanh(2 * price / max_price - 1)  # the stored raw sample
        got = math.exp(float(price_log_prob(pp, jnp.float32(z), "tanh_normal", max_price)))
        fd = (cdf(price + h) - cdf(price - h)) / (2 * h)
        assert got == pytest.approx(fd, rel=2e-3)


def _obs(has_offer: bool, my_turn: bool = True) -> jnp.ndarray:
    env = BargainingEnv()
    o = np.zeros(env.obs_size, np.float32)
    o[OBS_INDEX["own_value"]], o[OBS_INDEX["my_turn"]] = 0.5, float(my_turn)
    o[OBS_INDEX["has_offer"]] = o[OBS_INDEX["mask_accept"]] = float(has_offer and my_turn)
    o[OBS_INDEX["standing_offer"]] = 0.7 * has_offer
    o[OBS_INDEX["mask_counter"]] = o[OBS_INDEX["mask_walk"]] = 1.0
    return jnp.asarray(o)


def _init(hidden, seed):
    return jax.jit(init_network, static_argnums=(1, 2))(jax.random.key(seed), hidden,
                                                         BargainingEnv().obs_size)


def test_hybrid_log_prob_is_masked_log_softmax_plus_price_density_for_counters():
    net = ActorCritic((16,))
    params = _init((16,), 0)
    params["params"]["type_logits"]["bias"] = jnp.array([0.4, -0.2, 0.1])  # non-trivial
    log_prob = jax.jit(lambda lg, pp, a, raw: action_log_prob(lg, pp, a, raw, "beta", 1e4))
    for has_offer in (True, False):
        logits, pp, _ = jax.jit(net.apply)(params, _obs(has_offer))
        legal = np.array([has_offer, True, True])
        raw = np.asarray(logits, np.float64)[legal]
        ref_type = raw - np.log(np.exp(raw - raw.max()).sum()) - raw.max()
        if not has_offer:
            assert float(logits[ACCEPT]) == MASKED_LOGIT
        for a_type, ref in zip(np.flatnonzero(legal), ref_type, strict=True):
            raw = jnp.full((1,), 0.42, jnp.float32)  # one issue: the price
            got = float(log_prob(logits, pp, jnp.int32(a_type), raw))
            price_part = float(price_log_prob(pp, raw, "beta", 10000.0)[0])
            expected = ref + (price_part if a_type == COUNTER else 0.0)
            assert got == pytest.approx(expected, abs=1e-5)


def test_type_log_prob_and_entropy_match_distrax_with_masked_types():
    logits = jnp.array([[0.3, -1.2, 2.0], [MASKED_LOGIT, 0.5, -0.5], [MASKED_LOGIT, 40.0, -40.0]])
    reference = distrax.Categorical(logits=logits)
    for a_type in (0, 1, 2):
        actions = jnp.full((3,), a_type, jnp.int32)
        np.testing.assert_allclose(type_log_prob(logits, actions),
                                   reference.log_prob(actions), rtol=1e-6, atol=1e-6)
    entropy = type_entropy(logits)
    np.testing.assert_allclose(entropy, reference.entropy(), rtol=1e-6, atol=1e-6)
    assert float(entropy[2]) >= 0.0 and np.isfinite(np.asarray(entropy)).all()
    grads = jax.grad(lambda lg: jnp.sum(type_entropy(lg) + type_log_prob(lg, actions)))(logits)
    assert np.isfinite(np.asarray(grads)).all()
    assert np.all(np.asarray(grads)[1:, 0] == 0.0)  # a masked type gets no gradient


def test_masked_accept_is_never_sampled():
    params = _init((16,), 1)
    params["params"]["type_logits"]["bias"] = jnp.array([20.0, 0.0, 0.0])  # loves ACCEPT
    keys = jax.random.split(jax.random.key(2), 4000)
    sample = jax.jit(jax.vmap(lambda k, o: policy_action(params, o, k, config=PPOConfig(
        hidden=(16,)))["action_type"], (0, None)))
    no_offer = np.asarray(sample(keys, _obs(False)))
    assert not (no_offer == ACCEPT).any()
    assert set(np.unique(no_offer)) <= {COUNTER, WALK_AWAY}
    with_offer = np.asarray(sample(keys, _obs(True)))
    assert (with_offer == ACCEPT).mean() > 0.99  # the mask, not the network, did it
    # Greedy actions on a batch of fresh episodes (round 1: nothing to accept).
    env = BargainingEnv()

    @jax.jit
    def greedy(key):
        obs, _ = jax.vmap(env.reset, (0, None))(jax.random.split(key, 8), make_params())
        return policy_action(params, obs["retailer"], key, True, config=PPOConfig(hidden=(16,)))

    act = greedy(jax.random.key(0))
    assert act["action_type"].shape == (8,) and act["price"].shape == (8,)
    assert (np.asarray(act["action_type"]) != ACCEPT).all()
    assert ((0 <= np.asarray(act["price"])) & (np.asarray(act["price"]) <= 10000)).all()


def test_beta_sampler_matches_moments():
    a, b = jnp.full(40000, 2.0), jnp.full(40000, 5.0)
    x = np.asarray(jax.jit(sample_beta)(jax.random.key(3), a, b))
    assert x.min() > 0 and x.max() < 1
    assert x.mean() == pytest.approx(2 / 7, abs=3e-3)
    assert x.var() == pytest.approx(10 / (49 * 8), rel=3e-2)


# ------------------------------------------------------------------ minibatch shuffles
@pytest.mark.parametrize("n", [1, 2, 3, 10, 1000, 16384, 24577])
def test_permutation_is_a_permutation(n):
    perm = np.asarray(permutation(jax.random.key(n), n))
    assert perm.dtype == np.int32
    assert np.array_equal(np.sort(perm), np.arange(n))


@pytest.mark.parametrize("n", [6, 300])  # one round of random bits, two rounds
def test_permutation_is_uniform(n):
    """Over 6,000 keys, every element lands in every position equally often (chi-square), and
    the result is not ordered like the input (a tie kept in place would be)."""
    k = 6000
    perms = np.asarray(jax.jit(jax.vmap(lambda key: permutation(key, n)))(
        jax.random.split(jax.random.key(1), k)))
    positions = np.argsort(perms, axis=1)  # (k, n): where each element went
    for element in (0, n // 2, n - 1):
        counts = np.bincount(positions[:, element], minlength=n)
        expected = k / n
        chi2 = np.sum((counts - expected) ** 2 / expected)
        dof = n - 1  # chi-square mean dof, sd sqrt(2 dof): 6 sd is far outside chance
        assert chi2 < dof + 6 * math.sqrt(2 * dof), (element, chi2)
    # neighbours keep their order half the time (sd of the mean over k*(n-1) pairs ~ 0.006/0.001)
    kept = np.mean(positions[:, 1:] > positions[:, :-1])
    assert abs(kept - 0.5) < 0.03
    assert not np.array_equal(perms[0], perms[1])


def test_mine_first_is_a_stable_partition_cut_to_capacity():
    rng = np.random.default_rng(0)
    perm = rng.permutation(1000).astype(np.int32)
    mine = rng.random(1000) < 0.4  # by position in perm
    reference = perm[np.argsort(~mine, stable=True)]
    for capacity in (300, 700, 1000):
        got = np.asarray(_mine_first(jnp.asarray(perm), jnp.asarray(mine), capacity))
        assert np.array_equal(got, reference[:capacity])


# --------------------------------------------------------- turn-taking credit assignment
def _gae(decision, reward, done, value, boot_value=0.0, boot_reward=0.0, gamma=0.9, lam=1.0):
    f = lambda x: jnp.asarray(x, jnp.float32)
    adv, ret = turn_based_gae(jnp.asarray(decision, bool), f(reward), jnp.asarray(done, bool),
                              f(value), f(boot_value), f(boot_reward), gamma, lam)
    return np.asarray(adv), np.asarray(ret)


def test_gae_deal_reward_reaches_both_agents_decisions():
    # t=0 supplier counters, t=1 retailer counters, t=2 supplier accepts: deal rewards at t=2.
    done = [0, 0, 1]
    gamma = 0.9
    # Supplier: decisions at t=0 and t=2, reward 30 at t=2. Bootstrap values are ignored: the
    # episode ended inside the rollout.
    adv, ret = _gae([1, 0, 1], [0, 0, 30], done, [1.0, 99.0, 2.0], boot_value=55.0,
                    boot_reward=7.0, gamma=gamma)
    np.testing.assert_allclose(ret, [gamma * 30, 0, 30], rtol=1e-6)
    np.testing.assert_allclose(adv, [gamma * 30 - 1.0, 0, 28.0], rtol=1e-6)
    # Retailer: one decision at t=1; the deal reward arrives at t=2 (the supplier's move).
    _, ret = _gae([0, 1, 0], [0, 0, 12], done, [0.0, 3.0, 0.0], boot_value=55.0, gamma=gamma)
    np.testing.assert_allclose(ret, [0, 12, 0], rtol=1e-6)


def test_gae_episode_ending_on_opponents_move_and_auto_reset():
    # Episode 1: supplier counters (t=0), retailer walks away (t=1, -10 to both).
    # Episode 2 (after auto-reset): supplier counters (t=2), retailer counters (t=3), rollout ends
    # with the supplier to move: the supplier bootstraps with V(obs_T) = 4, the retailer's last
    # decision takes the look-ahead step's reward (3) and V(obs_{T+1}) = 6.
    gamma = 0.5
    done = [0, 1, 0, 0]
    _, ret_s = _gae([1, 0, 1, 0], [0, -10, 0, 0], done, [1, 0, 2, 0], boot_value=4.0,
                    gamma=gamma)
    np.testing.assert_allclose(ret_s, [-10, 0, gamma * 4.0, 0], rtol=1e-6)
    _, ret_r = _gae([0, 1, 0, 1], [0, -10, 0, 0], done, [0, 5, 0, 8], boot_value=6.0,
                    boot_reward=3.0, gamma=gamma)
    np.testing.assert_allclose(ret_r, [0, -10, 0, 3 + gamma * 6.0], rtol=1e-6)


def test_gae_lambda_and_discount_per_own_decision():
    # One agent decides at t=0, 2, 4 of one episode, ending on the opponent's move at t=5.
    gamma, lam = 0.9, 0.5
    v = np.array([1.0, 0, 2.0, 0, 3.0, 0])
    r = np.array([0, 0, 0, 0, 0, 5.0])
    adv, ret = _gae([1, 0, 1, 0, 1, 0], r, [0, 0, 0, 0, 0, 1], v, boot_value=100.0,
                    gamma=gamma, lam=lam)
    d4 = 5.0 - 3.0
    d2 = gamma * 3.0 - 2.0
    d0 = gamma * 2.0 - 1.0
    a4, a2 = d4, d2 + gamma * lam * d4
    a0 = d0 + gamma * lam * a2
    np.testing.assert_allclose(adv[[0, 2, 4]], [a0, a2, a4], rtol=1e-6)
    np.testing.assert_allclose(ret[[0, 2, 4]], [a0 + 1, a2 + 2, a4 + 3], rtol=1e-6)
    assert (adv[[1, 3, 5]] == 0).all()
    # Batched over envs (trailing axes) gives the same per env.
    adv_b, _ = _gae(np.tile(np.array([1, 0, 1, 0, 1, 0])[:, None], (1, 3)),
                    np.tile(r[:, None], (1, 3)), np.tile(np.eye(6)[5][:, None], (1, 3)),
                    np.tile(v[:, None], (1, 3)), boot_value=np.zeros(3),
                    boot_reward=np.zeros(3), gamma=gamma, lam=lam)
    np.testing.assert_allclose(adv_b, np.tile(adv[:, None], (1, 3)), rtol=1e-6)


# ------------------------------------------------------------------------ training runs
@pytest.fixture(scope="module")
def trained():
    init, train_chunk = make_train_chunked(CFG)
    runner0 = init(jax.random.key(CFG.seed))
    runner, metrics = train_chunk(runner0, CFG.num_updates)
    return init, train_chunk, runner0, runner, metrics


def _same(a, b) -> bool:
    def data(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(data(x), data(y)) for x, y in zip(la, lb, strict=True))


def test_self_play_learns_to_deal(trained):
    _, _, runner0, runner, metrics = trained
    assert metrics["deal_rate"].shape == (1, CFG.num_updates)
    deal = np.asarray(metrics["deal_rate"][0])
    # Random play deals ~25% of the time (simulate.play(key, params, "random", "random")).
    assert deal[:2].mean() < 0.4
    assert deal[-5:].mean() > 0.8
    # Each network trains on its own decisions, packed into 3/4 of the batch: few left out.
    for name in ("supplier", "retailer"):
        assert 0 <= float(metrics[f"dropped_{name}"][0].max()) < 0.3
    for k in ("return_supplier", "return_retailer", "mean_rounds", "mean_price", "lr",
              "nash_distance", "pareto_score", "supplier_share", "entropy_type_supplier",
              "entropy_price_retailer", "policy_loss_supplier", "value_loss_retailer",
              "approx_kl_supplier"):
        assert np.isfinite(np.asarray(metrics[k])).all(), k
    assert float(metrics["return_supplier"][0, -5:].mean()) > 0
    assert float(metrics["return_retailer"][0, -5:].mean()) > 0
    assert set(runner.params) == {"supplier", "retailer"}
    assert int(runner.update[0]) == CFG.num_updates
    # Greedy evaluation of the trained pair (the same helpers the CLI/server use).
    result = evaluate(CFG, seed_params(runner.params), jax.random.key(7), num_episodes=2000)
    assert result["deal_rate"] > 0.8
    assert 4000 < result["mean_price"] < 9000


def test_chunked_training_equals_one_call(trained):
    _, train_chunk, runner0, runner_full, metrics_full = trained
    half = CFG.num_updates // 2
    runner, m1 = train_chunk(runner0, half)
    runner, m2 = train_chunk(runner, CFG.num_updates - half)
    chunked = jax.tree.map(lambda a, b: np.concatenate([a, b], axis=1), m1, m2)
    assert _same(chunked, metrics_full)
    assert _same(runner, runner_full)


def test_same_seed_same_result_other_seed_differs(trained):
    init, train_chunk, runner0, _, metrics_full = trained
    half = CFG.num_updates // 2
    _, again = train_chunk(init(jax.random.key(CFG.seed)), half)
    assert _same(again, jax.tree.map(lambda x: x[:, :half], metrics_full))
    _, other = train_chunk(init(jax.random.key(CFG.seed + 1)), half)
    assert not np.array_equal(np.asarray(other["deal_rate"]),
                              np.asarray(again["deal_rate"]))


def test_fixed_negotiator_opponent_is_not_trained_and_seeds_are_independent():
    cfg = PPOConfig(num_envs=16, num_steps=8, total_timesteps=16 * 8 * 3, num_minibatches=2,
                    update_epochs=1, opponent="boulware", ppo_roles="supplier",
                    price_head="tanh_normal", num_seeds=2, anneal_lr=True, hidden=(16,),
                    shared_network=False)
    init, train_chunk = make_train_chunked(cfg)
    runner0 = init(jax.random.key(0))
    assert set(runner0.params) == {"supplier"}  # the negotiator side has no network
    runner, metrics = train_chunk(runner0, 3)
    assert metrics["deal_rate"].shape == (2, 3)
    np.testing.assert_allclose(metrics["lr"][0], [3e-4, 2e-4, 1e-4], rtol=1e-5)
    assert (np.asarray(metrics["return_retailer"]) == 0).all()  # not a PPO role: not reported
    assert np.isfinite(np.asarray(metrics["policy_loss_supplier"])).all()
    assert not _same(seed_params(runner.params, 0), seed_params(runner.params, 1))
    assert not _same(runner.params, runner0.params)  # the supplier network trained
    with pytest.raises(ValueError, match=r"num_updates must be an integer in \[1, 3\]"):
        train_chunk(runner, 4)


def test_exploring_start_rounds_are_drawn_with_the_configured_share_uniformly():
    cfg = PPOConfig(num_envs=40_000, num_steps=1, total_timesteps=40_000, num_minibatches=1,
                    hidden=(4,), explore_starts=0.3, env={"max_rounds": 5})
    init, _ = make_train_chunked(cfg)
    rounds = np.asarray(init(jax.random.key(5)).explore_round)[0]
    assert rounds.min() == 0 and rounds.max() == 4
    assert abs(np.mean(rounds > 0) - 0.3) < 0.01  # sd 0.0023
    share = np.bincount(rounds[rounds > 0], minlength=5)[1:] / np.sum(rounds > 0)
    np.testing.assert_allclose(share, 0.25, atol=0.015)  # 1..T-1 equally likely (sd 0.004)


def test_exploring_starts_are_random_counters_outside_learning_and_metrics():
    # T = 2 and every episode explores: round 1 is always a random counter, so the supplier never
    # decides (its network gets no gradient: Adam leaves it exactly as it was), the retailer
    # decides in round 2, and no episode counts in the metrics.
    cfg = PPOConfig(num_envs=32, num_steps=8, total_timesteps=32 * 8 * 2, num_minibatches=1,
                    update_epochs=1, hidden=(16,), explore_starts=1.0, env={"max_rounds": 2},
                    shared_network=False)
    init, train_chunk = make_train_chunked(cfg)
    runner0 = init(jax.random.key(0))
    assert (np.asarray(runner0.explore_round) == 1).all()
    runner, metrics = train_chunk(runner0, 2)
    assert _same(runner.params["supplier"], runner0.params["supplier"])
    assert not _same(runner.params["retailer"], runner0.params["retailer"])
    assert (np.asarray(metrics["episodes"]) == 0).all()
    assert (np.asarray(metrics["dropped_supplier"]) == 0).all()
    # Half the episodes explore: fewer counted episodes than a run without exploring starts,
    # and the result is reproducible.
    counts = {}
    for share in (0.0, 0.5):
        c = PPOConfig(num_envs=64, num_steps=8, total_timesteps=64 * 8 * 2, num_minibatches=1,
                      update_epochs=1, hidden=(16,), explore_starts=share)
        init, train_chunk = make_train_chunked(c)
        _, m = train_chunk(init(jax.random.key(3)), 2)
        _, again = train_chunk(init(jax.random.key(3)), 2)
        assert _same(m, again)
        counts[share] = float(np.asarray(m["episodes"]).sum())
    assert 0 < counts[0.5] < counts[0.0]
