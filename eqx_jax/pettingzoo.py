"""PettingZoo ``ParallelEnv`` adapter over the JAX bargaining env (one episode, NumPy in/out).

There is no second copy of the rules here: :class:`JaxBargainingParallelEnv` calls
:meth:`BargainingEnv.reset` / :meth:`BargainingEnv.step_env` / :meth:`BargainingEnv.get_obs`
through two module-level jitted functions. The game settings (:class:`EnvParams`) are passed to
them as a traced pytree with canonical dtypes, so adapter instances with different settings share
compiled code (only ``num_history``, which changes array shapes, is static).

PettingZoo conventions (no auto-reset): ``step`` returns the observation of the final state on
the last step, ``terminations`` are True after a deal or a walk-away, ``truncations`` after a
timeout, and ``agents`` becomes ``[]``; stepping again raises until :meth:`reset`.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces
from pettingzoo.utils.env import ParallelEnv

from eqx_jax.checks import check_number
from eqx_jax.env import (
    ACTION_NAMES,
    AGENTS,
    COUNTER,
    OBS_INDEX,
    BargainingEnv,
    EnvParams,
    EnvState,
    make_params,
)
from eqx_jax.games.registry import DEFAULT_GAME, get_game

__all__ = ["JaxBargainingParallelEnv", "JaxGameParallelEnv", "game_parallel_env", "parallel_env"]

_INT_FIELDS = ("max_rounds", "reward_model")
_PAIR_FIELDS = ("discount", "walk_payoff", "timeout_payoff")
_INT32 = np.iinfo(np.int32)
_F32_MAX = float(np.finfo(np.float32).max)


@functools.cache
def _jax_env(num_history: int) -> BargainingEnv:
    return BargainingEnv(num_history)


def _canonical_params(params: EnvParams) -> EnvParams:
    """Same settings with fixed leaf dtypes (int32 / float32), so that jit caches are shared."""
    kw: dict[str, Any] = {}
    for name in EnvParams.__dataclass_fields__:
        v = getattr(params, name)
        if name in _PAIR_FIELDS:
            kw[name] = tuple(np.float32(x) for x in v)
        elif name in _INT_FIELDS:
            kw[name] = np.int32(v)
        else:
            kw[name] = np.float32(v)
    return EnvParams(**kw)


def _as_python(x: Any) -> Any:
    if isinstance(x, (tuple, list)):
        return tuple(_as_python(e) for e in x)
    arr = np.asarray(x)
    if arr.ndim != 0:
        raise ValueError(f"game settings must be scalars (one game), got shape {arr.shape}")
    return arr.item()


def _validated(params: EnvParams) -> EnvParams:
    """Re-validate user-built params through :func:`make_params` (ValueError names the field)."""
    return make_params(
        **{name: _as_python(getattr(params, name)) for name in EnvParams.__dataclass_fields__}
    )


@functools.cache
def _info_layout() -> tuple[tuple[str, str], ...]:
    """(name, kind) of the entries of ``step_env``'s info, in its order; kind is 'b', 'i' or 'f'."""
    env = _jax_env(1)
    params = _canonical_params(EnvParams())
    names: list[str] = []

    def f(key):
        state = env._initial_state(key, params)
        act = {"action_type": jnp.int32(COUNTER), "price": jnp.float32(0.0)}
        _, _, _, info = env.step_env(state, {a: act for a in AGENTS}, params)
        names.extend(info)
        return info

    out = jax.eval_shape(f, jax.random.key(0))
    return tuple((n, np.dtype(out[n].dtype).kind) for n in names)


@functools.partial(jax.jit, static_argnums=0)
def _jit_reset(
    num_history: int, key: jax.Array, params: EnvParams, fixed: jax.Array, values: jax.Array
) -> tuple[jax.Array, EnvState, jax.Array]:
    """Returns (next internal key, state, obs (2, obs_size)); ``fixed`` masks ``values`` in."""
    env = _jax_env(num_history)
    key, episode_key = jax.random.split(key)
    _, state = env.reset(episode_key, params)
    state = state.replace(
        supplier_value=jnp.where(fixed[0], values[0], state.supplier_value),
        retailer_value=jnp.where(fixed[1], values[1], state.retailer_value),
    )
    obs = env.get_obs(state, params)
    return key, state, jnp.stack([obs[a] for a in AGENTS])


