"""The price x quantity game: the founding design's "price and quantity of goods", in pure JAX.

Same turns, action types, special rules and reward models as the single-price game
(``docs/rules.md``); an offer is a unit price and a quantity, the supplier has a private unit
cost ``c`` and the retailer a private demand intercept ``a`` (value of ``q`` units
``V(q) = a q - b q^2 / 2``, public slope ``b``). The exact rules are in ``docs/games.md``
("price-quantity"). Gymnax style: :class:`PriceQuantityEnv` holds only static settings,
:class:`PQState` / :class:`PQParams` are ``flax.struct`` pytrees, every method is pure.

Units: prices and the intercept are currency units per unit of goods, quantities are units,
gains currency units, rewards reward units; ``t`` counts rounds. Shapes are for one episode.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from eqx_jax.checks import check_number
from eqx_jax.env import ACCEPT, AGENTS, COUNTER, WALK_AWAY, _is_integral, _uniform2
from eqx_jax.games.spec import AlternatingOffers
from eqx_jax.rewards import (
    PAIR_FIELDS,
    SEED,
    check_reward_settings,
    normalize_reward_overrides,
    outcome_rewards,
    reward_settings_to_dict,
)

#: Observation fields before the offer history, in order (see docs/games.md).
PQ_OBS_FIELDS: tuple[str, ...] = (
    "own_value",  # c (supplier) or a (retailer) / max_price
    "standing_price",  # standing offer's unit price / max_price, 0 without one
    "standing_quantity",  # standing offer's quantity / max_quantity, 0 without one
    "has_offer",
    "round",  # t / T
    "time_remaining",  # (T - t) / T
    "role",  # 0 supplier, 1 retailer
    "my_turn",
    "slope",  # b max_quantity / max_price
    "opponent_mean",  # prior mean of the other side's private value / max_price
    "est_quantity",  # efficient quantity with the other side's prior mean / max_quantity
    "accept_gain",  # own gain of accepting the standing offer / gain scale, 0 without one
    "mask_accept",
    "mask_counter",
    "mask_walk",
)
PQ_OBS_INDEX: dict[str, int] = {name: i for i, name in enumerate(PQ_OBS_FIELDS)}
NO_OFFER = -1.0
#: Gain scale of the ``accept_gain`` field: max_price * max_quantity / GAIN_SCALE_DIV.
GAIN_SCALE_DIV = 10.0


@struct.dataclass
class PQParams:
    """Settings of the price-quantity game; every field a pytree leaf (vmappable).

    Build validated params with :func:`make_pq_params`.
    """

    max_rounds: int = 10  # T, rounds
    max_price: float = 200.0  # unit prices clipped to [0, max_price]
    max_quantity: float = 200.0  # quantities clipped to [0, max_quantity], units
    cost_low: float = 40.0  # supplier unit cost c ~ U[cost_low, cost_high]
    cost_high: float = 60.0
    demand_low: float = 140.0  # retailer demand intercept a ~ U[demand_low, demand_high]
    demand_high: float = 180.0
    demand_slope: float = 1.0  # b > 0, currency units per unit^2
    reward_model: int = SEED
    speed_bonus: float = 5.0
    bonus_fraction: float = 0.3
    discount: tuple[float, float] = (0.95, 0.95)
    walk_payoff: tuple[float, float] = (-10.0, -10.0)
    timeout_payoff: tuple[float, float] = (-5.0, -5.0)


def make_pq_params(**overrides: Any) -> PQParams:
    """Validated :class:`PQParams`; ``ValueError`` naming the field and its range."""
    fields = PQParams.__dataclass_fields__
    unknown = set(overrides) - set(fields)
    if unknown:
        raise ValueError(f"unknown price-quantity setting(s) {sorted(unknown)}; allowed: "
                         f"{sorted(fields)}")
    for name, value in list(overrides.items()):
        if name in PAIR_FIELDS or name == "reward_model":
            continue
        try:
            overrides[name] = float(value) if name != "max_rounds" else value
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    p = PQParams(**normalize_reward_overrides(overrides))
    rounds = int(p.max_rounds) if _is_integral(p.max_rounds) else p.max_rounds
    check_number("max_rounds", rounds, 1, 1000, integer=True)
    check_number("max_price", p.max_price, 0.0, 1e6, low_open=True)
    check_number("max_quantity", p.max_quantity, 0.0, 1e6, low_open=True)
    check_number("cost_low", p.cost_low, 0.0, p.max_price)
    check_number("cost_high", p.cost_high, p.cost_low, p.max_price)
    check_number("demand_low", p.demand_low, 0.0, 10.0 * p.max_price)
    check_number("demand_high", p.demand_high, p.demand_low, 10.0 * p.max_price)
    check_number("demand_slope", p.demand_slope, 0.0, 1e6, low_open=True)
    check_reward_settings(p, AGENTS)
    return p.replace(max_rounds=rounds)


def pq_params_to_dict(p: PQParams) -> dict[str, Any]:
    """All settings as plain JSON-able data, the reward model by name."""
    d = {name: float(getattr(p, name)) for name in PQParams.__dataclass_fields__
         if name not in PAIR_FIELDS and name != "reward_model"}
    d["max_rounds"] = int(p.max_rounds)
    d.update(reward_settings_to_dict(p))
    return d


@struct.dataclass
class PQState:
    """Per-episode state, all scalars (one contiguous (N,) array per field under vmap).

    unit_cost, demand_intercept: () f32, the private values c and a.
    t: () i32, rounds played. prices, quantities: tuples of H () f32, the last H offers, most
    recent first (index 0 the standing offer); NO_OFFER (-1) where none was made.
    """

    unit_cost: jax.Array
    demand_intercept: jax.Array
    t: jax.Array
    prices: tuple[jax.Array, ...]
    quantities: tuple[jax.Array, ...]


def _f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def gains(price, quantity, cost, intercept, slope) -> tuple[jax.Array, jax.Array]:
    """(supplier, retailer) gains of a deal at (price, quantity): ``(p - c) q`` and
    ``a q - b q^2 / 2 - p q`` (currency units)."""
    return (price - cost) * quantity, (intercept - 0.5 * slope * quantity - price) * quantity


def efficient_quantity(cost, intercept, params: PQParams) -> jax.Array:
    """``q* = (a - c) / b`` clipped to [0, max_quantity]: the quantity maximising the total
    gain ``V(q) - c q``."""
    return jnp.clip((intercept - cost) / params.demand_slope, 0.0, params.max_quantity)


class PriceQuantityEnv(AlternatingOffers):
    """Alternating offers over (unit price, quantity); see ``docs/games.md``.

    ``num_history`` (static): offers in each observation. Observation per agent: float32
    ``(obs_size,)``, the fields of :data:`PQ_OBS_FIELDS` then ``2 * num_history`` history entries
    (price, quantity of each past offer, most recent first).
    """

    agents: tuple[str, str] = AGENTS
    num_actions: int = 3
    offer_size: int = 2
    mask_slice: slice = slice(PQ_OBS_INDEX["mask_accept"], PQ_OBS_INDEX["mask_walk"] + 1)
    info_keys: tuple[str, ...] = ("deal", "walk_away", "timeout", "round", "price", "quantity",
                                  "efficiency", "supplier_share")
    deal_keys: tuple[str, ...] = ("price", "quantity", "efficiency", "supplier_share")
    #: What a played match records per episode (evaluation: the private values for the SPE).
    record_keys: tuple[str, ...] = info_keys + ("illegal_accept", "surplus", "unit_cost",
                                                "demand_intercept")

    def __init__(self, num_history: int = 2):
        n = int(num_history) if _is_integral(num_history) else num_history
        check_number("num_history", n, 1, 64, integer=True)
        self.num_history = int(n)

    @property
    def obs_size(self) -> int:
        return len(PQ_OBS_FIELDS) + 2 * self.num_history

    @staticmethod
    def default_params() -> PQParams:
        return PQParams()

    # --------------------------------------------------------------------- protocol pieces
    @staticmethod
    def offer_bounds(params: PQParams) -> tuple[jax.Array, jax.Array]:
        return jnp.zeros(2, jnp.float32), jnp.stack([_f32(params.max_price),
                                                    _f32(params.max_quantity)])

    @staticmethod
    def gain_scale(params: PQParams) -> float:
        """The size of a large deal gain: a quarter of max_price * max_quantity."""
        return 0.25 * params.max_price * params.max_quantity

    @staticmethod
    def explore_bounds(params: PQParams) -> tuple[jax.Array, jax.Array]:
        """Prices over the costs and intercepts' range widened by 10 %, quantities from 0 to
        the largest efficient quantity plus 10 % (within the bounds)."""
        lo_p = jnp.minimum(_f32(params.cost_low), _f32(params.demand_low))
        hi_p = jnp.maximum(_f32(params.cost_high), _f32(params.demand_high))
        pad = 0.1 * jnp.maximum(hi_p - lo_p, 0.1 * params.max_price)
        q_hi = (params.demand_high - params.cost_low) / params.demand_slope
        q_hi = jnp.clip(1.1 * q_hi, 0.1 * params.max_quantity, params.max_quantity)
        return (jnp.stack([jnp.maximum(lo_p - pad, 0.0), _f32(0.0)]),
                jnp.stack([jnp.minimum(hi_p + pad, params.max_price), _f32(q_hi)]))

    # --------------------------------------------------- what a classic negotiator reads
    def negotiator_view(self, obs: jax.Array, params: PQParams) -> dict[str, jax.Array]:
        """Decode one agent's observation for the utility-space negotiators
        (:mod:`eqx_jax.negotiators`): ``t_next`` (the round of the move, f32), ``horizon``,
        ``has_offer``, ``standing_gain`` (own gain of accepting the standing offer) and
        ``best_gain`` (own gain of the best offer in the box), currency units."""
        i, p_max, q_max = PQ_OBS_INDEX, _f32(params.max_price), _f32(params.max_quantity)
        horizon = _f32(params.max_rounds)
        value = obs[i["own_value"]] * p_max
        supplier = obs[i["role"]] < 0.5
        b = _f32(params.demand_slope)
        q_top = jnp.clip(value / b, 0.0, q_max)  # the retailer's value is largest at a / b
        best = jnp.where(supplier, (p_max - value) * q_max,
                         value * q_top - 0.5 * b * q_top * q_top)
        gain_scale = p_max * q_max / GAIN_SCALE_DIV
        return {"t_next": jnp.round(obs[i["round"]] * horizon) + 1.0, "horizon": horizon,
                "has_offer": obs[i["has_offer"]] > 0.5,
                "standing_gain": obs[i["accept_gain"]] * gain_scale,
                "best_gain": jnp.maximum(best, 0.0)}

    def offer_for_gain(self, obs: jax.Array, params: PQParams, gain: jax.Array) -> jax.Array:
        """(2,) the offer (p, q) that gives this agent ``gain`` and is best for the opponent
        by its *estimated* value (the prior mean in the observation): the estimated efficient
        quantity, priced to leave the agent ``gain`` (NegMAS's time-based negotiators: the
        outcome at the aspiration level best for the opponent). Where the price bounds bind,
        the quantity moves to keep the gain: the supplier sells more at max_price, the
        retailer buys up to a / b at price 0."""
        i, p_max, q_max = PQ_OBS_INDEX, _f32(params.max_price), _f32(params.max_quantity)
        value = obs[i["own_value"]] * p_max
        supplier = obs[i["role"]] < 0.5
        b = _f32(params.demand_slope)
        q_est = obs[i["est_quantity"]] * q_max
        # supplier: (p - c) q = gain, p <= max_price  =>  q >= gain / (max_price - c)
        q_s = jnp.clip(jnp.maximum(q_est, gain / jnp.maximum(p_max - value, 1e-6)), 1e-6, q_max)
        p_s = value + gain / q_s
        # retailer: a q - b q^2 / 2 - p q = gain, p >= 0: q where V(q) >= gain, nearest q_est
        q_top = jnp.clip(value / b, 1e-6, q_max)
        v_top = value * q_top - 0.5 * b * q_top * q_top
        disc = jnp.maximum(value * value - 2.0 * b * jnp.minimum(gain, v_top), 0.0)
        q_low = (value - jnp.sqrt(disc)) / b  # smallest q with V(q) = gain
        q_r = jnp.clip(jnp.maximum(q_est, q_low), 1e-6, q_top)
        p_r = (value * q_r - 0.5 * b * q_r * q_r - gain) / q_r
        offer = jnp.where(supplier, jnp.stack([p_s, q_s]), jnp.stack([p_r, q_r]))
        return jnp.clip(offer, 0.0, jnp.stack([p_max, q_max]))

    # ------------------------------------------------------------------------------ reset
    def reset(self, key: chex.PRNGKey, params: PQParams) -> tuple[dict[str, jax.Array], PQState]:
        """Start an episode: draw c and a from their priors."""
        state = self._initial_state(key, params)
        return self.get_obs(state, params), state

    def _initial_state(self, key: chex.PRNGKey, params: PQParams) -> PQState:
        u = _uniform2(key)
        none = (jnp.float32(NO_OFFER),) * self.num_history
        return PQState(
            unit_cost=params.cost_low + u[0] * (params.cost_high - params.cost_low),
            demand_intercept=params.demand_low + u[1] * (params.demand_high - params.demand_low),
            t=jnp.zeros((), jnp.int32), prices=none, quantities=none)

    # ------------------------------------------------------------------------------- step
    @staticmethod
    def standing_offer(state: PQState) -> tuple[jax.Array, jax.Array]:
        """((2,) the standing offer (unit price, quantity), () bool whether there is one)."""
        return jnp.stack([state.prices[0], state.quantities[0]]), state.prices[0] >= 0

    def _mover_offer(self, state: PQState, actions, params: PQParams):
        """(action type, price, quantity) of the mover, after the special rules."""
        by_s = (state.t & 1) == 0
        sup, ret = actions[AGENTS[0]], actions[AGENTS[1]]
        a_type = jnp.where(by_s, sup["action_type"], ret["action_type"]).astype(jnp.int32)
        a_type = jnp.clip(a_type, ACCEPT, WALK_AWAY)
        offer = jnp.where(by_s, _f32(sup["offer"]), _f32(ret["offer"]))
        price, qty = offer[..., 0], offer[..., 1]
        has_offer = state.prices[0] >= 0
        own = jnp.where(by_s, state.unit_cost, state.demand_intercept)
        price = jnp.where(jnp.isnan(price), jnp.where(has_offer, state.prices[0], own), price)
        qty = jnp.where(jnp.isnan(qty), jnp.where(has_offer, state.quantities[0], 0.0), qty)
        illegal = (a_type == ACCEPT) & ~has_offer
        a_type = jnp.where(illegal, COUNTER, a_type)
        return (a_type, illegal, jnp.clip(price, 0.0, params.max_price),
                jnp.clip(qty, 0.0, params.max_quantity))

    def step_env(self, state: PQState, actions: dict[str, dict], params: PQParams):
        """Apply the mover's action without auto-reset: ``(state, rewards, done, info)``.

        ``info`` (scalars): ``done``, ``deal``, ``walk_away``, ``timeout``, ``illegal_accept``,
        ``round``, ``price``, ``quantity`` (0 without a deal), ``surplus``, ``efficiency``,
        ``supplier_share``, ``unit_cost``, ``demand_intercept``.
        """
        a_type, illegal, price, qty = self._mover_offer(state, actions, params)
        t = state.t + 1
        deal, walk = a_type == ACCEPT, a_type == WALK_AWAY
        counter = a_type == COUNTER
        timeout = counter & (t >= params.max_rounds)
        done = deal | walk | timeout
        p0, q0 = state.prices[0], state.quantities[0]
        c, a = state.unit_cost, state.demand_intercept
        g_s, g_r = gains(p0, q0, c, a, params.demand_slope)
        r_s, r_r = outcome_rewards(t, (g_s, g_r), deal, walk, timeout, params)
        keep = lambda new, hist: tuple(  # noqa: E731 - a counter pushes onto the history
            jnp.where(counter, x, old) for x, old in zip((new,) + hist[:-1], hist, strict=True))
        new_state = PQState(unit_cost=c, demand_intercept=a, t=t, prices=keep(price, state.prices),
                            quantities=keep(qty, state.quantities))
        q_star = efficient_quantity(c, a, params)
        best_s, best_r = gains(c, q_star, c, a, params.demand_slope)  # total at price = c
        total, best = g_s + g_r, best_s + best_r
        info = {
            "done": done, "deal": deal, "walk_away": walk, "timeout": timeout,
            "illegal_accept": illegal, "round": t,
            "price": jnp.where(deal, p0, 0.0), "quantity": jnp.where(deal, q0, 0.0),
            "surplus": jnp.where(deal, total, 0.0),
            "efficiency": jnp.where(deal & (best > 1e-9), total / jnp.maximum(best, 1e-9), 0.0),
            "supplier_share": jnp.where(deal & (jnp.abs(total) > 1e-9),
                                        g_s / jnp.where(jnp.abs(total) > 1e-9, total, 1.0), 0.0),
            "unit_cost": c, "demand_intercept": a,
        }
        return new_state, {AGENTS[0]: r_s, AGENTS[1]: r_r}, done, info

    # ------------------------------------------------------------------------ observation
    def get_obs(self, state: PQState, params: PQParams) -> dict[str, jax.Array]:
        """Both agents' observations, each ``(obs_size,)`` float32 (see docs/games.md)."""
        inv_p, inv_q = 1.0 / _f32(params.max_price), 1.0 / _f32(params.max_quantity)
        inv_g = GAIN_SCALE_DIV * inv_p * inv_q
        horizon = _f32(params.max_rounds)
        tf = state.t.astype(jnp.float32)
        made = [x >= 0 for x in state.prices]
        has = made[0]
        p0 = jnp.where(has, state.prices[0], 0.0)
        q0 = jnp.where(has, state.quantities[0], 0.0)
        c, a, b = state.unit_cost, state.demand_intercept, _f32(params.demand_slope)
        mean_c = 0.5 * (params.cost_low + params.cost_high)
        mean_a = 0.5 * (params.demand_low + params.demand_high)
        g_s, g_r = gains(p0, q0, c, a, b)
        supplier_turn = (state.t & 1) == 0
        hist = []
        for m, p, q in zip(made, state.prices, state.quantities, strict=True):
            hist += [jnp.where(m, p, 0.0) * inv_p, jnp.where(m, q, 0.0) * inv_q]
        one, zero = jnp.ones_like(tf), jnp.zeros_like(tf)
        hasf = has.astype(jnp.float32)
        common = (p0 * inv_p, q0 * inv_q, hasf, tf / horizon, (horizon - tf) / horizon)

        def agent_obs(value, role, my_turn, opp_mean, est_q, gain):
            return jnp.stack([
                value * inv_p, *common, role, my_turn.astype(jnp.float32),
                b * params.max_quantity * inv_p, opp_mean * inv_p,
                jnp.clip(est_q, 0.0, params.max_quantity) * inv_q, hasf * gain * inv_g,
                (my_turn & has).astype(jnp.float32), one, one, *hist])

        return {AGENTS[0]: agent_obs(c, zero, supplier_turn, mean_a, (mean_a - c) / b, g_s),
                AGENTS[1]: agent_obs(a, one, ~supplier_turn, mean_c, (a - mean_c) / b, g_r)}
