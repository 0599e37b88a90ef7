"""The reward models in exact float64 NumPy arithmetic: the one copy the exact solvers
(``equilibrium.py``, ``solvers/``) share. The envs use the float32 JAX form of the same rules,
:mod:`eqx_jax.rewards` (where "t < bonus_fraction * T" is tested as t + 0.001 < f T; here it is
an exact rational comparison on the decimal as written, which agrees with it on every setting
whose product is not within 0.001 of an integer from below).
"""

from __future__ import annotations

from fractions import Fraction
from numbers import Integral
from typing import Any

from eqx_jax.checks import FieldError, check_number

AGENTS: tuple[str, str] = ("supplier", "retailer")
REWARD_MODELS: tuple[str, str] = ("seed", "discounted")


def reward_model_name(reward_model: Any) -> str:
    """``"seed"`` / ``"discounted"`` from a name or the envs' integer codes 0 / 1."""
    if isinstance(reward_model, Integral) and not isinstance(reward_model, bool) \
            and 0 <= reward_model < len(REWARD_MODELS):
        return REWARD_MODELS[int(reward_model)]
    if reward_model not in REWARD_MODELS:
        raise FieldError("reward_model", f"one of {list(REWARD_MODELS)}", reward_model)
    return str(reward_model)


def check_pair(name: str, pair: Any, low: float, high: float, *,
               low_open: bool = False) -> tuple[float, float]:
    """A (supplier, retailer) pair of numbers in [low, high]; FieldError naming the entry."""
    try:
        items = tuple(pair)
    except TypeError:
        items = ()
    if len(items) != 2:
        raise FieldError(name, "a pair (supplier, retailer)", pair)
    return tuple(float(check_number(f"{name}[{who}]", x, low, high, low_open=low_open))
                 for who, x in zip(AGENTS, items, strict=True))


def deal_factors(model: str, t: int, max_rounds: int, speed_bonus: float,
                 bonus_fraction: float, discount: tuple[float, float]
                 ) -> tuple[float, float, float]:
    """(D_s, D_r, B) of a deal in round ``t``: payoff_i = gain_i D_i + B (see
    :func:`party_deal_factors`)."""
    (d_s, d_r), bonus = party_deal_factors(model, t, max_rounds, speed_bonus, bonus_fraction,
                                           discount)
    return d_s, d_r, bonus


def party_deal_factors(model: str, t: int, max_rounds: int, speed_bonus: float,
                       bonus_fraction: float, discount: tuple[float, ...]
                       ) -> tuple[tuple[float, ...], float]:
    """((D_0, ..., D_{n-1}), B) of a deal in round (step) ``t``, one D per entry of
    ``discount``: payoff_i = gain_i D_i + B.

    seed: D = (1 - t/T)^2 for every party, B = speed_bonus if t < bonus_fraction * T (exact
    rational comparison: 0.3 means 3/10, so round 15 of T = 50 gets no bonus); discounted:
    D_i = delta_i^t, B = 0."""
    if model == "seed":
        d = (1.0 - t / max_rounds) ** 2
        bonus = speed_bonus if t < Fraction(repr(float(bonus_fraction))) * max_rounds else 0.0
        return (d,) * len(discount), float(bonus)
    return tuple(x ** t for x in discount), 0.0