@functools.partial(jax.jit, static_argnums=0)
def _jit_step(
    num_history: int,
    state: EnvState,
    action_types: jax.Array,
    prices: jax.Array,
    params: EnvParams,
) -> tuple[EnvState, jax.Array]:
    """Returns (state, out): ``out`` is one float32 vector (one device-to-host copy per step):
    both observations, both rewards, the info values in :func:`_info_layout` order, and the
    latest offer ``history[0]`` (for :meth:`JaxBargainingParallelEnv.render`)."""
    env = _jax_env(num_history)
    actions = {
        a: {"action_type": action_types[i], "price": prices[i]} for i, a in enumerate(AGENTS)
    }
    state, rewards, _, info = env.step_env(state, actions, params)
    obs = env.get_obs(state, params)
    tail = [rewards[a] for a in AGENTS] + [info[name] for name, _ in _info_layout()]
    tail.append(state.history[0])
    out = jnp.concatenate(
        [obs[a] for a in AGENTS] + [jnp.stack([jnp.asarray(x, jnp.float32) for x in tail])]
    )
    return state, out


def _parse_type(agent: str, action: Any, offer_key: str) -> int:
    """The action type of ``{"action_type": int, offer_key: ...}`` (ValueError otherwise)."""
    if not isinstance(action, dict) or "action_type" not in action:
        raise ValueError(
            f"action for {agent!r} must be a dict with 'action_type' (0 ACCEPT, 1 COUNTER, "
            f"2 WALK_AWAY) and {offer_key!r}, got {action!r}"
        )
    a = np.asarray(action["action_type"])
    integral = a.size == 1 and (
        a.dtype.kind in "biu"
        or (a.dtype.kind == "f" and bool(np.isfinite(a).all()) and float(a.item()).is_integer())
    )
    if not integral:
        raise ValueError(f"action_type for {agent!r} must be one integer, got {action!r}")
    # Out-of-range types are clipped to [0, 2] by the env (rules); only keep them inside int32.
    return min(max(int(a.item()), _INT32.min), _INT32.max)


def _parse_action(agent: str, action: Any) -> tuple[int, float]:
    """(action_type, price) from ``{"action_type": int, "price": float | (1,) array}``."""
    a_type = _parse_type(agent, action, "price")
    # Missing price = NaN: a COUNTER then repeats the standing offer (NaN rule).
    p = np.asarray(action.get("price", np.nan), dtype=np.float64)
    if p.size != 1:
        raise ValueError(f"price for {agent!r} must be one number, got shape {p.shape}")
    price = float(p.reshape(()))
    if np.isfinite(price):  # fit float32 without an overflow warning; the env clips it anyway
        price = min(max(price, -_F32_MAX), _F32_MAX)
    return a_type, price


class _JaxParallelEnv(ParallelEnv):
    """What both adapters share: the spaces by agent, the global state, closing."""

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Dict:
        return self.action_spaces[agent]

    def state(self) -> np.ndarray:
        """Global state: every agent's observation concatenated, ``(N * obs_size,)`` float32
        (N = 2 but in the group game)."""
        if self._obs is None:
            raise RuntimeError("call reset() before state()")
        return self._obs.reshape(-1).copy()

    def close(self) -> None:
        self._state = None
        self._obs = None
        self.agents = []


