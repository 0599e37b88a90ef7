"""The batched step (serve/batching.py): many sessions' moves in one compiled call give each
session exactly its moves alone, whatever the batch; the asyncio batcher coalesces the calls due
together and fails only the call that cannot be played."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from serve.batching import BatchedFn, MoveBatcher
from serve.engine import Engine, PolicySpec, play_move, read_move, step_args

NEG = PolicySpec("negotiator", "boulware"), PolicySpec("negotiator", "conceder")


def _trained_pair(tmp_path) -> tuple[PolicySpec, PolicySpec]:
    """Two small random PPO networks (matrix products: where batching could change bits)."""
    from eqx_jax.env import BargainingEnv
    from eqx_jax.ppo import PPOConfig, init_network
    from eqx_jax.train import export_policy

    config = PPOConfig(hidden=(16, 16), shared_network=False)
    obs = BargainingEnv(config.num_history).obs_size
    nets = {r: init_network(jax.random.key(i), (16, 16), obs)
            for i, r in enumerate(("supplier", "retailer"))}
    path = export_policy(config, nets, tmp_path / "pair.eqx")
    return PolicySpec("trained", "pair", str(path)), PolicySpec("trained", "pair", str(path))


def _alone(game, seed: int, v_s: float, v_r: float) -> list[tuple]:
    _, state = game.reset.one(np.int32(seed), game.params, np.float32(v_s), np.float32(v_r))
    moves = []
    for t in range(int(game.params.max_rounds)):
        state, mv, rw = play_move(game, seed, state, t)
        moves.append((mv["action"], mv["price"], rw["supplier"], rw["retailer"]))
        if mv["done"]:
            break
    return moves


def _together(game, sessions: list[tuple[int, float, float]]) -> list[list[tuple]]:
    """Every session played in shared batches, in reverse order (positions change)."""
    resets = game.reset.many([(np.int32(s), game.params, np.float32(a), np.float32(b))
                              for s, a, b in sessions])
    states = [st for _, st in resets]
    moves: list[list[tuple]] = [[] for _ in sessions]
    live = list(range(len(sessions)))[::-1]
    for t in range(int(game.params.max_rounds)):
        out = game.step.many([step_args(game, sessions[i][0], states[i], t) for i in live])
        still = []
        for i, (st, facts) in zip(live, out, strict=True):
            states[i] = st
            mv, rw = read_move(facts)
            moves[i].append((mv["action"], mv["price"], rw["supplier"], rw["retailer"]))
            if not mv["done"]:
                still.append(i)
        live = still
    return moves


@pytest.mark.parametrize("pair", ["negotiators", "trained"])
def test_a_batch_gives_every_session_its_moves_alone_bit_for_bit(pair, tmp_path):
    eng = Engine()
    sup, ret = NEG if pair == "negotiators" else _trained_pair(tmp_path)
    game = eng.game(sup, ret, 12, deterministic=False)
    sessions = [(s, 3000.0 + 37 * s, 9000.0 - 23 * s) for s in range(70)]
    alone = [_alone(game, *s) for s in sessions]
    assert _together(game, sessions) == alone  # exact equality: floats compared bit for bit
    assert sum(map(len, alone)) > len(sessions)  # sessions of several moves


def test_more_calls_than_the_capacity_are_split_and_keep_their_order():
    fn = BatchedFn(lambda x, k: (x * 2.0 + k, k), capacity=4)
    calls = [(np.float32(i), np.int32(i % 3)) for i in range(11)]
    out = fn.many(calls)
    assert [(float(a), int(b)) for a, b in out] == [(2.0 * i + i % 3, i % 3) for i in range(11)]
    assert out[0][0].dtype == np.float32  # host numpy values, dtype kept
    assert fn.many([]) == []


def test_calls_of_different_structure_are_refused():
    fn = BatchedFn(lambda x: x, capacity=4)
    with pytest.raises(ValueError, match="structure"):
        fn.many([(np.float32(1),), ((np.float32(1), np.float32(2)),)])


def test_the_batcher_coalesces_calls_and_fails_only_the_bad_one():
    calls_seen: list[int] = []

    def record(seconds: float, n: int) -> None:
        calls_seen.append(n)

    fn = BatchedFn(jnp.sqrt, capacity=64)
    bad = BatchedFn(lambda x: x[3], capacity=64)  # a 0-d argument cannot be indexed

    async def main():
        batcher = MoveBatcher(ThreadPoolExecutor(1), record)
        good = [batcher.run(fn, (np.float32(i * i),)) for i in range(50)]
        wrong = batcher.run(bad, (np.float32(1.0),))
        out = await asyncio.gather(*good, wrong, return_exceptions=True)
        await batcher.stop()
        return out

    out = asyncio.run(main())
    assert [float(x) for x in out[:50]] == [float(i) for i in range(50)]
    assert isinstance(out[50], Exception)
    # All 51 due at once: one tick, one batch per function (the failing group then tried call by
    # call), as the engine's stats are told.
    assert sum(calls_seen) == 51 and len(calls_seen) <= 2
    assert max(calls_seen) == 50
