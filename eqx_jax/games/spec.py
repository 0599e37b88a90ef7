"""What every game of the family provides: the env protocol the trainer, the tools and the
PettingZoo adapter are written against, and a game's registry entry.

Every game is a two-party alternating-offers negotiation (Gymnax / JaxMARL style: a class of pure
methods over explicit ``EnvState`` / ``EnvParams`` ``flax.struct`` dataclasses, auto-reset inside
``step``, jit- and vmap-able over episodes and over settings). Agents are
``("supplier", "retailer")`` (index 0 / 1, or the game's own two names); the env applies only
the *mover's* action each step (the other agent's is ignored). An action is the pytree that
:meth:`NegotiationEnv.make_action` builds from

* ``action_type``: () int32, 0 ACCEPT the standing offer, 1 COUNTER with an offer, 2 WALK_AWAY
  (a game where some type is never legal says so in the observation's action mask), and
* ``offer``: (D,) float32, the counter-offer as D issues in natural units, within
  :meth:`NegotiationEnv.offer_bounds` (the env clips; a discrete issue is rounded to the
  nearest of its values by the env, which documents how).

so one PPO offer head plays every game. Each issue has a static kind, the env's
``offer_levels`` (D,) (see :func:`offer_levels`): 0 for a continuous issue (a bounded density over
its range), ``n >= 2`` for a discrete one whose values are 0..n-1 in natural units (a value
index, an item count; a categorical over them). Where the legal values of a discrete issue
depend on the episode (an item count up to that episode's pool), the env's
``offer_value_mask(obs)`` reads them from the mover's observation (the policy sees only that):
see :func:`offer_value_mask`. A game with continuous issues only needs neither.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import chex
import jax
import jax.numpy as jnp
import numpy as np

ACCEPT, COUNTER, WALK_AWAY = 0, 1, 2


class NegotiationEnv(Protocol):
    """The env protocol (duck-typed). Shapes are for one episode; ``vmap`` adds a batch axis.

    Attributes: ``agents`` the two agent names; ``num_actions`` = 3 action types;
    ``obs_size`` the length of each agent's float32 observation; ``offer_size`` D, the number
    of issues of an offer; ``mask_slice`` where the (3,) legal-action-type mask (1.0 legal)
    sits in the observation; ``info_keys`` the per-episode scalars of ``info`` that the
    trainer logs (the ones in ``deal_keys`` are averaged over deals only). Optional (games
    with discrete issues): ``offer_levels`` (D,) and ``offer_value_mask(obs)``, see
    :func:`offer_levels` and :func:`offer_value_mask`.
    """

    agents: tuple[str, str]
    num_actions: int
    obs_size: int
    offer_size: int
    mask_slice: slice
    info_keys: tuple[str, ...]
    deal_keys: tuple[str, ...]

    def reset(self, key: chex.PRNGKey, params: Any) -> tuple[dict[str, jax.Array], Any]:
        """(obs per agent (obs_size,), state) of a new episode (private values drawn)."""

    def step(self, key: chex.PRNGKey, state: Any, actions: dict[str, Any], params: Any
             ) -> tuple[dict[str, jax.Array], Any, dict[str, jax.Array], dict[str, jax.Array],
                        dict[str, jax.Array]]:
        """(obs, state, rewards, dones incl. "__all__", info); auto-resets with ``key``."""

    def step_env(self, state: Any, actions: dict[str, Any], params: Any
                 ) -> tuple[Any, dict[str, jax.Array], jax.Array, dict[str, jax.Array]]:
        """(state, rewards, done, info) without the reset."""

    def mover(self, state: Any) -> jax.Array:
        """() int32: the index of the agent whose action the next step applies."""

    def rounds_played(self, state: Any) -> jax.Array:
        """() int32: rounds (turns) played in the episode, 0 after a reset."""

    def make_action(self, action_type: jax.Array, offer: jax.Array) -> dict[str, jax.Array]:
        """The env action from a type (...) i32 and an offer (..., D) in natural units."""

    def offer_bounds(self, params: Any) -> tuple[jax.Array, jax.Array]:
        """(low (D,), high (D,)) float32: the range of each issue, natural units."""

    def gain_scale(self, params: Any) -> float:
        """A typical large deal gain (the units of the gains of a deal): the trainer scales
        rewards by 10 / gain_scale so that they are a few units."""

    def explore_bounds(self, params: Any) -> tuple[jax.Array, jax.Array]:
        """(low (D,), high (D,)): the range of the exploring starts' random counter-offers
        (the trainer opens some episodes with random counters to visit every subgame)."""


def offer_levels(env: Any) -> tuple[int, ...]:
    """(D,) the kind of each issue of ``env``'s offers: 0 continuous, n >= 2 discrete with the
    values 0..n-1 (natural units). The env's ``offer_levels`` attribute, all 0 without one."""
    levels = getattr(env, "offer_levels", None)
    if levels is None:
        return (0,) * int(env.offer_size)
    levels = tuple(int(n) for n in levels)
    if len(levels) != env.offer_size or any(n == 1 or n < 0 for n in levels):
        raise ValueError(f"offer_levels must be {env.offer_size} integers, each 0 "
                         f"(continuous) or >= 2 (discrete), got {levels}")
    return levels


