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

from eqx_jax.checks import check_number
from eqx_jax.metrics import episode_metrics
from eqx_jax.rewards import (  # the reward-model names are re-exported for the env's users
    BONUS_EPS,  # noqa: F401
    DISCOUNTED,  # noqa: F401
    REWARD_MODEL_NAMES,
    REWARD_MODELS,  # noqa: F401
    SEED,
    check_reward_settings,
    normalize_reward_overrides,
    outcome_rewards,
)

AGENTS: tuple[str, str] = ("supplier", "retailer")
SUPPLIER, RETAILER = 0, 1

ACCEPT, COUNTER, WALK_AWAY = 0, 1, 2
ACTION_NAMES: tuple[str, str, str] = ("ACCEPT", "COUNTER", "WALK_AWAY")


#: Who makes offers (``EnvParams.proposer``): both in turn, or only one side.
PROPOSERS: dict[str, int] = {"alternate": 0, "supplier": 1, "retailer": 2}
ALTERNATE = PROPOSERS["alternate"]
#: The retailer's valuation prior (``EnvParams.retailer_prior``).
RETAILER_PRIORS: dict[str, int] = {"uniform": 0, "two_type": 1}
UNIFORM, TWO_TYPE = RETAILER_PRIORS["uniform"], RETAILER_PRIORS["two_type"]
_CODED = {"proposer": PROPOSERS, "retailer_prior": RETAILER_PRIORS}

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
    # who makes offers: 0 "alternate" (both, in turn), 1 "supplier" or 2 "retailer" (only that
    # side offers; the other accepts, rejects with a COUNTER whose price is ignored, or walks)
    proposer: int = ALTERNATE
    # the retailer's prior: 0 "uniform" U[retailer_low, retailer_high]; 1 "two_type":
    # retailer_high with probability retailer_high_prob, else retailer_low
    retailer_prior: int = UNIFORM
    retailer_high_prob: float = 0.5


def _is_integral(x: Any) -> bool:
    try:
        return not isinstance(x, bool | str) and float(x).is_integer()
    except (TypeError, ValueError):
        return False


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
    for name, value in list(overrides.items()):
        if name in ("reward_model", "discount", "walk_payoff", "timeout_payoff"):
            continue
        if name in _CODED:
            overrides[name] = _code(name, value)
            continue
        try:
            overrides[name] = float(value) if name != "max_rounds" else value
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    normalize_reward_overrides(overrides)
    p = EnvParams(**overrides)
    rounds = p.max_rounds
    if _is_integral(rounds):  # 10.0 from a YAML file or a JSON number is the integer 10
        rounds = int(rounds)
    check_number("max_rounds", rounds, 1, 1000, integer=True)
    check_number("max_price", p.max_price, 0.0, 1e9, low_open=True)
    for side in ("supplier", "retailer"):
        lo, hi = getattr(p, f"{side}_low"), getattr(p, f"{side}_high")
        check_number(f"{side}_low", lo, 0.0, p.max_price)
        check_number(f"{side}_high", hi, lo, p.max_price)
    check_reward_settings(p, AGENTS)
    check_number("belief_alpha", p.belief_alpha, 0.0, 1.0)
    check_number("belief_beta", p.belief_beta, 0.0, 1.0)
    check_number("retailer_high_prob", p.retailer_high_prob, 0.0, 1.0)
    return p.replace(max_rounds=rounds)


def _code(name: str, value: Any) -> int:
    """A coded setting (``proposer``, ``retailer_prior``) by name or code -> its code."""
    codes = _CODED[name]
    if isinstance(value, str) and value in codes:
        return codes[value]
    if _is_integral(value) and int(value) in codes.values():
        return int(value)
    raise ValueError(f"{name} must be one of {list(codes)}, got {value!r}")


