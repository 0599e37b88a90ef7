"""Speed of the games beyond one price (``eqx bench env --game NAME``): env steps/s of the
jitted, vmapped env, peak memory at the largest size, the PettingZoo adapter's plain loop, and
PPO training throughput (default settings, learning included).

The policy is the same for every game and costs the same in every game: each step draws, per
episode, a random action type (ACCEPT 25 %, COUNTER 70 %, WALK_AWAY 5 %; the env's own rules
turn an illegal one into a counter) and a uniformly random offer inside the game's bounds.
(The single-price game keeps its own benchmark, :mod:`baselines.bench_env`, with the
founding design's negotiators.) Timings exclude compilation and take the best of repeats.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from baselines.bench_env import SCAN_UNROLL, _peak_rss_mb, _time_best, cpu_cores, cpu_name
from eqx_jax.games.registry import get_game
from eqx_jax.pettingzoo import game_parallel_env
from eqx_jax.ppo import PPOConfig, make_train

TYPE_LOGITS = np.log(np.array([0.25, 0.7, 0.05], np.float32))


def _random_actions(env, params, key: jax.Array, n: int) -> dict:
    lo, hi = env.offer_bounds(params)
    k_type, k_offer = jax.random.split(key)
    a_type = jax.random.categorical(k_type, jnp.asarray(TYPE_LOGITS), shape=(n,))
    offer = lo + jax.random.uniform(k_offer, (n, env.offer_size)) * (hi - lo)
    act = env.make_action(a_type.astype(jnp.int32), offer)
    return {a: act for a in env.agents}


def make_game_rollout(env, params, num_envs: int, num_steps: int):
    """A jitted ``(key, obs, state) -> (obs, state, total_reward, episodes)``."""
    step = jax.vmap(env.step, (0, 0, 0, None))

    def body(carry, key_t):
        obs, state, total, episodes = carry
        k_act, k_step = jax.random.split(key_t)
        acts = _random_actions(env, params, k_act, num_envs)
        obs, state, rewards, dones, _ = step(jax.random.split(k_step, num_envs), state, acts,
                                             params)
        total = total + sum(jnp.sum(rewards[a]) for a in env.agents)
        return (obs, state, total, episodes + jnp.sum(dones["__all__"])), None

    @jax.jit
    def rollout(key, obs, state):
        init = (obs, state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
        out, _ = jax.lax.scan(body, init, jax.random.split(key, num_steps), unroll=SCAN_UNROLL)
        return out

    return rollout


def bench_game_jax(game: str, num_envs: int, seconds: float, scenario: str | None = None,
                   num_devices: int = 1) -> dict[str, Any]:
    """Env steps/s of ``num_envs`` parallel episodes (and the XLA program's bytes); with
    ``num_devices > 1`` the episodes are split over that many local devices (``pmap``; on a
    CPU the XLA host devices of ``eqx bench``, one per core)."""
    spec = get_game(game)
    env, params = spec.env(scenario), spec.params(scenario)
    num_steps = int(min(20_000, max(64, 4_000_000 // num_envs)))
    num_steps -= num_steps % SCAN_UNROLL
    per_device = num_envs // num_devices
    rollout = make_game_rollout(env, params, per_device, num_steps)
    keys = jax.random.split(jax.random.key(0), (num_devices, per_device))
    obs, state = jax.vmap(jax.vmap(env.reset, (0, None)), (0, None))(keys, params)
    step_keys = jax.random.split(jax.random.key(1), num_devices)
    memory = None
    if num_devices == 1:
        args = (step_keys[0], *jax.tree.map(lambda x: x[0], (obs, state)))
        compiled = rollout.lower(*args).compile()
        memory = compiled.memory_analysis()
    else:
        args = (step_keys, obs, state)
        compiled = jax.pmap(rollout, devices=jax.local_devices()[:num_devices])
    out = jax.block_until_ready(compiled(*args))

    def call():
        jax.block_until_ready(compiled(*args))

    repeats = max(2, min(20, int(seconds / max(_time_best(call, 1), 1e-6))))
    return {"num_envs": num_envs, "num_devices": num_devices, "steps_per_call": num_steps,
            "steps_per_s": num_envs * num_steps / _time_best(call, repeats),
            "episodes_per_call": int(jnp.sum(out[3])),
            "xla_bytes": int(memory.argument_size_in_bytes + memory.output_size_in_bytes
                             + memory.temp_size_in_bytes) if memory is not None else 0}


def bench_game_adapter(game: str, seconds: float, scenario: str | None = None
                       ) -> dict[str, Any]:
    """Steps/s of the game's PettingZoo adapter in a plain Python loop (random actions)."""
    spec = get_game(game)
    env = (game_parallel_env(game, params=spec.params(scenario),
                             env_options={"scenario": scenario})
           if scenario is not None else game_parallel_env(game))
    rng = np.random.default_rng(0)
    lo, hi = env._offer_lo, env._offer_hi
    env.reset(seed=0)
    env.step({a: {"action_type": 1, "offer": lo} for a in env.agents})  # compile first
    env.reset(seed=0)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        act = {"action_type": int(rng.choice(3, p=np.exp(TYPE_LOGITS))),
               "offer": lo + rng.random(lo.shape) * (hi - lo)}
        env.step({a: act for a in env.agents})
        steps += 1
        if not env.agents:
            env.reset()
    return {"steps_per_s": steps / (time.perf_counter() - t0), "steps": steps}


def bench_game_train(game: str, total_timesteps: int = 1_048_576,
                     scenario: str | None = None) -> dict[str, Any]:
    """PPO env steps/s with default settings, learning included, after compilation."""
    config = PPOConfig(game=game, scenario=scenario, total_timesteps=total_timesteps)
    train = jax.jit(make_train(config)).lower(jax.random.key(0)).compile()
    jax.block_until_ready(train(jax.random.key(0)))
    best = _time_best(lambda: jax.block_until_ready(train(jax.random.key(1))), 2)
    return {"total_timesteps": config.num_updates * config.batch_size,
            "steps_per_s": config.num_updates * config.batch_size / best}


def bench_game(game: str, sizes: Sequence[int], seconds: float = 2.0,
               quick: bool = False, scenario: str | None = None) -> dict[str, Any]:
    """The whole benchmark of one game; the JSON-able result."""
    if quick:
        seconds = min(seconds, 0.3)
    rss_before = _peak_rss_mb()
    runs = {str(n): bench_game_jax(game, n, seconds, scenario) for n in sizes}
    rss = _peak_rss_mb()
    devices = jax.local_device_count()
    multi = {str(n): bench_game_jax(game, n, seconds, scenario, devices)
             for n in sizes if devices > 1 and n % devices == 0 and n >= 1024}
    largest = str(max(sizes))
    adapter = bench_game_adapter(game, min(seconds, 1.0), scenario)
    train = bench_game_train(game, 16_384 if quick else 1_048_576, scenario)  # quick: 1 update
    return {
        "game": game, "scenario": scenario,
        "jax_steps_per_s": {n: r["steps_per_s"] for n, r in runs.items()},
        "jax_all_devices_steps_per_s": {n: r["steps_per_s"] for n, r in multi.items()},
        "num_devices": devices,
        "adapter_steps_per_s": adapter["steps_per_s"],
        "speedup_vs_adapter": max(r["steps_per_s"] for r in runs.values())
        / adapter["steps_per_s"],
        "train_steps_per_s": train["steps_per_s"],
        "peak_memory": {"num_envs": int(largest),
                        "xla_program_mb": runs[largest]["xla_bytes"] / 2**20,
                        "process_peak_rss_mb": rss, "process_peak_rss_before_jax_mb": rss_before},
        "device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
        "machine": {"cpu": cpu_name(), "cores": cpu_cores(), "jax": jax.__version__},
        "details": {"jax": runs, "jax_all_devices": multi, "adapter_loop": adapter,
                    "train": train},
        "policy": "random action types (25/70/5 %) and uniform offers",
        "quick": quick,
    }


def print_game_report(r: dict[str, Any]) -> None:
    """The text form of :func:`bench_game`'s result."""
    print(f"{r['game']}: env throughput on {r['device']} ({r['machine']['cpu']}, "
          f"{r['machine']['cores']} cores, JAX {r['machine']['jax']}), {r['policy']}:")
    for n, sps in r["jax_steps_per_s"].items():
        print(f"  JAX env, {int(n):>7,} parallel episodes: {sps:>15,.0f} steps/s")
    for n, sps in r["jax_all_devices_steps_per_s"].items():
        print(f"  JAX env, {int(n):>7,} episodes, {r['num_devices']} devices: "
              f"{sps:>11,.0f} steps/s")
    print(f"  PettingZoo adapter loop:            {r['adapter_steps_per_s']:>15,.0f} steps/s")
    print(f"  PPO training (default settings):    {r['train_steps_per_s']:>15,.0f} "
          "env steps/s, learning included")
    m = r["peak_memory"]
    print(f"  memory at {m['num_envs']:,} episodes: XLA program {m['xla_program_mb']:.1f} MB, "
          f"process peak RSS {m['process_peak_rss_mb']:.0f} MB")
