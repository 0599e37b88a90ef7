"""Head to head: two players, each pairing both ways, many episodes at once, with confidence
intervals (``POST /api/v1/tournament``, :mod:`serve.routers.tournament`).

A pairing is ``eqx_jax.simulate.play_batch`` on the pair's game (:meth:`Engine.game_params`;
valuations drawn from its priors), one jitted call; the per-episode metrics are
``eqx_jax.metrics.episode_metrics``. Blocking (JAX): run it from a worker thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from eqx_jax.env import AGENTS, BargainingEnv
from eqx_jax.metrics import episode_metrics
from eqx_jax.simulate import play_batch
from serve.engine import Engine, PolicyError, PolicySpec
from serve.schemas import TournamentRequest
from serve.stats import mean_ci, wilson

#: ``(name, role) -> PolicySpec`` (``SimulationManager.resolve``); PolicyError if unknown.
Resolver = Callable[[str, str], PolicySpec]


class Busy(Exception):
    """No comparison slot is free: the server's (``max_concurrent_tournaments``) or the
    caller's (``max_tournaments_per_user``); the message says which."""


class Slots:
    """Comparisons running now, in total and per user (one instance per server process).

    A per-user cap below the server's keeps one user from holding every slot: with the
    defaults (2 at once, 1 per user) another user can always start one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._per_user: dict[int, int] = {}

    @contextlib.contextmanager
    def hold(self, user_id: int, total: int, per_user: int) -> Iterator[None]:
        """Hold a slot while the block runs; :class:`Busy` at once if none is free."""
        with self._lock:
            if self._per_user.get(user_id, 0) >= per_user:
                raise Busy(f"you already run {per_user} comparison(s) at once "
                           "(EQX_MAX_TOURNAMENTS_PER_USER); retry when it has finished")
            if sum(self._per_user.values()) >= total:
                raise Busy(f"{total} comparison(s) are already running on this server "
                           "(EQX_MAX_CONCURRENT_TOURNAMENTS); retry shortly")
            self._per_user[user_id] = self._per_user.get(user_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._per_user[user_id] -= 1
                if not self._per_user[user_id]:
                    del self._per_user[user_id]


    @contextlib.asynccontextmanager
    async def ahold(self, user_id: int, total: int, per_user: int):
        """:meth:`hold` for the event loop (the same interface as :class:`SharedSlots`)."""
        with self.hold(user_id, total, per_user):
            yield


class SharedSlots:
    """The comparison slots of every worker, counted in Redis (scale-out). The counts expire
    after ``ttl_s`` seconds, so a worker killed mid-comparison does not hold its slot for ever;
    while Redis is unreachable each worker counts its own (:class:`Slots`)."""

    def __init__(self, redis: Any, ttl_s: int = 3600):
        self.redis, self.ttl_s = redis, ttl_s
        self.local = Slots()

    # Check both caps and take a slot in one atomic step: a request that is refused never
    # holds a slot, not even for the moment between taking and giving it back (which made a
    # second user's request, arriving in that moment, see the server's cap as reached).
    _TAKE = """
    local mine = tonumber(redis.call('GET', KEYS[1]) or '0')
    local everyone = tonumber(redis.call('GET', KEYS[2]) or '0')
    if mine >= tonumber(ARGV[1]) then return 1 end
    if everyone >= tonumber(ARGV[2]) then return 2 end
    redis.call('INCR', KEYS[1]); redis.call('EXPIRE', KEYS[1], ARGV[3])
    redis.call('INCR', KEYS[2]); redis.call('EXPIRE', KEYS[2], ARGV[3])
    return 0
    """

    async def _take(self, user_id: int, total: int, per_user: int) -> int | None:
        """0: a slot is taken; 1: the user's cap is reached; 2: the server's; None: Redis is
        unreachable."""
        keys = (f"eqx:tournaments:user:{user_id}", "eqx:tournaments:total")
        try:
            return int(await self.redis.eval(self._TAKE, 2, *keys, per_user, total,
                                             self.ttl_s))
        except Exception:  # noqa: BLE001 - Redis down: this worker's own count
            return None

    async def _give(self, user_id: int) -> None:
        with contextlib.suppress(Exception):  # the counts expire by themselves
            async with self.redis.pipeline(transaction=True) as pipe:
                await (pipe.decr(f"eqx:tournaments:user:{user_id}")
                       .decr("eqx:tournaments:total").execute())

    @contextlib.asynccontextmanager
    async def ahold(self, user_id: int, total: int, per_user: int):
        taken = await self._take(user_id, total, per_user)
        if taken is None:
            async with self.local.ahold(user_id, total, per_user):
                yield
            return
        if taken == 1:
            raise Busy(f"you already run {per_user} comparison(s) at once "
                       "(EQX_MAX_TOURNAMENTS_PER_USER); retry when it has finished")
        if taken == 2:
            raise Busy(f"{total} comparison(s) are already running on this server "
                       "(EQX_MAX_CONCURRENT_TOURNAMENTS); retry shortly")
        try:
            yield
        finally:
            await self._give(user_id)


def make_slots(redis: Any = None) -> Slots | SharedSlots:
    """The comparison slots: in Redis when the server has one, else this process's."""
    return SharedSlots(redis) if redis is not None else Slots()


