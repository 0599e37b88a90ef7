"""The training loop: module-level functions over one frozen :class:`TrainPlan`.

:func:`make_plan` derives, once per config, every static value the loop needs (the env, who
plays where, network names, batch capacities, the optimiser, exploring-start settings, the
device mesh). :func:`init_one` and :func:`update_one` are pure, unjitted and for one seed; the
jitted, seed-batched wrappers are in :mod:`eqx_jax.ppo.train_fns` (``functools.partial`` binds
the plan, so it never needs to be hashable). One update runs five phases in order:
:func:`rollout`, :func:`advantages_batch`, :func:`pack_batches`, :func:`ppo_epochs`,
:func:`update_metrics`.

Data layout. In every env step exactly one agent moves (the env applies only the mover's
action), so the rollout keeps one sample per (step, env): the *mover's* observation, action,
log-probability and value; its ``decision`` flag says whether PPO made it (not a fixed
opponent, not an exploring start). The L networks (``config.learners``) are stacked on a
leading axis; with two networks both run on the N movers' observations and the mover's
outputs are kept (cheaper on a CPU than gathering weights per env). For the update, each
network gets a batch of its own decisions: all ``num_envs * num_steps`` samples when one
network makes (nearly) all of them, else its decisions packed into
:data:`~eqx_jax.ppo.config.NETWORK_BATCH_SHARE` of that size, so that no network spends its
gradient work on the other one's samples.

Shapes below: N envs, T = ``num_steps``, B = N * T samples, L networks, R roles played by PPO,
K = ``capacity`` samples per network batch, M minibatches.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from eqx_jax.env import COUNTER
from eqx_jax.games.spec import NegotiationEnv, offer_value_mask
from eqx_jax.negotiators import Policy, get_game_negotiator
from eqx_jax.ppo.advantages import turn_based_gae
from eqx_jax.ppo.batching import masked_mean, mine_first, permutation
from eqx_jax.ppo.config import NETWORK_BATCH_SHARE, POLICY_OPPONENT, PPOConfig
from eqx_jax.ppo.distributions import (
    MASKED_LOGIT,
    OfferHead,
    hybrid_log_prob,
    offer_action_log_prob,
    offer_log_prob_and_entropy,
    offer_units,
    sample_categorical,
    sample_offer_action,
    type_entropy,
)
from eqx_jax.ppo.networks import ActorCritic, build_network, init_network, offer_head
from eqx_jax.ppo.sharding import pin_env_axis
from eqx_jax.ppo.state import RunnerState


# ====================================================================================== plan
@dataclasses.dataclass(frozen=True, eq=False)
class TrainPlan:
    """Every static value of one config's training loop, derived once by :func:`make_plan`.

    Compared and hashed by identity (it holds arrays and the optimiser).
    """

    config: PPOConfig
    env: NegotiationEnv
    env_params: object  # the game's params
    offer_lo: jax.Array  # (D,) f32: the lower bound of each issue of an offer
    offer_span: jax.Array  # (D,) f32: high - low of each issue (offers = lo + span * unit)
    n_envs: int  # N
    n_steps: int  # T
    batch: int  # B = N * T
    names: tuple[str, ...]  # the L network names (config.learners), in stacking order
    n_net: int  # L
    roles: tuple[str, ...]  # the R roles PPO plays somewhere, in env.agents order
    role_index: np.ndarray  # (R,) int: env.agents index of each of them
    agent_net: jax.Array  # (A,) i32: per agent, its network (0 if PPO never plays it: unused)
    ppo_plays: jax.Array  # (A, N) bool: per agent, the envs where PPO plays it
    has_fixed: bool  # a fixed opponent plays somewhere
    negotiator: Policy | None  # the fixed opponent (None in self-play)
    net: ActorCritic
    head: str  # price head
    offer_head: OfferHead  # which issues are continuous, which categorical
    scale: float  # reward scale for learning
    n_updates_total: int
    steps_per_update: int  # Adam steps per update: update_epochs * num_minibatches
    minibatches: int  # M
    capacity: int  # K: samples in each network's update batch
    tx: optax.GradientTransformation
    explore: bool  # exploring starts on
    explore_lo: jax.Array  # (D,): range of the exploring starts' random counter-offers
    explore_hi: jax.Array
    horizon: int  # max_rounds of the game
    mesh: Mesh | None


def lr_at(config: PPOConfig, count: jax.Array) -> jax.Array:
    """Learning rate () f32 after ``count`` Adam steps (linear decay to 0 over the run)."""
    if not config.anneal_lr:
        return jnp.asarray(config.lr, jnp.float32)
    steps_per_update = config.update_epochs * config.num_minibatches
    frac = 1.0 - (count // steps_per_update) / config.num_updates
    return config.lr * jnp.maximum(frac, 0.0)


def _fixed_opponent(config: PPOConfig, opponent_policy: Policy | None) -> Policy | None:
    """The fixed opponent's policy: ``opponent_policy`` iff ``config.opponent == "policy"``,
    else the named negotiator (None for self-play). ``ValueError`` on a mismatch."""
    if opponent_policy is not None:
        if config.opponent != POLICY_OPPONENT:
            raise ValueError(f"an opponent_policy was given but config.opponent is "
                             f"{config.opponent!r}; set opponent='{POLICY_OPPONENT}' to train "
                             "against it")
        if not callable(opponent_policy):
            raise ValueError("opponent_policy must be a callable (key, obs, env_params) -> "
                             f"action, got {opponent_policy!r}")
        return opponent_policy
    if config.opponent == POLICY_OPPONENT:
        raise ValueError(f"opponent='{POLICY_OPPONENT}' needs an opponent_policy "
                         "(key, obs, env_params) -> action passed to make_train / "
                         "make_train_chunked")
    return (None if config.opponent == "self"
            else get_game_negotiator(config.opponent, config.make_env()))


def make_plan(config: PPOConfig, opponent_policy: Policy | None = None,
              mesh: Mesh | None = None) -> TrainPlan:
    """The plan of ``config``'s training loop (``ValueError`` on a bad ``opponent_policy``).

    ``mesh``: the device mesh of :func:`eqx_jax.ppo.sharding.make_mesh`; the update pins its
    per-sample arrays to be split over the mesh's ``env`` axis (see :func:`on_envs`). It changes
    where the work runs, never what is computed.
    """
    env_params = config.env_params
    env = config.make_env()
    offer_lo, offer_hi = (jnp.asarray(np.asarray(b, np.float32))
                          for b in env.offer_bounds(env_params))
    explore_lo, explore_hi = (jnp.asarray(np.asarray(b, np.float32))
                              for b in env.explore_bounds(env_params))
    batch = config.batch_size
    names = tuple(config.learners)
    agents = tuple(env.agents)
    roles = tuple(r for r in agents if config.ppo_envs(r).any())
    ppo_plays = np.stack([config.ppo_envs(a) for a in agents])
    m = config.num_minibatches
    if config.opponent == "self" and len(names) == 1:
        capacity = batch
    else:
        # L > 2 networks (one per seat of a group game) each make about 1/L of the decisions
        share = NETWORK_BATCH_SHARE * min(1.0, 2.0 / len(names))
        capacity = min(batch, -(-int(share * batch) // m) * m)
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                     optax.adam(learning_rate=functools.partial(lr_at, config), eps=1e-5))
    horizon = int(env_params.max_rounds)
    net = build_network(config, env)
    return TrainPlan(
        config=config, env=env, env_params=env_params, offer_lo=offer_lo,
        offer_span=offer_hi - offer_lo, n_envs=config.num_envs, n_steps=config.num_steps,
        batch=batch, names=names, n_net=len(names), roles=roles,
        role_index=np.array([agents.index(r) for r in roles]),
        agent_net=jnp.asarray([names.index(config.network_for(a)) if a in roles else 0
                               for a in agents], jnp.int32),
        ppo_plays=jnp.asarray(ppo_plays), has_fixed=not ppo_plays.all(),
        negotiator=_fixed_opponent(config, opponent_policy), net=net,
        head=config.price_head, offer_head=offer_head(config, env),
        scale=config.reward_scale_value,
        n_updates_total=config.num_updates,
        steps_per_update=config.update_epochs * config.num_minibatches, minibatches=m,
        capacity=capacity, tx=tx, explore=config.explore_starts > 0 and horizon > 1,
        explore_lo=explore_lo, explore_hi=explore_hi, horizon=horizon, mesh=mesh)


# =================================================================================== helpers
def on_envs(plan: TrainPlan, tree, axis: int):
    """Every leaf of ``tree`` with its ``axis`` (envs or samples) split over the plan's mesh's
    env axis (:func:`eqx_jax.ppo.sharding.pin_env_axis`); shapes unchanged."""
    return pin_env_axis(plan.mesh, tree, axis)


def stack(plan: TrainPlan, by_name: dict):
    """dict network name -> pytree, to one pytree whose leaves have a leading ``(L,)`` axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *[by_name[n] for n in plan.names])


