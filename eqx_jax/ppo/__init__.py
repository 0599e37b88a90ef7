"""Multi-agent PPO for the bargaining game, PureJaxRL style: the whole training loop is jitted.

The modules, from the bottom up (each imports only the ones above it in this list):

* :mod:`~eqx_jax.ppo.config`: :class:`PPOConfig` (every knob, validated) and who plays which
  side (:meth:`PPOConfig.player`, :func:`default_sides`, :func:`sides_for_agent_type`);
* :mod:`~eqx_jax.ppo.distributions`: the hybrid action distribution (a masked categorical action
  type + a bounded continuous price per continuous issue and, with ``discrete_head:
  categorical``, a masked categorical per discrete issue; its comment blocks explain both);
* :mod:`~eqx_jax.ppo.networks`: the actor-critic network (:class:`ActorCritic`,
  :func:`init_network`);
* :mod:`~eqx_jax.ppo.advantages`: the turn-taking advantage estimator :func:`turn_based_gae`
  (its comment block explains the turn-taking credit assignment);
* :mod:`~eqx_jax.ppo.batching`: masked means, minibatch shuffles (:func:`permutation`), packing;
* :mod:`~eqx_jax.ppo.state` and :mod:`~eqx_jax.ppo.sharding`: the :class:`RunnerState` the loop
  carries, the device mesh (:func:`make_mesh`) and where the state lives;
* :mod:`~eqx_jax.ppo.plan`: the training loop, functions over one frozen :class:`TrainPlan`
  (init, rollout with ``lax.scan``, GAE, ``update_epochs`` x ``num_minibatches`` clipped-PPO
  updates with Adam, metrics);
* :mod:`~eqx_jax.ppo.train_fns`: the jitted entry points :func:`make_train_chunked` /
  :func:`make_train`, and :func:`seed_params`;
* :mod:`~eqx_jax.ppo.policy`: trained parameters as a policy (:func:`policy_action`,
  :func:`make_policy`, :func:`evaluate`).

Usage::

    cfg = PPOConfig(total_timesteps=200_000, env={"supplier_low": 5000, "supplier_high": 5000})
    train = make_train(cfg)
    runner_state, metrics = train(jax.random.key(cfg.seed))
    # metrics["deal_rate"] has shape (num_seeds, num_updates)

    init, train_chunk = make_train_chunked(cfg)          # progress in chunks, same result
    runner = init(jax.random.key(cfg.seed))
    for _ in range(4):
        runner, m = train_chunk(runner, cfg.num_updates // 4)

Seeds: ``num_seeds`` independent runs train at once; the ``vmap`` over seeds is done *inside*
``init``/``train_chunk``/``train`` (the key is split into ``num_seeds`` keys), so every leaf of the
runner state and of the metrics has a leading ``(num_seeds,)`` axis, even for ``num_seeds == 1``.
Use :func:`seed_params` to pick one run's parameters.

Who plays (``opponent`` and ``ppo_roles``):

* ``opponent="self"`` (default): PPO plays both roles against itself; by default two separate
  networks (a supplier and a retailer network) learn simultaneously; with ``shared_network=True``
  one network plays both roles (it tells them apart by the ``role`` field of the observation).
* ``opponent="<negotiator>"`` (any name in :data:`eqx_jax.negotiators.NEGOTIATORS`): that classic
  negotiator is a fixed, untrained opponent. ``ppo_roles`` says which roles PPO learns:
  ``"supplier"`` (every env: PPO supplier vs the negotiator as retailer), ``"retailer"``
  (the reverse), or ``"both"`` (the envs are split in two halves: in the first half PPO is the
  supplier against the negotiator, in the second half the negotiator is the supplier against the
  PPO retailer; ``num_envs`` must be even). A role that PPO never plays has no network at all;
  with ``"both"``, a network's loss only covers the envs where it plays.
* ``opponent="policy"``: like a negotiator, but the fixed opponent is any policy
  ``(key, obs, env_params) -> action`` passed as ``opponent_policy`` to :func:`make_train` /
  :func:`make_train_chunked` (e.g. a frozen trained network, :func:`make_policy`; best responses
  in :mod:`eqx_jax.evaluate`). It is called, vmapped over envs, for every role PPO does not play
  (with ``ppo_roles="both"`` for both roles: it can read the observation's ``role`` field). It is
  never updated: it is a constant of the compiled program.

Rewards are multiplied by ``reward_scale`` (default ``10 / max_price``: a deal is worth O(1)) for
learning only; the reported returns are in the game's reward units.
"""

