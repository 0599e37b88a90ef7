"""The bargaining game as a pure-functional, vectorizable JAX environment.

Gymnax / JaxMARL style: :class:`BargainingEnv` holds only static settings (the length of the offer
history in the observation); everything that changes lives in :class:`EnvState`, every game setting
lives in :class:`EnvParams`, and both are ``flax.struct`` dataclasses (pytrees), so ``reset`` and
``step`` can be ``jax.jit``-ed and ``jax.vmap``-ed over episodes *and* over game settings.

The exact rules are in ``docs/rules.md``; in short: a supplier (seller, index 0) and a retailer
(buyer, index 1) with private valuations alternate moves, the supplier in odd rounds. A move is
ACCEPT the standing offer, COUNTER with a price, or WALK_AWAY. At most ``max_rounds`` rounds.

Units: prices and valuations are currency units; rewards are reward units; ``t`` counts rounds
(env steps) of the current episode. Observations are normalized (prices divided by ``max_price``,
rounds by ``max_rounds``). Shapes below are for one episode; under ``vmap`` a batch axis is added.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from eqx_jax.metrics import episode_metrics

AGENTS: tuple[str, str] = ("supplier", "retailer")
SUPPLIER, RETAILER = 0, 1

ACCEPT, COUNTER, WALK_AWAY = 0, 1, 2
ACTION_NAMES: tuple[str, str, str] = ("ACCEPT", "COUNTER", "WALK_AWAY")

REWARD_MODELS: dict[str, int] = {"seed": 0, "discounted": 1}
SEED, DISCOUNTED = REWARD_MODELS["seed"], REWARD_MODELS["discounted"]

#: Observation fields before the offer history, in order. See :meth:`BargainingEnv.get_obs`.
OBS_FIELDS: tuple[str, ...] = (
    "own_value",  # own valuation / max_price
    "standing_offer",  # standing offer / max_price, 0 when there is none
    "has_offer",  # 1 if there is a standing offer
    "round",  # t / T: rounds played so far
    "time_remaining",  # (T - t) / T
    "role",  # 0 supplier, 1 retailer
    "my_turn",  # 1 if this agent's action is the one applied at this step
    "belief_mean",  # belief about the opponent's valuation: mean / max_price
    "belief_std",  # belief about the opponent's valuation: std / max_price
    "deal_zone",  # |standing offer - belief_mean| / max_price, 0 when there is no offer
    "momentum",  # (opponent's last offer - its previous offer) / max_price, 0 if < 2 offers
    "mask_accept",  # action mask: ACCEPT legal (a standing offer exists and it is my turn)
    "mask_counter",  # action mask: COUNTER always legal
    "mask_walk",  # action mask: WALK_AWAY always legal
)
OBS_INDEX: dict[str, int] = {name: i for i, name in enumerate(OBS_FIELDS)}
MASK_SLICE = slice(OBS_INDEX["mask_accept"], OBS_INDEX["mask_walk"] + 1)

# History entries that hold no offer (prices are clipped to >= 0, so this never collides).
NO_OFFER = -1.0

# Rounds are integers, so "t < bonus_fraction * T" is evaluated as t + eps < bonus_fraction * T:
# exact for any setting whose product is within eps of an integer (0.3 * 50 is 15.000001 in
# float32, and round 15 must not get the bonus).
BONUS_EPS = 1e-3

# Momentum needs the opponent's last two offers, i.e. up to four offers back.
_MIN_HISTORY = 4


@struct.dataclass
class EnvParams:
    """Game settings. Every field is a pytree leaf, so a batch of games can be vmapped.

    Build validated params with :func:`make_params`; the constructor itself does not validate
    because JAX rebuilds this class from traced values inside ``jit``/``vmap``.
    """

    max_rounds: int = 10  # T, rounds
    max_price: float = 10000.0  # prices are clipped to [0, max_price], currency units
    supplier_low: float = 4000.0  # supplier valuation prior U[low, high]; low == high fixes it
    supplier_high: float = 6000.0
    retailer_low: float = 7000.0  # retailer valuation prior U[low, high]
    retailer_high: float = 9000.0
    reward_model: int = SEED  # 0 "seed" (founding design), 1 "discounted" (Rubinstein)
    speed_bonus: float = 5.0  # seed model: bonus for a deal in round t < bonus_fraction * T
    bonus_fraction: float = 0.3
    discount: tuple[float, float] = (0.95, 0.95)  # discounted model: (delta_s, delta_r) per round
    walk_payoff: tuple[float, float] = (-10.0, -10.0)  # (supplier, retailer) on WALK_AWAY
    timeout_payoff: tuple[float, float] = (-5.0, -5.0)  # (supplier, retailer) if round T ends open
    belief_alpha: float = 0.3  # belief mean update: mu <- mu + alpha (offer - mu)
    belief_beta: float = 0.1  # belief variance update: var <- (1 - beta) var


def _check_range(name: str, value: float, low: float, high: float, *, open_low=False) -> None:
    ok = (low < value if open_low else low <= value) and value <= high
    if not ok or value != value:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")


def make_params(**overrides: Any) -> EnvParams:
    """Validated :class:`EnvParams`. ``reward_model`` may be given by name ("seed"/"discounted").

    Raises ``ValueError`` naming the field and its allowed range on bad input.
    """
    unknown = set(overrides) - set(EnvParams.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown game setting(s) {sorted(unknown)}; allowed: "
            f"{sorted(EnvParams.__dataclass_fields__)}"
        )
    rm = overrides.get("reward_model", SEED)
    for name, value in list(overrides.items()):
        if name in ("reward_model", "discount", "walk_payoff", "timeout_payoff"):
            continue
        try:
            overrides[name] = float(value) if name != "max_rounds" else value
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(rm, str):
        if rm not in REWARD_MODELS:
            raise ValueError(f"reward_model must be one of {sorted(REWARD_MODELS)}, got {rm!r}")
        overrides["reward_model"] = REWARD_MODELS[rm]
    for name in ("discount", "walk_payoff", "timeout_payoff"):
        if name in overrides:
            try:
                pair = tuple(float(x) for x in overrides[name])
            except (TypeError, ValueError):
                pair = ()
            if len(pair) != 2:
                raise ValueError(f"{name} must be a pair of numbers (supplier, retailer), "
                                 f"got {overrides[name]!r}")
            overrides[name] = pair
    p = EnvParams(**overrides)
    if (isinstance(p.max_rounds, bool | str) or p.max_rounds != p.max_rounds
            or int(p.max_rounds) != p.max_rounds or not 1 <= p.max_rounds <= 1000):
        raise ValueError(f"max_rounds must be an integer in [1, 1000], got {p.max_rounds!r}")
    _check_range("max_price", p.max_price, 0.0, 1e9, open_low=True)
    for side in ("supplier", "retailer"):
        lo, hi = getattr(p, f"{side}_low"), getattr(p, f"{side}_high")
        _check_range(f"{side}_low", lo, 0.0, p.max_price)
        _check_range(f"{side}_high", hi, lo, p.max_price)
    if p.reward_model not in REWARD_MODELS.values():
        raise ValueError(f"reward_model must be one of {sorted(REWARD_MODELS)}")
    _check_range("speed_bonus", p.speed_bonus, -1e9, 1e9)
    _check_range("bonus_fraction", p.bonus_fraction, 0.0, 1.0)
    for i, side in enumerate(AGENTS):
        _check_range(f"discount[{side}]", p.discount[i], 0.0, 1.0, open_low=True)
        _check_range(f"walk_payoff[{side}]", p.walk_payoff[i], -1e9, 1e9)
        _check_range(f"timeout_payoff[{side}]", p.timeout_payoff[i], -1e9, 1e9)
    _check_range("belief_alpha", p.belief_alpha, 0.0, 1.0)
    _check_range("belief_beta", p.belief_beta, 0.0, 1.0)
    return p.replace(max_rounds=int(p.max_rounds))


@struct.dataclass
class EnvState:
    """Everything that changes during an episode (float32 / int32, a few dozen bytes).

    values:      (2,) f32, private valuations (V_s, V_r), currency units.
    t:           () i32, rounds played in this episode (0 after reset).
    history:     (H,) f32, the last H offers, most recent first; history[0] is the standing
                 offer; NO_OFFER (-1) where no offer was made (e.g. all of it after reset).
    belief_mean: (2,) f32, agent i's belief about the *other* agent's valuation, currency units.
    belief_var:  (2,) f32, its variance, currency units squared.
    """

    values: jax.Array
    t: jax.Array
    history: jax.Array
    belief_mean: jax.Array
    belief_var: jax.Array


Action = dict[str, jax.Array]  # {"action_type": () int32, "price": () float32}


class BargainingEnv:
    """Alternating-offers bargaining between a supplier and a retailer (see ``docs/rules.md``).

    ``num_history`` (static) is how many past offers each observation carries.
    Observation per agent: a float32 vector of size :attr:`obs_size`; its first
    ``len(OBS_FIELDS)`` entries are the named fields of :data:`OBS_FIELDS`, followed by the last
    ``num_history`` offers / max_price (most recent first, 0 where fewer offers were made).
    """

    agents: tuple[str, str] = AGENTS
    num_actions: int = 3

    def __init__(self, num_history: int = 4):
        if int(num_history) != num_history or num_history < 1:
            raise ValueError(f"num_history must be an integer >= 1, got {num_history!r}")
        self.num_history = int(num_history)
        self._history_len = max(self.num_history, _MIN_HISTORY)

    @property
    def obs_size(self) -> int:
        return len(OBS_FIELDS) + self.num_history

    @staticmethod
    def default_params() -> EnvParams:
        return EnvParams()

    # ----------------------------------------------------------------------------- reset
    def reset(self, key: chex.PRNGKey, params: EnvParams) -> tuple[dict[str, jax.Array], EnvState]:
        """Start an episode: draw both private valuations from their priors."""
        state = self._initial_state(key, params)
        return self.get_obs(state, params), state

    def _initial_state(self, key: chex.PRNGKey, params: EnvParams) -> EnvState:
        u = jax.random.uniform(key, (2,), dtype=jnp.float32)
        low = jnp.array([params.supplier_low, params.retailer_low], jnp.float32)
        high = jnp.array([params.supplier_high, params.retailer_high], jnp.float32)
        values = low + u * (high - low)
        # Each agent's prior about the other is the other's (public) uniform prior:
        # mean (low + high) / 2, variance (high - low)^2 / 12. Reversed order: agent i's belief
        # is about agent 1 - i.
        belief_mean = ((low + high) / 2)[::-1]
        belief_var = ((high - low) ** 2 / 12)[::-1]
        return EnvState(
            values=values,
            t=jnp.zeros((), jnp.int32),
            history=jnp.full((self._history_len,), NO_OFFER, jnp.float32),
            belief_mean=belief_mean,
            belief_var=belief_var,
        )

    # ------------------------------------------------------------------------------ step
    def step(
        self,
        key: chex.PRNGKey,
        state: EnvState,
        actions: dict[str, Action],
        params: EnvParams,
    ) -> tuple[dict[str, jax.Array], EnvState, dict[str, jax.Array], dict[str, jax.Array], dict]:
        """One round; auto-resets (with ``key``) when the episode ends.

        Returns ``(obs, state, rewards, dones, info)``: ``rewards``/``dones`` keyed by agent,
        ``dones["__all__"]``; on the final step of an episode ``obs``/``state`` are those of the
        next episode and ``info`` describes the episode that just ended (see :meth:`step_env`).
        """
        state_next, rewards, done, info = self.step_env(state, actions, params)
        state_reset = self._initial_state(key, params)
        # Select the whole (tiny) state once, then build one observation: no second get_obs.
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_reset, state_next)
        obs = self.get_obs(state, params)
        dones = {AGENTS[0]: done, AGENTS[1]: done, "__all__": done}
        return obs, state, rewards, dones, info

    def step_env(
        self, state: EnvState, actions: dict[str, Action], params: EnvParams
    ) -> tuple[EnvState, dict[str, jax.Array], jax.Array, dict[str, jax.Array]]:
        """Apply the mover's action without auto-reset. Returns (state, rewards, done, info).

        ``info`` (all scalars): ``deal``, ``walk_away``, ``timeout``, ``illegal_accept`` (bools);
        ``price`` (deal price, 0 without a deal), ``round`` (rounds played, i32), ``surplus``
        (V_r - V_s realised by a deal, else 0), ``supplier_value``, ``retailer_value``, ``done``,
        and the per-episode metrics of :func:`eqx_jax.metrics.episode_metrics` (0 unless ``done``).
        """
        t_prev = state.t
        mover_is_supplier = (t_prev % 2) == 0
        sup, ret = actions[AGENTS[0]], actions[AGENTS[1]]
        a_type = jnp.where(mover_is_supplier, sup["action_type"], ret["action_type"])
        a_type = jnp.clip(a_type.astype(jnp.int32), ACCEPT, WALK_AWAY)
        price = jnp.where(mover_is_supplier, sup["price"], ret["price"]).astype(jnp.float32)

        standing = state.history[0]
        has_offer = standing >= 0
        illegal_accept = (a_type == ACCEPT) & ~has_offer
        a_type = jnp.where(illegal_accept, COUNTER, a_type)
        # NaN rule: repeat the standing offer, or open at one's own valuation in round 1.
        own_value = jnp.where(mover_is_supplier, state.values[0], state.values[1])
        price = jnp.where(jnp.isnan(price), jnp.where(has_offer, standing, own_value), price)
        price = jnp.clip(price, 0.0, params.max_price)

        t = t_prev + 1
        deal = a_type == ACCEPT
        walk = a_type == WALK_AWAY
        counter = a_type == COUNTER
        timeout = counter & (t >= params.max_rounds)
        done = deal | walk | timeout

        # Rewards on a deal at the standing offer, for both reward models (both are a few flops;
        # selecting by a traced reward_model keeps game settings vmappable).
        v_s, v_r = state.values[0], state.values[1]
        gains = jnp.stack([standing - v_s, v_r - standing])
        tf = t.astype(jnp.float32)
        horizon = jnp.asarray(params.max_rounds, jnp.float32)
        seed_discount = jnp.square(1.0 - tf / horizon)
        bonus = jnp.where(tf + BONUS_EPS < params.bonus_fraction * horizon, params.speed_bonus, 0.0)
        seed_reward = gains * seed_discount + bonus
        disc_reward = gains * jnp.power(jnp.asarray(params.discount, jnp.float32), tf)
        deal_reward = jnp.where(params.reward_model == SEED, seed_reward, disc_reward)
        walk_payoff = jnp.asarray(params.walk_payoff, jnp.float32)
        timeout_payoff = jnp.asarray(params.timeout_payoff, jnp.float32)
        reward = jnp.where(
            deal, deal_reward, jnp.where(walk, walk_payoff, jnp.where(timeout, timeout_payoff, 0.0))
        ).astype(jnp.float32)

        # A counter becomes the standing offer; the *other* agent updates its belief about the
        # mover from it (agent i's belief is about agent 1 - i, so the updating agent is 1 - mover).
        history = jnp.where(counter, jnp.roll(state.history, 1).at[0].set(price), state.history)
        updates = counter & jnp.stack([~mover_is_supplier, mover_is_supplier])
        belief_mean = jnp.where(
            updates, state.belief_mean + params.belief_alpha * (price - state.belief_mean),
            state.belief_mean,
        )
        belief_var = jnp.where(updates, (1.0 - params.belief_beta) * state.belief_var,
                               state.belief_var)
        new_state = EnvState(values=state.values, t=t, history=history,
                             belief_mean=belief_mean, belief_var=belief_var)

        deal_price = jnp.where(deal, standing, 0.0)
        info = {
            "done": done,
            "deal": deal,
            "walk_away": walk,
            "timeout": timeout,
            "illegal_accept": illegal_accept,
            "price": deal_price,
            "round": t,
            "surplus": jnp.where(deal, v_r - v_s, 0.0),
            "supplier_value": v_s,
            "retailer_value": v_r,
        }
        metrics = episode_metrics(deal, deal_price, t, v_s, v_r, params.max_rounds)
        info.update({k: jnp.where(done, v, jnp.zeros_like(v)) for k, v in metrics.items()})
        rewards = {AGENTS[0]: reward[0], AGENTS[1]: reward[1]}
        return new_state, rewards, done, info

    # ------------------------------------------------------------------------ observation
    def get_obs(self, state: EnvState, params: EnvParams) -> dict[str, jax.Array]:
        """Both agents' observations, each a (obs_size,) float32 vector (fields in OBS_FIELDS)."""
        inv_p = 1.0 / jnp.asarray(params.max_price, jnp.float32)
        horizon = jnp.asarray(params.max_rounds, jnp.float32)
        t = state.t
        tf = t.astype(jnp.float32)
        h = state.history
        made = h >= 0  # which history entries hold an offer
        has_offer = made[0]
        standing = jnp.where(has_offer, h[0], 0.0)
        role = jnp.array([0.0, 1.0], jnp.float32)
        supplier_turn = (t % 2) == 0
        my_turn = jnp.stack([supplier_turn, ~supplier_turn])

        # Offers alternate, so the opponent's last two offers are h[0], h[2] for the agent on
        # turn (the standing offer is the opponent's) and h[1], h[3] for the other agent.
        opp_last = jnp.where(my_turn, h[0], h[1])
        opp_prev = jnp.where(my_turn, h[2], h[3])
        opp_has_two = jnp.where(my_turn, made[2], made[3])
        momentum = jnp.where(opp_has_two, (opp_last - opp_prev) * inv_p, 0.0)

        deal_zone = jnp.where(has_offer, jnp.abs(standing - state.belief_mean) * inv_p, 0.0)
        ones = jnp.ones((2,), jnp.float32)
        k = self.num_history
        recent = jnp.where(made[:k], h[:k], 0.0) * inv_p
        fields = jnp.stack(
            [
                state.values * inv_p,
                ones * standing * inv_p,
                ones * has_offer,
                ones * tf / horizon,
                ones * (horizon - tf) / horizon,
                role,
                my_turn.astype(jnp.float32),
                state.belief_mean * inv_p,
                jnp.sqrt(state.belief_var) * inv_p,
                deal_zone,
                momentum,
                (my_turn & has_offer).astype(jnp.float32),
                ones,
                ones,
            ],
            axis=-1,
        )
        obs = jnp.concatenate([fields, jnp.broadcast_to(recent, (2, k))], axis=-1)
        return {AGENTS[0]: obs[0], AGENTS[1]: obs[1]}


def action_mask(obs: jax.Array) -> jax.Array:
    """(…, 3) bool mask of legal action types, read from observation(s)."""
    return obs[..., MASK_SLICE] > 0.5