def params_to_dict(p: EnvParams) -> dict[str, Any]:
    """All settings as plain JSON-able data, the reward model by name (what configs, logs and the
    plain-Python reference env take)."""
    d = {name: getattr(p, name) for name in EnvParams.__dataclass_fields__}
    d["reward_model"] = REWARD_MODEL_NAMES[int(p.reward_model)]
    for name, codes in _CODED.items():
        d[name] = {v: k for k, v in codes.items()}[int(d[name])]
    d.update({k: [float(x) for x in d[k]] for k in ("discount", "walk_payoff", "timeout_payoff")})
    return d


def spe_kwargs(p: EnvParams) -> dict[str, Any]:
    """The settings of ``p`` as keyword arguments of ``eqx_jax.equilibrium.solve_spe`` /
    ``spe_price_batch`` (everything but the valuation priors and the belief rule)."""
    d = params_to_dict(p)
    return {k: (tuple(d[k]) if isinstance(d[k], list) else d[k])
            for k in ("reward_model", "max_price", "speed_bonus", "bonus_fraction", "discount",
                      "walk_payoff", "timeout_payoff")}


def game_settings(p: EnvParams) -> dict[str, Any]:
    """:func:`spe_kwargs` plus ``max_rounds`` and ``proposer`` (by name): what
    ``eqx_jax.metrics.summarize(..., game=)`` and ``eqx_jax.efficiency`` take."""
    return {**spe_kwargs(p), "max_rounds": int(p.max_rounds),
            "proposer": params_to_dict(p)["proposer"]}


@struct.dataclass
class EnvState:
    """Everything that changes during an episode: a dozen float32/int32 scalars per episode.

    Every field is a scalar (so under ``vmap`` every field is one contiguous (N,) array: the
    layout that lets XLA fuse the step into a few vectorized loops; a (N, 4) history array made
    the step about 1.7x slower on CPU).

    supplier_value, retailer_value: () f32, private valuations V_s, V_r, currency units.
    t:        () i32, rounds played in this episode (0 after reset).
    offer_by_supplier: () bool, whether the supplier made the latest history entry (the standing
              offer; under one-sided offers also a rejection's empty entry). Needed for the
              momentum field: after a final ACCEPT/WALK_AWAY, t's parity no longer says it.
    history:  tuple of H () f32, the last H offers, most recent first; history[0] is the
              standing offer; NO_OFFER (-1) where no offer was made (all of them after reset).
    supplier_belief_mean, retailer_belief_mean: () f32, each agent's belief about the *other*
              agent's valuation (mean), currency units.
    supplier_belief_std, retailer_belief_std: () f32, its standard deviation. The rule
              ``var <- (1 - beta) var`` is applied as ``std <- sqrt(1 - beta) std``.
    """

    supplier_value: jax.Array
    retailer_value: jax.Array
    t: jax.Array
    offer_by_supplier: jax.Array
    history: tuple[jax.Array, ...]
    supplier_belief_mean: jax.Array
    retailer_belief_mean: jax.Array
    supplier_belief_std: jax.Array
    retailer_belief_std: jax.Array


Action = dict[str, jax.Array]  # {"action_type": () int32, "price": () float32}