from eqx_jax.ppo.advantages import turn_based_gae
from eqx_jax.ppo.batching import masked_mean, mine_first, permutation
from eqx_jax.ppo.config import (
    DISCRETE_HEADS,
    NETWORK_BATCH_SHARE,
    POLICY_OPPONENT,
    PRICE_HEADS,
    PPOConfig,
    best_response_config,
    default_sides,
    sides_for_agent_type,
)
from eqx_jax.ppo.distributions import (
    MASKED_LOGIT,
    UNIT_EPS,
    MixedOfferParams,
    OfferHead,
    action_log_prob,
    digamma_ge1,
    greedy_offer,
    greedy_price,
    hybrid_log_prob,
    lgamma_ge1,
    offer_action_log_prob,
    offer_log_prob_and_entropy,
    offer_units,
    price_entropy,
    price_log_prob,
    price_log_prob_and_entropy,
    sample_action,
    sample_beta,
    sample_categorical,
    sample_offer_action,
    sample_price,
    type_entropy,
    type_log_prob,
    unit_price,
)
from eqx_jax.ppo.networks import (
    FEATURE_SCALE,
    KERNEL_SCALES,
    ActorCritic,
    build_network,
    init_network,
    offer_head,
    role_features,
)
from eqx_jax.ppo.plan import TrainPlan, make_plan
from eqx_jax.ppo.policy import evaluate, make_policy, policy_action, resolve_policy
from eqx_jax.ppo.sharding import ENV_AXIS, SEED_AXIS, make_mesh, runner_shardings
from eqx_jax.ppo.state import RunnerState
from eqx_jax.ppo.train_fns import (
    BR_INITS,
    make_train,
    make_train_chunked,
    seed_params,
    warm_start,
)

# The names these helpers had before they became public (imported by the tests).
_digamma_ge1 = digamma_ge1
_lgamma_ge1 = lgamma_ge1
_mine_first = mine_first

__all__ = [
    "DISCRETE_HEADS", "ENV_AXIS", "FEATURE_SCALE", "KERNEL_SCALES", "MASKED_LOGIT",
    "NETWORK_BATCH_SHARE", "POLICY_OPPONENT", "PRICE_HEADS", "SEED_AXIS",
    "UNIT_EPS", "ActorCritic", "MixedOfferParams", "OfferHead", "PPOConfig", "RunnerState",
    "TrainPlan", "action_log_prob", "best_response_config", "build_network", "default_sides",
    "digamma_ge1",
    "evaluate", "greedy_offer", "greedy_price", "hybrid_log_prob", "init_network",
    "lgamma_ge1", "make_mesh", "make_plan", "make_policy", "make_train", "make_train_chunked",
    "warm_start", "BR_INITS",
    "masked_mean", "mine_first", "offer_action_log_prob", "offer_head",
    "offer_log_prob_and_entropy", "offer_units", "permutation", "policy_action",
    "price_entropy", "price_log_prob", "price_log_prob_and_entropy", "resolve_policy",
    "role_features", "runner_shardings", "sample_action", "sample_beta", "sample_categorical",
    "sample_offer_action", "sample_price", "seed_params", "sides_for_agent_type",
    "turn_based_gae", "type_entropy", "type_log_prob", "unit_price",
]
