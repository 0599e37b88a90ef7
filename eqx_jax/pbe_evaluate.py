"""Trained agents against the perfect Bayesian equilibrium of one-sided offers with a two-type
retailer (:func:`eqx_jax.solvers.one_sided.solve_one_sided_pbe`): the supplier's price path and
each type's acceptance round, played out and compared.

The game: ``proposer`` ``supplier`` (or ``retailer``), ``retailer_prior`` ``two_type``, the
``discounted`` reward model and a known supplier cost (``supplier_low == supplier_high``). Each
retailer type plays its own episodes (its value fixed), so the path of each type is what the
trained pair does when the retailer is that type; prices are currency units, rounds 1-based.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from eqx_jax.env import AGENTS, COUNTER, RETAILER_PRIORS, BargainingEnv, EnvParams
from eqx_jax.negotiators import Policy
from eqx_jax.rewards import REWARD_MODELS
from eqx_jax.solvers.one_sided import solve_one_sided_pbe

#: The price tolerance of the comparison's target (a share of the equilibrium price).
PRICE_TOLERANCE = 0.02


def has_pbe(p: EnvParams) -> bool:
    """Whether ``p`` is a game :func:`solve_one_sided_pbe` solves."""
    return (int(p.proposer) != 0 and int(p.retailer_prior) == RETAILER_PRIORS["two_type"]
            and int(p.reward_model) == REWARD_MODELS["discounted"]
            and float(p.supplier_low) == float(p.supplier_high))


def game_pbe(p: EnvParams):
    """The equilibrium of the game ``p`` (see :func:`has_pbe`)."""
    return solve_one_sided_pbe(
        float(p.supplier_low), float(p.retailer_low), float(p.retailer_high),
        float(p.retailer_high_prob), int(p.max_rounds), discount=tuple(p.discount),
        timeout_payoff=tuple(p.timeout_payoff), walk_payoff=tuple(p.walk_payoff),
        max_price=float(p.max_price), proposer=("supplier", "retailer")[int(p.proposer) - 1])


def trace_episodes(key: jax.Array, p: EnvParams, policies: tuple[Policy, Policy],
                   retailer_value: float, n: int,
                   env: BargainingEnv | None = None) -> dict[str, np.ndarray]:
    """``n`` episodes with the retailer's value fixed, every round recorded: ``action_type``
    and ``price`` of the mover (n, T) (i32 / f32; rounds after the end hold -1 / nan), and
    ``round`` (n,), the round of the end, ``deal`` (n,) bool."""
    env = env or BargainingEnv()
    horizon = int(p.max_rounds)

    @jax.jit
    def run(key):
        k0, k1 = jax.random.split(key)
        _, state = jax.vmap(env.reset, (0, None))(jax.random.split(k0, n), p)
        state = state.replace(retailer_value=jnp.full((n,), retailer_value, jnp.float32))
        acts = [jax.vmap(pol, (0, 0, None)) for pol in policies]

        def body(carry, k):
            state, live = carry
            obs = jax.vmap(env.get_obs, (0, None))(state, p)
            ks = jax.random.split(k, 2)
            actions = {a: acts[i](jax.random.split(ks[i], n), obs[a], p)
                       for i, a in enumerate(AGENTS)}
            mover = jax.vmap(env.mover)(state)
            a_type = jnp.where(mover == 0, actions[AGENTS[0]]["action_type"],
                               actions[AGENTS[1]]["action_type"])
            price = jnp.where(mover == 0, actions[AGENTS[0]]["price"],
                              actions[AGENTS[1]]["price"])
            new, _, done, info = jax.vmap(env.step_env, (0, 0, None))(state, actions, p)
            out = {"action_type": jnp.where(live, a_type, -1),
                   "price": jnp.where(live, price, jnp.nan),
                   "end": live & done, "deal": live & info["deal"], "t": info["round"]}
            return (new, live & ~done), out

        _, rec = jax.lax.scan(body, (state, jnp.ones((n,), bool)), jax.random.split(k1, horizon))
        return rec

    rec = {k: np.asarray(v).T for k, v in run(key).items()}  # (n, T)
    end_round = np.where(rec["end"].any(1), rec["end"].argmax(1) + 1, horizon)
    return {"action_type": rec["action_type"], "price": rec["price"], "round": end_round,
            "deal": rec["deal"].any(1)}


def _type_summary(trace: dict[str, np.ndarray], proposer_mover: int) -> dict[str, Any]:
    """The offers (the proposer's counter-offers, by round; mean over episodes still open)
    and the acceptance rounds of one type's episodes."""
    horizon = trace["price"].shape[1]
    offers = []
    for t in range(horizon):
        if t % 2 != proposer_mover:
            continue
        made = trace["action_type"][:, t] == COUNTER
        offers.append({"round": t + 1, "share_open": float(made.mean()),
                       "price": float(trace["price"][made, t].mean()) if made.any()
                       else math.nan})
    rounds = trace["round"][trace["deal"]]
    counts = np.bincount(rounds, minlength=horizon + 1) / len(trace["round"])
    return {"offers": [o for o in offers if o["share_open"] > 0],
            "deal_rate": float(trace["deal"].mean()),
            "accept_round": int(np.bincount(rounds).argmax()) if rounds.size else None,
            "accept_round_shares": {int(t): float(c) for t, c in enumerate(counts) if c > 0}}


def compare_with_pbe(key: jax.Array, p: EnvParams, policies: tuple[Policy, Policy],
                     n: int = 1000, env: BargainingEnv | None = None) -> dict[str, Any]:
    """The trained pair against the equilibrium of ``p`` (:func:`has_pbe` must hold).

    Returns ``pbe`` (the equilibrium: price path, each type's acceptance rounds, payoffs), and
    per type (``high``, ``low``): ``offers`` (round, share of episodes with an offer in it, mean
    price), ``accept_round`` (the most common round of a deal), ``accept_round_shares``, and
    ``pbe_accept_round``; then ``price_errors`` (relative error of the mean offer in each of the
    equilibrium's offer rounds on the path of the type that reaches it), ``max_price_error``,
    ``prices_within_2pct`` and ``accept_rounds_equal`` (both types)."""
    pbe = game_pbe(p)
    proposer_mover = int(p.proposer) - 1  # supplier proposes: it moves at even t (0-based)
    k_hi, k_lo = jax.random.split(key)
    out: dict[str, Any] = {"pbe": pbe.to_dict(), "episodes_per_type": n}
    for name, value, k in (("high", p.retailer_high, k_hi), ("low", p.retailer_low, k_lo)):
        out[name] = _type_summary(trace_episodes(k, p, policies, float(value), n, env),
                                  proposer_mover)
    out["high"]["pbe_accept_round"] = pbe.high_accept_round
    out["low"]["pbe_accept_round"] = pbe.low_accept_round
    errors = []
    for k, price in enumerate(pbe.price_path, start=1):
        rnd = 2 * k - 1 + proposer_mover
        # The offer of round rnd is on the path of the types still there: the low type's when
        # the high type has accepted before it, else the high type's.
        who = "high" if (pbe.high_accept_round or 10**9) >= rnd else "low"
        got = next((o["price"] for o in out[who]["offers"] if o["round"] == rnd), math.nan)
        errors.append({"round": rnd, "pbe_price": price, "price": got, "type": who,
                       "rel_error": abs(got - price) / price if price else math.nan})
    out["price_errors"] = errors
    rel = [e["rel_error"] for e in errors]
    out["max_price_error"] = max(rel) if rel else math.nan
    out["prices_within_2pct"] = bool(rel) and all(x <= PRICE_TOLERANCE for x in rel)
    out["accept_rounds_equal"] = all(out[t]["accept_round"] == out[t]["pbe_accept_round"]
                                     for t in ("high", "low"))
    return out
