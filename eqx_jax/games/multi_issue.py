"""Multi-issue negotiation (NegMAS / GENIUS style) as a pure-functional JAX environment.

K issues (2 <= K <= 8), each continuous in [low, high] or discrete with n values; each agent's
utility is linear-additive, ``u_i(x) = sum_k w_ik f_ik(x_k)`` in [0, 1], with private weights and
a private reservation value drawn at every reset from the scenario's priors
(:mod:`eqx_jax.games.scenario`). Same turns, action types, special rules and reward models as
the single-price game (``docs/rules.md``); a deal's gain is ``utility_scale * (u_i(x) - r_i)``.
The exact rules are in ``docs/games.md`` ("multi-issue").

Gymnax style: :class:`MultiIssueEnv` holds only static settings (the scenario's structure, the
history length), :class:`MIState` / :class:`MultiIssueParams` are ``flax.struct`` pytrees
(params: per-issue arrays of static length K; state: K-tuples of scalars, the layout XLA
vectorises best), every method is pure (jit / vmap over episodes and settings).

Units: an offer is K numbers in natural units (a continuous issue's own unit; a discrete issue's
value index 0..n-1); utilities are in [0, 1]; gains and rewards are reward units; ``t`` counts
rounds. Shapes are for one episode.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from eqx_jax.checks import check_number
from eqx_jax.env import ACCEPT, AGENTS, COUNTER, WALK_AWAY, _fmix32, _is_integral
from eqx_jax.games.scenario import Scenario, load_scenario, value_tables
from eqx_jax.games.spec import AlternatingOffers
from eqx_jax.outcomes import METRICS, frontier_optimality, hull_frontier, issue_chains
from eqx_jax.rewards import (
    REWARD_FIELDS,
    SEED,
    check_reward_settings,
    normalize_reward_overrides,
    outcome_rewards,
    reward_settings_to_dict,
)
from eqx_jax.solvers.multi_issue import MISPE, MultiIssueGame, solve_multi_issue_spe

#: Scalar observation fields, in order; then own weights (K), the standing offer (K, each issue
#: normalised to [0, 1]) and the last ``num_history`` offers (K each, most recent first).
MI_OBS_FIELDS: tuple[str, ...] = (
    "own_reservation",  # r_i, utility units
    "own_utility",  # u_i of the standing offer, 0 without one
    "has_offer",
    "round",  # t / T
    "time_remaining",  # (T - t) / T
    "role",  # 0 supplier, 1 retailer
    "my_turn",
    "mask_accept",  # ACCEPT legal: my turn and a standing offer exists
    "mask_counter",
    "mask_walk",
)
MI_OBS_INDEX: dict[str, int] = {name: i for i, name in enumerate(MI_OBS_FIELDS)}
NO_OFFER = -1.0  # normalised history entries are in [0, 1], so this never collides
#: Random outcomes the classic negotiators choose their offers among (plus the ideal ones).
NEGOTIATOR_CANDIDATES = 512
#: Game settings a scenario or an override may set (the reward fields of eqx_jax.rewards too).
SETTINGS: tuple[str, ...] = ("utility_scale",) + REWARD_FIELDS


@struct.dataclass
class MultiIssueParams:
    """Settings of a multi-issue game; every field a pytree leaf (vmappable over settings).

    Build with :func:`make_multi_issue_params`. Per-issue arrays (K = number of issues):
    ``issue_low``/``issue_high`` (K,) natural range (a discrete issue: 0 and n-1);
    ``discrete`` (K,) bool; ``vf_const``/``vf_slope``/``vf_kink``/``vf_peak`` (2, K) each
    agent's value function of each issue as ``f(z) = const + slope z + kink |z - peak|`` with
    z the value index of a discrete issue or the position ``(x - low) / (high - low)`` in
    [0, 1] of a continuous one (increasing, decreasing and peaked are all of this form);
    ``ideal_offer``
    (2, K) each agent's best value of each issue (natural units: the NaN rule's opening);
    ``weight_low``/``weight_high`` (2, K) raw weight priors; ``reservation_low``/
    ``reservation_high`` (2,); ``frontier_start`` (2, K) / ``frontier_steps`` (2, K, M): each
    issue's Pareto hull chain (:func:`eqx_jax.outcomes.issue_chains`).
    """

    issue_low: jax.Array
    issue_high: jax.Array
    discrete: jax.Array
    vf_const: jax.Array
    vf_slope: jax.Array
    vf_kink: jax.Array
    vf_peak: jax.Array
    ideal_offer: jax.Array
    weight_low: jax.Array
    weight_high: jax.Array
    reservation_low: jax.Array
    reservation_high: jax.Array
    frontier_start: jax.Array
    frontier_steps: jax.Array
    utility_scale: float = 100.0  # gain of a deal = utility_scale * (u_i - r_i), reward units
    max_rounds: int = 10
    reward_model: int = SEED
    speed_bonus: float = 5.0
    bonus_fraction: float = 0.3
    discount: tuple[float, float] = (0.95, 0.95)
    walk_payoff: tuple[float, float] = (0.0, 0.0)  # disagreement = the reservation value
    timeout_payoff: tuple[float, float] = (0.0, 0.0)


def value_function_terms(sc: Scenario) -> np.ndarray:
    """(4, N, K): const, slope, kink, peak of every value function of each of the N parties
    (see MultiIssueParams)."""
    out = np.zeros((4, sc.num_parties, sc.num_issues))
    for a in range(sc.num_parties):
        for k, issue in enumerate(sc.issues):
            top = issue.num_values - 1 if issue.discrete else 1
            vf = sc.value_functions[a][k]
            if vf == "increasing":
                out[:, a, k] = (0.0, 1.0 / top, 0.0, 0.0)
            elif vf == "decreasing":
                out[:, a, k] = (1.0, -1.0 / top, 0.0, 0.0)
            else:
                p = vf[1]
                out[:, a, k] = (1.0, 0.0, -1.0 / max(p, top - p), p)
    return out


def _scenario_arrays(sc: Scenario) -> dict[str, np.ndarray]:
    tables = value_tables(sc)
    const, slope, kink, peak = value_function_terms(sc)
    start, steps = issue_chains(tables)
    lo = np.array([i.low for i in sc.issues])
    hi = np.array([i.high for i in sc.issues])
    best_end = tables.argmax(axis=2).astype(float)  # table point of each agent's best value
    disc = np.array([i.discrete for i in sc.issues])
    ideal = np.where(disc, best_end, lo + best_end * (hi - lo))
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return {"issue_low": f32(lo), "issue_high": f32(hi), "discrete": jnp.asarray(disc),
            "vf_const": f32(const), "vf_slope": f32(slope), "vf_kink": f32(kink),
            "vf_peak": f32(peak), "ideal_offer": f32(ideal),
            "weight_low": f32(sc.weight_low), "weight_high": f32(sc.weight_high),
            "reservation_low": f32(sc.reservation_low),
            "reservation_high": f32(sc.reservation_high),
            "frontier_start": f32(start), "frontier_steps": f32(steps)}


def make_multi_issue_params(scenario: str | Scenario = "integrative-4",
                            **overrides: Any) -> MultiIssueParams:
    """Validated params of ``scenario`` (a :class:`Scenario`, a file or a shipped name), its
    ``settings`` then ``overrides`` applied (``utility_scale`` and the reward fields;
    ``reward_model`` by name or code). ``ValueError`` naming the field on bad input."""
    sc = load_scenario(scenario).require_parties(2, "multi-issue")
    settings = {**sc.settings, **overrides}
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown game setting(s) {sorted(unknown)}; allowed: {sorted(SETTINGS)}")
    normalize_reward_overrides(settings)
    rounds = settings.get("max_rounds", 10)
    if _is_integral(rounds):  # 10.0 from a YAML file is the integer 10
        rounds = int(rounds)
    check_number("max_rounds", rounds, 1, 1000, integer=True)
    settings["max_rounds"] = rounds
    for name in ("utility_scale", "speed_bonus", "bonus_fraction"):
        if name in settings and _is_integral(settings[name]):
            settings[name] = float(settings[name])
    p = MultiIssueParams(**_scenario_arrays(sc), **settings)
    check_number("utility_scale", p.utility_scale, 0.0, 1e9, low_open=True)
    check_reward_settings(p, AGENTS)
    return p


def multi_issue_params_to_dict(p: MultiIssueParams) -> dict[str, Any]:
    """The settings (not the scenario arrays) as plain JSON-able data, the model by name."""
    return {"utility_scale": float(p.utility_scale), **reward_settings_to_dict(p)}


def complete_information_game(scenario: str | Scenario,
                              params: MultiIssueParams | None = None,
                              weights: np.ndarray | None = None,
                              reservation: np.ndarray | None = None) -> MultiIssueGame:
    """The complete-information version of ``scenario`` as the solver's plain game: raw
    ``weights`` (2, K) and ``reservation`` (2,) as given, else the scenario's fixed values (the
    prior means where they are drawn); the reward settings of ``params`` (default: the
    scenario's)."""
    sc = load_scenario(scenario).require_parties(2, "multi-issue").fixed(weights, reservation)
    p = make_multi_issue_params(sc) if params is None else params
    d = multi_issue_params_to_dict(p)
    tables = value_tables(sc)
    per_agent = tuple(tuple(tables[a, k, :(i.num_values if i.discrete else 2)]
                            for k, i in enumerate(sc.issues)) for a in range(2))
    return MultiIssueGame(
        discrete=tuple(i.discrete for i in sc.issues), low=tuple(i.low for i in sc.issues),
        high=tuple(i.high for i in sc.issues), tables=per_agent, weights=sc.weight_low,
        reservation=sc.reservation_low, max_rounds=int(d["max_rounds"]),
        reward_model=d["reward_model"], utility_scale=d["utility_scale"],
        speed_bonus=d["speed_bonus"], bonus_fraction=d["bonus_fraction"],
        discount=tuple(d["discount"]), walk_payoff=tuple(d["walk_payoff"]),
        timeout_payoff=tuple(d["timeout_payoff"]))


def solve_scenario_spe(scenario: str | Scenario, params: MultiIssueParams | None = None,
                       weights: np.ndarray | None = None,
                       reservation: np.ndarray | None = None) -> MISPE:
    """The exact SPE of the complete-information version of ``scenario`` (the game of
    :func:`complete_information_game`, solved by ``solve_multi_issue_spe``)."""
    return solve_multi_issue_spe(complete_information_game(scenario, params, weights,
                                                           reservation))


@struct.dataclass
class MIState:
    """Everything that changes during an episode, as () scalars (so under ``vmap`` every field
    is one contiguous (N,) array: XLA fuses the step into a few vectorised loops; the same
    computation over (N, 2, K) arrays was 18x slower on CPU, measured at 131,072 episodes).

    weights: 2K () f32, agent 0's K weights then agent 1's (each agent's sum to 1).
    reservation: 2 () f32. t: () i32 rounds played.
    offer: K () f32, the standing offer in natural units (0 without one).
    offer_utility: 2 () f32, both utilities of the standing offer (0 without one).
    history: H K () f32, the last H offers normalised to [0, 1] per issue, most recent first
    (entry h K + k is issue k of offer h); NO_OFFER (-1) where no offer was made. A standing
    offer exists iff history[0] >= 0. The ``*_array`` methods give the usual shapes.
    """

    weights: tuple[jax.Array, ...]
    reservation: tuple[jax.Array, jax.Array]
    t: jax.Array
    offer: tuple[jax.Array, ...]
    offer_utility: tuple[jax.Array, jax.Array]
    history: tuple[jax.Array, ...]

    def weights_array(self) -> jax.Array:
        """(..., 2, K) weights."""
        w = jnp.stack(self.weights, axis=-1)
        return w.reshape(w.shape[:-1] + (2, len(self.offer)))

    def offer_array(self) -> jax.Array:
        """(..., K) standing offer, natural units."""
        return jnp.stack(self.offer, axis=-1)

    def history_array(self) -> jax.Array:
        """(..., H, K) normalised offer history."""
        h = jnp.stack(self.history, axis=-1)
        return h.reshape(h.shape[:-1] + (-1, len(self.offer)))

    def reservation_array(self) -> jax.Array:
        """(..., 2) reservation values."""
        return jnp.stack(self.reservation, axis=-1)

    def offer_utility_array(self) -> jax.Array:
        """(..., 2) utilities of the standing offer."""
        return jnp.stack(self.offer_utility, axis=-1)


def _utilities(offer: tuple[jax.Array, ...], weights: tuple[jax.Array, ...],
               params: MultiIssueParams) -> tuple[jax.Array, jax.Array]:
    """Both utilities of ``offer`` (K scalars, natural units, clipped and rounded) for
    ``weights`` (2K scalars): ``sum_k w_ik f_ik(x_k)``, with the closed-form value functions
    (a per-episode table lookup was the slowest part of the step on CPU)."""
    k_num = len(offer)
    out = []
    for a in range(2):
        total = jnp.zeros_like(offer[0])
        for k in range(k_num):
            span = params.issue_high[k] - params.issue_low[k]
            z = jnp.where(params.discrete[k], offer[k], (offer[k] - params.issue_low[k]) / span)
            f = (params.vf_const[a, k] + params.vf_slope[a, k] * z
                 + params.vf_kink[a, k] * jnp.abs(z - params.vf_peak[a, k]))
            total = total + weights[a * k_num + k] * f
        out.append(total)
    return out[0], out[1]


def utilities(offer: jax.Array, weights: jax.Array, params: MultiIssueParams) -> jax.Array:
    """(2,) both agents' utilities of ``offer`` (K,) (natural units, already clipped and
    rounded), for ``weights`` (2, K): ``sum_k w_ik f_ik(x_k)``."""
    k_num = offer.shape[-1]
    u = _utilities(tuple(offer[k] for k in range(k_num)),
                   tuple(weights[a, k] for a in range(2) for k in range(k_num)), params)
    return jnp.stack(u)


def uniforms(key: chex.PRNGKey, n: int) -> tuple[jax.Array, ...]:
    """n () U[0, 1) float32 numbers (23 random mantissa bits each) from ``key``.

    Why not ``jax.random.uniform``: the reset is drawn for every episode at every step (it is
    selected only where an episode ended), and the library's threefry draws dominated the step
    on CPU (as in the single-price env). The key is already a threefry output, so its two words
    are hashed with murmur3's finalizer and a counter (the golden-ratio increment)."""
    data = jax.random.key_data(key).reshape(-1)
    lo, hi = data[0].astype(jnp.uint32), data[1].astype(jnp.uint32)
    out = []
    for j in range(1, n + 1):
        bits = _fmix32(lo ^ _fmix32(hi + jnp.uint32((j * 0x9E3779B9) & 0xFFFFFFFF)))
        mantissa = jnp.right_shift(bits, jnp.uint32(32 - 23)) | jnp.uint32(0x3F800000)
        out.append(jax.lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0)
    return tuple(out)


class MultiIssueEnv(AlternatingOffers):
    """Alternating offers over K issues with linear-additive utilities (``docs/games.md``).

    ``scenario``: a :class:`Scenario`, a file or a shipped name (its issues fix K and which
    issues are discrete; ``make_multi_issue_params`` must be given the same scenario).
    ``num_history`` (static): offers in each observation. ``outcome_metrics`` (static): whether
    ``info`` carries the NegMAS optimality metrics of each deal (they cost about 2.5x the
    step's time on CPU; off for the fastest training, on for evaluation).
    Observation per agent: float32 ``(obs_size,)``: the fields of :data:`MI_OBS_FIELDS`, own
    weights (K), the standing offer (K), then ``num_history`` past offers (K each).
    """

    agents: tuple[str, str] = AGENTS
    num_actions: int = 3
    mask_slice: slice = slice(MI_OBS_INDEX["mask_accept"], MI_OBS_INDEX["mask_walk"] + 1)

    def __init__(self, scenario: str | Scenario = "integrative-4", num_history: int = 2,
                 outcome_metrics: bool = True):
        n = int(num_history) if _is_integral(num_history) else num_history
        check_number("num_history", n, 1, 64, integer=True)
        self.scenario = load_scenario(scenario).require_parties(2, "multi-issue")
        self.num_history = int(n)
        self.outcome_metrics = bool(outcome_metrics)
        metrics = METRICS[1:] if self.outcome_metrics else ()
        #: What the trainer logs (deal_keys: averaged over deals only).
        self.info_keys: tuple[str, ...] = ("deal", "walk_away", "timeout", "round",
                                           "supplier_utility", "retailer_utility") + metrics
        self.deal_keys: tuple[str, ...] = ("supplier_utility", "retailer_utility") + metrics
        self.offer_size = self.scenario.num_issues
        #: The kind of each issue (eqx_jax.games.spec.offer_levels): n values 0..n-1 for a
        #: discrete issue, 0 for a continuous one; every value of every issue is always legal.
        self.offer_levels: tuple[int, ...] = tuple(
            i.num_values if i.discrete else 0 for i in self.scenario.issues)
        k = self.offer_size
        base = len(MI_OBS_FIELDS)
        #: Where each vector part sits in the observation.
        self.obs_layout: dict[str, slice] = {
            "own_weights": slice(base, base + k),
            "standing_offer": slice(base + k, base + 2 * k),
            "history": slice(base + 2 * k, base + (2 + self.num_history) * k)}

    @property
    def obs_size(self) -> int:
        return len(MI_OBS_FIELDS) + (2 + self.num_history) * self.offer_size

    def default_params(self) -> MultiIssueParams:
        return make_multi_issue_params(self.scenario)

    # --------------------------------------------------------------------- protocol pieces
    @staticmethod
    def offer_bounds(params: MultiIssueParams) -> tuple[jax.Array, jax.Array]:
        """Continuous issues: [low, high]; discrete: [-0.5, n - 0.5], so that a uniform draw
        over the bounds, rounded to the nearest index, is uniform over the n values."""
        pad = jnp.where(params.discrete, 0.5, 0.0)
        return params.issue_low - pad, params.issue_high + pad

    @staticmethod
    def explore_bounds(params: MultiIssueParams) -> tuple[jax.Array, jax.Array]:
        """The whole offer space (every outcome can be some agent's best counter)."""
        return MultiIssueEnv.offer_bounds(params)

    @staticmethod
    def gain_scale(params: MultiIssueParams) -> float:
        """The largest deal gain: ``utility_scale`` (utilities are in [0, 1])."""
        return params.utility_scale

    # --------------------------------------------------- what a classic negotiator reads
    def _candidates(self, params: MultiIssueParams) -> tuple[jax.Array, ...]:
        """K arrays (M,): the outcomes a negotiator chooses its offers from: both agents' ideal
        offers and NEGOTIATOR_CANDIDATES uniform draws (a fixed key: the same set every call;
        NegMAS too samples a continuous outcome space), discrete issues rounded."""
        lo, hi = self.offer_bounds(params)
        u = jax.random.uniform(jax.random.key(0), (NEGOTIATOR_CANDIDATES, self.offer_size))
        x = jnp.concatenate([params.ideal_offer, lo + u * (hi - lo)], axis=0)
        x = jnp.where(params.discrete, jnp.round(x), x)
        x = jnp.clip(x, params.issue_low, params.issue_high)
        return tuple(x[:, k] for k in range(self.offer_size))

    def _candidate_utilities(self, obs: jax.Array, params: MultiIssueParams):
        """(own utility (M,), the opponent's estimated utility (M,), own index): the opponent's
        weights estimated by its prior means, normalised."""
        k_num, base = self.offer_size, len(MI_OBS_FIELDS)
        me = (obs[MI_OBS_INDEX["role"]] > 0.5).astype(jnp.int32)
        own_w = obs[base:base + k_num]
        prior = 0.5 * (params.weight_low + params.weight_high)  # (2, K)
        prior = prior / jnp.maximum(jnp.sum(prior, axis=1, keepdims=True), 1e-9)
        opp_w = jnp.where(me == 0, prior[1], prior[0])
        w_s = jnp.where(me == 0, own_w, opp_w)
        w_r = jnp.where(me == 0, opp_w, own_w)
        u_s, u_r = _utilities(self._candidates(params),
                              tuple(w_s[k] for k in range(k_num))
                              + tuple(w_r[k] for k in range(k_num)), params)
        return jnp.where(me == 0, u_s, u_r), jnp.where(me == 0, u_r, u_s)

    def negotiator_view(self, obs: jax.Array, params: MultiIssueParams) -> dict[str, jax.Array]:
        """Decode one agent's observation for the utility-space negotiators: ``t_next``,
        ``horizon``, ``has_offer``, ``standing_gain`` and ``best_gain`` (reward units before
        the reward model: utility_scale (u - r))."""
        i, scale = MI_OBS_INDEX, jnp.asarray(params.utility_scale, jnp.float32)
        horizon = jnp.asarray(params.max_rounds, jnp.float32)
        r = obs[i["own_reservation"]]
        own, _ = self._candidate_utilities(obs, params)
        return {"t_next": jnp.round(obs[i["round"]] * horizon) + 1.0, "horizon": horizon,
                "has_offer": obs[i["has_offer"]] > 0.5,
                "standing_gain": scale * (obs[i["own_utility"]] - r),
                "best_gain": jnp.maximum(scale * (jnp.max(own) - r), 0.0)}

    def offer_for_gain(self, obs: jax.Array, params: MultiIssueParams,
                       gain: jax.Array) -> jax.Array:
        """(K,) the candidate outcome giving this agent at least ``gain`` that is best for the
        opponent's estimated utility (its own best outcome when none reaches ``gain``)."""
        scale = jnp.asarray(params.utility_scale, jnp.float32)
        need = obs[MI_OBS_INDEX["own_reservation"]] + gain / scale
        own, opp = self._candidate_utilities(obs, params)
        ok = own >= need - 1e-6
        pick = jnp.where(jnp.any(ok), jnp.argmax(jnp.where(ok, opp, -jnp.inf)), jnp.argmax(own))
        return jnp.stack([x[pick] for x in self._candidates(params)])

    # ------------------------------------------------------------------------------ reset
    def reset(self, key: chex.PRNGKey, params: MultiIssueParams
              ) -> tuple[dict[str, jax.Array], MIState]:
        """Start an episode: draw both agents' weights and reservation values."""
        state = self._initial_state(key, params)
        return self.get_obs(state, params), state

    def _initial_state(self, key: chex.PRNGKey, params: MultiIssueParams) -> MIState:
        k_num = self.offer_size
        u = uniforms(key, 2 * k_num + 2)
        weights = []
        for a in range(2):
            raw = [params.weight_low[a, k] + u[a * k_num + k]
                   * (params.weight_high[a, k] - params.weight_low[a, k]) for k in range(k_num)]
            total = sum(raw)
            weights += [x / total for x in raw]
        res = tuple(params.reservation_low[a] + u[2 * k_num + a]
                    * (params.reservation_high[a] - params.reservation_low[a]) for a in range(2))
        zero = jnp.zeros((), jnp.float32)
        return MIState(
            weights=tuple(weights), reservation=res, t=jnp.zeros((), jnp.int32),
            offer=(zero,) * k_num, offer_utility=(zero, zero),
            history=(jnp.float32(NO_OFFER),) * (self.num_history * k_num))

    # ------------------------------------------------------------------------------- step
    @staticmethod
    def standing_offer(state: MIState) -> tuple[jax.Array, jax.Array]:
        """((K,) the standing offer in natural units, () bool whether there is one)."""
        return state.offer_array(), state.history[0] >= 0

    def _mover_offer(self, state: MIState, actions, params: MultiIssueParams):
        """(action type, illegal accept, offer (K scalars, natural units)) of the mover, after
        the special rules: illegal accept -> counter; a NaN component repeats the standing
        offer's (round 1: the mover's own best value of that issue); clip; round discrete
        issues."""
        by_s = (state.t & 1) == 0
        sup, ret = actions[AGENTS[0]], actions[AGENTS[1]]
        a_type = jnp.where(by_s, sup["action_type"], ret["action_type"]).astype(jnp.int32)
        a_type = jnp.clip(a_type, ACCEPT, WALK_AWAY)
        has_offer = state.history[0] >= 0
        s_off = jnp.asarray(sup["offer"], jnp.float32)
        r_off = jnp.asarray(ret["offer"], jnp.float32)
        offer = []
        for k in range(self.offer_size):
            x = jnp.where(by_s, s_off[k], r_off[k])
            best = jnp.where(by_s, params.ideal_offer[0, k], params.ideal_offer[1, k])
            x = jnp.where(jnp.isnan(x), jnp.where(has_offer, state.offer[k], best), x)
            x = jnp.clip(x, params.issue_low[k], params.issue_high[k])
            offer.append(jnp.where(params.discrete[k], jnp.round(x), x))
        illegal = (a_type == ACCEPT) & ~has_offer
        return jnp.where(illegal, COUNTER, a_type), illegal, tuple(offer)

    def step_env(self, state: MIState, actions: dict[str, dict], params: MultiIssueParams):
        """Apply the mover's action without auto-reset: ``(state, rewards, done, info)``.

        ``info``: ``done``, ``deal``, ``walk_away``, ``timeout``, ``illegal_accept``, ``round``
        (scalars); ``agreement`` (K,) the deal's offer (natural units, 0 without a deal);
        ``supplier_utility``/``retailer_utility`` (true utilities of the deal, 0 without);
        ``supplier_reservation``/``retailer_reservation``; and, with ``outcome_metrics``, the
        NegMAS P-infinity metrics of :data:`eqx_jax.outcomes.METRICS` of the deal (0 without a
        deal, and where NegMAS has no point)."""
        a_type, illegal, offer = self._mover_offer(state, actions, params)
        t = state.t + 1
        deal, walk = a_type == ACCEPT, a_type == WALK_AWAY
        counter = a_type == COUNTER
        timeout = counter & (t >= params.max_rounds)
        done = deal | walk | timeout
        u_s, u_r = state.offer_utility
        scale = params.utility_scale
        r_s, r_r = outcome_rewards(t, (scale * (u_s - state.reservation[0]),
                                       scale * (u_r - state.reservation[1])),
                                   deal, walk, timeout, params)
        normed = tuple((x - params.issue_low[k]) / (params.issue_high[k] - params.issue_low[k])
                       for k, x in enumerate(offer))
        new_u = _utilities(offer, state.weights, params)
        keep = lambda new, old: tuple(  # noqa: E731 - a counter replaces the value
            jnp.where(counter, x, y) for x, y in zip(new, old, strict=True))
        new_state = MIState(
            weights=state.weights, reservation=state.reservation, t=t,
            offer=keep(offer, state.offer), offer_utility=keep(new_u, state.offer_utility),
            history=keep(normed + state.history[:-self.offer_size], state.history))
        info = {
            "done": done, "deal": deal, "walk_away": walk, "timeout": timeout,
            "illegal_accept": illegal, "round": t,
            "agreement": jnp.stack([jnp.where(deal, x, 0.0) for x in state.offer]),
            "supplier_utility": jnp.where(deal, u_s, 0.0),
            "retailer_utility": jnp.where(deal, u_r, 0.0),
            "supplier_reservation": state.reservation[0],
            "retailer_reservation": state.reservation[1],
        }
        if self.outcome_metrics:
            vertices = hull_frontier(state.weights_array(), params.frontier_start,
                                     params.frontier_steps)
            metrics = frontier_optimality(jnp.stack([u_s, u_r]), vertices,
                                          state.reservation_array())
            info.update({k: jnp.where(deal, jnp.nan_to_num(v), 0.0) for k, v in metrics.items()})
        return new_state, {AGENTS[0]: r_s, AGENTS[1]: r_r}, done, info

    # ------------------------------------------------------------------------ observation
    def get_obs(self, state: MIState, params: MultiIssueParams) -> dict[str, jax.Array]:
        """Both agents' observations, each ``(obs_size,)`` float32 (see :data:`MI_OBS_FIELDS`
        and :attr:`obs_layout`)."""
        horizon = jnp.asarray(params.max_rounds, jnp.float32)
        tf = state.t.astype(jnp.float32)
        has = state.history[0] >= 0
        hasf = has.astype(jnp.float32)
        hist = [jnp.where(x >= 0, x, 0.0) for x in state.history]
        supplier_turn = (state.t & 1) == 0
        one, zero = jnp.ones_like(tf), jnp.zeros_like(tf)
        k_num = self.offer_size

        def agent_obs(i, my_turn):
            return jnp.stack([
                state.reservation[i], hasf * state.offer_utility[i], hasf, tf / horizon,
                (horizon - tf) / horizon, one if i else zero, my_turn.astype(jnp.float32),
                (my_turn & has).astype(jnp.float32), one, one,
                *state.weights[i * k_num:(i + 1) * k_num], *hist[:k_num], *hist])

        return {AGENTS[0]: agent_obs(0, supplier_turn), AGENTS[1]: agent_obs(1, ~supplier_turn)}