def unstack(plan: TrainPlan, stacked) -> dict:
    """The inverse of :func:`stack`: leaves ``(L, ...)`` -> dict network name -> ``(...)``."""
    return {n: jax.tree.map(lambda x, i=i: x[i], stacked) for i, n in enumerate(plan.names)}


def forward_movers(plan: TrainPlan, params_l, obs_m: jax.Array, mover: jax.Array):
    """The mover's network on the movers' observations ``obs_m (N, obs_size)``; ``mover (N,)``
    i32; ``params_l`` stacked ``(L, ...)``. Returns ``(logits (N, 3), price_params (N, D, 2),
    value (N,))``."""
    if plan.n_net == 1:
        return plan.net.apply(jax.tree.map(lambda x: x[0], params_l), obs_m)
    outs = jax.vmap(plan.net.apply, (0, None))(params_l, obs_m)
    net_of = plan.agent_net[mover]  # (N,) the mover's network

    def pick(x):  # (L, N, ...) -> (N, ...): an exact selection, no arithmetic
        out = x[0]
        for i in range(1, plan.n_net):
            out = jnp.where((net_of == i).reshape(net_of.shape + (1,) * (x.ndim - 2)), x[i],
                            out)
        return out

    return jax.tree.map(pick, outs)


def movers(plan: TrainPlan, env_state, obs: dict) -> tuple[jax.Array, jax.Array]:
    """(mover (N,) i32: the index of the agent that moves (0 supplier / 1 retailer; a group
    game's seat), its observation (N, obs_size))."""
    mover = jax.vmap(plan.env.mover)(env_state)
    agents = plan.env.agents
    obs_m = jnp.where((mover == 0)[:, None], obs[agents[0]], obs[agents[1]])
    for i in range(2, len(agents)):
        obs_m = jnp.where((mover == i)[:, None], obs[agents[i]], obs_m)
    return mover, obs_m