def offer_value_mask(env: Any, obs: jax.Array) -> jax.Array:
    """(..., D, L) bool, L = max(offer_levels) (at least 1): value v of issue d is a legal
    offer in the state that ``obs (..., obs_size)`` (the mover's observation) describes.

    Always ``v < n_d``; for a continuous issue (n_d = 0) every entry is False (its offer is not
    chosen among values). Where the env has ``offer_value_mask(obs) -> (..., D, L) bool`` (the
    legal values depend on the episode), that mask is applied too."""
    levels = offer_levels(env)
    static = np.arange(max(max(levels), 1))[None, :] < np.asarray(levels)[:, None]  # (D, L)
    mask = jnp.broadcast_to(jnp.asarray(static), obs.shape[:-1] + static.shape)
    episode_mask = getattr(env, "offer_value_mask", None)
    return mask if episode_mask is None else mask & episode_mask(obs)


class AutoReset:
    """``step`` for a game with ``step_env``, ``_initial_state(key, params)`` and ``get_obs``:
    the step, then (where it ended the episode) a fresh episode drawn with ``key``, selected on
    the whole state once so that one observation is built."""

    def step(self, key: chex.PRNGKey, state: Any, actions: dict[str, Any], params: Any):
        """One round with auto-reset; returns ``(obs, state, rewards, dones, info)``, ``info``
        describing the episode that just ended on its final step."""
        state_next, rewards, done, info = self.step_env(state, actions, params)
        state_reset = self._initial_state(key, params)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_reset, state_next)
        dones = {**{agent: done for agent in self.agents}, "__all__": done}
        return self.get_obs(state, params), state, rewards, dones, info


class AlternatingOffers(AutoReset):
    """The protocol pieces of a game whose state counts rounds in ``t`` and whose action is
    ``{"action_type", "offer"}``: the first agent moves in odd rounds."""

    @staticmethod
    def rounds_played(state: Any) -> jax.Array:
        """() i32: rounds played in the episode."""
        return state.t

    @staticmethod
    def mover(state: Any) -> jax.Array:
        """() i32: 0 when the first agent moves next (odd rounds), else 1."""
        return (state.t & 1).astype(jnp.int32)

    @staticmethod
    def make_action(action_type: jax.Array, offer: jax.Array) -> dict[str, jax.Array]:
        """The env action from a type (...) and an offer (..., D) in natural units."""
        return {"action_type": action_type.astype(jnp.int32), "offer": offer.astype(jnp.float32)}


@dataclasses.dataclass(frozen=True)
class GameSpec:
    """A game's registry entry: everything the tools need to build and describe it.

    ``make_env(**options)`` builds the env (options: ``num_history`` and, for a game that has
    them, its static options such as ``scenario``); ``make_params(**overrides)`` validated
    params (``ValueError`` naming the field and its range); ``params_to_dict(params)`` plain
    JSON-able settings; ``summary`` one line for ``--help`` and the README. Callers that may
    hold a scenario use :meth:`env` / :meth:`params`.
    """

    name: str
    summary: str
    make_env: Callable[..., NegotiationEnv]
    make_params: Callable[..., Any]
    params_to_dict: Callable[[Any], dict[str, Any]]
    env_options: tuple[str, ...] = ("num_history",)
    #: The game is played on a scenario (a file or a shipped name): ``make_env(scenario=...)``
    #: and ``make_params(scenario=..., **overrides)`` take it.
    scenario: bool = False

    def env(self, scenario: str | None = None, **options: Any) -> NegotiationEnv:
        """The env, with ``scenario`` where the game takes one."""
        if self.scenario and scenario is not None:
            options["scenario"] = scenario
        return self.make_env(**options)

    def params(self, scenario: str | None = None, **overrides: Any) -> Any:
        """Validated params, with ``scenario`` where the game takes one."""
        if self.scenario and scenario is not None:
            return self.make_params(scenario, **overrides)
        return self.make_params(**overrides)
