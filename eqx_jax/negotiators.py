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

from eqx_jax.checks import check_number
from eqx_jax.env import ACCEPT, COUNTER, MASK_SLICE, OBS_INDEX, BargainingEnv, EnvParams

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
    check_number("exponent", exponent, 0.0, low_open=True)
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


# ------------------------------------------------------------------------------------------
# The games beyond one price: the same negotiators in utility space.
#
# A game's env provides ``negotiator_view(obs, params)`` (the move's round, the own gain of the
# standing offer, the own gain of the best offer) and ``offer_for_gain(obs, params, gain)`` (the
# offer at that own gain that is best for the opponent's estimated utility). The time-dependent
# negotiators aim at a gain that falls from the best to 0 (the reservation: no gain) as
# ``best * (1 - tau ** (1 / e))`` with Faratin's exponents (as :func:`time_dependent`, whose
# price target is this rule in the price game), accept a standing offer worth at least that
# (AC-next), and never walk away.

#: The negotiators every game has (the price game has all of :data:`NEGOTIATORS`).
GAME_NEGOTIATORS: dict[str, float | None] = {"random": None, "boulware": 0.2, "linear": 1.0,
                                             "conceder": 5.0}


def game_time_dependent(env, exponent: float) -> Policy:
    """Faratin's time-dependent tactic in utility space for ``env``'s game (see above)."""
    check_number("exponent", exponent, 0.0, low_open=True)
    power = 1.0 / exponent

    def policy(key, obs, params):
        del key
        view = env.negotiator_view(obs, params)
        tau = jnp.clip(view["t_next"] / view["horizon"], 0.0, 1.0)
        target = view["best_gain"] * (1.0 - tau ** power)
        accept = view["has_offer"] & (view["standing_gain"] >= target)
        offer = env.offer_for_gain(obs, params, target)
        return env.make_action(jnp.where(accept, ACCEPT, COUNTER), offer)

    return policy


def game_random(env) -> Policy:
    """A uniformly random legal action type and a uniform offer inside the game's bounds."""
    def policy(key, obs, params):
        k_type, k_offer = jax.random.split(key)
        mask = obs[env.mask_slice] > 0.5
        action_type = jax.random.categorical(k_type, jnp.where(mask, 0.0, -jnp.inf))
        lo, hi = env.offer_bounds(params)
        return env.make_action(action_type, lo + jax.random.uniform(k_offer, lo.shape) * (hi - lo))

    return policy


def get_game_negotiator(name: str, env) -> Policy:
    """The negotiator ``name`` playing ``env``'s game (the price game: :func:`get_negotiator`;
    another game: :data:`GAME_NEGOTIATORS`, built for its env)."""
    if isinstance(env, BargainingEnv):
        return get_negotiator(name)
    if name not in GAME_NEGOTIATORS:
        raise ValueError(f"unknown negotiator {name!r} for this game; choose one of "
                         f"{', '.join(GAME_NEGOTIATORS)}")
    e = GAME_NEGOTIATORS[name]
    return game_random(env) if e is None else game_time_dependent(env, e)


# ------------------------------------------------------------------------------------------
# NegMAS's time-based negotiators, reproduced exactly (baselines/negmas_tournament.py).
#
# Found in negmas 0.16.0 (not the paraphrase, which differs in two places: NegMAS's first
# offer is made at t = 1/(n+1), not at the issue bound, and its utility range is widened by a
# tolerance):
# * ``negmas/gb/negotiators/timebased.py``: ``BoulwareTBNegotiator`` / ``LinearTBNegotiator`` /
#   ``ConcederTBNegotiator`` are ``TimeBasedConcedingNegotiator`` with a ``PolyAspiration(1.0,
#   kind)`` as both offering and accepting curve and ``stochastic=False``.
# * ``negmas/negotiators/helpers.py``: ``PolyAspiration.utility_at(t) = 1 - t ** e`` with
#   ``POLY_ASPIRATION_EXPONENTS`` boulware 4, linear 1, conceder 0.25.
# * ``negmas/mechanisms.py``, ``Mechanism._relative_time_for``: ``t = (step + 1) / (n_steps + 1)``
#   (with no time limit), ``step`` the 0-based index of the current step.
# * ``negmas/gb/components/inverter.py``, ``UtilityBasedOutcomeSetRecommender.scale_utilities``:
#   the normalized level ``a`` becomes ``lo = (u_max - u_min) a + u_min - eps`` (``eps`` = 1e-4,
#   ``UtilBasedNegotiator``'s default), clipped to ``[u_min, u_max]``, where ``u_min`` is the
#   worst outcome's utility raised to the reserved value.
# * ``negmas/gb/negotiators/utilbased.py``: ``respond`` accepts iff ``u(offer) >= lo``;
#   ``propose`` asks the inverter for ``worst_in((lo, u_max))``.
# * ``negmas/preferences/inv_ufun/presorting.py`` (``PresortingInverseUtilityFunction.worst_in``,
#   the default inverter for 10^4 outcomes, built with ``rational_only=True``) with
#   ``_common._nearest_around``: the rational outcome (utility >= reserved value) of lowest
#   utility >= ``lo``, except that one within ``EPS`` = 1e-6 *below* ``lo`` wins (it is nearer).
# * ``negmas/sao/mechanism.py`` with ``one_offer_per_step=True``: one negotiator acts per step,
#   in the order they were added; it accepts the standing offer (agreement) or counters; a
#   negotiation with ``n_steps`` steps times out after step ``n_steps - 1``.