# Exploring starts. PPO only learns about the states its policies visit: in self-play the
# agents settle on a path (say, a deal in round 2) and never learn what to do off it (say, a
# retailer counter in round 3), so they can settle on an equilibrium that rests on threats
# they would not carry out (Nash, not subgame perfect). With probability explore_starts an
# episode opens with k ~ U{1..T-1} rounds of random counter-offers, prices ~ U[explore_lo,
# explore_hi] (the env's explore_bounds, per issue), played by the env's own rules (history
# and beliefs update as in any episode). Those moves are nobody's decisions (no loss); the
# agents learn from round k + 1 on, in every subgame. Evaluation never uses it.
def draw_explore(plan: TrainPlan, key: jax.Array) -> jax.Array:
    """(N,) i32: rounds of random counter-offers that open each new episode (0: none)."""
    if not plan.explore:
        return jnp.zeros((plan.n_envs,), jnp.int32)
    # One uniform draw u for both choices: on iff u < p, and then u / p ~ U[0, 1) picks the
    # round (a second uniform plus randint's two draws would be ~30 % of the random numbers of
    # a rollout step, and random numbers are a large part of the rollout on a CPU).
    u = jax.random.uniform(key, (plan.n_envs,))
    p = plan.config.explore_starts
    rounds = jnp.minimum(1 + jnp.floor(u / p * (plan.horizon - 1)), plan.horizon - 1)
    return jnp.where(u < p, rounds, 0).astype(jnp.int32)


