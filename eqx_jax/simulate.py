"""Play policies against each other over many vectorized episodes; tournaments.

One jitted function plays ``num_episodes`` independent episodes in parallel (``vmap``) for exactly
``max_rounds`` steps (``lax.scan``; every episode ends by then) and records each episode's outcome
at the step it ended. A tournament runs every (supplier, retailer) pairing in the same compiled
call: the pair index selects the policies with ``lax.switch``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from eqx_jax.env import AGENTS, BargainingEnv, EnvParams, game_settings
from eqx_jax.metrics import summarize
from eqx_jax.negotiators import GAME_NEGOTIATORS, NEGOTIATORS, Policy, get_game_negotiator

# Per-episode fields recorded at the final step (info keys plus the two rewards).
_RECORD = ("deal", "walk_away", "timeout", "illegal_accept", "price", "round",
           "supplier_value", "retailer_value")


def play_batch(
    key: jax.Array,
    params: EnvParams,
    supplier_policy: Policy,
    retailer_policy: Policy,
    num_episodes: int,
    env: BargainingEnv | None = None,
) -> dict[str, jax.Array]:
    """Play ``num_episodes`` episodes; returns per-episode arrays of shape (num_episodes,).

    Traceable (call it under ``jit``); ``params.max_rounds`` must be concrete (scan length).
    Keys: ``deal, walk_away, timeout, illegal_accept, price, round, supplier_value,
    retailer_value, supplier_reward, retailer_reward``.
    """
    env = env or BargainingEnv()
    keys = record_keys(env)
    horizon = int(params.max_rounds)
    k_reset, k_play = jax.random.split(key)
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, num_episodes), params)
    act_s = jax.vmap(supplier_policy, (0, 0, None))
    act_r = jax.vmap(retailer_policy, (0, 0, None))
    step = jax.vmap(env.step_env, (0, 0, None))
    zeros = {k: jnp.zeros((num_episodes,), jnp.float32) for k in keys}
    zeros.update({f"{a}_reward": jnp.zeros((num_episodes,), jnp.float32) for a in AGENTS})

    def body(carry, key_t):
        obs, state, record, finished = carry
        k_s, k_r = jax.random.split(key_t)
        actions = {
            AGENTS[0]: act_s(jax.random.split(k_s, num_episodes), obs[AGENTS[0]], params),
            AGENTS[1]: act_r(jax.random.split(k_r, num_episodes), obs[AGENTS[1]], params),
        }
        state, rewards, done, info = step(state, actions, params)
        # Record only the step on which each episode ends; later steps of a finished episode
        # are ignored (no auto-reset here, so each lane plays exactly one episode).
        new = done & ~finished
        fresh = {k: info[k] for k in keys}
        fresh.update({f"{a}_reward": rewards[a] for a in AGENTS})
        record = {k: jnp.where(new, fresh[k].astype(jnp.float32), record[k]) for k in record}
        obs = jax.vmap(env.get_obs, (0, None))(state, params)
        return (obs, state, record, finished | done), None

    init = (obs, state, zeros, jnp.zeros((num_episodes,), bool))
    (_, _, record, _), _ = jax.lax.scan(body, init, jax.random.split(k_play, horizon))
    return record


def record_keys(env) -> tuple[str, ...]:
    """The per-episode fields :func:`play_batch` records for ``env``'s game (besides the
    rewards): the price game's :data:`_RECORD`, else the env's ``record_keys`` (or its
    ``info_keys``)."""
    if isinstance(env, BargainingEnv):
        return _RECORD
    return tuple(getattr(env, "record_keys", env.info_keys))


def summarize_game(record: dict[str, jax.Array], env) -> dict[str, float]:
    """Means over a :func:`play_batch` record of any game: ``episodes``, ``deal_rate``,
    ``mean_rounds``, ``walk_rate`` / ``timeout_rate`` (where the game has them), the per-deal
    means of the env's ``deal_keys`` (``mean_price``, ``mean_quantity``, ``efficiency``, ...;
    nan without deals) and ``<agent>_reward`` (mean episode reward, reward units)."""
    r = {k: np.asarray(v, np.float64) for k, v in record.items()}
    deal = r["deal"] > 0.5
    n, n_deal = deal.size, int(deal.sum())
    out = {"episodes": float(n), "deal_rate": n_deal / max(n, 1),
           "mean_rounds": float(r["round"].mean())}
    for k, name in (("walk_away", "walk_rate"), ("timeout", "timeout_rate")):
        if k in r:
            out[name] = float(r[k].mean())
    for k in env.deal_keys:
        name = f"mean_{k}" if k in ("price", "quantity") else k
        out[name] = float(r[k][deal].mean()) if n_deal else float("nan")
    for a in env.agents:
        out[f"{a}_reward"] = float(r[f"{a}_reward"].mean())
    return out


def records_to_numpy(record: dict[str, jax.Array], params: EnvParams) -> dict[str, np.ndarray]:
    """A :func:`play_batch` record (device arrays, ``(num_episodes,)`` each) as NumPy arrays with
    the flags as bool and the rounds as int32, plus ``max_rounds``: what
    :func:`eqx_jax.metrics.summarize` takes."""
    out = {k: np.asarray(v) for k, v in record.items()}
    for k in ("deal", "walk_away", "timeout", "illegal_accept"):
        out[k] = out[k].astype(bool)
    out["round"] = out["round"].astype(np.int32)
    out["max_rounds"] = np.asarray(params.max_rounds)
    return out


def play(
    key: jax.Array,
    params,
    supplier: str | Policy,
    retailer: str | Policy,
    num_episodes: int = 10_000,
    env=None,
) -> dict[str, np.ndarray]:
    """Play two negotiators (by name or as policies); per-episode NumPy arrays.

    ``env``: the game's env (default the price game's ``BargainingEnv()``); names are resolved
    for its game (:func:`eqx_jax.negotiators.get_game_negotiator`)."""
    env = env or BargainingEnv()
    sup = get_game_negotiator(supplier, env) if isinstance(supplier, str) else supplier
    ret = get_game_negotiator(retailer, env) if isinstance(retailer, str) else retailer
    record = _cached(_compiled_play, params, sup, ret, num_episodes, env)(key)
    if isinstance(env, BargainingEnv):
        return records_to_numpy(record, params)
    return {k: np.asarray(v) for k, v in record.items()}


def _cached(compiled, params, *args):
    """``compiled(params, *args)`` from its cache where ``params`` is hashable (plain settings);
    params holding arrays (a scenario's) compile afresh."""
    try:
        hash(params)
    except TypeError:
        return compiled.__wrapped__(params, *args)
    return compiled(params, *args)


@functools.lru_cache(maxsize=64)
def _compiled_play(params, sup: Policy, ret: Policy, num_episodes: int, env):
    # params are closed over: max_rounds is the scan length and must stay a Python int.
    # Cached so that playing the same match again (same settings) reuses the compiled program.
    return jax.jit(lambda k: play_batch(k, params, sup, ret, num_episodes, env))


def tournament(
    key: jax.Array,
    params,
    names: Sequence[str] | None = None,
    num_episodes: int = 10_000,
    env=None,
) -> list[dict]:
    """Every supplier negotiator against every retailer negotiator, ``num_episodes`` each.

    Returns one row per pairing: ``{"supplier": name, "retailer": name, **summary}`` (the price
    game's :func:`eqx_jax.metrics.summarize`, another game's :func:`summarize_game`). All
    pairings run in a single compiled call. ``names`` default: every negotiator of the game.
    """
    env = env or BargainingEnv()
    price_game = isinstance(env, BargainingEnv)
    names = tuple(names or (NEGOTIATORS if price_game else GAME_NEGOTIATORS))
    pairs = [(i, j) for i in range(len(names)) for j in range(len(names))]
    records = _cached(_compiled_tournament, params, names, num_episodes, env)(
        jax.random.split(key, len(pairs)), jnp.array(pairs, jnp.int32))
    rows = []
    for n, (i, j) in enumerate(pairs):
        one = {k: v[n] for k, v in records.items()}
        summary = (summarize(records_to_numpy(one, params), game_settings(params)) if price_game
                   else summarize_game(one, env))
        rows.append({"supplier": names[i], "retailer": names[j], **summary})
    return rows


def role_policy(policies: Sequence[Policy], role_field: int) -> Policy:
    """One policy that plays ``policies[i]`` for the agent whose observation's ``role_field``
    (the role's index: 0 supplier / 1 retailer, a group game's seat) is i."""

    def policy(key, obs, env_params):
        role = jnp.round(obs[role_field]).astype(jnp.int32)
        return switch_policy(policies, role)(key, obs, env_params)

    return policy


def switch_policy(policies: Sequence[Policy], index: jax.Array) -> Policy:
    """One policy that plays ``policies[index]`` (``index``: a traced i32 scalar), so that every
    pairing of a tournament runs in one compiled, vmapped call (``lax.switch``)."""

    def policy(key, obs, env_params):
        return jax.lax.switch(index, [lambda k, o, f=f: f(k, o, env_params) for f in policies],
                              key, obs)

    return policy


@functools.lru_cache(maxsize=16)
def _compiled_tournament(params, names: tuple[str, ...], num_episodes: int, env):
    """One jitted ``(keys, pairs) -> records`` for all pairings (cached per settings)."""
    policies = [get_game_negotiator(n, env) for n in names]

    def one_pair(k, pair):
        return play_batch(k, params, switch_policy(policies, pair[0]),
                          switch_policy(policies, pair[1]), num_episodes, env)

    return jax.jit(jax.vmap(one_pair))


# ----------------------------------------------------------------- N parties (group game)
def play_group_batch(key: jax.Array, params, policies: Sequence[Policy], num_episodes: int,
                     env) -> dict[str, jax.Array]:
    """Play ``num_episodes`` episodes of the group game ``env`` (a ``GroupEnv``), seat i played
    by ``policies[i]``; traceable (``params.max_rounds`` concrete: the scan length).

    Returns per-episode arrays recorded at each episode's final step: ``deal``, ``walk_away``,
    ``timeout``, ``round`` (the step), ``utilities`` (B, N) the parties' utilities of the deal
    (0 without), ``rewards`` (B, N), ``reservation`` (B, N), ``weights`` (B, N, K)."""
    names = env.agents
    if len(policies) != len(names):
        raise ValueError(f"policies must be {len(names)} negotiators (one per party), got "
                         f"{len(policies)}")
    k_reset, k_play = jax.random.split(key)
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, num_episodes), params)
    acts = [jax.vmap(p, (0, 0, None)) for p in policies]
    step = jax.vmap(env.step_env, (0, 0, None))
    n, b = len(names), num_episodes
    record = {"deal": jnp.zeros(b, bool), "walk_away": jnp.zeros(b, bool),
              "timeout": jnp.zeros(b, bool), "round": jnp.zeros(b, jnp.int32),
              "utilities": jnp.zeros((b, n)), "rewards": jnp.zeros((b, n))}

    def body(carry, key_t):
        obs, state, record, finished = carry
        keys = jax.random.split(key_t, n)
        actions = {a: act(jax.random.split(k, b), obs[a], params)
                   for a, act, k in zip(names, acts, keys, strict=True)}
        state, rewards, done, info = step(state, actions, params)
        new = done & ~finished
        fresh = {k: info[k] for k in ("deal", "walk_away", "timeout", "round", "utilities")}
        fresh["rewards"] = jnp.stack([rewards[a] for a in names], axis=-1)
        record = {k: jnp.where(new.reshape((b,) + (1,) * (v.ndim - 1)), fresh[k].astype(v.dtype),
                               v) for k, v in record.items()}
        obs = jax.vmap(env.get_obs, (0, None))(state, params)
        return (obs, state, record, finished | done), None

    init = (obs, state, record, jnp.zeros(b, bool))
    (_, state, record, _), _ = jax.lax.scan(body, init,
                                            jax.random.split(k_play, int(params.max_rounds)))
    # Weights and reservation values do not change within an episode (no auto-reset here).
    return {**record, "reservation": state.reservation_array(),
            "weights": state.weights_array()}


def play_group(key: jax.Array, params, negotiators: Sequence[str | Policy],
               num_episodes: int, env) -> dict[str, np.ndarray]:
    """:func:`play_group_batch` compiled, with negotiators by name
    (:func:`eqx_jax.negotiators.get_game_negotiator`) or as policies; NumPy arrays."""
    pols = [get_game_negotiator(x, env) if isinstance(x, str) else x for x in negotiators]
    run = jax.jit(lambda k: play_group_batch(k, params, pols, num_episodes, env))
    return {k: np.asarray(v) for k, v in run(key).items()}
