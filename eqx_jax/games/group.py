"""Group negotiation: N parties (2 <= N <= 8) at one table, as a pure-functional JAX env.

The multi-issue game (:mod:`eqx_jax.games.multi_issue`) for N parties under NegMAS's stacked
alternating offers protocol (``SAOMechanism`` with ``one_offer_per_step=True``; the exact rules
are in ``docs/rules.md``, "Group negotiation"):

* the parties act one at a time in a fixed order, agent 0 first: the mover of step s
  (1-based) is agent ``(s - 1) mod N``;
* the mover ACCEPTs the standing offer (one more acceptance), COUNTERs with an offer (it becomes
  the standing offer, with no acceptances yet) or WALKs_AWAY (the negotiation ends for all,
  every party gets its walk-away payoff); an ACCEPT without a standing offer (step 1) is
  played as a COUNTER, as in the two-party games;
* a deal closes on the standing offer at the step where every party other than its author has
  accepted it in turn (N - 1 acceptances, NegMAS's ``n_acceptances == n_negotiators`` with
  the offer counting as its author's acceptance);
* after ``max_rounds`` = T steps without a deal or a walk-away the negotiation times out.

Each party's utility is linear-additive over the scenario's K issues (private weights and
reservation value drawn at every reset from the scenario's priors,
:mod:`eqx_jax.games.scenario`); a deal's gain is ``utility_scale * (u_i(x) - r_i)`` and the
reward models are the two-party games' (:mod:`eqx_jax.rewards`, per party; ``t`` counts steps).

Gymnax style, as the multi-issue env: :class:`GroupEnv` holds only static settings (the
scenario's structure, N, the history length), :class:`GroupState` / :class:`GroupParams` are
``flax.struct`` pytrees whose per-episode fields are scalars (the layout XLA vectorises best on
CPU), every method is pure. Units: offers in natural units (a discrete issue by value index),
utilities in [0, 1], rewards in reward units, ``t`` in steps. Shapes are for one episode.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from eqx_jax.checks import check_number
from eqx_jax.env import ACCEPT, COUNTER, WALK_AWAY, _is_integral
from eqx_jax.games.multi_issue import (
    MI_OBS_FIELDS,
    NO_OFFER,
    MultiIssueEnv,
    uniforms,
    value_function_terms,
)
from eqx_jax.games.scenario import MAX_PARTIES, MIN_PARTIES, Scenario, load_scenario, value_tables
from eqx_jax.games.spec import AlternatingOffers
from eqx_jax.rewards import (
    REWARD_FIELDS,
    SEED,
    check_reward_settings,
    normalize_reward_overrides,
    outcome_rewards,
    reward_settings_to_dict,
)
from eqx_jax.solvers.group import GroupGame, GroupSPE, solve_group_spe

#: Scalar observation fields, in order: the multi-issue game's (``role`` is the party's seat
#: index 0..N-1, ``round`` the step t / T), then ``acceptances`` (acceptances of the standing
#: offer so far / (N - 1)) and ``author`` (seats from the standing offer's author to me, / N;
#: 0 without an offer). Then the seat one-hot (N), own weights (K), the standing offer (K,
#: each issue normalised to [0, 1]) and the last ``num_history`` offers (K each).
GROUP_OBS_FIELDS: tuple[str, ...] = MI_OBS_FIELDS + ("acceptances", "author")
GROUP_OBS_INDEX: dict[str, int] = {name: i for i, name in enumerate(GROUP_OBS_FIELDS)}
#: Game settings a scenario or an override may set (the reward fields of eqx_jax.rewards too;
#: its pair fields take one number per party).
SETTINGS: tuple[str, ...] = ("utility_scale",) + REWARD_FIELDS
DEFAULT_STEPS = 12  # T when the scenario sets none: four turns each for three parties


@struct.dataclass
class GroupParams:
    """Settings of a group game; every field a pytree leaf (vmappable over settings).

    Build with :func:`make_group_params`. As :class:`~eqx_jax.games.multi_issue.
    MultiIssueParams` with one row per party (N parties, K issues): ``issue_low`` /
    ``issue_high`` / ``discrete`` (K,); ``vf_const`` / ``vf_slope`` / ``vf_kink`` /
    ``vf_peak`` (N, K) the value functions ``f(z) = const + slope z + kink |z - peak|``;
    ``ideal_offer`` (N, K) each party's best value of each issue (natural units);
    ``weight_low`` / ``weight_high`` (N, K) raw weight priors; ``reservation_low`` /
    ``reservation_high`` (N,). ``discount`` / ``walk_payoff`` / ``timeout_payoff``: N-tuples.
    ``max_rounds``: T, the deadline in steps (single actions).
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
    discount: tuple[float, ...]
    walk_payoff: tuple[float, ...]
    timeout_payoff: tuple[float, ...]
    utility_scale: float = 100.0
    max_rounds: int = DEFAULT_STEPS
    reward_model: int = SEED
    speed_bonus: float = 5.0
    bonus_fraction: float = 0.3


