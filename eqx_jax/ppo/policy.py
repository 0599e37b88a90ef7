"""Trained parameters as a policy: acting, negotiator-style policies, evaluation matches."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from eqx_jax.env import AGENTS, game_settings
from eqx_jax.metrics import summarize
from eqx_jax.negotiators import Policy, get_game_negotiator
from eqx_jax.ppo.config import POLICY_OPPONENT, PPOConfig, default_sides
from eqx_jax.ppo.distributions import greedy_offer, offer_units, sample_offer_action
from eqx_jax.ppo.networks import ActorCritic, build_network, offer_head
from eqx_jax.simulate import play_batch, records_to_numpy


def network(config: PPOConfig, env=None) -> ActorCritic:
    """The actor-critic of ``config``'s game (offer size and head, input features, mask
    position)."""
    return build_network(config, env or config.make_env())


def policy_action(params, obs: jax.Array, key: jax.Array, deterministic: bool = False, *,
                  config: PPOConfig | None = None, max_price: float | None = None,
                  env_params=None) -> dict[str, jax.Array]:
    """Observation(s) ``(..., obs_size)`` -> env action, with one role's network ``params``.

    ``deterministic``: argmax over the legal types and, per issue, the offer head's mode
    (Beta) / mean (pre-tanh Gaussian), or with the categorical head the most likely legal value
    of a discrete issue; else a sample. ``config`` gives the game, the network shape and the
    heads (default: ``PPOConfig()``); the offer bounds come from ``env_params`` (default: the
    config's game; in the price game ``max_price`` alone may be given instead).
    """
    config = config or PPOConfig()
    env = config.make_env()
    if env_params is None:
        env_params = config.env_params
        if max_price is not None:
            env_params = env_params.replace(max_price=max_price)
    head = offer_head(config, env)
    logits, pp, _ = build_network(config, env).apply(params, obs)
    if deterministic:
        a_type = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        raw = greedy_offer(head, pp)
    else:
        a_type, raw = sample_offer_action(key, head, logits, pp)
    lo, hi = env.offer_bounds(env_params)
    return env.make_action(a_type, offer_units(head, raw, lo, hi - lo))


def make_policy(params, config: PPOConfig, deterministic: bool = False) -> Policy:
    """A trained network as a negotiator-style policy ``(key, obs, env_params) -> action``."""

    def policy(key, obs, env_params):
        return policy_action(params, obs, key, deterministic, config=config,
                             env_params=env_params)

    return policy


def resolve_policy(config: PPOConfig, params: dict, name: str, role: str, deterministic: bool,
                   opponent_policy: Policy | None = None) -> Policy:
    """The policy called ``name`` (``"ppo"``, ``"policy"`` or a negotiator) playing ``role``."""
    if name == "ppo":
        return make_policy(params[config.network_for(role)], config, deterministic)
    if name == POLICY_OPPONENT:
        if opponent_policy is None:
            raise ValueError(f"the {role} is the config's fixed opponent "
                             f"{POLICY_OPPONENT!r}: pass opponent_policy")
        return opponent_policy
    return get_game_negotiator(name, config.make_env())


def evaluate(config: PPOConfig, params: dict, key: jax.Array, num_episodes: int = 10_000,
             deterministic: bool = True, supplier: str | None = None,
             retailer: str | None = None,
             opponent_policy: Policy | None = None) -> dict[str, float]:
    """Play trained policies on the config's game; :func:`eqx_jax.metrics.summarize` output.

    ``params``: one run's params dict (see :func:`eqx_jax.ppo.seed_params`).
    ``supplier``/``retailer``: ``"ppo"`` or a negotiator name; defaults: PPO where the config
    trains it, else the opponent (for ``ppo_roles="both"`` against a negotiator: the PPO
    supplier vs the negotiator). ``opponent_policy``: the policy that plays a side named
    ``"policy"`` (the fixed opponent of a config with ``opponent="policy"``).
    """
    defaults = default_sides(config)
    supplier = defaults[0] if supplier is None else supplier
    retailer = defaults[1] if retailer is None else retailer
    env_params = config.env_params
    sup = resolve_policy(config, params, supplier, AGENTS[0], deterministic, opponent_policy)
    ret = resolve_policy(config, params, retailer, AGENTS[1], deterministic, opponent_policy)
    env = config.make_env()
    record = jax.jit(lambda k: play_batch(k, env_params, sup, ret, num_episodes, env))(key)
    return summarize(records_to_numpy(record, env_params), game_settings(env_params))
