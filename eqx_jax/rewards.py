"""The reward models every two-party game shares: how a deal's gains, a walk-away and a timeout
become rewards (the rule of ``docs/rules.md``, written once for every game).

A game's params dataclass carries the fields :data:`REWARD_FIELDS` (same names, same meaning in
every game); its env computes each agent's *gain* of a deal (currency units: the price game's
``p - V_s`` and ``V_r - p``, the price-quantity game's ``(p - c) q`` and ``V(q) - p q``, a
multi-issue game's utilities) and calls :func:`outcome_rewards`.

* ``seed`` (0), the founding design: reward = gain * (1 - t/T)^2 + B(t), with
  B(t) = speed_bonus if t < bonus_fraction * T (rounds are integers: evaluated as
  t + :data:`BONUS_EPS` < bonus_fraction * T) else 0.
* ``discounted`` (1), Rubinstein: reward_i = gain_i * delta_i^t, no bonus.

Walk-away pays ``walk_payoff``, a timeout (round T ends with a counter) ``timeout_payoff``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from eqx_jax.checks import check_number

REWARD_MODELS: dict[str, int] = {"seed": 0, "discounted": 1}
SEED, DISCOUNTED = REWARD_MODELS["seed"], REWARD_MODELS["discounted"]
REWARD_MODEL_NAMES: dict[int, str] = {v: k for k, v in REWARD_MODELS.items()}
#: The params fields of the reward model (pairs are (supplier, retailer)).
REWARD_FIELDS: tuple[str, ...] = ("max_rounds", "reward_model", "speed_bonus", "bonus_fraction",
                                  "discount", "walk_payoff", "timeout_payoff")
PAIR_FIELDS: tuple[str, ...] = ("discount", "walk_payoff", "timeout_payoff")

# Rounds are integers, so "t < bonus_fraction * T" is evaluated as t + eps < bonus_fraction * T:
# exact for any setting whose product is within eps of an integer (0.3 * 50 is 15.000001 in
# float32, and round 15 must not get the bonus).
BONUS_EPS = 1e-3


def _f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def deal_factors(t: jax.Array, params: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(D_s, D_r, B) of a deal closed in round ``t`` (() i32): reward_i = gain_i * D_i + B."""
    (d_s, d_r), bonus = party_deal_factors(t, params, 2)
    return d_s, d_r, bonus


def party_deal_factors(t: jax.Array, params: Any, n: int
                       ) -> tuple[tuple[jax.Array, ...], jax.Array]:
    """((D_0, ..., D_{n-1}), B) of a deal closed in round (step) ``t`` (() i32) among ``n``
    parties (``params.discount`` has one entry per party): reward_i = gain_i * D_i + B."""
    tf = t.astype(jnp.float32)
    horizon = _f32(params.max_rounds)

    def seed_model():
        discount = jnp.square(1.0 - tf / horizon)
        bonus = jnp.where(tf + BONUS_EPS < params.bonus_fraction * horizon,
                          _f32(params.speed_bonus), 0.0)
        return (discount,) * n, bonus

    def discounted_model():
        return (tuple(jnp.power(_f32(params.discount[i]), tf) for i in range(n)),
                jnp.zeros_like(tf))

    # With unbatched params this is a real branch (the discounted model's powers are only
    # computed when selected); with vmapped game settings it becomes a select.
    return jax.lax.cond(params.reward_model == SEED, seed_model, discounted_model)


def outcome_rewards(t: jax.Array, gains: tuple[jax.Array, ...], deal: jax.Array,
                    walk: jax.Array, timeout: jax.Array, params: Any) -> tuple[jax.Array, ...]:
    """Each party's reward of the step ending round ``t`` (supplier, retailer in the two-party
    games); 0 unless it ends the episode. ``gains``: each party's gain of the deal (currency
    units; used where ``deal``), one per party, as are the params' pair fields."""
    discounts, bonus = party_deal_factors(t, params, len(gains))

    def payoff(gain, disc, i):
        return jnp.where(deal, gain * disc + bonus,
                         jnp.where(walk, _f32(params.walk_payoff[i]),
                                   jnp.where(timeout, _f32(params.timeout_payoff[i]), 0.0)))

    return tuple(payoff(g, d, i) for i, (g, d) in enumerate(zip(gains, discounts, strict=True)))


def normalize_reward_overrides(overrides: dict[str, Any], n: int = 2) -> dict[str, Any]:
    """``reward_model`` by name -> its code, the pair fields -> tuples of ``n`` floats (one per
    party; pairs (supplier, retailer) in the two-party games), in place, returned.

    Raises ``ValueError`` naming the field on bad input."""
    rm = overrides.get("reward_model", SEED)
    if isinstance(rm, str):
        if rm not in REWARD_MODELS:
            raise ValueError(f"reward_model must be one of {sorted(REWARD_MODELS)}, got {rm!r}")
        overrides["reward_model"] = REWARD_MODELS[rm]
    for name in PAIR_FIELDS:
        if name in overrides:
            try:
                values = tuple(float(x) for x in overrides[name])
            except (TypeError, ValueError):
                values = ()
            if len(values) != n:
                what = ("a pair of numbers (supplier, retailer)" if n == 2
                        else f"a list of {n} numbers (one per party)")
                raise ValueError(f"{name} must be {what}, got {overrides[name]!r}")
            overrides[name] = values
    return overrides


def check_reward_settings(p: Any, agents: tuple[str, ...] = ("supplier", "retailer")) -> None:
    """Range checks of the reward-model fields of a params dataclass (``max_rounds`` is
    checked by the game, which knows whether it came as 10.0 from a file)."""
    if p.reward_model not in REWARD_MODELS.values():
        raise ValueError(f"reward_model must be one of {sorted(REWARD_MODELS)}")
    check_number("speed_bonus", p.speed_bonus, -1e9, 1e9)
    check_number("bonus_fraction", p.bonus_fraction, 0.0, 1.0)
    for i, side in enumerate(agents):
        check_number(f"discount[{side}]", p.discount[i], 0.0, 1.0, low_open=True)
        check_number(f"walk_payoff[{side}]", p.walk_payoff[i], -1e9, 1e9)
        check_number(f"timeout_payoff[{side}]", p.timeout_payoff[i], -1e9, 1e9)


def reward_settings_to_dict(p: Any) -> dict[str, Any]:
    """The reward-model fields as plain JSON-able data, the model by name."""
    d = {name: getattr(p, name) for name in REWARD_FIELDS}
    d["reward_model"] = REWARD_MODEL_NAMES[int(p.reward_model)]
    d.update({k: [float(x) for x in d[k]] for k in PAIR_FIELDS})
    return d