def _f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def _fmix32(h: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finalizer: a bijection with full avalanche (every input bit flips
    each output bit with probability ~1/2)."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _uniform2(key: chex.PRNGKey) -> jax.Array:
    """Two U[0, 1) float32 numbers (23 random mantissa bits each) from ``key``.

    Why not ``jax.random.uniform(key, (2,))``: under ``vmap`` every step of the vectorized loop
    draws a reset for every episode (it is selected only where an episode ended), and on CPU
    the library call (two threefry hashes, in a rolled loop) was ~25% of the whole step. The
    key handed to ``step`` is already the output of a threefry hash (``jax.random.split``), so
    its 64 bits are pseudo-random; they are put through murmur3's finalizer so that structured
    keys (``jax.random.key(0)``, ``key(1)``, ...) still give well-spread valuations. Same key,
    same valuations; different keys, independent-looking valuations.
    """
    data = jax.random.key_data(key).reshape(-1)
    lo, hi = data[0].astype(jnp.uint32), data[1].astype(jnp.uint32)
    bits = jnp.stack([_fmix32(lo ^ _fmix32(hi ^ jnp.uint32(0x9E3779B9))),
                      _fmix32(hi + _fmix32(lo + jnp.uint32(0x7F4A7C15)))])
    mantissa = jnp.right_shift(bits, jnp.uint32(32 - 23)) | jnp.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0


class BargainingEnv:
    """Alternating-offers bargaining between a supplier and a retailer (see ``docs/rules.md``).

    ``num_history`` (static) is how many past offers each observation carries.
    Observation per agent: a float32 vector of size :attr:`obs_size`; its first
    ``len(OBS_FIELDS)`` entries are the named fields of :data:`OBS_FIELDS`, followed by the last
    ``num_history`` offers / max_price (most recent first, 0 where fewer offers were made).
    """

    agents: tuple[str, str] = AGENTS
    num_actions: int = 3
    offer_size: int = 1  # the game protocol (eqx_jax/games/spec.py): an offer is one price
    mask_slice: slice = MASK_SLICE
    info_keys: tuple[str, ...] = ("deal", "walk_away", "timeout", "price", "round",
                                  "nash_distance", "pareto_score", "supplier_share")
    deal_keys: tuple[str, ...] = ("price", "nash_distance", "pareto_score", "supplier_share")

    def __init__(self, num_history: int = 4):
        check_number("num_history", int(num_history) if _is_integral(num_history) else num_history,
                     1, integer=True)
        self.num_history = int(num_history)
        self._history_len = max(self.num_history, _MIN_HISTORY)

    @property
    def obs_size(self) -> int:
        return len(OBS_FIELDS) + self.num_history

    @staticmethod
    def default_params() -> EnvParams:
        return EnvParams()

    # ---------------------------------------------------------- the game protocol's pieces
    @staticmethod
    def rounds_played(state) -> jax.Array:
        """() i32: rounds played in the episode (the game protocol)."""
        return state.t

    @staticmethod
    def mover(state: EnvState) -> jax.Array:
        """() i32: 0 when the supplier moves next (odd rounds), 1 for the retailer."""
        return (state.t & 1).astype(jnp.int32)

    @staticmethod
    def make_action(action_type: jax.Array, offer: jax.Array) -> Action:
        """The env action from a type (...) and an offer (..., 1) holding the price."""
        return {"action_type": action_type.astype(jnp.int32),
                "price": offer[..., 0].astype(jnp.float32)}

    @staticmethod
    def offer_bounds(params: EnvParams) -> tuple[jax.Array, jax.Array]:
        return jnp.zeros(1, jnp.float32), jnp.reshape(_f32(params.max_price), (1,))

    @staticmethod
    def gain_scale(params: EnvParams) -> float:
        """The size of a large deal gain, currency units (the trainer's reward scale)."""
        return params.max_price

    @staticmethod
    def explore_bounds(params: EnvParams) -> tuple[jax.Array, jax.Array]:
        """The valuation supports widened by 10 % (of their span, at least 1 % of max_price),
        within [0, max_price]: where the exploring starts' random counter-offers fall."""
        lo = jnp.minimum(_f32(params.supplier_low), _f32(params.retailer_low))
        hi = jnp.maximum(_f32(params.supplier_high), _f32(params.retailer_high))
        pad = 0.1 * jnp.maximum(hi - lo, 0.1 * _f32(params.max_price))
        return (jnp.reshape(jnp.maximum(lo - pad, 0.0), (1,)),
                jnp.reshape(jnp.minimum(hi + pad, params.max_price), (1,)))

    # ----------------------------------------------------------------------------- reset
    def reset(self, key: chex.PRNGKey, params: EnvParams) -> tuple[dict[str, jax.Array], EnvState]:
        """Start an episode: draw both private valuations from their priors."""
        state = self._initial_state(key, params)
        return self.get_obs(state, params), state

    def _initial_state(self, key: chex.PRNGKey, params: EnvParams) -> EnvState:
        u = _uniform2(key)
        s_lo, s_hi = _f32(params.supplier_low), _f32(params.supplier_high)
        r_lo, r_hi = _f32(params.retailer_low), _f32(params.retailer_high)
        # Each agent's prior about the other is the other's public prior: uniform, mean
        # (low + high) / 2 and std (high - low) / sqrt(12); two types, mean pi high +
        # (1 - pi) low and std (high - low) sqrt(pi (1 - pi)).
        inv_sqrt12 = 1.0 / jnp.sqrt(jnp.float32(12.0))
        two = params.retailer_prior == TWO_TYPE
        pi = _f32(params.retailer_high_prob)
        return EnvState(
            supplier_value=s_lo + u[0] * (s_hi - s_lo),
            retailer_value=jnp.where(two, jnp.where(u[1] < pi, r_hi, r_lo),
                                     r_lo + u[1] * (r_hi - r_lo)),
            t=jnp.zeros((), jnp.int32),
            offer_by_supplier=jnp.zeros((), bool),
            history=(jnp.float32(NO_OFFER),) * self._history_len,
            supplier_belief_mean=jnp.where(two, r_lo + pi * (r_hi - r_lo), (r_lo + r_hi) / 2),
            retailer_belief_mean=(s_lo + s_hi) / 2,
            supplier_belief_std=(r_hi - r_lo) * jnp.where(
                two, jnp.sqrt(pi * (1.0 - pi)), inv_sqrt12),
            retailer_belief_std=(s_hi - s_lo) * inv_sqrt12,
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
        mover_is_supplier = (state.t & 1) == 0
        sup, ret = actions[AGENTS[0]], actions[AGENTS[1]]
        a_type = jnp.where(mover_is_supplier, sup["action_type"], ret["action_type"])
        a_type = jnp.clip(a_type.astype(jnp.int32), ACCEPT, WALK_AWAY)
        price = _f32(jnp.where(mover_is_supplier, sup["price"], ret["price"]))

        v_s, v_r = state.supplier_value, state.retailer_value
        standing = state.history[0]
        has_offer = standing >= 0
        illegal_accept = (a_type == ACCEPT) & ~has_offer
        a_type = jnp.where(illegal_accept, COUNTER, a_type)
        # NaN rule: repeat the standing offer, or open at one's own valuation in round 1.
        own_value = jnp.where(mover_is_supplier, v_s, v_r)
        price = jnp.where(jnp.isnan(price), jnp.where(has_offer, standing, own_value), price)
        price = jnp.clip(price, 0.0, params.max_price)

        t = state.t + 1
        deal = a_type == ACCEPT
        walk = a_type == WALK_AWAY
        counter = a_type == COUNTER
        timeout = counter & (t >= params.max_rounds)
        done = deal | walk | timeout

        rewards = self._rewards(t, standing, v_s, v_r, deal, walk, timeout, params)

        # A counter becomes the standing offer; the *other* agent updates its belief about the
        # mover from it: the retailer after a supplier's counter, and vice versa. Where only
        # one side offers, the other side's counter is a rejection: it withdraws the standing
        # offer (a NO_OFFER entry, so that offers and gaps still alternate in the history).
        offers = ((params.proposer == ALTERNATE)
                  | (params.proposer == jnp.where(mover_is_supplier, 1, 2)))
        offer = counter & offers
        entry = jnp.where(offers, price, NO_OFFER)
        history = tuple(jnp.where(counter, new, old) for new, old in
                        zip((entry,) + state.history[:-1], state.history, strict=True))
        alpha = _f32(params.belief_alpha)
        shrink = jnp.sqrt(1.0 - _f32(params.belief_beta))
        upd_r = offer & mover_is_supplier
        upd_s = offer & ~mover_is_supplier
        mu_s, mu_r = state.supplier_belief_mean, state.retailer_belief_mean
        sd_s, sd_r = state.supplier_belief_std, state.retailer_belief_std
        new_state = EnvState(
            supplier_value=v_s, retailer_value=v_r, t=t, history=history,
            offer_by_supplier=jnp.where(counter, mover_is_supplier, state.offer_by_supplier),
            supplier_belief_mean=jnp.where(upd_s, mu_s + alpha * (price - mu_s), mu_s),
            retailer_belief_mean=jnp.where(upd_r, mu_r + alpha * (price - mu_r), mu_r),
            supplier_belief_std=jnp.where(upd_s, shrink * sd_s, sd_s),
            retailer_belief_std=jnp.where(upd_r, shrink * sd_r, sd_r),
        )

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
        return new_state, rewards, done, info

    @staticmethod
    def _rewards(t, price, v_s, v_r, deal, walk, timeout, params) -> dict[str, jax.Array]:
        """Rewards of the step ending round ``t`` (see docs/rules.md), both agents."""
        r_s, r_r = outcome_rewards(t, (price - v_s, v_r - price), deal, walk, timeout, params)
        return {AGENTS[0]: r_s, AGENTS[1]: r_r}

    # ------------------------------------------------------------------------ observation
    def get_obs(self, state: EnvState, params: EnvParams) -> dict[str, jax.Array]:
        """Both agents' observations, each a (obs_size,) float32 vector (fields in OBS_FIELDS)."""
        inv_p = 1.0 / _f32(params.max_price)
        horizon = _f32(params.max_rounds)
        tf = state.t.astype(jnp.float32)
        h = state.history
        made = [x >= 0 for x in h]  # which history entries hold an offer
        has_offer = made[0]
        standing = jnp.where(has_offer, h[0], 0.0) * inv_p
        supplier_turn = (state.t & 1) == 0
        retailer_turn = ~supplier_turn

        # Offers alternate, so the last two offers of whoever made the standing offer are h[0],
        # h[2], and the other agent's are h[1], h[3]; momentum is the opponent's change.
        momentum_of_offerer = jnp.where(made[2], (h[0] - h[2]) * inv_p, 0.0)
        momentum_of_other = jnp.where(made[3], (h[1] - h[3]) * inv_p, 0.0)
        by_s = state.offer_by_supplier
        recent = [jnp.where(m, x, 0.0) * inv_p for m, x in zip(made, h[:self.num_history],
                                                                  strict=False)]
        round_frac = tf / horizon
        remaining = (horizon - tf) / horizon
        one, zero = jnp.ones_like(tf), jnp.zeros_like(tf)
        has = has_offer.astype(jnp.float32)

        def agent_obs(value, role, my_turn, mu, sd, momentum):
            deal_zone = jnp.where(has_offer, jnp.abs(h[0] - mu) * inv_p, 0.0)
            return jnp.stack([
                value * inv_p, standing, has, round_frac, remaining, role,
                my_turn.astype(jnp.float32), mu * inv_p, sd * inv_p, deal_zone, momentum,
                (my_turn & has_offer).astype(jnp.float32), one, one, *recent,
            ])

        return {
            AGENTS[0]: agent_obs(
                state.supplier_value, zero, supplier_turn, state.supplier_belief_mean,
                state.supplier_belief_std,
                jnp.where(by_s, momentum_of_other, momentum_of_offerer)),
            AGENTS[1]: agent_obs(
                state.retailer_value, one, retailer_turn, state.retailer_belief_mean,
                state.retailer_belief_std,
                jnp.where(by_s, momentum_of_offerer, momentum_of_other)),
        }


def action_mask(obs: jax.Array) -> jax.Array:
    """(…, 3) bool mask of legal action types, read from observation(s)."""
    return obs[..., MASK_SLICE] > 0.5