#: NegMAS's ``POLY_ASPIRATION_EXPONENTS``: aspiration ``1 - t ** e``.
NEGMAS_EXPONENTS: dict[str, float] = {"boulware": 4.0, "linear": 1.0, "conceder": 0.25}
#: ``UtilBasedNegotiator(eps=...)`` default: the aspiration band is widened by this, utility units.
NEGMAS_UTILITY_EPS = 1e-4
#: ``negmas.preferences.inv_ufun._common.EPS``: ``worst_in`` takes an outcome this close below.
NEGMAS_INVERSE_EPS = 1e-6
# Decoding a normalized integer price (price * (1/max_price) in float32, times max_price) is off
# by at most ~3 float32 roundings; offers that close to an integer are read as that integer, the
# price grid of NegMAS's integer issue. 2^-22 relative to max_price is 4 such roundings.
_INTEGER_SNAP = 2.0 ** -22


def _negmas_exponent(kind: str | float) -> float:
    if isinstance(kind, str):
        try:
            return NEGMAS_EXPONENTS[kind]
        except KeyError:
            raise ValueError(f"unknown NegMAS time-based kind {kind!r}; choose one of "
                             f"{', '.join(NEGMAS_EXPONENTS)} or give an exponent") from None
    return check_number("exponent", float(kind), 0.0, low_open=True)


def observed_value(obs: jax.Array, params: EnvParams) -> jax.Array:
    """The own valuation as a negotiator decodes it from its observation, currency units (f32).

    The observation holds ``V * (1 / max_price)`` in float32, so this can differ from the env's
    ``V`` by one float32 rounding (<= ~0.001 at 10^4). The optimization barrier pins that
    rounding: without it XLA may fold ``(V * (1/P)) * P`` back into ``V`` in some programs and not
    in others, and the NegMAS baseline must be handed exactly the valuation this negotiator uses.
    """
    normalized = jax.lax.optimization_barrier(obs[_I["own_value"]])
    return normalized * jnp.asarray(params.max_price, jnp.float32)


def _power(t: jax.Array, exponent: float) -> jax.Array:
    """``t ** exponent`` for a static exponent; NegMAS's 4, 1 and 0.25 without a general power.

    A float64 ``pow`` cost more than the rest of the negotiator together; products and square
    roots can differ from ``math.pow`` in the last bit of a float64, which changes a decision
    only if a price threshold falls within ~1e-12 of an integer.
    """
    if exponent == 1.0:
        return t
    if exponent == round(exponent) and 1 < exponent <= 16:
        return jax.lax.integer_pow(t, round(exponent))
    if exponent == 0.5:
        return jnp.sqrt(t)
    if exponent == 0.25:
        return jnp.sqrt(jnp.sqrt(t))
    return jnp.power(t, exponent)


