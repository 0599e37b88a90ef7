"""The game engine of the server: the *same* ``eqx_jax`` env and policies the trainer uses.

No second copy of the rules: a session is ``BargainingEnv.reset`` (then the request's realised
valuations), then one jitted call per move that computes both policies' actions from
``env.get_obs`` and applies ``env.step_env``. The jitted functions take the game settings
(``EnvParams``) and valuations as traced arguments, so they are compiled once per policy pair
(cached here) and reused by every later session whatever its valuations and ``max_rounds``.

Units: prices and valuations in currency units, rewards in reward units, rounds are counts.
This module is synchronous; the server calls it from a worker thread.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from eqx_jax.env import AGENTS, BargainingEnv, EnvParams, make_params, spe_kwargs
from eqx_jax.negotiators import NEGOTIATORS
from serve.batching import BatchedFn, MoveBatcher

if TYPE_CHECKING:
    from eqx_jax.ppo import PPOConfig

#: The policy name of a seat a person plays.
HUMAN = "human"
#: The negotiator compiled into a person's seat (its actions are never applied).
HUMAN_PLACEHOLDER = "linear"
#: Classic negotiators played when no trained policy "default" is registered.
FALLBACK_POLICIES = {"supplier": "boulware", "retailer": "conceder"}


class PolicyError(ValueError):
    """A policy choice that cannot be played (unknown id, wrong role, incompatible games).

    ``status`` is the HTTP answer: 404 for a name that is neither a registered policy nor a
    negotiator (the request is well-formed; what it names does not exist), 422 otherwise."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True)
class PolicySpec:
    """What plays one role: a classic negotiator (``kind="negotiator"``) or a trained policy."""

    kind: str  # "negotiator" | "trained" | "human"
    name: str  # negotiator name or policy id
    path: str | None = None  # policy file of a trained policy


@dataclass
class LoadedPolicy:
    """A trained policy file loaded once (config + network params)."""

    config: PPOConfig
    params: dict
    roles: tuple[str, ...]
    mtime: float


@dataclass
class Game:
    """A session's compiled functions and settings."""

    env: BargainingEnv
    params: EnvParams
    reset: BatchedFn
    step: BatchedFn


@dataclass
class EngineStats:
    """Compile times and the batched calls' compute times (seconds) and sizes (calls), for
    /health and the docs."""

    compiles: int = 0
    compile_s: list[float] = field(default_factory=list)
    batch_s: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ms = np.asarray(self.batch_s[-2000:], np.float64) * 1000
        n = np.asarray(self.batch_sizes[-2000:], np.float64)
        per_move = ms / np.maximum(n, 1)

        def pct(x: np.ndarray, q: float) -> float | None:
            return round(float(np.percentile(x, q)), 4) if x.size else None

        return {
            "compiled_policy_pairs": self.compiles,
            "compile_s": [round(x, 3) for x in self.compile_s[-10:]],
            # A batch's compute time shared by its calls (one call: one move or one reset).
            "move_compute_ms_p50": pct(per_move, 50),
            "move_compute_ms_p95": pct(per_move, 95),
            "batch_compute_ms_p50": pct(ms, 50),
            "batch_compute_ms_p95": pct(ms, 95),
            "batch_size_mean": round(float(n.mean()), 2) if n.size else None,
            "batch_size_max": int(n.max()) if n.size else None,
            "batches_measured": int(ms.size),
        }