def load_group_scenario(scenario: str | Scenario, agents: int | None = None) -> Scenario:
    """The scenario (a :class:`Scenario`, a file or a shipped name), cut to its first
    ``agents`` parties when given (``ValueError`` naming ``agents`` outside 2..its parties)."""
    sc = load_scenario(scenario)
    return sc if agents is None else sc.first_parties(agents)


def _scenario_arrays(sc: Scenario) -> dict[str, jax.Array]:
    const, slope, kink, peak = value_function_terms(sc)
    lo = np.array([i.low for i in sc.issues])
    hi = np.array([i.high for i in sc.issues])
    disc = np.array([i.discrete for i in sc.issues])
    # A party's best value of an issue: where its value function peaks (an increasing one at
    # the top, a decreasing one at the bottom, a peaked one at its peak).
    top = np.where(disc, hi, 1.0)
    best_z = np.where(slope > 0, top, np.where(slope < 0, 0.0, peak))
    ideal = np.where(disc, best_z, lo + best_z * (hi - lo))
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return {"issue_low": f32(lo), "issue_high": f32(hi), "discrete": jnp.asarray(disc),
            "vf_const": f32(const), "vf_slope": f32(slope), "vf_kink": f32(kink),
            "vf_peak": f32(peak), "ideal_offer": f32(ideal),
            "weight_low": f32(sc.weight_low), "weight_high": f32(sc.weight_high),
            "reservation_low": f32(sc.reservation_low),
            "reservation_high": f32(sc.reservation_high)}


def make_group_params(scenario: str | Scenario = "supply-chain-3p", agents: int | None = None,
                      **overrides: Any) -> GroupParams:
    """Validated params of ``scenario`` (its first ``agents`` parties when given), its
    ``settings`` then ``overrides`` applied (``utility_scale`` and the reward fields,
    ``reward_model`` by name or code, the per-party fields as N numbers). ``ValueError`` naming
    the field on bad input."""
    sc = load_group_scenario(scenario, agents)
    n = sc.num_parties
    settings = {**sc.settings, **overrides}
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown game setting(s) {sorted(unknown)}; allowed: {sorted(SETTINGS)}")
    settings.setdefault("discount", (0.95,) * n)
    settings.setdefault("walk_payoff", (0.0,) * n)
    settings.setdefault("timeout_payoff", (0.0,) * n)
    normalize_reward_overrides(settings, n)
    steps = settings.get("max_rounds", DEFAULT_STEPS)
    if _is_integral(steps):  # 12.0 from a YAML file is the integer 12
        steps = int(steps)
    check_number("max_rounds", steps, 1, 1000, integer=True)
    settings["max_rounds"] = steps
    for name in ("utility_scale", "speed_bonus", "bonus_fraction"):
        if name in settings and _is_integral(settings[name]):
            settings[name] = float(settings[name])
    p = GroupParams(**_scenario_arrays(sc), **settings)
    check_number("utility_scale", p.utility_scale, 0.0, 1e9, low_open=True)
    check_reward_settings(p, sc.parties)
    return p


def group_params_to_dict(p: GroupParams) -> dict[str, Any]:
    """The settings (not the scenario arrays) as plain JSON-able data, the model by name."""
    return {"utility_scale": float(p.utility_scale), **reward_settings_to_dict(p)}


