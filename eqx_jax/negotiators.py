"""Classic negotiators as pure JAX policies ``(key, obs, params) -> action``.

Each policy reads one agent's observation vector (see :data:`eqx_jax.env.OBS_FIELDS`) and the
public game settings, and returns ``{"action_type": () int32, "price": () float32}``. They are
``jit``/``vmap``-able, so they run inside the vectorized env and serve as fixed training opponents.
They only use what the observation reveals (own valuation, offers, round, belief), never the
opponent's private valuation.

* ``random``: a uniformly random *legal* action type and a price uniform on ``[0, max_price]``.
* time-dependent concession (Faratin, Sierra & Jennings 1998), ``boulware`` (e = 0.2),
  ``linear`` (e = 1), ``conceder`` (e = 5): the target price moves from the best price of the
  range (``max_price`` for the supplier, 0 for the retailer) to the own valuation as
  ``c(tau) = tau ** (1 / e)``, ``tau = t / T`` the round of the move. Accepts a standing offer at
  least as good as its own next target (the "AC-next" rule), so it accepts any individually
  rational offer in round T. Never walks away.
* ``tit_for_tat``: relative tit-for-tat (Faratin et al.): concede by the same *ratio* the opponent
  conceded over its last two offers, ``x_new = x_mine * x_opp_prev / x_opp_last``, kept between the
  own valuation and the range bound; plays ``linear`` until both sides have made enough offers.
* ``midpoint``: always proposes the midpoint of its own valuation and its belief about the
  opponent's; accepts any offer at least that good (or any individually rational offer in round T).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from eqx_jax.env import ACCEPT, COUNTER, MASK_SLICE, OBS_INDEX, EnvParams

Policy = Callable[[jax.Array, jax.Array, EnvParams], dict[str, jax.Array]]

_I = OBS_INDEX
_HIST = len(_I)  # first offer-history entry


def _action(accept: jax.Array, price: jax.Array) -> dict[str, jax.Array]:
    return {
        "action_type": jnp.where(accept, ACCEPT, COUNTER).astype(jnp.int32),
        "price": jnp.asarray(price, jnp.float32),
    }


def _context(obs: jax.Array, params: EnvParams):
    """Decode what every rule-based negotiator needs from a normalized observation."""
    p_max = jnp.asarray(params.max_price, jnp.float32)
    horizon = jnp.asarray(params.max_rounds, jnp.float32)
    value = obs[_I["own_value"]] * p_max
    is_supplier = obs[_I["role"]] < 0.5
    offer = obs[_I["standing_offer"]] * p_max
    has_offer = obs[_I["has_offer"]] > 0.5
    # The move being chosen is played in round t + 1.
    t_next = jnp.round(obs[_I["round"]] * horizon) + 1.0
    return p_max, horizon, value, is_supplier, offer, has_offer, t_next


def _at_least_as_good(offer, target, is_supplier):
    """Is ``offer`` at least as good as ``target`` for this side (sell high / buy low)?"""
    return jnp.where(is_supplier, offer >= target, offer <= target)


def time_dependent(exponent: float) -> Policy:
    """Faratin time-dependent tactic with concession exponent ``e`` (< 1 Boulware, > 1 Conceder)."""
    if not exponent > 0:
        raise ValueError(f"exponent must be > 0, got {exponent!r}")
    power = 1.0 / exponent
    # An integer power (Boulware e = 0.2 -> tau^5) is a few multiplications instead of exp/log.
    concede = ((lambda tau: jax.lax.integer_pow(tau, round(power)))
               if abs(power - round(power)) < 1e-12 else (lambda tau: tau ** power))

    def policy(key, obs, params):
        del key
        p_max, horizon, value, is_supplier, offer, has_offer, t_next = _context(obs, params)
        tau = jnp.clip(t_next / horizon, 0.0, 1.0)
        c = concede(tau)
        target = jnp.where(is_supplier, p_max - c * (p_max - value), c * value)
        return _action(has_offer & _at_least_as_good(offer, target, is_supplier), target)

    return policy


def tit_for_tat(key, obs, params):
    """Relative tit-for-tat; see the module docstring."""
    p_max, horizon, value, is_supplier, offer, has_offer, t_next = _context(obs, params)
    hist = obs[_HIST:] * p_max
    # On my turn: hist[0] opponent's last offer, hist[1] mine, hist[2] opponent's previous one.
    enough = (t_next >= 4) & (hist.shape[0] >= 3)
    opp_last, mine, opp_prev = hist[0], hist[1], hist[min(2, hist.shape[0] - 1)]
    ratio = opp_prev / jnp.where(opp_last > 0, opp_last, 1.0)
    mirrored = jnp.where(is_supplier, jnp.clip(mine * ratio, value, p_max),
                         jnp.clip(mine * ratio, 0.0, value))
    linear = time_dependent(1.0)(key, obs, params)["price"]
    target = jnp.where(enough & (opp_last > 0), mirrored, linear)
    last_round = t_next >= horizon
    rational = _at_least_as_good(offer, value, is_supplier)
    accept = has_offer & (_at_least_as_good(offer, target, is_supplier) | (last_round & rational))
    return _action(accept, target)


def midpoint(key, obs, params):
    """Split the difference between own valuation and the belief about the opponent's."""
    del key
    p_max, horizon, value, is_supplier, offer, has_offer, t_next = _context(obs, params)
    target = (value + obs[_I["belief_mean"]] * p_max) / 2
    last_round = t_next >= horizon
    rational = _at_least_as_good(offer, value, is_supplier)
    accept = has_offer & (_at_least_as_good(offer, target, is_supplier) | (last_round & rational))
    return _action(accept, target)


def random_policy(key, obs, params):
    """Uniformly random legal action type; price uniform on [0, max_price]."""
    k_type, k_price = jax.random.split(key)
    mask = obs[MASK_SLICE] > 0.5
    action_type = jax.random.categorical(k_type, jnp.where(mask, 0.0, -jnp.inf))
    price = jax.random.uniform(k_price, (), jnp.float32) * params.max_price
    return {"action_type": action_type.astype(jnp.int32), "price": price}


NEGOTIATORS: dict[str, Policy] = {
    "random": random_policy,
    "boulware": time_dependent(0.2),
    "linear": time_dependent(1.0),
    "conceder": time_dependent(5.0),
    "tit_for_tat": tit_for_tat,
    "midpoint": midpoint,
}


def get_negotiator(name: str) -> Policy:
    """Look a negotiator up by name (``eqx simulate --supplier NAME``)."""
    try:
        return NEGOTIATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown negotiator {name!r}; choose one of {', '.join(NEGOTIATORS)}"
        ) from None