def explore_offer(plan: TrainPlan, key: jax.Array, obs_m: jax.Array) -> jax.Array:
    """(N, D) random counter-offers of the exploring starts, natural units: each issue
    ~ U[explore_lo, explore_hi] (the env rounds a discrete one), or with the categorical head
    a discrete issue uniform over the values legal in the mover's state (``obs_m (N,
    obs_size)``, :func:`eqx_jax.games.spec.offer_value_mask`)."""
    shape = (plan.n_envs, plan.env.offer_size)
    offer = jax.random.uniform(key, shape, jnp.float32, plan.explore_lo, plan.explore_hi)
    head = plan.offer_head
    if not head.categorical:
        return offer
    legal = head.take(offer_value_mask(plan.env, obs_m), head.disc, axis=-2)
    values = sample_categorical(jax.random.fold_in(key, 1),
                                jnp.where(legal[..., :head.num_values], 0.0, MASKED_LOGIT))
    return head.merge(head.take(offer, head.cont), values)


# ====================================================================================== init
def init_one(plan: TrainPlan, key: jax.Array) -> RunnerState:
    """A fresh runner state for one seed: new networks, Adam states and ``num_envs`` episodes."""
    key, k_env, k_net, k_explore = jax.random.split(key, 4)
    params = jax.vmap(lambda k: init_network(k, plan.config.hidden, plan.env.obs_size,
                                             plan.net))(
        jax.random.split(k_net, plan.n_net))
    opt_state = jax.vmap(plan.tx.init)(params)
    obs, env_state = jax.vmap(plan.env.reset, (0, None))(
        jax.random.split(k_env, plan.n_envs), plan.env_params)
    return RunnerState(params=unstack(plan, params), opt_state=unstack(plan, opt_state),
                       env_state=env_state, obs=obs, explore_round=draw_explore(plan, k_explore),
                       key=key, update=jnp.zeros((), jnp.int32))


# =============================================================================== 1. rollout
def act(plan: TrainPlan, params_l, env_state, obs: dict, key: jax.Array,
        exploring: jax.Array):
    """The movers' env actions and, per env, the sample the update needs.

    ``exploring`` (N,) bool: this move is a random counter-offer of an exploring start.
    Returns ``(actions, sample)``: ``actions`` agent -> the env action of
    ``env.make_action`` (leaves (N, ...); the same action for both agents), ``sample`` {"obs"
    (N, obs_size), "action_type", "raw" (N, D), "value", "mover", "logp", "decision"} (N,).
    """
    k_net, k_fixed, k_explore = jax.random.split(key, 3)
    mover, obs_m = movers(plan, env_state, obs)
    logits, pp, value = forward_movers(plan, params_l, obs_m, mover)
    a_type, raw = sample_offer_action(k_net, plan.offer_head, logits, pp)
    by_ppo = plan.ppo_plays[mover, jnp.arange(plan.n_envs)]
    sample = {
        "obs": obs_m, "action_type": a_type, "raw": raw, "value": value, "mover": mover,
        "logp": offer_action_log_prob(plan.offer_head, logits, pp, a_type, raw,
                                      plan.offer_span),
        "decision": by_ppo & ~exploring,
    }
    env_type = a_type
    offer = offer_units(plan.offer_head, raw, plan.offer_lo, plan.offer_span)
    if plan.explore:
        env_type = jnp.where(exploring, COUNTER, env_type)
        offer = jnp.where(exploring[:, None], explore_offer(plan, k_explore, obs_m), offer)
    action = plan.env.make_action(env_type, offer)
    if plan.has_fixed:  # the fixed opponent moves where PPO does not play the mover's role
        fixed = jax.vmap(plan.negotiator, (0, 0, None))(
            jax.random.split(k_fixed, plan.n_envs), obs_m, plan.env_params)
        keep = by_ppo | exploring
        action = jax.tree.map(
            lambda mine, theirs: jnp.where(keep.reshape(keep.shape + (1,) * (mine.ndim - 1)),
                                           mine, theirs.astype(mine.dtype)), action, fixed)
    # Both agents submit the mover's action: the env applies the mover's and ignores the other.
    return {a: action for a in plan.env.agents}, sample