class JaxBargainingParallelEnv(_JaxParallelEnv):
    """The bargaining game (``docs/rules.md``) as a PettingZoo ``ParallelEnv``.

    Args:
        params: validated game settings (re-checked with :func:`make_params`); or give
            ``**game_settings`` (forwarded to :func:`make_params`) instead, not both.
        num_history: past offers in each observation (see :class:`BargainingEnv`).
        render_mode: ``None`` or ``"ansi"`` (:meth:`render` returns a one-line string).

    Observations: float32 vectors of shape ``(obs_size,)`` laid out as in :data:`OBS_FIELDS`.
    Actions: ``{"action_type": 0 ACCEPT | 1 COUNTER | 2 WALK_AWAY, "price": float or (1,) array}``
    (``price`` may be omitted for ACCEPT/WALK_AWAY). Both agents act every step; only the mover's
    action is applied and the other's may be omitted. ``reset(options=...)`` accepts
    ``supplier_value`` / ``retailer_value`` to fix the valuations of that episode (other option
    keys are ignored). ``infos`` hold the env's info (Python scalars) for logging; they include
    both private valuations, so do not feed them to agents.
    """

    metadata = {"name": "eqx_bargaining_v0", "render_modes": ["ansi"]}
    possible_agents = list(AGENTS)

    def __init__(
        self,
        params: EnvParams | None = None,
        num_history: int = 4,
        render_mode: str | None = None,
        **game_settings: Any,
    ):
        if params is not None and game_settings:
            raise ValueError(
                f"give either params or game settings, not both (got params and "
                f"{sorted(game_settings)})"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.params = _validated(params) if params is not None else make_params(**game_settings)
        self.jax_env = BargainingEnv(num_history)
        self.num_history = self.jax_env.num_history
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self._jparams = jax.device_put(_canonical_params(self.params))  # on device once
        self._max_price = float(np.float32(self.params.max_price))

        n = self.jax_env.obs_size
        low = np.zeros(n, np.float32)
        low[OBS_INDEX["momentum"]] = -1.0
        high = np.ones(n, np.float32)
        self.observation_spaces = {
            a: spaces.Box(low, high, (n,), np.float32) for a in self.possible_agents
        }
        self.action_spaces = {
            a: spaces.Dict(
                action_type=spaces.Discrete(3),
                price=spaces.Box(0.0, self._max_price, (1,), np.float32),
            )
            for a in self.possible_agents
        }
        self.state_space = spaces.Box(np.tile(low, 2), np.tile(high, 2), (2 * n,), np.float32)

        self._key: jax.Array | None = None
        self._state: EnvState | None = None
        self._obs: np.ndarray | None = None  # (2, obs_size) float32
        self._last_move: str | None = None
        self._standing: float | None = None
        self._t = 0  # rounds played in the current episode

    # ------------------------------------------------------------------------------- reset
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode. ``seed`` (re)seeds the internal JAX key and the spaces.

        The episode key is ``jax.random.split(key)[1]`` and the internal key becomes
        ``split(key)[0]``, so ``reset(seed=s)`` followed by unseeded resets is reproducible.
        """
        if seed is not None:
            self._key = jax.random.key(seed)
            for i, a in enumerate(self.possible_agents):
                self.action_spaces[a].seed(int(seed) + i)
                self.observation_spaces[a].seed(int(seed) + i)
            self.state_space.seed(int(seed))
        elif self._key is None:
            self._key = jax.random.key(int(np.random.SeedSequence().generate_state(1)[0]))

        fixed = np.zeros(2, bool)
        values = np.zeros(2, np.float32)
        for i, a in enumerate(AGENTS):
            v = (options or {}).get(f"{a}_value")
            if v is None:
                continue
            v = check_number(f"{a}_value", float(v), 0.0, float(self.params.max_price))
            fixed[i], values[i] = True, v

        self._key, self._state, obs = _jit_reset(
            self.num_history, self._key, self._jparams, fixed, values
        )
        self._obs = np.array(obs)
        self.agents = list(self.possible_agents)
        self._last_move = None
        self._standing = None
        self._t = 0
        return {a: self._obs[i].copy() for i, a in enumerate(AGENTS)}, {a: {} for a in AGENTS}

    # -------------------------------------------------------------------------------- step
    def step(self, actions: dict[str, Any]):
        """One round (only the mover's action is applied). Returns PettingZoo's 5 dicts."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.agents:
            raise RuntimeError("the episode is over (deal, walk-away or timeout); call reset()")
        mover = AGENTS[self._t % 2]  # the supplier moves in odd rounds (rules)
        if mover not in actions:
            raise ValueError(f"missing the action of {mover!r}, whose move it is")
        a_types = np.full(2, COUNTER, np.int32)
        prices = np.zeros(2, np.float32)
        for i, a in enumerate(AGENTS):
            if a in actions:
                a_types[i], prices[i] = _parse_action(a, actions[a])

        self._state, out = _jit_step(self.num_history, self._state, a_types, prices, self._jparams)
        out = np.array(out)
        n = self.jax_env.obs_size
        obs = out[: 2 * n].reshape(2, n)
        rew = out[2 * n : 2 * n + 2].tolist()
        packed = out[2 * n + 2 :].tolist()
        self._obs, self._t = obs, self._t + 1
        info: dict[str, Any] = {}
        for (name, kind), x in zip(_info_layout(), packed, strict=False):
            info[name] = bool(x) if kind == "b" else int(x) if kind == "i" else x
        terminated = info["deal"] or info["walk_away"]
        truncated = info["timeout"]
        rewards = {a: rew[i] for i, a in enumerate(AGENTS)}
        observations = {a: obs[i].copy() for i, a in enumerate(AGENTS)}
        terminations = {a: terminated for a in AGENTS}
        truncations = {a: truncated for a in AGENTS}
        infos = {a: dict(info) for a in AGENTS}

        if info["deal"]:
            move, outcome = f"ACCEPT at {info['price']:.2f}", "deal"
        elif info["walk_away"]:
            move, outcome = "WALK_AWAY", "walk-away"
        else:
            self._standing = packed[-1]
            move = f"COUNTER at {self._standing:.2f}"
            if info["illegal_accept"]:
                move += " (illegal ACCEPT treated as COUNTER)"
            outcome = "timeout" if truncated else "open"
        offer = "none" if self._standing is None else f"{self._standing:.2f}"
        self._last_move = (
            f"round {info['round']}: {mover} {move}; standing offer {offer}; {outcome}"
        )
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    # ----------------------------------------------------------------------------- extras
    def render(self) -> str | None:
        """``"ansi"``: one line describing the last move (or the fresh episode)."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        if self._state is None:
            return "no episode (call reset())"
        if self._last_move is None:
            return "round 0: new episode, supplier to move, no standing offer"
        return self._last_move



def parallel_env(**kwargs: Any) -> JaxBargainingParallelEnv:
    """PettingZoo-style factory: ``parallel_env(max_rounds=8, render_mode="ansi")``."""
    return JaxBargainingParallelEnv(**kwargs)



# ================================================================== every game of the registry
@functools.cache
def _game_env(game: str, options: tuple) -> Any:
    return get_game(game).make_env(**dict(options))


def _canonical_leaves(params: Any) -> Any:
    """The params pytree with int32 / float32 leaves (shared jit caches across instances)."""
    def canon(x):
        a = np.asarray(x)
        return a.astype(np.int32) if a.dtype.kind in "biu" else a.astype(np.float32)
    return jax.tree.map(canon, params)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _jit_game_reset(game: str, options: tuple, key: jax.Array, params: Any):
    """(next internal key, state, obs (N, obs_size)) of a new episode."""
    env = _game_env(game, options)
    key, episode_key = jax.random.split(key)
    obs, state = env.reset(episode_key, params)
    return key, state, jnp.stack([obs[a] for a in env.agents])


@functools.partial(jax.jit, static_argnums=(0, 1))
def _jit_game_step(game: str, options: tuple, state: Any, action_types: jax.Array,
                   offers: jax.Array, params: Any):
    """(state, obs (N, obs_size), rewards (N,), info) of one round, no auto-reset; the
    action types are (N,) i32 and the offers (N, D) f32, one row per agent."""
    env = _game_env(game, options)
    actions = {a: env.make_action(action_types[i], offers[i]) for i, a in enumerate(env.agents)}
    state, rewards, _, info = env.step_env(state, actions, params)
    obs = env.get_obs(state, params)
    return (state, jnp.stack([obs[a] for a in env.agents]),
            jnp.stack([rewards[a] for a in env.agents]), info)


def _split_env_options(spec: Any, env_options: dict[str, Any] | None,
                       game_settings: dict[str, Any]) -> dict[str, Any]:
    """The env's static options: ``env_options`` plus the keyword arguments that name one of
    the game's ``spec.env_options`` (``scenario=``, ``agents=``, ``num_history=``), which are
    taken out of ``game_settings`` (the params do not hold them)."""
    options = dict(env_options or {})
    for name in spec.env_options:
        if name in game_settings:
            if name in options:
                raise ValueError(f"{name} given twice (as a keyword and in env_options)")
            options[name] = game_settings.pop(name)
    for name, value in options.items():
        try:
            hash(value)
        except TypeError:
            raise ValueError(f"env option {name} must be hashable (a scenario by file or "
                             f"shipped name), got {type(value).__name__}") from None
    return options


def _build_params(spec: Any, options: dict[str, Any], game_settings: dict[str, Any]) -> Any:
    """Validated params matching the env's options: the same scenario and, in the group game,
    the same first ``agents`` parties (the params hold one row per party)."""
    if "agents" in options:
        game_settings = {"agents": options["agents"], **game_settings}
    return spec.params(options.get("scenario"), **game_settings)


def _check_parties(env: Any, params: Any) -> None:
    """A game with a number of parties (``env.num_agents``) needs params with one reservation
    prior per party (e.g. ``make_group_params(scenario, agents=N)`` for ``agents=N``)."""
    n = getattr(env, "num_agents", None)
    rows = np.shape(getattr(params, "reservation_low", ()))
    if n is not None and rows and rows[0] != n:
        raise ValueError(f"params are for {rows[0]} parties but the env seats {n}: build them "
                         f"with the same scenario and agents")


class JaxGameParallelEnv(_JaxParallelEnv):
    """Any game of :data:`eqx_jax.games.registry.GAMES` as a PettingZoo ``ParallelEnv``.

    Args:
        game: the game's name (``"price-quantity"``, ``"group"``, ...); ``"price"`` has its own
            adapter, :class:`JaxBargainingParallelEnv`, which :func:`parallel_env` returns.
        params: validated settings of that game, or ``**game_settings`` (its ``make_params``).
        env_options: the env's static options (``num_history``, a scenario, ...); each may
            also be given as a keyword (``game_parallel_env("group", scenario=..., agents=3)``).
        render_mode: ``None`` or ``"ansi"``.

    Agents: the env's (two in every game but ``"group"``, which seats the scenario's N parties,
    or its first ``agents``, in order; agent 0 opens and the mover of step s is seat
    (s - 1) mod N).

    Actions: ``{"action_type": 0 ACCEPT | 1 COUNTER | 2 WALK_AWAY, "offer": (D,) array}`` in the
    game's natural units (``action_space``: the offer box of ``offer_bounds``); a missing offer
    is all-NaN (a counter then repeats the standing offer: the NaN rule). Only the mover's
    action is applied. Observations: the env's float32 vectors (unbounded box: some fields,
    such as a gain, have no fixed range). ``terminations`` after a deal or a walk-away,
    ``truncations`` after a timeout (or the game's own end, e.g. a chance end); ``infos`` hold
    the env's info, private values included: do not feed them to agents.
    """

    metadata = {"name": "eqx_game_v0", "render_modes": ["ansi"]}

    def __init__(self, game: str, params: Any = None, render_mode: str | None = None,
                 env_options: dict[str, Any] | None = None, **game_settings: Any):
        spec = get_game(game)
        options = _split_env_options(spec, env_options, game_settings)
        if params is not None and game_settings:
            raise ValueError("give either params or game settings, not both")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of "
                             f"{self.metadata['render_modes']}, got {render_mode!r}")
        self.game = game
        self._options = tuple(sorted(options.items()))
        self.jax_env = _game_env(game, self._options)
        self.params = (params if params is not None else
                       _build_params(spec, options, game_settings))
        _check_parties(self.jax_env, self.params)
        self._jparams = jax.device_put(_canonical_leaves(self.params))
        self.render_mode = render_mode
        self.possible_agents = list(self.jax_env.agents)
        self.agents: list[str] = []
        n, d = self.jax_env.obs_size, self.jax_env.offer_size
        lo, hi = (np.asarray(b, np.float32) for b in self.jax_env.offer_bounds(self.params))
        self._offer_lo, self._offer_hi = lo, hi
        box = spaces.Box(-np.inf, np.inf, (n,), np.float32)
        self.observation_spaces = {a: box for a in self.possible_agents}
        self.action_spaces = {a: spaces.Dict(action_type=spaces.Discrete(3),
                                             offer=spaces.Box(lo, hi, (d,), np.float32))
                              for a in self.possible_agents}
        self._key: jax.Array | None = None
        self._state: Any = None
        self._obs: np.ndarray | None = None
        self._last_move: str | None = None

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode; ``seed`` (re)seeds the internal JAX key and the spaces."""
        if seed is not None:
            self._key = jax.random.key(seed)
            for i, a in enumerate(self.possible_agents):
                self.action_spaces[a].seed(int(seed) + i)
        elif self._key is None:
            self._key = jax.random.key(int(np.random.SeedSequence().generate_state(1)[0]))
        self._key, self._state, obs = _jit_game_reset(self.game, self._options, self._key,
                                                      self._jparams)
        self._obs = np.array(obs)
        self.agents = list(self.possible_agents)
        self._last_move = None
        return ({a: self._obs[i].copy() for i, a in enumerate(self.possible_agents)},
                {a: {} for a in self.possible_agents})

    def _parse(self, agent: str, action: Any) -> tuple[int, np.ndarray]:
        a_type = _parse_type(agent, action, "offer")
        d = self.jax_env.offer_size
        offer = np.asarray(action.get("offer", np.full(d, np.nan)), np.float64).reshape(-1)
        if offer.size != d:
            raise ValueError(f"offer for {agent!r} must hold {d} numbers (one per issue), "
                             f"got shape {np.shape(action.get('offer'))}")
        return a_type, np.clip(offer, -_F32_MAX, _F32_MAX).astype(np.float32)

    def step(self, actions: dict[str, Any]):
        """One round (only the mover's action is applied). Returns PettingZoo's 5 dicts."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.agents:
            raise RuntimeError("the episode is over; call reset()")
        mover = self.possible_agents[int(self.jax_env.mover(self._state))]
        if mover not in actions:
            raise ValueError(f"missing the action of {mover!r}, whose move it is")
        d, n = self.jax_env.offer_size, len(self.possible_agents)
        a_types = np.full(n, COUNTER, np.int32)
        offers = np.full((n, d), np.nan, np.float32)
        for i, a in enumerate(self.possible_agents):
            if a in actions:
                a_types[i], offers[i] = self._parse(a, actions[a])
        self._state, obs, rew, info = _jit_game_step(self.game, self._options, self._state,
                                                     a_types, offers, self._jparams)
        self._obs = np.array(obs)
        info = {k: np.asarray(v).item() if np.ndim(v) == 0 else np.asarray(v).tolist()
                for k, v in info.items()}
        done = bool(info.get("done", False))
        truncated = bool(info.get("timeout", False)) or (
            done and not info.get("deal", False) and not info.get("walk_away", False))
        terminated = done and not truncated
        move = ACTION_NAMES[min(max(int(a_types[self.possible_agents.index(mover)]), 0), 2)]
        outcome = "deal" if info.get("deal") else "over" if done else "open"
        self._last_move = f"round {info.get('round')}: {mover} {move}; {outcome}"
        if done:
            self.agents = []
        agents = self.possible_agents
        return ({a: self._obs[i].copy() for i, a in enumerate(agents)},
                {a: float(rew[i]) for i, a in enumerate(agents)},
                {a: terminated for a in agents}, {a: truncated for a in agents},
                {a: dict(info) for a in agents})

    def render(self) -> str | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        if self._state is None:
            return "no episode (call reset())"
        return self._last_move or f"round 0: new episode, {self.possible_agents[0]} to move"



def game_parallel_env(game: str = DEFAULT_GAME, **kwargs: Any) -> ParallelEnv:
    """The PettingZoo env of any registered game (the price game: its own adapter)."""
    if game == DEFAULT_GAME:
        return JaxBargainingParallelEnv(**kwargs)
    return JaxGameParallelEnv(game, **kwargs)