class Engine:
    """Loads policies, builds and caches the jitted reset/step per policy pair."""

    def __init__(self) -> None:
        self._policies: dict[str, LoadedPolicy] = {}
        self._games: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._compile_locks: dict[tuple, threading.Lock] = {}
        self._warm: set[tuple] = set()  # game keys whose first call (the compile) has run
        self.stats = EngineStats()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eqx-jax")
        self.batcher = MoveBatcher(self._executor, self._record_batch)

    # ------------------------------------------------------------------ policies
    def is_loaded(self, policy_id: str) -> bool:
        """Whether a trained policy's file is loaded in this process."""
        return policy_id in self._policies

    def load(self, policy_id: str, path: str) -> LoadedPolicy:
        """Load (once; again if the file changed) a trained policy file."""
        from eqx_jax.train import load_policy

        mtime = Path(path).stat().st_mtime
        cached = self._policies.get(policy_id)
        if cached is not None and cached.mtime == mtime:
            return cached
        config, params = load_policy(path)
        loaded = LoadedPolicy(config=config, params=params, roles=config.trained_roles,
                              mtime=mtime)
        self._policies[policy_id] = loaded
        return loaded

    def game_params(self, supplier: PolicySpec, retailer: PolicySpec,
                    max_rounds: int) -> tuple[EnvParams, int]:
        """The game a pair plays: the trained policy's training game (the supplier's when both
        are trained), else the default game; ``max_rounds`` from the request. Also returns the
        observation history length the policies expect."""
        base: dict[str, Any] | None = None
        num_history = None
        for role, spec in (("supplier", supplier), ("retailer", retailer)):
            if spec.kind != "trained":
                continue
            lp = self.load(spec.name, spec.path)
            if role not in lp.roles:
                raise PolicyError(f"{role}_policy",
                                  f"policy {spec.name!r} was trained for "
                                  f"{'/'.join(lp.roles)}, not the {role}")
            if num_history is not None and num_history != lp.config.num_history:
                raise PolicyError("retailer_policy",
                                  "the two trained policies observe different offer histories "
                                  f"({num_history} vs {lp.config.num_history})")
            num_history = lp.config.num_history
            if base is None:
                base = dict(lp.config.env)
        game = dict(base or {})
        game["max_rounds"] = max_rounds
        return make_params(**game), (num_history or 4)

    def policy_fn(self, spec: PolicySpec, role: str, deterministic: bool):
        if spec.kind == "human":
            # A person's seat: its moves come from the WebSocket (``with_human``); a classic
            # negotiator fills the traced policy slot, never applied on the person's turns.
            return NEGOTIATORS[HUMAN_PLACEHOLDER]
        if spec.kind == "negotiator":
            return NEGOTIATORS[spec.name]
        from eqx_jax.ppo import make_policy

        lp = self.load(spec.name, spec.path)
        return make_policy(lp.params[lp.config.network_for(role)], lp.config, deterministic)

    # ------------------------------------------------------------------ compiled game
    def game(self, supplier: PolicySpec, retailer: PolicySpec, max_rounds: int,
             deterministic: bool = True) -> Game:
        params, num_history = self.game_params(supplier, retailer, max_rounds)
        mtimes = tuple(self._policies[s.name].mtime if s.kind == "trained" else 0.0
                       for s in (supplier, retailer))
        # Determinism only matters for trained policies; keep one entry per pair otherwise.
        det = deterministic or (supplier.kind != "trained" and retailer.kind != "trained")
        key = (supplier.kind, supplier.name, retailer.kind, retailer.name, num_history, det, mtimes)
        with self._lock:
            entry = self._games.get(key)
            if entry is None:
                env = BargainingEnv(num_history)
                sup = self.policy_fn(supplier, AGENTS[0], det)
                ret = self.policy_fn(retailer, AGENTS[1], det)
                entry = (*_build(env, sup, ret), env)
                self._games[key] = entry
                self._compile_locks[key] = threading.Lock()
            lock = self._compile_locks[key]
        reset, step, env = entry
        # The first call compiles (seconds); concurrent first sessions of a pair wait for one
        # compile instead of compiling in parallel.
        with lock:
            if key not in self._warm:
                t0 = time.perf_counter()
                _, state = reset.one(np.int32(0), params, np.float32(5000), np.float32(8000))
                step.one(np.int32(0), np.int32(0), state, params, np.bool_(False), np.int32(0),
                         np.float32(0.0))
                self.stats.compiles += 1
                self.stats.compile_s.append(time.perf_counter() - t0)
                self._warm.add(key)
        return Game(env=env, params=params, reset=reset, step=step)

    def cached(self, key: tuple, build: Callable[[], Any]) -> tuple[Any, threading.Lock]:
        """The compiled functions stored under ``key`` (``build()`` the first time) and the
        lock that serialises their first call (the compile)."""
        with self._lock:
            entry = self._games.get(key)
            if entry is None:
                entry = build()
                self._games[key] = entry
                self._compile_locks[key] = threading.Lock()
            return entry, self._compile_locks[key]

    def is_warm(self, key: tuple) -> bool:
        """Whether the functions under ``key`` have run once (compiled)."""
        return key in self._warm

    def mark_warm(self, key: tuple, compile_s: float) -> None:
        """Record the first call (the compile) of the functions under ``key``."""
        self.stats.compiles += 1
        self.stats.compile_s.append(compile_s)
        self._warm.add(key)

    async def run_step(self, fn: Callable, *args: Any) -> Any:
        """Run blocking JAX work (a session's setup or end) on the engine's own thread.

        One dedicated thread, not the shared pool: many threads dispatching tiny XLA programs
        at once mostly fight over the GIL (measured: see docs/server.md)."""
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def batched(self, fn: BatchedFn, *args: Any) -> Any:
        """``fn(*args)`` (host values) played in the next batch with every other session's
        call of ``fn`` that is due (:class:`serve.batching.MoveBatcher`)."""
        return await self.batcher.run(fn, args)

    def _record_batch(self, seconds: float, moves: int) -> None:
        st = self.stats
        st.batch_s.append(seconds)
        st.batch_sizes.append(moves)
        if len(st.batch_s) > 20000:
            del st.batch_s[:10000], st.batch_sizes[:10000]

    async def stop(self) -> None:
        """Stop the batcher (the sessions using it are being cancelled)."""
        await self.batcher.stop()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _build(env: BargainingEnv, sup, ret) -> tuple[BatchedFn, BatchedFn]:
    """Batched ``reset(seed, params, v_s, v_r) -> (obs, state)`` and
    ``step(seed, t, state, params, use_human, human_type, human_price) -> (state, facts)``."""

    # The PRNG keys are derived inside the compiled functions from (seed, move): creating them
    # eagerly cost two extra dispatches (~1 ms) per move.
    def reset(seed, params, v_s, v_r):
        _, state = env.reset(session_key(seed, 0), params)
        # The request picks the realised private values; beliefs stay the game's public priors.
        state = state.replace(supplier_value=jnp.asarray(v_s, jnp.float32),
                              retailer_value=jnp.asarray(v_r, jnp.float32))
        return env.get_obs(state, params), state

    def step(seed, t, state, params, use_human, human_type, human_price):
        """Move t + 1 (t rounds played); with ``use_human`` the mover plays (human_type,
        human_price) instead of its policy (a person at the table). The facts are what
        :func:`read_move` needs, so that one copy to the host carries the whole move."""
        obs = env.get_obs(state, params)
        k_s, k_r = jax.random.split(session_key(seed, t + 1))
        actions = {AGENTS[0]: sup(k_s, obs[AGENTS[0]], params),
                   AGENTS[1]: ret(k_r, obs[AGENTS[1]], params)}
        actions = with_human(actions, use_human,
                             {"action_type": human_type, "price": human_price})
        new_state, rewards, _done, info = env.step_env(state, actions, params)
        return new_state, {"t": state.t, "standing": state.history[0],
                           "after": new_state.history[0], "rewards": rewards, "info": info}

    return BatchedFn(reset), BatchedFn(step)