def env_step(plan: TrainPlan, params_l, carry, i: jax.Array):
    """One env step of the rollout scan (step ``i``, () i32).

    ``carry``: (env_state, obs, explore_round (N,), saved, key); ``saved`` is the
    (env_state, obs, explore_round) after step ``num_steps - 1``: the state the next rollout
    starts from. Returns ``(carry, step)``: per env, "done" (N,), "reward" (2, N), "info" (the
    env's :data:`_INFO_KEYS`, each (N,)), "ppo" (the sample of :func:`act`),
    "explored_episode" (N,).
    """
    env_state, obs, explore_round, saved, key = carry
    key, k_act, k_env, k_explore = jax.random.split(key, 4)
    # this move (round t + 1) is random
    exploring = jax.vmap(plan.env.rounds_played)(env_state) < explore_round
    explored_episode = explore_round > 0  # left out of the metrics
    actions, sample = act(plan, params_l, env_state, obs, k_act, exploring)
    obs, env_state, rewards, dones, info = jax.vmap(plan.env.step, (0, 0, 0, None))(
        jax.random.split(k_env, plan.n_envs), env_state, actions, plan.env_params)
    if plan.explore:  # a new episode (auto-reset) draws its exploring start
        explore_round = jnp.where(dones["__all__"], draw_explore(plan, k_explore),
                                  explore_round)
    env_state, obs, explore_round = on_envs(plan, (env_state, obs, explore_round), 0)
    saved = jax.tree.map(lambda new, old: jnp.where(i == plan.n_steps - 1, new, old),
                         (env_state, obs, explore_round), saved)
    step = {"done": dones["__all__"],
            "reward": jnp.stack([rewards[a] for a in plan.env.agents]),
            "info": {k: info[k] for k in plan.env.info_keys}, "ppo": sample,
            "explored_episode": explored_episode}
    return (env_state, obs, explore_round, saved, key), step


def rollout(plan: TrainPlan, params_l, start: tuple, key: jax.Array):
    """Phase 1: ``num_steps`` env steps of ``num_envs`` episodes, plus one look-ahead step for
    the bootstrap (see :func:`eqx_jax.ppo.advantages.turn_based_gae`).

    The scan runs ``num_steps + 1`` steps from ``start`` = (env_state, obs, explore_round); the
    state after ``num_steps`` steps is kept aside as the state the next rollout starts from.
    Returns ``(next_start, after_look, look, traj)``: ``next_start`` like ``start``;
    ``after_look`` = (env_state, obs) after the look-ahead step; ``look`` the look-ahead step
    (leaves ``(N, ...)``) and ``traj`` the rollout (leaves ``(T, N, ...)``), see
    :func:`env_step`.
    """
    (state_after_look, obs_after_look, _, next_start, _), traj = jax.lax.scan(
        functools.partial(env_step, plan, params_l), (*start, start, key),
        jnp.arange(plan.n_steps + look_steps(plan)))
    look = jax.tree.map(lambda x: x[plan.n_steps:], traj)
    traj = jax.tree.map(lambda x: x[:plan.n_steps], traj)
    return next_start, (state_after_look, obs_after_look), look, traj


def look_steps(plan: TrainPlan) -> int:
    """Look-ahead steps after a rollout: A - 1 for A agents acting in a fixed order, so that
    every agent's next decision after the rollout is a look-ahead step or the state after
    them (two agents: one step)."""
    return len(plan.env.agents) - 1