def complete_information_group_game(scenario: str | Scenario, params: GroupParams | None = None,
                                    weights: np.ndarray | None = None,
                                    reservation: np.ndarray | None = None) -> GroupGame:
    """The complete-information version of ``scenario`` as the solver's plain game: raw
    ``weights`` (N, K) and ``reservation`` (N,) as given, else the scenario's fixed values (the
    prior means where they are drawn); the reward settings of ``params`` (default: the
    scenario's)."""
    sc = load_scenario(scenario).fixed(weights, reservation)
    p = make_group_params(sc) if params is None else params
    d = group_params_to_dict(p)
    tables = value_tables(sc)
    per_party = tuple(tuple(tables[a, k, :(i.num_values if i.discrete else 2)]
                            for k, i in enumerate(sc.issues)) for a in range(sc.num_parties))
    return GroupGame(
        discrete=tuple(i.discrete for i in sc.issues), low=tuple(i.low for i in sc.issues),
        high=tuple(i.high for i in sc.issues), tables=per_party, weights=sc.weight_low,
        reservation=sc.reservation_low, max_rounds=int(d["max_rounds"]),
        reward_model=d["reward_model"], utility_scale=d["utility_scale"],
        speed_bonus=d["speed_bonus"], bonus_fraction=d["bonus_fraction"],
        discount=tuple(d["discount"]), walk_payoff=tuple(d["walk_payoff"]),
        timeout_payoff=tuple(d["timeout_payoff"]), names=tuple(sc.parties))


def solve_group_scenario_spe(scenario: str | Scenario, params: GroupParams | None = None,
                             weights: np.ndarray | None = None,
                             reservation: np.ndarray | None = None) -> GroupSPE:
    """The exact SPE of the complete-information version of ``scenario``
    (:func:`complete_information_group_game`, solved by ``solve_group_spe``)."""
    return solve_group_spe(complete_information_group_game(scenario, params, weights,
                                                           reservation))


@struct.dataclass
class GroupState:
    """Everything that changes during an episode, as () scalars (see ``MIState``: one
    contiguous (B,) array per field under ``vmap``).

    weights: N K () f32, party 0's K weights, then party 1's, ... (each party's sum to 1).
    reservation: N () f32. t: () i32 steps played. accepted: () i32 acceptances of the standing
    offer so far (0 right after a counter). offer: K () f32, the standing offer in natural
    units (0 without one). offer_utility: N () f32, every party's utility of the standing offer.
    history: H K () f32, the last H offers normalised to [0, 1] per issue, most recent first;
    NO_OFFER (-1) where none was made. A standing offer exists iff history[0] >= 0.
    """

    weights: tuple[jax.Array, ...]
    reservation: tuple[jax.Array, ...]
    t: jax.Array
    accepted: jax.Array
    offer: tuple[jax.Array, ...]
    offer_utility: tuple[jax.Array, ...]
    history: tuple[jax.Array, ...]

    def weights_array(self) -> jax.Array:
        """(..., N, K) weights."""
        w = jnp.stack(self.weights, axis=-1)
        return w.reshape(w.shape[:-1] + (len(self.reservation), len(self.offer)))

    def offer_array(self) -> jax.Array:
        """(..., K) standing offer, natural units."""
        return jnp.stack(self.offer, axis=-1)

    def reservation_array(self) -> jax.Array:
        """(..., N) reservation values."""
        return jnp.stack(self.reservation, axis=-1)

    def offer_utility_array(self) -> jax.Array:
        """(..., N) every party's utility of the standing offer."""
        return jnp.stack(self.offer_utility, axis=-1)