# ---------------------------------------------------------------------------- one move
def describe_move(t_before: int, standing: float, offer_after: float,
                  info: dict) -> dict[str, Any]:
    """The applied move in plain data: who moved, what, at which price, and the outcome.

    ``t_before``: rounds played before the move; ``standing``: the standing offer before it
    (negative when none); ``offer_after``: the standing offer after it. ``price``: COUNTER the
    offered (clipped) price; ACCEPT the accepted price; WALK_AWAY the standing offer walked away
    from, or None in round 1.
    """
    agent = AGENTS[int(t_before) & 1]
    standing = float(standing)
    if bool(info["deal"]):
        action, price = "ACCEPT", float(info["price"])
    elif bool(info["walk_away"]):
        action, price = "WALK_AWAY", (standing if standing >= 0 else None)
    else:
        action, price = "COUNTER", float(offer_after)
    return {"agent": agent, "round": int(info["round"]), "action": action, "price": price,
            "done": bool(info["done"]), "deal": bool(info["deal"]),
            "walk_away": bool(info["walk_away"]), "timeout": bool(info["timeout"]),
            "illegal_accept": bool(info["illegal_accept"])}


def with_human(actions: dict[str, Any], use_human: Any, human: dict[str, Any]) -> dict[str, Any]:
    """``actions`` with every agent's action replaced by ``human`` where ``use_human`` (traced
    bool): the env applies only the mover's, so this is the mover's move played by a person."""
    flag = jnp.asarray(use_human, bool)
    return {a: {k: jnp.where(flag, jnp.asarray(human[k], jnp.asarray(v).dtype), v)
                for k, v in act.items()} for a, act in actions.items()}


