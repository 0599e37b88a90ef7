"""The actor-critic network: role-relative input features, separate actor and critic torsos."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

from eqx_jax.env import MASK_SLICE, OBS_INDEX
from eqx_jax.games.registry import DEFAULT_GAME
from eqx_jax.games.spec import NegotiationEnv, offer_levels, offer_value_mask
from eqx_jax.ppo.config import PPOConfig
from eqx_jax.ppo.distributions import MASKED_LOGIT, MixedOfferParams, OfferHead

#: Variance scale of each layer's kernel (variance_scaling, fan_in, normal); default 1.0
#: (lecun-normal, suited to tanh). The output heads start near zero: uniform legal action types,
#: a broad price distribution around mid-range.
KERNEL_SCALES: dict[str, float] = {"type_logits": 1e-4, "price_params": 1e-4,
                                   "value_logits": 1e-4}


def _dense(features: int, name: str) -> nn.Dense:
    # variance_scaling / lecun-normal style init: NOT orthogonal (a jitted PPO loop can hang
    # inside LAPACK's QR with orthogonal init).
    init = nn.initializers.variance_scaling(KERNEL_SCALES.get(name, 1.0), "fan_in", "normal")
    return nn.Dense(features, kernel_init=init, bias_init=nn.initializers.zeros, name=name)


#: Scale of the role-relative input features: a 1000-unit gap (max_price 10000) is 1.0.
FEATURE_SCALE = 10.0


def role_features(obs: jax.Array) -> jax.Array:
    """Role-relative features appended to the observation, ``(..., 3)``.

    With sign +1 for the supplier (sells high) and -1 for the retailer: the gain of accepting the
    standing offer ``sign * (offer - own_value)``, the perceived size of the deal zone
    ``sign * (belief_mean - own_value)``, and ``sign * (offer - belief_mean)`` (0 without an
    offer), times :data:`FEATURE_SCALE`. They are functions of the agent's own observation only;
    they spare the network from learning, from inputs that differ by ~0.05, the sharp
    "accept iff the offer beats my valuation" threshold (without them, self-play learns it too
    slowly: the supplier prices above the retailer's valuation and both end up walking away).
    """
    i = OBS_INDEX
    sign = 1.0 - 2.0 * obs[..., i["role"]]
    own, has = obs[..., i["own_value"]], obs[..., i["has_offer"]]
    offer, belief = obs[..., i["standing_offer"]], obs[..., i["belief_mean"]]
    feats = jnp.stack([has * sign * (offer - own), sign * (belief - own),
                       has * sign * (offer - belief)], axis=-1)
    return FEATURE_SCALE * feats


class ActorCritic(nn.Module):
    """Actor-critic for one role (or both, shared). Input: observation(s) ``(..., obs_size)``.

    Returns ``(logits, price_params, value)``: ``logits (..., 3)`` over ACCEPT/COUNTER/WALK_AWAY
    with illegal types (the action mask at ``mask_slice`` of the observation) set to
    :data:`MASKED_LOGIT`; ``price_params (..., D, 2)`` raw parameters of the offer head, one
    bounded distribution per issue of an offer (``offer_size`` D; see
    :mod:`eqx_jax.ppo.distributions`); ``value (...)`` the critic. Actor and critic have separate
    tanh MLP torsos (PureJaxRL); both read the observation, plus :func:`role_features` in the
    single-price game (``price_features``; the other games carry their accept-gain feature in
    the observation). Layers are named (``actor_i``, ``type_logits``, ``price_params``,
    ``critic_i``, ``value``); see :func:`init_network`.

    With ``offer_levels`` (D,) naming discrete issues (the categorical head, see
    :class:`~eqx_jax.ppo.distributions.OfferHead`), ``price_params`` is a
    :class:`~eqx_jax.ppo.distributions.MixedOfferParams`: the continuous issues' ``(..., Dc, 2)``
    (layer ``price_params``, absent when Dc = 0) and the discrete issues' ``(..., Dd, L)``
    logits (layer ``value_logits``), the values that ``value_mask(obs)`` (``(..., D, L)`` bool,
    :func:`eqx_jax.games.spec.offer_value_mask`) calls illegal set to :data:`MASKED_LOGIT`.
    """

    hidden: tuple[int, ...] = (64, 64)
    offer_size: int = 1
    price_features: bool = True
    mask_start: int = MASK_SLICE.start
    offer_levels: tuple[int, ...] = ()  # () or all 0: every issue continuous
    value_mask: Callable[[jax.Array], jax.Array] | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        x = jnp.concatenate([obs, role_features(obs)], axis=-1) if self.price_features else obs
        actor = x
        for i, width in enumerate(self.hidden):
            actor = nn.tanh(_dense(width, f"actor_{i}")(actor))
        logits = _dense(3, "type_logits")(actor)
        legal = obs[..., self.mask_start:self.mask_start + 3] > 0.5
        logits = jnp.where(legal, logits, MASKED_LOGIT)
        if OfferHead("", self.offer_levels).categorical:
            price_params = self._mixed_offer(obs, actor)
        else:
            price_params = _dense(2 * self.offer_size, "price_params")(actor)
            price_params = price_params.reshape(price_params.shape[:-1] + (self.offer_size, 2))
        critic = x
        for i, width in enumerate(self.hidden):
            critic = nn.tanh(_dense(width, f"critic_{i}")(critic))
        value = _dense(1, "value")(critic)[..., 0]
        return logits, price_params, value

    def _mixed_offer(self, obs: jax.Array, actor: jax.Array) -> MixedOfferParams:
        """The categorical head's offer parameters (see the class docstring)."""
        head = OfferHead("", self.offer_levels)
        n_cont, n_disc, n_val = len(head.cont), len(head.disc), head.num_values
        batch = actor.shape[:-1]
        if n_cont:
            cont = _dense(2 * n_cont, "price_params")(actor).reshape(batch + (n_cont, 2))
        else:
            cont = jnp.zeros(batch + (0, 2), actor.dtype)
        logits = _dense(n_disc * n_val, "value_logits")(actor).reshape(batch + (n_disc, n_val))
        legal = head.take(self.value_mask(obs), head.disc, axis=-2)[..., :n_val]
        return MixedOfferParams(cont, jnp.where(legal, logits, MASKED_LOGIT))


def offer_head(config: PPOConfig, env: NegotiationEnv) -> OfferHead:
    """The offer head of ``config`` on ``env``: categoricals for the env's discrete issues
    where ``config.discrete_head`` is "categorical", else every issue continuous."""
    levels = offer_levels(env) if config.discrete_head == "categorical" else ()
    return OfferHead(config.price_head, levels if any(levels) else ())


def build_network(config: PPOConfig, env: NegotiationEnv) -> ActorCritic:
    """The actor-critic of ``config``'s game on ``env`` (offer size and head, input features,
    mask position)."""
    head = offer_head(config, env)
    return ActorCritic(config.hidden, env.offer_size, price_features=config.game == DEFAULT_GAME,
                       mask_start=env.mask_slice.start, offer_levels=head.levels,
                       value_mask=(functools.partial(offer_value_mask, env)
                                   if head.categorical else None))


def init_network(key: jax.Array, hidden: tuple[int, ...], obs_size: int,
                 net: ActorCritic | None = None) -> dict:
    """Parameters of ``net`` (default ``ActorCritic(hidden)``): same distribution as
    ``net.init``, faster.

    Every kernel ~ Normal(0, scale / fan_in) (:data:`KERNEL_SCALES`), biases 0, as the layers'
    own initializers, but drawn with *one* random call for the whole network: each separate
    draw adds a threefry kernel to compile (~0.3 s each on CPU), which makes ``init`` take
    seconds to compile.
    """
    net = net or ActorCritic(tuple(hidden))
    shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((obs_size,), jnp.float32))
    flat = traverse_util.flatten_dict(shapes)
    total = sum(math.prod(leaf.shape) for path, leaf in flat.items() if path[-1] == "kernel")
    noise = jax.random.normal(key, (total,), jnp.float32)
    out, start = {}, 0
    for path, leaf in flat.items():
        if path[-1] == "kernel":
            size = math.prod(leaf.shape)
            std = math.sqrt(KERNEL_SCALES.get(path[-2], 1.0) / leaf.shape[0])
            out[path] = std * noise[start:start + size].reshape(leaf.shape)
            start += size
        else:
            out[path] = jnp.zeros(leaf.shape, leaf.dtype)
    return traverse_util.unflatten_dict(out)