def party_utilities(offer: tuple[jax.Array, ...], weights: tuple[jax.Array, ...],
                    params: GroupParams) -> tuple[jax.Array, ...]:
    """Every party's utility of ``offer`` (K scalars, natural units, clipped and rounded) for
    ``weights`` (N K scalars): ``sum_k w_ik f_ik(x_k)``, N scalars."""
    k_num = len(offer)
    z = [jnp.where(params.discrete[k], offer[k],
                   (offer[k] - params.issue_low[k]) / (params.issue_high[k] - params.issue_low[k]))
         for k in range(k_num)]
    out = []
    for a in range(len(weights) // k_num):
        total = jnp.zeros_like(offer[0])
        for k in range(k_num):
            f = (params.vf_const[a, k] + params.vf_slope[a, k] * z[k]
                 + params.vf_kink[a, k] * jnp.abs(z[k] - params.vf_peak[a, k]))
            total = total + weights[a * k_num + k] * f
        out.append(total)
    return tuple(out)


def utilities(offer: jax.Array, weights: jax.Array, params: GroupParams) -> jax.Array:
    """(N,) every party's utility of ``offer`` (K,) (natural units, clipped and rounded), for
    ``weights`` (N, K)."""
    n, k_num = weights.shape
    u = party_utilities(tuple(offer[k] for k in range(k_num)),
                        tuple(weights[a, k] for a in range(n) for k in range(k_num)), params)
    return jnp.stack(u)


class GroupEnv(AlternatingOffers):
    """N parties, stacked alternating offers over K issues (``docs/rules.md``).

    ``scenario``: a :class:`Scenario`, a file or a shipped name (its parties fix N and the agent
    names, its issues K); ``agents``: play only its first N parties (``--agents N``);
    ``make_group_params`` must be given the same. ``num_history`` (static): offers in each
    observation. Observation per party: float32 ``(obs_size,)``, the fields of
    :data:`GROUP_OBS_FIELDS`, the seat one-hot (N), own weights (K), the standing offer (K),
    then ``num_history`` past offers (K each); :attr:`obs_layout` gives the vector parts.
    """

    num_actions: int = 3
    mask_slice: slice = slice(GROUP_OBS_INDEX["mask_accept"], GROUP_OBS_INDEX["mask_walk"] + 1)

    def __init__(self, scenario: str | Scenario = "supply-chain-3p", agents: int | None = None,
                 num_history: int = 2):
        h = int(num_history) if _is_integral(num_history) else num_history
        check_number("num_history", h, 1, 64, integer=True)
        self.scenario = load_group_scenario(scenario, agents)
        self.num_agents = self.scenario.num_parties
        check_number("agents", self.num_agents, MIN_PARTIES, MAX_PARTIES, integer=True)
        self.agents: tuple[str, ...] = self.scenario.parties
        self.num_history = h
        self.offer_size = self.scenario.num_issues
        self.offer_levels: tuple[int, ...] = tuple(
            i.num_values if i.discrete else 0 for i in self.scenario.issues)
        #: What the trainer logs (deal_keys: averaged over deals only).
        self.info_keys: tuple[str, ...] = ("deal", "walk_away", "timeout", "round") + tuple(
            f"{a}_utility" for a in self.agents)
        self.deal_keys: tuple[str, ...] = tuple(f"{a}_utility" for a in self.agents)
        n, k, base = self.num_agents, self.offer_size, len(GROUP_OBS_FIELDS)
        self.obs_layout: dict[str, slice] = {
            "seat": slice(base, base + n),
            "own_weights": slice(base + n, base + n + k),
            "standing_offer": slice(base + n + k, base + n + 2 * k),
            "history": slice(base + n + 2 * k, base + n + (2 + h) * k)}

    @property
    def obs_size(self) -> int:
        return len(GROUP_OBS_FIELDS) + self.num_agents + (2 + self.num_history) * self.offer_size

    def default_params(self) -> GroupParams:
        return make_group_params(self.scenario)

    # --------------------------------------------------------------------- protocol pieces
    def mover(self, state: GroupState) -> jax.Array:
        """() i32: the seat whose action the next step applies, ``t mod N``."""
        return (state.t % self.num_agents).astype(jnp.int32)

    @staticmethod
    def offer_bounds(params: GroupParams) -> tuple[jax.Array, jax.Array]:
        """Continuous issues: [low, high]; discrete: [-0.5, n - 0.5] (a uniform draw rounded to
        the nearest index is uniform over the n values)."""
        pad = jnp.where(params.discrete, 0.5, 0.0)
        return params.issue_low - pad, params.issue_high + pad

    @staticmethod
    def explore_bounds(params: GroupParams) -> tuple[jax.Array, jax.Array]:
        """The whole offer space."""
        return GroupEnv.offer_bounds(params)

    @staticmethod
    def gain_scale(params: GroupParams) -> float:
        """The largest deal gain: ``utility_scale`` (utilities are in [0, 1])."""
        return params.utility_scale

    # --------------------------------------------------- what a classic negotiator reads
    def _candidate_utilities(self, obs: jax.Array, params: GroupParams):
        """(own utility (M,), the others' mean estimated utility (M,)) of the candidates: the
        others' weights estimated by their prior means, normalised."""
        n, k_num = self.num_agents, self.offer_size
        me = jnp.round(obs[GROUP_OBS_INDEX["role"]]).astype(jnp.int32)
        prior = 0.5 * (params.weight_low + params.weight_high)  # (N, K)
        prior = prior / jnp.maximum(jnp.sum(prior, axis=1, keepdims=True), 1e-9)
        w = jnp.where((jnp.arange(n) == me)[:, None], obs[self.obs_layout["own_weights"]][None],
                      prior)
        u = jnp.stack(party_utilities(self._candidates(params),
                                      tuple(w[a, k] for a in range(n) for k in range(k_num)),
                                      params))  # (N, M)
        own = u[me]
        return own, (jnp.sum(u, axis=0) - own) / (n - 1)

    # The multi-issue game's: its observation fields come first in GROUP_OBS_FIELDS (same
    # indices), so they read this game's observation and call its _candidate_utilities.
    _candidates = MultiIssueEnv._candidates
    negotiator_view = MultiIssueEnv.negotiator_view
    offer_for_gain = MultiIssueEnv.offer_for_gain

    # ------------------------------------------------------------------------------ reset
    def reset(self, key: chex.PRNGKey, params: GroupParams
              ) -> tuple[dict[str, jax.Array], GroupState]:
        """Start an episode: draw every party's weights and reservation value."""
        state = self._initial_state(key, params)
        return self.get_obs(state, params), state

    def _initial_state(self, key: chex.PRNGKey, params: GroupParams) -> GroupState:
        n, k_num = self.num_agents, self.offer_size
        u = uniforms(key, n * k_num + n)
        weights = []
        for a in range(n):
            raw = [params.weight_low[a, k] + u[a * k_num + k]
                   * (params.weight_high[a, k] - params.weight_low[a, k]) for k in range(k_num)]
            total = sum(raw)
            weights += [x / total for x in raw]
        res = tuple(params.reservation_low[a] + u[n * k_num + a]
                    * (params.reservation_high[a] - params.reservation_low[a]) for a in range(n))
        zero = jnp.zeros((), jnp.float32)
        return GroupState(
            weights=tuple(weights), reservation=res, t=jnp.zeros((), jnp.int32),
            accepted=jnp.zeros((), jnp.int32), offer=(zero,) * k_num, offer_utility=(zero,) * n,
            history=(jnp.float32(NO_OFFER),) * (self.num_history * k_num))

    # ------------------------------------------------------------------------------- step
    @staticmethod
    def standing_offer(state: GroupState) -> tuple[jax.Array, jax.Array]:
        """((K,) the standing offer in natural units, () bool whether there is one)."""
        return state.offer_array(), state.history[0] >= 0

    @staticmethod
    def acceptances(state: GroupState) -> jax.Array:
        """() i32: how many parties have accepted the standing offer so far."""
        return state.accepted

    def _mover_action(self, state: GroupState, actions: dict[str, dict], params: GroupParams):
        """(action type, illegal accept, offer (K scalars, natural units)) of the mover, after
        the special rules (as the multi-issue game's): an illegal accept is a counter; a NaN
        component repeats the standing offer's (step 1: the mover's own best value); clip;
        round discrete issues."""
        mover = self.mover(state)
        seat = [mover == a for a in range(self.num_agents)]
        acts = [actions[a] for a in self.agents]

        def pick(values):
            out = values[0]
            for a in range(1, self.num_agents):
                out = jnp.where(seat[a], values[a], out)
            return out

        a_type = jnp.clip(pick([jnp.asarray(x["action_type"]).astype(jnp.int32) for x in acts]),
                          ACCEPT, WALK_AWAY)
        has_offer = state.history[0] >= 0
        offers = [jnp.asarray(x["offer"], jnp.float32) for x in acts]
        offer = []
        for k in range(self.offer_size):
            x = pick([o[k] for o in offers])
            best = pick([params.ideal_offer[a, k] for a in range(self.num_agents)])
            x = jnp.where(jnp.isnan(x), jnp.where(has_offer, state.offer[k], best), x)
            x = jnp.clip(x, params.issue_low[k], params.issue_high[k])
            offer.append(jnp.where(params.discrete[k], jnp.round(x), x))
        illegal = (a_type == ACCEPT) & ~has_offer
        return jnp.where(illegal, COUNTER, a_type), illegal, tuple(offer)

    def step_env(self, state: GroupState, actions: dict[str, dict], params: GroupParams):
        """Apply the mover's action without auto-reset: ``(state, rewards, done, info)``.

        ``info``: ``done``, ``deal``, ``walk_away``, ``timeout``, ``illegal_accept``, ``round``
        (the step), ``mover`` (seat), ``agreement`` (K,) (natural units, 0 without a deal),
        ``utilities`` (N,) the parties' true utilities of the deal (0 without), the same as
        ``<party>_utility`` scalars, and ``reservation`` (N,)."""
        a_type, illegal, offer = self._mover_action(state, actions, params)
        t = state.t + 1
        accept, counter = a_type == ACCEPT, a_type == COUNTER
        walk = a_type == WALK_AWAY
        accepted = jnp.where(accept, state.accepted + 1, 0)
        deal = accept & (accepted >= self.num_agents - 1)
        timeout = ~deal & ~walk & (t >= params.max_rounds)
        done = deal | walk | timeout
        scale = params.utility_scale
        gains = tuple(scale * (u - r) for u, r in zip(state.offer_utility, state.reservation,
                                                       strict=True))
        rewards = outcome_rewards(t, gains, deal, walk, timeout, params)
        normed = tuple((x - params.issue_low[k]) / (params.issue_high[k] - params.issue_low[k])
                       for k, x in enumerate(offer))
        new_u = party_utilities(offer, state.weights, params)
        keep = lambda new, old: tuple(  # noqa: E731 - a counter replaces the value
            jnp.where(counter, x, y) for x, y in zip(new, old, strict=True))
        new_state = GroupState(
            weights=state.weights, reservation=state.reservation, t=t, accepted=accepted,
            offer=keep(offer, state.offer), offer_utility=keep(new_u, state.offer_utility),
            history=keep(normed + state.history[:-self.offer_size], state.history))
        deal_u = tuple(jnp.where(deal, u, 0.0) for u in state.offer_utility)
        info = {
            "done": done, "deal": deal, "walk_away": walk, "timeout": timeout,
            "illegal_accept": illegal, "round": t, "mover": self.mover(state),
            "agreement": jnp.stack([jnp.where(deal, x, 0.0) for x in state.offer]),
            "utilities": jnp.stack(deal_u), "reservation": state.reservation_array(),
            **{f"{a}_utility": u for a, u in zip(self.agents, deal_u, strict=True)},
        }
        return new_state, dict(zip(self.agents, rewards, strict=True)), done, info

    # ------------------------------------------------------------------------ observation
    def get_obs(self, state: GroupState, params: GroupParams) -> dict[str, jax.Array]:
        """Every party's observation, ``(obs_size,)`` float32 (see :data:`GROUP_OBS_FIELDS`
        and :attr:`obs_layout`)."""
        n, k_num = self.num_agents, self.offer_size
        horizon = jnp.asarray(params.max_rounds, jnp.float32)
        tf = state.t.astype(jnp.float32)
        has = state.history[0] >= 0
        hasf = has.astype(jnp.float32)
        hist = [jnp.where(x >= 0, x, 0.0) for x in state.history]
        mover = self.mover(state)
        # The author of the standing offer moved accepted + 1 steps ago (the order is fixed).
        author = (state.t - state.accepted - 1) % n
        one, zero = jnp.ones_like(tf), jnp.zeros_like(tf)
        acc = state.accepted.astype(jnp.float32) / max(n - 1, 1)

        def party_obs(i):
            my_turn = mover == i
            offset = ((i - author) % n).astype(jnp.float32) / n
            return jnp.stack([
                state.reservation[i], hasf * state.offer_utility[i], hasf, tf / horizon,
                (horizon - tf) / horizon, jnp.full_like(tf, float(i)),
                my_turn.astype(jnp.float32), (my_turn & has).astype(jnp.float32), one, one,
                acc, hasf * offset,
                *[one if j == i else zero for j in range(n)],
                *state.weights[i * k_num:(i + 1) * k_num], *hist[:k_num], *hist])

        return {a: party_obs(i) for i, a in enumerate(self.agents)}