def step_args(game: Game, seed: int, state: Any, t: int,
              human: tuple[int, float] | None = None) -> tuple:
    """The arguments of move ``t + 1`` (``t`` rounds played) for ``game.step``; ``human``:
    (action type, price) the mover plays instead of its policy (a person's move)."""
    h_type, h_price = human if human is not None else (0, 0.0)
    return (np.int32(seed), np.int32(t), state, game.params, np.bool_(human is not None),
            np.int32(h_type), np.float32(h_price))


def read_move(facts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """A step's facts (host values) -> the move (:func:`describe_move`) and both rewards."""
    move = describe_move(facts["t"], facts["standing"], facts["after"], facts["info"])
    return move, {a: float(facts["rewards"][a]) for a in AGENTS}


def play_move(game: Game, seed: int, state, t: int, human: tuple[int, float] | None = None,
              ) -> tuple[Any, dict[str, Any], dict[str, float]]:
    """Move ``t + 1`` of a session alone (blocking: call it from a worker thread); the same
    compiled program as the server's batches (:mod:`serve.batching`), so the same moves.

    Returns the new state (host values), the move (:func:`describe_move`) and both rewards."""
    new_state, facts = game.step.one(*step_args(game, seed, state, t, human))
    return (new_state, *read_move(facts))


def session_key(seed: int, t: int) -> jax.Array:
    """The key of move ``t`` of a session: same seed, same moves."""
    return jax.random.fold_in(jax.random.key(seed), t)


@functools.lru_cache(maxsize=4096)
def equilibrium(v_s: float, v_r: float, params_items: tuple) -> dict[str, Any]:
    """Complete-information SPE of this game (eqx_jax.equilibrium.solve_spe)."""
    from eqx_jax.equilibrium import solve_spe

    kw = dict(params_items)
    max_rounds = kw.pop("max_rounds")
    spe = solve_spe(v_s, v_r, max_rounds, **kw)
    return {"equilibrium_price": spe.price, "equilibrium_round": spe.round,
            "equilibrium_outcome": spe.outcome,
            "equilibrium_payoffs": {"supplier": spe.supplier_payoff,
                                    "retailer": spe.retailer_payoff}}


def equilibrium_for(v_s: float, v_r: float, params: EnvParams) -> dict[str, Any]:
    kw = spe_kwargs(params)
    kw["max_rounds"] = int(params.max_rounds)
    return equilibrium(float(v_s), float(v_r), tuple(sorted(kw.items())))


@functools.cache
def _metrics_fn():
    from eqx_jax.metrics import nash_distance, pareto_score

    # Jitted once: eager, the two metrics were ~10 small dispatches per session end.
    return jax.jit(lambda p, s, r: (nash_distance(p, s, r), pareto_score(p, s, r)))


def outcome_metrics(deal: bool, price: float | None, v_s: float, v_r: float) -> dict[str, Any]:
    """Founding-design metrics of the session (eqx_jax.metrics); None without a deal.

    Blocking (a JAX call): run it off the event loop."""
    if not deal or price is None:
        return {"nash_distance": None, "pareto_efficiency": None}
    nd, ps = jax.device_get(_metrics_fn()(*(np.float32(x) for x in (price, v_s, v_r))))
    return {"nash_distance": float(nd), "pareto_efficiency": float(ps)}