def pairings(req: TournamentRequest) -> list[tuple[str, str]]:
    """(supplier, retailer) names: A against B, then B against A unless they are the same."""
    pairs = [(req.policy_a, req.policy_b)]
    if req.policy_b != req.policy_a:
        pairs.append((req.policy_b, req.policy_a))
    return pairs


def play_pairing(engine: Engine, resolve: Resolver, req: TournamentRequest, supplier: str,
                 retailer: str) -> dict[str, Any]:
    """One pairing's episodes and intervals, or ``skipped`` with the reason it cannot play."""
    row: dict[str, Any] = {"supplier": supplier, "retailer": retailer}
    try:
        sup, ret = resolve(supplier, "supplier"), resolve(retailer, "retailer")
        params, num_history = engine.game_params(sup, ret, req.max_rounds)
    except PolicyError as e:
        return {**row, "skipped": str(e)}
    env = BargainingEnv(num_history)
    fs = engine.policy_fn(sup, AGENTS[0], req.deterministic)
    fr = engine.policy_fn(ret, AGENTS[1], req.deterministic)
    rec = jax.jit(lambda k: play_batch(k, params, fs, fr, req.num_episodes, env))(
        jax.random.key(req.seed))
    e = {k: np.asarray(v, np.float64) for k, v in rec.items()}
    deal = e["deal"] > 0.5
    per = {k: np.asarray(v, np.float64) for k, v in episode_metrics(
        deal, e["price"], e["round"], e["supplier_value"], e["retailer_value"],
        np.full(deal.shape, float(params.max_rounds))).items()}
    surplus = deal & (e["retailer_value"] > e["supplier_value"])
    return {**row, "episodes": int(deal.size), "deal_rate": wilson(int(deal.sum()), deal.size),
            "price": mean_ci(e["price"][deal]), "rounds": mean_ci(e["round"]),
            "supplier_reward": mean_ci(e["supplier_reward"]),
            "retailer_reward": mean_ci(e["retailer_reward"]),
            "nash_distance": mean_ci(per["nash_distance"][deal]),
            "pareto_score": mean_ci(per["pareto_score"][deal]),
            "supplier_share": mean_ci(per["supplier_share"][surplus])}


def head_to_head(engine: Engine, resolve: Resolver, req: TournamentRequest) -> dict[str, Any]:
    """Every pairing of the request (the caller holds a slot of ``Services.slots``)."""
    t0 = time.perf_counter()
    rows = [play_pairing(engine, resolve, req, s, r) for s, r in pairings(req)]
    return {"num_episodes": req.num_episodes, "max_rounds": req.max_rounds, "seed": req.seed,
            "deterministic": req.deterministic, "pairings": rows,
            "wall_s": round(time.perf_counter() - t0, 3)}
