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

import dataclasses
import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from eqx_jax.checks import check_number
from eqx_jax.env import ACCEPT, COUNTER, MASK_SLICE, OBS_INDEX, BargainingEnv, EnvParams
from eqx_jax.games.group import GroupEnv
from eqx_jax.games.multi_issue import MI_OBS_INDEX, MultiIssueEnv
from eqx_jax.games.scenario import load_scenario, value_function_table

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
    another game: :data:`GAME_NEGOTIATORS`, built for its env; the multi-issue and the group
    games also have NegMAS's exact ``negmas_boulware`` / ``negmas_linear`` /
    ``negmas_conceder``, :func:`negmas_game_time_based`)."""
    if isinstance(env, BargainingEnv):
        return get_negotiator(name)
    if name.startswith("negmas_") and isinstance(env, MultiIssueEnv | GroupEnv):
        return negmas_game_time_based(env, name.removeprefix("negmas_"))
    if name not in GAME_NEGOTIATORS:
        raise ValueError(f"unknown negotiator {name!r} for this game; choose one of "
                         f"{', '.join(GAME_NEGOTIATORS)}")
    e = GAME_NEGOTIATORS[name]
    return game_random(env) if e is None else game_time_dependent(env, e)


# ------------------------------------------------------------------------------------------
# NegMAS's time-based negotiators, reproduced exactly (baselines/negmas_tournament.py).
#
# Found in negmas 0.16.0 (not the issue's paraphrase, which differs in two places: NegMAS's first
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
        # PolyAspiration: max_aspiration * (1 - t ** e)
        aspiration = 1.0 * (1.0 - _time_power(t, exponent, exponents))
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


# ------------------------------------------------------------------------------------------
# NegMAS's time-based negotiators on the multi-issue game, reproduced exactly
# (baselines/negmas_multi_issue.py plays the same negotiations in NegMAS's SAOMechanism).
#
# The rules are those of the single-price re-implementation above (the aspiration
# ``1 - t ** e``, ``t = round / (max_rounds + 1)``, the level ``lo`` and AC on ``lo``), applied
# to a linear-additive utility in [0, 1] over an enumerated outcome space. Found in negmas
# 0.16.0:
# * ``negmas/gb/components/inverter.py``: ``make_inverter`` builds
#   ``DefaultInverseUtilityFunction(ufun, rational_only=True)``, i.e.
#   ``AdaptiveInverseUtilityFunction``, which (``preferences/inv_ufun/adaptive.py``) delegates
#   to ``PresortingInverseUtilityFunction`` for up to 10^6 outcomes; ``scale_utilities`` maps
#   the band ``(a, 1)`` to ``lo = (u_max - u_min) a + u_min - 1e-4`` and
#   ``hi = (u_max - u_min) + u_min + 1e-4``, both clipped to ``[u_min, u_max]`` (``u_min``: the
#   worst outcome's utility raised to the reserved value); ``respond`` accepts iff
#   ``lo <= u(offer) <= hi``.
# * ``preferences/inv_ufun/presorting.py``: ``init`` enumerates the outcomes (a continuous
#   issue at ``levels = 10`` evenly spaced values, ends included), keeps the rational ones
#   (``u >= reserved value``) sorted by utility, then the irrational ones; ``worst_in((lo,
#   hi))`` takes ``i``, the first sorted rational outcome with ``u >= lo`` (the best one if
#   none), then ``_common._nearest_around``: an outcome of *any* rationality with ``u`` in
#   ``[lo - 1e-6, hi + 2e-6]`` strictly nearer to ``lo`` than ``u_i`` wins (so one less than
#   1e-6 below ``lo`` beats ``i``); it gives None (``propose`` then offers the best outcome)
#   when there is no rational outcome. ``_cycle_around`` rolls a copy of the array (no effect).
# * ``preferences/crisp/linear.py``: ``LinearAdditiveUtilityFunction.eval`` sums
#   ``w_k * v_k(x_k)`` issue by issue from 0.0, in float64; our negotiator sums in the same
#   order, in float64, from the same value tables, so the utilities are the same floats.
# The only freedom NegMAS leaves is the order of outcomes of exactly equal utility (NumPy's
# unstable argsort): ours takes the first in enumeration order (a "tie", counted by the
# baseline; with continuous random weights exact ties arise only from symmetric value
# functions, e.g. a peaked issue's two values at the same distance from the peak).

# The group game (N parties, ``GroupEnv``) is NegMAS's ``SAOMechanism(one_offer_per_step=True)``
# with N negotiators, and the same negotiator plays it unchanged (negmas 0.16.0,
# ``sao/mechanism.py`` ``__call__`` and ``mechanisms.py`` ``_relative_time_for``):
# * one negotiator acts per step, cyclically in the order added (``_last_checked_negotiator``),
#   so NegMAS's step k (0-based) is our step k + 1 with mover k mod N;
# * every negotiator sees ``t = (step + 1) / (n_steps + 1)`` with ``step`` the count of single
#   actions so far (N does not enter): our ``t_next / (max_rounds + 1)``, as for two;
# * a counter sets ``n_acceptances = 1`` (``offering_is_accepting``), an accept adds one and
#   the deal closes at ``n_acceptances == n_participating`` (N): N - 1 acceptances, ours;
# * ``respond`` judges ``state.current_offer`` whoever made it, by the own utility alone.

#: ``PresortingInverseUtilityFunction(levels=10)``: values of a continuous issue NegMAS
#: enumerates (``np.linspace(low, high, 10)``); ours offers the same ones.
NEGMAS_CONTINUOUS_LEVELS = 10
#: The enumerated outcome spaces the exact negotiator handles (it evaluates every outcome at
#: every move); a larger space raises ValueError.
MAX_NEGMAS_OUTCOMES = 4096
#: ``_nearest_around``'s window below ``lo`` (``worst_in(eps=EPS)`` passes ``mn - EPS``) and
#: its acceptance distance (``2 * EPS``), utility units.
_BELOW, _NEAR = NEGMAS_INVERSE_EPS, 2.0 * NEGMAS_INVERSE_EPS
# A continuous issue's decoded position within this many grid steps of a grid value is that
# value (the normalised f32 observation is a few roundings off).
_GRID_SNAP = 1e-4


@dataclasses.dataclass(frozen=True)
class OutcomeGrid:
    """A multi-issue scenario's outcome space as NegMAS enumerates it (NumPy, float64).

    ``values``: K arrays, each issue's values in natural units (a discrete issue: its indices
    0..n-1; a continuous one: :data:`NEGMAS_CONTINUOUS_LEVELS` evenly spaced values, ends
    included). ``tables``: (N, K) nested tuples (N parties), each agent's value function at
    those values (the env's value functions; in [0, 1]). ``outcomes``: (M, K) int, every
    outcome as value indices, in ``itertools.product`` order (the first issue varies
    slowest), NegMAS's enumeration order. ``continuous``: (K,) bool.
    """

    values: tuple[np.ndarray, ...]
    tables: tuple[tuple[np.ndarray, ...], ...]
    outcomes: np.ndarray
    continuous: tuple[bool, ...]

    @property
    def size(self) -> int:
        """M, the number of outcomes."""
        return int(self.outcomes.shape[0])

    def outcome_values(self, index: np.ndarray) -> np.ndarray:
        """(..., K) natural-unit values of outcomes given by value indices (..., K)."""
        index = np.asarray(index)
        return np.stack([self.values[k][index[..., k]] for k in range(len(self.values))], -1)

    def agent_matrix(self, agent: int) -> np.ndarray:
        """(M, K) float64: agent's value of every outcome's value of every issue."""
        t = self.tables[agent]
        return np.stack([t[k][self.outcomes[:, k]] for k in range(len(t))], axis=1)


def negmas_outcome_grid(scenario) -> OutcomeGrid:
    """The :class:`OutcomeGrid` of a multi-issue scenario (a ``Scenario``, a file or a name).

    Raises ``ValueError`` (naming ``scenario``) when it has more than
    :data:`MAX_NEGMAS_OUTCOMES` outcomes."""
    sc = load_scenario(scenario)
    values, cont = [], []
    tables: tuple[list, ...] = tuple([] for _ in range(sc.num_parties))
    for k, issue in enumerate(sc.issues):
        if issue.discrete:
            values.append(np.arange(issue.num_values, dtype=np.float64))
            for a in range(sc.num_parties):
                tables[a].append(value_function_table(sc.value_functions[a][k], issue))
        else:
            levels = NEGMAS_CONTINUOUS_LEVELS
            values.append(np.linspace(issue.low, issue.high, levels))
            z = np.arange(levels, dtype=np.float64) / (levels - 1)
            for a in range(sc.num_parties):
                t0, t1 = value_function_table(sc.value_functions[a][k], issue)
                tables[a].append(t0 + (t1 - t0) * z)
        cont.append(not issue.discrete)
    size = int(np.prod([v.size for v in values]))
    if size > MAX_NEGMAS_OUTCOMES:
        raise ValueError(f"scenario {sc.name!r} has {size} outcomes (continuous issues at "
                         f"{NEGMAS_CONTINUOUS_LEVELS} values); NegMAS's exact negotiators "
                         f"enumerate at most {MAX_NEGMAS_OUTCOMES}")
    outcomes = np.array(list(itertools.product(*[range(v.size) for v in values])), np.int64)
    return OutcomeGrid(values=tuple(values), tables=tuple(tuple(t) for t in tables),
                       outcomes=outcomes.reshape(size, len(values)), continuous=tuple(cont))


def _weighted_sum(weights: jax.Array, columns: list[jax.Array]) -> jax.Array:
    """``sum_k w_k * v_k`` from 0.0, one issue at a time (NegMAS's ``eval`` order), float64.

    XLA's CPU backend keeps the products and sums apart (bit-identical to NegMAS's Python
    floats on 600,000 utilities of integrative-4); other backends may contract them into fused
    multiply-adds (one rounding instead of two), so there each product is pinned by an
    optimization barrier."""
    pin = (lambda x: x) if jax.default_backend() == "cpu" else jax.lax.optimization_barrier
    total = pin(weights[0] * columns[0])
    for k in range(1, len(columns)):
        total = total + pin(weights[k] * columns[k])
    return total


def _standing_values(grid: OutcomeGrid, obs_offer: jax.Array, tables: list[jax.Array],
                     lows: list[jax.Array], highs: list[jax.Array]) -> list[jax.Array]:
    """Each issue's own value of the standing offer (f64 scalars), from its normalised
    observation: the table value at the nearest grid value (off the grid, a continuous issue's
    value function between its ends, for offers by other negotiators)."""
    out = []
    for k, table in enumerate(tables):
        n = grid.values[k].size
        pos = obs_offer[k].astype(jnp.float64) * (n - 1)
        idx = jnp.clip(jnp.round(pos), 0, n - 1).astype(jnp.int32)
        value = table[idx]
        if grid.continuous[k]:
            exact = lows[k] + (highs[k] - lows[k]) * obs_offer[k].astype(jnp.float64)
            value = jnp.where(jnp.abs(pos - idx) <= _GRID_SNAP, value, exact)
        out.append(value)
    return out


def _worst_in(u: jax.Array, lo: jax.Array, hi: jax.Array, u_min: jax.Array,
              u_max: jax.Array, reserved: jax.Array) -> jax.Array:
    """NegMAS's ``PresortingInverseUtilityFunction.worst_in((lo, hi))`` over utilities ``u``
    (M,) f64, its None falling back to the best outcome (``UtilBasedNegotiator.propose``).

    ``lo``/``hi``: the band, within ``[u_min, u_max]`` (``u_min`` >= the reserved value, so
    every outcome with ``u >= lo`` is rational, and the best one has ``u >= lo`` unless no
    outcome is rational). ``i`` is then the outcome of lowest ``u >= lo``, and the nearest
    in-window outcome strictly nearer to ``lo`` than ``u_i`` can only lie below ``lo``: the
    highest ``u`` in ``[lo - 1e-6, lo)``. Returns an (M,) bool mask whose first True is the
    chosen outcome (the caller takes ``argmax`` outside the float64 scope: an index reduction
    inside ``jax.enable_x64`` yields int64, which fails to lower once the scope is left)."""
    u_i = jnp.min(jnp.where(u >= lo, u, jnp.inf))
    below = (u >= lo - _BELOW) & (u < lo) & (u <= hi + _NEAR)
    u_j = jnp.max(jnp.where(below, u, -jnp.inf))
    nearer = jnp.abs(u_j - lo) < jnp.abs(u_i - lo)  # _nearest_around: strictly nearer
    none = (nearer & (jnp.abs(u_j - lo) > _NEAR)) | (reserved > u_max)
    return u == jnp.where(none, u_max, jnp.where(nearer, u_j, u_i))


def _own_columns(grid: OutcomeGrid, obs: jax.Array, role: int | None):
    """The mover's (M,) value column of each issue and its K value tables, float64 (call inside
    ``jax.enable_x64``); ``role`` (static): the observing agent's seat (the multi-issue game: 0
    supplier / 1 retailer; the group game: 0..N-1), or None: from ``obs``'s ``role`` field (the
    seat index as a float)."""
    f64 = jnp.float64
    n = len(grid.tables)
    seat = obs[MI_OBS_INDEX["role"]]
    mats = [jnp.asarray(grid.agent_matrix(a), f64) for a in range(n)]
    tabs = [[jnp.asarray(t, f64) for t in grid.tables[a]] for a in range(n)]
    if role is not None:
        return [mats[role][:, k] for k in range(len(grid.values))], tabs[role]

    def pick(per_seat: list[jax.Array]) -> jax.Array:
        # A selection, not arithmetic: the chosen party's values bit for bit (seat a is the
        # float a, so "> a - 0.5" reads it whatever its last-bit rounding).
        out = per_seat[0]
        for a in range(1, n):
            out = jnp.where(seat > a - 0.5, per_seat[a], out)
        return out

    cols = [pick([m[:, k] for m in mats]) for k in range(len(tabs[0]))]
    return cols, [pick(list(per_seat)) for per_seat in zip(*tabs, strict=True)]


def negmas_mi_utilities(env, grid: OutcomeGrid, obs: jax.Array,
                        role: int | None = None) -> jax.Array:
    """The observing agent's utility of every outcome of ``grid`` (what
    :func:`negmas_mi_action` computes at every move), as float64 bits: (M, 2) uint32.

    Its weights do not change during an episode, so a loop may compute this once per episode
    and pass it to :func:`negmas_mi_action` (``utilities``), which then skips the M x K
    products; uint32 bits, so that it can be carried outside the float64 scope."""
    with jax.enable_x64(True):
        cols, _ = _own_columns(grid, obs, role)
        w = obs[env.obs_layout["own_weights"]].astype(jnp.float64)
        return jax.lax.bitcast_convert_type(_weighted_sum(w, cols), jnp.uint32)


def negmas_mi_action(env, grid: OutcomeGrid, obs: jax.Array, params,
                     exponent: float | jax.Array, exponents: tuple[float, ...] | None = None,
                     utilities: jax.Array | None = None,
                     role: int | None = None) -> dict[str, jax.Array]:
    """One move of NegMAS's time-based negotiator (aspiration ``1 - t ** exponent``) in the
    multi-issue game of ``env`` (a ``MultiIssueEnv``, or a ``GroupEnv`` with any number of
    parties; ``grid`` its :func:`negmas_outcome_grid`).

    Reads only the observation (own weights, own reservation value, the standing offer, the
    round) and ``params.max_rounds``. ``exponent``/``exponents``: as in
    :func:`negmas_tb_action`. ``utilities``: :func:`negmas_mi_utilities` of this agent, if
    already computed; ``role`` (static): the observing agent's, if known. Computed in float64,
    like NegMAS. Returns the env action (``action_type`` () i32, ``offer`` (K,) f32 natural
    units, an outcome of ``grid``).
    """
    i, layout = MI_OBS_INDEX, env.obs_layout
    horizon32 = jnp.asarray(params.max_rounds, jnp.float32)
    t_next = jnp.round(obs[i["round"]] * horizon32) + 1.0
    has_offer = obs[i["has_offer"]] > 0.5
    offers = jnp.asarray(grid.outcome_values(grid.outcomes), jnp.float32)  # (M, K)
    if utilities is None:
        utilities = negmas_mi_utilities(env, grid, obs, role)
    with jax.enable_x64(True):
        f64 = jnp.float64
        w = obs[layout["own_weights"]].astype(f64)
        r = obs[i["own_reservation"]].astype(f64)
        u = jax.lax.bitcast_convert_type(utilities, f64)  # (M,) own utility of every outcome
        _, tabs = _own_columns(grid, obs, role)
        u_offer = _weighted_sum(w, _standing_values(
            grid, obs[layout["standing_offer"]], tabs, [t[0] for t in tabs],
            [t[-1] for t in tabs]))
        t = t_next.astype(f64) / (horizon32.astype(f64) + 1.0)
        aspiration = 1.0 - _time_power(t, exponent, exponents)
        # The extreme outcomes' utilities (NegMAS evaluates its per-issue best and worst
        # outcomes; rounding is monotone, so these are also the enumeration's max and min).
        u_max = _weighted_sum(w, [jnp.max(tab) for tab in tabs])
        u_min = jnp.maximum(_weighted_sum(w, [jnp.min(tab) for tab in tabs]), r)  # raised to r
        lo = jnp.maximum(u_min, jnp.minimum(u_max, (u_max - u_min) * aspiration + u_min
                                            - NEGMAS_UTILITY_EPS))
        hi = jnp.maximum(u_min, jnp.minimum(u_max, (u_max - u_min) * 1.0 + u_min
                                            + NEGMAS_UTILITY_EPS))
        accept = has_offer & (lo <= u_offer) & (u_offer <= hi)
        chosen = _worst_in(u, lo, hi, u_min, u_max, r)
    return env.make_action(jnp.where(accept, ACCEPT, COUNTER), offers[jnp.argmax(chosen)])


def _time_power(t: jax.Array, exponent: float | jax.Array,
                exponents: tuple[float, ...] | None) -> jax.Array:
    """``t ** exponent`` as :func:`negmas_tb_action` computes it (a static exponent, a traced
    one among the static ``exponents``, or a general power), float64."""
    if isinstance(exponent, int | float):
        return _power(t, float(exponent))
    if exponents:
        # A value not among ``exponents`` gives NaN, not a (costly) general power.
        out = jnp.full_like(t, jnp.nan)
        for e in exponents:
            out = jnp.where(exponent == e, _power(t, float(e)), out)
        return out
    return jnp.power(t, jnp.asarray(exponent, t.dtype))


def negmas_game_time_based(env, kind: str | float) -> Policy:
    """NegMAS's ``BoulwareTBNegotiator`` / ``LinearTBNegotiator`` / ``ConcederTBNegotiator``
    (``kind``: "boulware", "linear", "conceder" or an exponent > 0) playing ``env``'s
    multi-issue game (a ``MultiIssueEnv``, or a ``GroupEnv`` with any N; the seat is read from
    the observation's ``role``): the policy ``(key, obs, params) -> action`` of
    :func:`negmas_mi_action`.
    """
    exponent = _negmas_exponent(kind)
    grid = negmas_outcome_grid(env.scenario)

    def policy(key, obs, params):
        del key
        return negmas_mi_action(env, grid, obs, params, exponent)

    return policy