def negmas_tb_action(obs: jax.Array, params: EnvParams, exponent: float | jax.Array,
                     exponents: tuple[float, ...] | None = None) -> dict[str, jax.Array]:
    """One move of NegMAS's time-based negotiator with aspiration ``1 - t ** exponent``.

    ``exponent``: a Python float, or a traced array (e.g. one per episode under ``vmap``); with
    an array, ``exponents`` (static) may list the values it can take (it must be one of them),
    so that ``t ** e`` is computed by :func:`_power` for each and selected, instead of a general
    float64 power (3x faster). See :func:`negmas_time_based` for the rule and the step mapping.

    Computed in float64 (scoped with ``jax.enable_x64``), like NegMAS: its 1e-4 and 1e-6
    tolerances are below float32's resolution at prices of 10^4, and the proposal is an integer
    chosen by a threshold, so float32 would pick a different integer now and then.
    Returns ``{"action_type": () i32, "price": () f32 (an integer, currency units)}``.
    """
    p_max32, horizon32, _, is_supplier, offer32, has_offer, t_next = _context(obs, params)
    value32 = observed_value(obs, params)
    # Snap an offer decoded from the normalized observation back onto the integer price grid.
    nearest = jnp.round(offer32)
    offer32 = jnp.where(jnp.abs(offer32 - nearest) <= _INTEGER_SNAP * p_max32, nearest, offer32)
    with jax.enable_x64(True):
        f64 = jnp.float64
        p_max = p_max32.astype(f64)
        value = value32.astype(f64)
        offer = offer32.astype(f64)
        # NegMAS step k (0-based) is our round k + 1 = t_next; t = (k + 1) / (n_steps + 1).
        t = t_next.astype(f64) / (horizon32.astype(f64) + 1.0)
        if isinstance(exponent, int | float):
            t_e = _power(t, float(exponent))
        elif exponents:
            # A value not among ``exponents`` gives NaN, not a (costly) general power.
            t_e = jnp.full_like(t, jnp.nan)
            for e in exponents:
                t_e = jnp.where(exponent == e, _power(t, float(e)), t_e)
        else:
            t_e = jnp.power(t, jnp.asarray(exponent, f64))
        aspiration = 1.0 * (1.0 - t_e)  # PolyAspiration: max_aspiration * (1 - t ** e)
        # Utilities, currency units: supplier u(p) = p - V, retailer u(p) = V - p, reserved 0.
        u_max = jnp.where(is_supplier, p_max - value, value)  # u at max_price (s) / at 0 (r)
        u_min = jnp.zeros_like(u_max)  # u(worst price) <= 0, raised to the reserved value 0
        lo = (u_max - u_min) * aspiration + u_min - NEGMAS_UTILITY_EPS
        lo = jnp.maximum(u_min, jnp.minimum(u_max, lo))
        u_offer = jnp.where(is_supplier, offer - value, value - offer)
        accept = has_offer & (lo <= u_offer)
        # Proposal: the integer price of lowest utility u >= lo - EPS (worst_in's candidates,
        # the nearest to lo wins; lo >= 0 keeps it rational unless lo < EPS, where NegMAS too
        # may pick an outcome just below the reserved value).
        thr = lo - NEGMAS_INVERSE_EPS

        def util(p):
            return jnp.where(is_supplier, p - value, value - p)

        # Start from the rounded threshold price, then settle the comparison exactly as NegMAS
        # makes it (u(p) >= thr on exact utilities), one integer either way.
        direction = jnp.where(is_supplier, 1.0, -1.0)  # towards worse utility for this side
        p0 = jnp.where(is_supplier, jnp.ceil(value + thr), jnp.floor(value - thr))
        p0 = jnp.where(util(p0 - direction) >= thr, p0 - direction,
                       jnp.where(util(p0) >= thr, p0, p0 + direction))
        price = jnp.clip(p0, 0.0, p_max).astype(jnp.float32)
    return _action(accept, price)


def negmas_time_based(kind: str | float) -> Policy:
    """NegMAS's ``BoulwareTBNegotiator`` / ``LinearTBNegotiator`` / ``ConcederTBNegotiator``.

    ``kind``: "boulware" (e = 4), "linear" (e = 1), "conceder" (e = 0.25), or an exponent > 0.
    Reproduces negmas 0.16.0 exactly (see the source notes above) on the single-issue price
    negotiation of ``baselines/negmas_tournament.py``: integer prices ``0..max_price``, utilities
    ``p - V`` (supplier) and ``V - p`` (retailer) in currency units, reserved value 0 (so the
    reservation price is the valuation), ``SAOMechanism(n_steps=max_rounds,
    one_offer_per_step=True)`` with the supplier added first. Mapping:

    * NegMAS step ``k`` (0-based) is our round ``k + 1``; the supplier acts at even ``k`` (our odd
      rounds). A NegMAS agreement reached in step ``k`` leaves ``state.step == k + 1``, the round
      in which our env records the deal. Both time out after ``max_rounds`` steps/rounds.
    * Time ``t = round / (max_rounds + 1)`` (NegMAS: ``(k + 1) / (n_steps + 1)``), so the first
      offer is already conceded a little and ``t`` never reaches 1.
    * Aspiration ``a = 1 - t ** e``; level ``lo = a * u_max - 1e-4`` (clipped to ``[0, u_max]``),
      ``u_max = max_price - V`` (supplier) or ``V`` (retailer).
    * Accept iff a standing offer ``q`` exists and ``u(q) >= lo`` (at the current step's ``t``).
    * Otherwise counter with the integer price of lowest own utility ``u(p) >= lo - 1e-6``: the
      supplier ``ceil(V + lo - 1e-6)``, the retailer ``floor(V - lo + 1e-6)``, settled by exact
      comparisons. Never walks away.

    Note NegMAS's exponent convention is the inverse of :func:`time_dependent`'s (Faratin's
    ``tau ** (1 / e)``): NegMAS Boulware e = 4 concedes like our e = 0.25. Uses only the own
    (observed) valuation, the standing offer, the round and ``max_price``/``max_rounds``.
    """
    exponent = _negmas_exponent(kind)

    def policy(key, obs, params):
        del key
        return negmas_tb_action(obs, params, exponent)

    return policy


#: NegMAS-exact time-based negotiators, kept apart from :data:`NEGOTIATORS` (tournaments and
#: training opponents iterate over that one).
NEGMAS_NEGOTIATORS: dict[str, Policy] = {
    f"negmas_{kind}": negmas_time_based(kind) for kind in NEGMAS_EXPONENTS
}