def bootstrap(plan: TrainPlan, look: dict, value_after_look: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
    """Each PPO role's bootstrap carry after the rollout, ``(value (R, N), reward (R, N))``:
    the value of its next decision (the first look-ahead step where it moves, else the state
    after them) and the rewards it gets before it; value 0 and the rewards up to the end where
    a look-ahead step ends the episode first (see :mod:`eqx_jax.ppo.advantages`)."""
    role_col = jnp.asarray(plan.role_index)[:, None]  # (R, 1)
    found = jnp.zeros((len(plan.roles), plan.n_envs), bool)
    alive = jnp.ones_like(found)
    value = jnp.zeros(found.shape, jnp.float32)
    reward = jnp.zeros(found.shape, jnp.float32)
    for k in range(look_steps(plan)):
        turn = (look["ppo"]["mover"][k][None] == role_col) & alive & ~found
        value = jnp.where(turn, look["ppo"]["value"][k][None], value)
        waiting = alive & ~found & ~turn
        reward = jnp.where(waiting, reward + look["reward"][k][plan.role_index] * plan.scale,
                           reward)
        found = found | turn
        alive = alive & ~(waiting & look["done"][k][None])
    value = jnp.where(found, value, jnp.where(alive, value_after_look[None], 0.0))
    return value, reward


# ============================================================================ 2. advantages
def advantages_batch(plan: TrainPlan, params_l, after_look: tuple, look: dict, traj: dict):
    """Phase 2: advantages of each PPO role over its own decisions (``turn_based_gae``).

    Bootstrap: the role that moves after the rollout uses V(obs_T); the other one takes the
    look-ahead step's reward and its V at the observation after it (where it moves again), or
    0 if the look-ahead step ended the episode. Returns the update's samples, one per
    (step, env), leaves ``(B, ...)``: "obs", "action_type", "raw", "logp", "value",
    "advantage", "target", and "net" (i32: the network whose decision it is, -1 for none).
    """
    ppo = traj["ppo"]
    mover_after, obs_m_after = movers(plan, *after_look)
    _, _, value_after_look = forward_movers(plan, params_l, obs_m_after, mover_after)
    reward_r = traj["reward"][:, plan.role_index] * plan.scale  # (T, R, N)
    role_col = jnp.asarray(plan.role_index)[:, None]  # (R, 1)
    decision_r = ppo["decision"][:, None] & (ppo["mover"][:, None] == role_col)
    if look_steps(plan) == 1:  # two agents: the closed form (the same floats)
        one = jax.tree.map(lambda x: x[0], look)
        turn = one["ppo"]["mover"][None] == role_col  # (R, N)
        boot_value = jnp.where(turn, one["ppo"]["value"][None],
                               jnp.where(one["done"], 0.0, value_after_look)[None])
        boot_reward = jnp.where(turn, 0.0, one["reward"][plan.role_index] * plan.scale)
    else:
        boot_value, boot_reward = bootstrap(plan, look, value_after_look)
    adv, target = turn_based_gae(
        decision_r, reward_r, jnp.broadcast_to(traj["done"][:, None], reward_r.shape),
        jnp.broadcast_to(ppo["value"][:, None], reward_r.shape), boot_value, boot_reward,
        plan.config.gamma, plan.config.gae_lambda)
    # The decision sets of the roles are disjoint: back to one sample per (step, env).
    data = {k: ppo[k] for k in ("obs", "action_type", "raw", "logp", "value")}
    data.update(advantage=adv.sum(1), target=target.sum(1),
                net=jnp.where(ppo["decision"], plan.agent_net[ppo["mover"]], -1))
    data = jax.tree.map(lambda x: x.reshape((plan.batch,) + x.shape[2:]), data)  # (B, ...)
    return on_envs(plan, data, 0)


# ============================================================================= 3. packing
def pack_batches(plan: TrainPlan, data: dict, key: jax.Array) -> tuple[dict, jax.Array]:
    """Phase 3: each network's batch ``(L, K, ...)``: its own decisions, in a random order.

    Packed first (a stable partition on "not mine" after a random permutation), so that when
    they exceed the capacity the ones left out are a uniformly random subset. Returns
    ``(data_l, dropped)``: ``data_l`` the leaves of ``data`` (without "net") plus "mask"
    ``(L, K)`` bool (the sample is that network's decision), ``dropped (L,)`` the share of each
    network's decisions left out.
    """
    if plan.capacity < plan.batch:
        perm = permutation(key, plan.batch)
        idx = jnp.stack([mine_first(perm, data["net"][perm] == i, plan.capacity)
                         for i in range(plan.n_net)])
        data_l = jax.tree.map(lambda x: x[idx], data)
    else:  # every sample, in order: no gather (split over devices, one is an all-reduce)
        data_l = jax.tree.map(lambda x: jnp.broadcast_to(x[None], (plan.n_net,) + x.shape),
                              data)
    data_l["mask"] = data_l.pop("net") == jnp.arange(plan.n_net)[:, None]
    mine = jnp.sum(data["net"][None] == jnp.arange(plan.n_net)[:, None], axis=1)
    dropped = (mine - jnp.sum(data_l["mask"], axis=1)) / jnp.maximum(mine, 1)
    return data_l, dropped


# ================================================================================= 4. PPO
def entropy_coef(plan: TrainPlan, update: jax.Array):
    """The entropy bonus's coefficient at update ``update`` (() i32).

    Annealing the entropy bonus to 0 lets the policies become the sharp best responses an
    equilibrium needs (a fixed bonus converges to an entropy-regularised one).
    """
    ent_coef = plan.config.ent_coef
    if plan.config.anneal_ent:
        ent_coef = ent_coef * jnp.maximum(1.0 - update / plan.n_updates_total, 0.0)
    return ent_coef


def ppo_loss(plan: TrainPlan, params, batch: dict, ent_coef):
    """Clipped-PPO loss of one network on one minibatch (leaves ``(K / M, ...)``, see
    :func:`pack_batches`), over the samples of its ``mask``. Returns ``(total (), stats)``."""
    cfg = plan.config
    logits, pp, value = plan.net.apply(params, batch["obs"])
    mask = batch["mask"]
    # over the D issues (continuous densities and categoricals, see distributions.py)
    p_logp, p_ent, p_ent_values = offer_log_prob_and_entropy(plan.offer_head, pp, batch["raw"],
                                                             plan.offer_span)
    logp = hybrid_log_prob(logits, batch["action_type"], p_logp)
    log_ratio = logp - batch["logp"]
    ratio = jnp.exp(log_ratio)
    adv = batch["advantage"]
    adv_mean = masked_mean(adv, mask)
    adv_std = jnp.sqrt(masked_mean(jnp.square(adv - adv_mean), mask))
    adv = (adv - adv_mean) / (adv_std + 1e-8)
    clipped = jnp.clip(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps)
    pg_loss = masked_mean(-jnp.minimum(ratio * adv, clipped * adv), mask)
    v_clipped = batch["value"] + jnp.clip(value - batch["value"], -cfg.clip_eps, cfg.clip_eps)
    v_loss = 0.5 * masked_mean(jnp.maximum(jnp.square(value - batch["target"]),
                                           jnp.square(v_clipped - batch["target"])), mask)
    ent_type = masked_mean(type_entropy(logits), mask)
    ent_price = masked_mean(p_ent, mask)
    total = pg_loss + cfg.vf_coef * v_loss - ent_coef * (ent_type + ent_price)
    stats = {
        "policy_loss": pg_loss, "value_loss": v_loss, "entropy_type": ent_type,
        "entropy_price": ent_price,
        "approx_kl": masked_mean((ratio - 1.0) - log_ratio, mask),
        "clip_frac": masked_mean((jnp.abs(ratio - 1.0) > cfg.clip_eps), mask),
    }
    if plan.offer_head.categorical:  # the discrete issues' part of entropy_price
        stats["entropy_values"] = masked_mean(p_ent_values, mask)
    return total, stats


def shuffle_minibatches(plan: TrainPlan, data_l: dict, key: jax.Array) -> dict:
    """One epoch's minibatches: leaves ``(L, K, ...)`` -> ``(M, L, K / M, ...)``, the samples
    in a random order (the same for every network)."""
    perm = permutation(key, plan.capacity)

    def shuffle(x):
        x = jnp.swapaxes(x[:, perm].reshape((plan.n_net, plan.minibatches, -1) + x.shape[2:]),
                         0, 1)
        return on_envs(plan, x, 2)

    return jax.tree.map(shuffle, data_l)


def ppo_epochs(plan: TrainPlan, params_l, opt_l, data_l: dict, key: jax.Array, ent_coef):
    """Phase 4: ``update_epochs`` x ``num_minibatches`` clipped updates, one Adam per network.

    ``params_l``, ``opt_l`` stacked ``(L, ...)``; ``data_l`` of :func:`pack_batches`. Returns
    ``((params_l, opt_l), loss_stats)``, the stats' leaves ``(epochs, M, L)``.
    """
    loss = functools.partial(ppo_loss, plan, ent_coef=ent_coef)
    grad_fn = jax.vmap(jax.grad(loss, has_aux=True))  # over the L networks

    def minibatch(carry, batch):
        params, opt_state = carry
        grads, stats = grad_fn(params, batch)
        updates, opt_state = jax.vmap(plan.tx.update)(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), stats

    def epoch(carry, k_epoch):
        return jax.lax.scan(minibatch, carry, shuffle_minibatches(plan, data_l, k_epoch))

    return jax.lax.scan(epoch, (params_l, opt_l),
                        jax.random.split(key, plan.config.update_epochs))


# ============================================================================= 5. metrics
def metric_name(key: str) -> str:
    """The training metric of a per-deal info key: ``mean_<key>`` for an offer's issues
    (price, quantity), the key itself for scores (nash_distance, efficiency, ...)."""
    return f"mean_{key}" if key in ("price", "quantity") else key


def _rollout_metrics(traj: dict, config: PPOConfig, env: NegotiationEnv) -> dict[str, jax.Array]:
    """Means over the episodes that finished in this rollout (0 when there are none), leaving
    out those that had an exploring start (their first rounds were random).

    Per-deal means of the env's ``deal_keys`` (named by :func:`metric_name`; the price game's:
    mean_price, nash_distance, pareto_score, supplier_share, like
    :func:`eqx_jax.metrics.summarize`). Per-episode: deal_rate, walk_rate, timeout_rate,
    mean_rounds (where the game has walk-aways and timeouts),
    and return_<role>: the episode return of that role in the envs where PPO plays it (rewards
    are paid on the final step only, so it is the final step's reward), in reward units (not
    scaled). ``episodes``/``deals``: how many finished in the rollout.
    """
    done = traj["done"] & ~traj["explored_episode"]
    info = traj["info"]
    deal = done & info["deal"]
    n_ep, n_deal = jnp.sum(done), jnp.sum(deal)
    out = {"episodes": n_ep.astype(jnp.float32), "deals": n_deal.astype(jnp.float32),
           "deal_rate": n_deal / jnp.maximum(n_ep, 1),
           "mean_rounds": masked_mean(info["round"].astype(jnp.float32), done)}
    for k, name in (("walk_away", "walk_rate"), ("timeout", "timeout_rate")):
        if k in info:
            out[name] = masked_mean(info[k], done)
    for k in env.deal_keys:
        out[metric_name(k)] = masked_mean(info[k], deal)
    for i, role in enumerate(env.agents):
        ppo_env = jnp.asarray(config.ppo_envs(role))
        out[f"return_{role}"] = masked_mean(traj["reward"][:, i], done & ppo_env)
    return out


def update_metrics(plan: TrainPlan, traj: dict, loss_stats: dict, dropped: jax.Array,
                   update: jax.Array, ent_coef) -> dict[str, jax.Array]:
    """Phase 5: the update's metrics, each ``()``: the rollout's (:func:`_rollout_metrics`),
    the mean loss stats and the dropped share per network (``<stat>_<network>``), lr, ent_coef.
    """
    metrics = _rollout_metrics(traj, plan.config, plan.env)
    for k, v in loss_stats.items():  # (epochs, minibatches, L)
        for i, name in enumerate(plan.names):
            metrics[f"{k}_{name}"] = jnp.mean(v[..., i])
    for i, name in enumerate(plan.names):
        metrics[f"dropped_{name}"] = dropped[i]
    metrics["lr"] = lr_at(plan.config, update * plan.steps_per_update)
    metrics["ent_coef"] = jnp.asarray(ent_coef, jnp.float32)
    return metrics


# ============================================================================ one update
def update_one(plan: TrainPlan, runner: RunnerState, _=None) -> tuple[RunnerState, dict]:
    """One PPO update of one seed (a ``lax.scan`` body): the five phases in order.

    Returns the next runner state and the update's metrics (each ``()``).
    """
    params_l, opt_l = stack(plan, runner.params), stack(plan, runner.opt_state)
    key, k_roll, k_pack, k_epochs = jax.random.split(runner.key, 4)
    start = (runner.env_state, runner.obs, runner.explore_round)
    (env_state, obs, explore_round), after_look, look, traj = rollout(
        plan, params_l, start, k_roll)
    data = advantages_batch(plan, params_l, after_look, look, traj)
    data_l, dropped = pack_batches(plan, data, k_pack)
    ent_coef = entropy_coef(plan, runner.update)
    (params_l, opt_l), loss_stats = ppo_epochs(plan, params_l, opt_l, data_l, k_epochs,
                                               ent_coef)
    metrics = update_metrics(plan, traj, loss_stats, dropped, runner.update, ent_coef)
    runner = RunnerState(params=unstack(plan, params_l), opt_state=unstack(plan, opt_l),
                         env_state=env_state, obs=obs, explore_round=explore_round, key=key,
                         update=runner.update + 1)
    return runner, metrics
