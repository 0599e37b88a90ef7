"""The same single-issue price negotiation in NegMAS and in our vectorized JAX env.

NegMAS (https://github.com/yasserfarouk/negmas) is what negotiation researchers use today. This
module plays NegMAS's time-based negotiators (``BoulwareTBNegotiator``, ``LinearTBNegotiator``,
``ConcederTBNegotiator``) in NegMAS itself and their exact re-implementation
(:func:`eqx_jax.negotiators.negmas_time_based`) in :class:`eqx_jax.env.BargainingEnv`, checks that
both reach the same agreement (price and step) and compares their speed.

The NegMAS scenario (built by :func:`negmas_negotiate`):

* one integer issue ``price`` in ``0..max_price`` (currency units; NegMAS makes a
  ``ContiguousIssue``, so every offer is an integer price);
* ``SAOMechanism(n_steps=max_rounds, one_offer_per_step=True, time_limit=None)``: one step is one
  action (accept the standing offer, or counter), like one round of our env; the supplier is added
  first so it opens, as in our env;
* utilities in currency units, ``u_s(p) = p - V_s`` and ``u_r(p) = V_r - p``, with reserved value
  0: the reservation price sits at the valuation. These are *affine* (the retailer's has the bias
  ``V_r``, the supplier's ``-V_s``), so they are ``AffineUtilityFunction``s: NegMAS's
  ``LinearUtilityFunction`` forces ``bias = 0`` (``kwargs["bias"] = 0`` in its ``__init__``) and
  would silently turn ``V_r - p`` into ``-p``. Keeping currency units (rather than normalizing
  to [0, 1]) matters: NegMAS widens each aspiration band by an absolute 1e-4 utility units, which
  is 1e-4 currency units here and would be a whole price unit after normalizing by 10^4.

Valuations: our negotiators see their valuation through the normalized observation
(``V * (1/max_price)`` in float32), which can be one float32 rounding (<= ~0.001) off the env's
``V``; NegMAS is given exactly that observed valuation (as a Python float), so both negotiators
have identical preferences. The benchmark reports the largest such difference.

Units: prices and valuations in currency units, times in seconds, rates in negotiations per
second. NegMAS is only imported when a NegMAS function runs (never by ``eqx_jax``); without it
they raise ``ImportError`` naming ``pip install -e ".[negmas]"``.

CLI: ``python -m baselines.negmas_tournament [--n 2000] [--seed 0] [--quick] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from eqx_jax.checks import check_number
from eqx_jax.env import AGENTS, BargainingEnv, EnvParams, make_params
from eqx_jax.negotiators import NEGMAS_EXPONENTS, negmas_tb_action, observed_value

KINDS: tuple[str, ...] = ("boulware", "linear", "conceder")
#: Every (supplier, retailer) pair of kinds; negotiation ``i`` of the benchmark plays ``i % 9``.
PAIRS: tuple[tuple[str, str], ...] = tuple((s, r) for s in KINDS for r in KINDS)
NEGMAS_CLASS_NAMES: dict[str, str] = {"boulware": "BoulwareTBNegotiator",
                                      "linear": "LinearTBNegotiator",
                                      "conceder": "ConcederTBNegotiator"}
LARGE_BATCH = 131072


def _import_negmas():
    try:
        import negmas
    except ImportError as exc:
        raise ImportError(
            'the NegMAS baseline needs the negmas package: pip install -e ".[negmas]"'
        ) from exc
    return negmas


def _check_settings(params: EnvParams) -> int:
    max_price = float(params.max_price)
    if max_price != int(max_price):
        raise ValueError(f"NegMAS's price issue is 0..max_price in integers; max_price must be "
                         f"an integer, got {max_price!r}")
    return int(max_price)


# ----------------------------------------------------------------------------------- NegMAS
def negmas_negotiate(supplier_kind: str, retailer_kind: str, supplier_value: float,
                     retailer_value: float, max_price: int = 10000,
                     max_rounds: int = 10) -> dict[str, Any]:
    """One NegMAS negotiation; see the module docstring for the scenario.

    Returns ``{"deal": bool, "price": int | None (currency units), "step": int, "timedout": bool,
    "broken": bool}``; ``step`` is NegMAS's ``state.step`` at the end: the number of steps
    taken, i.e. ``k + 1`` for an agreement in 0-based step ``k``, which is our env's round.
    """
    negmas = _import_negmas()
    from negmas.preferences import AffineUtilityFunction
    from negmas.sao import negotiators as sao_negotiators

    issues = [negmas.make_issue((0, int(max_price)), "price")]
    mechanism = negmas.SAOMechanism(issues=issues, n_steps=int(max_rounds), time_limit=None,
                                    one_offer_per_step=True)
    u_s = AffineUtilityFunction([1.0], bias=-float(supplier_value), issues=issues,
                                reserved_value=0.0)
    u_r = AffineUtilityFunction([-1.0], bias=float(retailer_value), issues=issues,
                                reserved_value=0.0)
    mechanism.add(getattr(sao_negotiators, NEGMAS_CLASS_NAMES[supplier_kind])(name="supplier"),
                  ufun=u_s)
    mechanism.add(getattr(sao_negotiators, NEGMAS_CLASS_NAMES[retailer_kind])(name="retailer"),
                  ufun=u_r)
    state = mechanism.run()
    deal = state.agreement is not None
    return {"deal": deal, "price": int(state.agreement[0]) if deal else None,
            "step": int(state.step), "timedout": bool(state.timedout),
            "broken": bool(state.broken)}


def _negmas_batch(pairs: Sequence[tuple[str, str]], supplier_values: np.ndarray,
                  retailer_values: np.ndarray, max_price: int, max_rounds: int
                  ) -> tuple[list[dict[str, Any]], float]:
    """Play NegMAS negotiations one at a time; returns the outcomes and the wall time, s."""
    outcomes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NegMAS warns that 10^4 outcomes is "large"
        t0 = time.perf_counter()
        for (s, r), v_s, v_r in zip(pairs, supplier_values, retailer_values, strict=True):
            outcomes.append(negmas_negotiate(s, r, float(v_s), float(v_r), max_price,
                                             max_rounds))
        seconds = time.perf_counter() - t0
    return outcomes, seconds


# ------------------------------------------------------------------------------------- ours
@functools.lru_cache(maxsize=8)
def make_eqx_play(params: EnvParams, n: int) -> Callable[..., tuple[dict, tuple]]:
    """A jitted ``(supplier_values, retailer_values, supplier_exps, retailer_exps) -> (record,
    observed)`` playing ``n`` negotiations at once in :class:`BargainingEnv` (vmap over the
    negotiations, ``lax.scan`` over the ``max_rounds`` rounds).

    Inputs are (n,) float32 arrays: valuations (currency units) and NegMAS exponents per side.
    ``record``: (n,) ``deal`` bool, ``price`` f32 (currency units, 0 without a deal), ``round``
    i32 (the round the episode ended: the deal's round, or ``max_rounds`` on a timeout).
    ``observed``: the (supplier, retailer) valuations as the negotiators decode them.
    """
    env = BargainingEnv()
    horizon = int(params.max_rounds)
    kinds = tuple(NEGMAS_EXPONENTS.values())
    act = jax.vmap(lambda obs, p, e: negmas_tb_action(obs, p, e, kinds), (0, None, 0))
    observe = jax.vmap(observed_value, (0, None))
    step = jax.vmap(env.step_env, (0, 0, None))
    get_obs = jax.vmap(env.get_obs, (0, None))

    def play(supplier_values, retailer_values, supplier_exps, retailer_exps):
        # reset() sets the belief fields from the priors; the valuations are then replaced.
        _, state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(0), n), params)
        state = state.replace(supplier_value=supplier_values, retailer_value=retailer_values)
        obs = get_obs(state, params)
        observed = (observe(obs[AGENTS[0]], params), observe(obs[AGENTS[1]], params))

        def body(carry, _):
            obs, state, record, finished = carry
            actions = {AGENTS[0]: act(obs[AGENTS[0]], params, supplier_exps),
                       AGENTS[1]: act(obs[AGENTS[1]], params, retailer_exps)}
            state, _, done, info = step(state, actions, params)
            new = done & ~finished  # record each negotiation at the step it ends
            record = {k: jnp.where(new, info[k], v) for k, v in record.items()}
            return (get_obs(state, params), state, record, finished | done), None

        record = {"deal": jnp.zeros((n,), bool), "price": jnp.zeros((n,), jnp.float32),
                  "round": jnp.zeros((n,), jnp.int32)}
        init = (obs, state, record, jnp.zeros((n,), bool))
        # Unrolling the (short) scan let XLA fuse across rounds: 5-14x faster than a rolled
        # loop on 2,000-16,384 negotiations (measured interleaved in one process).
        (_, _, record, _), _ = jax.lax.scan(body, init, None, length=horizon,
                                            unroll=horizon if horizon <= 32 else 8)
        return record, observed

    return jax.jit(play)


def _eqx_inputs(pairs: Sequence[tuple[str, str]], supplier_values: np.ndarray,
                retailer_values: np.ndarray) -> tuple[jax.Array, ...]:
    exps = np.asarray([[NEGMAS_EXPONENTS[s], NEGMAS_EXPONENTS[r]] for s, r in pairs],
                      np.float32).reshape(-1, 2)
    return (jnp.asarray(supplier_values, jnp.float32), jnp.asarray(retailer_values, jnp.float32),
            jnp.asarray(exps[:, 0]), jnp.asarray(exps[:, 1]))


def eqx_negotiate(pairs: Sequence[tuple[str, str]], supplier_values: np.ndarray,
                  retailer_values: np.ndarray, params: EnvParams | None = None
                  ) -> dict[str, np.ndarray]:
    """Play ``len(pairs)`` negotiations in our env in one vectorized call; NumPy results.

    Keys: ``deal`` bool, ``price`` float64 (currency units; NaN without a deal), ``round`` int,
    ``supplier_observed`` / ``retailer_observed`` (valuations as our negotiators decode them).
    """
    params = params or make_params()
    _check_settings(params)
    inputs = _eqx_inputs(pairs, supplier_values, retailer_values)
    record, observed = make_eqx_play(params, len(pairs))(*inputs)
    deal = np.asarray(record["deal"])
    return {"deal": deal, "price": np.where(deal, np.asarray(record["price"], np.float64), np.nan),
            "round": np.asarray(record["round"]).astype(int),
            "supplier_observed": np.asarray(observed[0]),
            "retailer_observed": np.asarray(observed[1])}


def _same(negmas_outcome: dict[str, Any], deal: bool, price: float, rnd: int) -> bool:
    """Same agreement price and step, or both without agreement (and ending at the same step)."""
    if negmas_outcome["deal"] != bool(deal) or negmas_outcome["step"] != int(rnd):
        return False
    return not deal or negmas_outcome["price"] == price


# ------------------------------------------------------------------------------- comparisons
def compare_fixed(supplier_value: float, retailer_value: float, max_price: int = 10000,
                  max_rounds: int = 10) -> list[dict[str, Any]]:
    """Every (supplier, retailer) pair of kinds (3x3) on fixed valuations, NegMAS vs ours.

    Returns one row per pair: ``supplier``, ``retailer`` (kinds), ``negmas_price`` (int or None),
    ``negmas_step``, ``eqx_price`` (int or None), ``eqx_round``, ``match`` (same price and step,
    or both without agreement at the same step), and the valuations NegMAS was given
    (``supplier_observed``, ``retailer_observed``, currency units).
    """
    params = make_params(max_price=max_price, max_rounds=max_rounds)
    _check_settings(params)
    ours = eqx_negotiate(PAIRS, np.full(len(PAIRS), supplier_value, np.float32),
                         np.full(len(PAIRS), retailer_value, np.float32), params)
    theirs, _ = _negmas_batch(PAIRS, ours["supplier_observed"], ours["retailer_observed"],
                              int(max_price), int(max_rounds))
    rows = []
    for i, (s, r) in enumerate(PAIRS):
        deal, price, rnd = bool(ours["deal"][i]), float(ours["price"][i]), int(ours["round"][i])
        rows.append({"supplier": s, "retailer": r,
                     "negmas_price": theirs[i]["price"], "negmas_step": theirs[i]["step"],
                     "eqx_price": int(price) if deal else None, "eqx_round": rnd,
                     "match": _same(theirs[i], deal, price, rnd),
                     "supplier_observed": float(ours["supplier_observed"][i]),
                     "retailer_observed": float(ours["retailer_observed"][i])})
    return rows


def draw_valuations(n: int, seed: int, params: EnvParams) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (supplier, retailer) valuations from the env's uniform priors, float32 (the env's
    dtype), currency units; NumPy-seeded so that both sides get the same ones."""
    rng = np.random.default_rng(seed)
    v_s = rng.uniform(float(params.supplier_low), float(params.supplier_high), n)
    v_r = rng.uniform(float(params.retailer_low), float(params.retailer_high), n)
    return v_s.astype(np.float32), v_r.astype(np.float32)


def _time_eqx(params: EnvParams, n: int, inputs: tuple[jax.Array, ...], repeats: int,
              ) -> tuple[float, tuple]:
    """Best wall time (s) of one vectorized call over ``n`` negotiations, after a warm-up."""
    play = make_eqx_play(params, n)
    out = jax.block_until_ready(play(*inputs))  # compile + warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(play(*inputs))
        best = min(best, time.perf_counter() - t0)
    return best, out


def _play_eqx_timed(params: EnvParams, pairs: Sequence[tuple[str, str]], v_s: np.ndarray,
                    v_r: np.ndarray, repeats: int) -> tuple[float, dict[str, np.ndarray]]:
    """Time ours on the ``n = len(pairs)`` negotiations (:func:`_time_eqx`, best of
    ``repeats``) and return ``(seconds, outcome)``.

    ``outcome``: (n,) NumPy arrays ``deal`` bool, ``price`` float64 (currency units, 0 without
    a deal), ``round`` int, and ``obs_s`` / ``obs_r`` (the valuations as our negotiators decode
    them, currency units).
    """
    inputs = _eqx_inputs(pairs, v_s, v_r)
    eqx_seconds, (record, observed) = _time_eqx(params, len(pairs), inputs, repeats)
    return eqx_seconds, {"obs_s": np.asarray(observed[0]), "obs_r": np.asarray(observed[1]),
                         "deal": np.asarray(record["deal"]),
                         "price": np.asarray(record["price"], np.float64),
                         "round": np.asarray(record["round"]).astype(int)}


def _agreements(pairs: Sequence[tuple[str, str]], theirs: list[dict[str, Any]],
                ours: dict[str, np.ndarray]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """``(same, mismatches)``: (n,) bool, NegMAS and ours reached the same agreement
    (:func:`_same`); and up to 10 examples where they did not (valuations in currency units)."""
    deal, price, rnd = ours["deal"], ours["price"], ours["round"]
    same = np.array([_same(o, d, p, k) for o, d, p, k in zip(theirs, deal, price, rnd,
                                                             strict=True)])
    mismatches = [{"i": i, "pair": list(pairs[i]), "supplier_value": float(ours["obs_s"][i]),
                   "retailer_value": float(ours["obs_r"][i]), "negmas": theirs[i],
                   "eqx": {"deal": bool(deal[i]), "price": float(price[i]), "round": int(rnd[i])}}
                  for i in np.flatnonzero(~same)[:10]]
    return same, mismatches


def _per_pair(pairs: Sequence[tuple[str, str]], same: np.ndarray, ours: dict[str, np.ndarray],
              eqx_price: np.ndarray, negmas_deal: np.ndarray,
              negmas_price: np.ndarray) -> list[dict[str, Any]]:
    """One row per (supplier, retailer) pair of kinds that was played: its count, match rate,
    deal rates, mean prices (currency units, NaN-free: None without deals) and mean rounds.

    All array arguments are (n,), aligned with ``pairs``; ``eqx_price`` / ``negmas_price`` are
    NaN where there was no deal.
    """
    deal, rnd = ours["deal"], ours["round"]
    rows = []
    for s, r in PAIRS:
        idx = np.array([i for i in range(len(pairs)) if pairs[i] == (s, r)], int)
        if idx.size == 0:
            continue
        rows.append({
            "supplier": s, "retailer": r, "n": int(idx.size),
            "match_rate": float(same[idx].mean()),
            "deal_rate": float(deal[idx].mean()),
            "mean_price": _nanmean(eqx_price[idx]),
            "mean_rounds": float(rnd[idx].mean()),
            "negmas_deal_rate": float(negmas_deal[idx].mean()),
            "negmas_mean_price": _nanmean(negmas_price[idx]),
        })
    return rows


def _time_large_batch(params: EnvParams, large_n: int, seed: int,
                      negmas_rate: float) -> dict[str, Any]:
    """Time ours on ``large_n`` fresh random negotiations (valuations from ``seed + 1``, best
    of 5 calls); ``seconds`` in s, rates in negotiations per second."""
    big_pairs = [PAIRS[i % len(PAIRS)] for i in range(large_n)]
    big_inputs = _eqx_inputs(big_pairs, *draw_valuations(large_n, seed + 1, params))
    big_seconds, _ = _time_eqx(params, large_n, big_inputs, 5)
    return {"n": large_n, "seconds": big_seconds,
            "negotiations_per_s": large_n / big_seconds,
            "speedup_vs_negmas": large_n / big_seconds / negmas_rate,
            "note": "extra information: one vectorized call over a larger batch of random "
                    "negotiations (not replayed in NegMAS)"}


def _run_context(negmas: Any, params: EnvParams, max_price: int,
                 max_rounds: int) -> dict[str, Any]:
    """The result's ``settings`` (prices in currency units), ``versions`` and ``machine``
    (read when called: the load average is the one at the end of the run)."""
    return {
        "settings": {"max_price": max_price, "max_rounds": max_rounds,
                     "supplier_prior": [float(params.supplier_low), float(params.supplier_high)],
                     "retailer_prior": [float(params.retailer_low), float(params.retailer_high)],
                     "negmas_mechanism": f"SAOMechanism(n_steps={max_rounds}, "
                                         "one_offer_per_step=True, time_limit=None)"},
        "versions": {"negmas": negmas.__version__, "jax": jax.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "machine": {"platform": platform.platform(), "device": str(jax.devices()[0]),
                    "cores": _cores(), "load_average_1min": _load_average()},
    }


def run_negmas_benchmark(n: int = 2000, seed: int = 0, quick: bool = False,
                         large_batch: int | None = None) -> dict[str, Any]:
    """NegMAS vs ours on the same ``n`` random-valuation negotiations; JSON-able results.

    Negotiation ``i`` plays the kinds ``PAIRS[i % 9]`` (every pair of Boulware/Linear/Conceder
    on both sides, so the exactness check covers all of them) on valuations drawn once from the
    env's priors. NegMAS plays them one at a time (building each mechanism and its two
    negotiators and utility functions is part of its time); ours plays them in one jitted,
    vmapped call (timed after a warm-up, best of several repeats). ``large_batch`` (default
    131072, 0 to skip; skipped when ``quick``) times a larger vectorized batch, for information.

    ``quick=True`` plays n = min(n, 27) (three of each pair), for CI smoke tests.
    Keys: ``n``, ``seed``, ``quick``, ``pairs``, ``negmas_negotiations_per_s``,
    ``negmas_seconds``, ``eqx_negotiations_per_s``,
    ``eqx_seconds`` (best call), ``eqx_repeats``, ``negotiation_speedup`` (eqx / negmas),
    ``agreement_match_rate``, ``mismatches`` (up to 10 examples), ``deal_rate``,
    ``mean_price``, ``per_pair``, ``observed_valuation_max_abs_diff``, ``eqx_large_batch``,
    ``settings``, ``versions``, ``machine``.
    """
    negmas = _import_negmas()
    if quick:
        n = min(n, 27)
    check_number("n", n, 1, integer=True)
    params = make_params()
    max_price, max_rounds = _check_settings(params), int(params.max_rounds)
    pairs = [PAIRS[i % len(PAIRS)] for i in range(n)]
    v_s, v_r = draw_valuations(n, seed, params)
    eqx_seconds, ours = _play_eqx_timed(params, pairs, v_s, v_r, 5 if quick else 20)
    obs_s, obs_r, deal = ours["obs_s"], ours["obs_r"], ours["deal"]

    # One untimed NegMAS negotiation first: imports and first-call caches are not its speed.
    negmas_negotiate("linear", "linear", 5000.0, 8000.0, max_price, max_rounds)
    theirs, negmas_seconds = _negmas_batch(pairs, obs_s, obs_r, max_price, max_rounds)

    same, mismatches = _agreements(pairs, theirs, ours)
    negmas_deal = np.array([o["deal"] for o in theirs])
    negmas_price = np.array([o["price"] if o["deal"] else np.nan for o in theirs], np.float64)
    eqx_price = np.where(deal, ours["price"], np.nan)
    per_pair = _per_pair(pairs, same, ours, eqx_price, negmas_deal, negmas_price)

    eqx_rate = n / eqx_seconds
    negmas_rate = n / negmas_seconds
    large_n = 0 if quick else (LARGE_BATCH if large_batch is None else int(large_batch))
    large = _time_large_batch(params, large_n, seed, negmas_rate) if large_n > 0 else None
    return {
        "n": n, "seed": seed, "quick": quick,
        "pairs": {"kinds": [list(p) for p in PAIRS], "assignment": "negotiation i plays "
                  "pairs[i % 9] (supplier kind, retailer kind)"},
        "negmas_negotiations_per_s": negmas_rate,
        "negmas_seconds": negmas_seconds,
        "eqx_negotiations_per_s": eqx_rate,
        "eqx_seconds": eqx_seconds,
        "eqx_repeats": 5 if quick else 20,
        "negotiation_speedup": eqx_rate / negmas_rate,
        "agreement_match_rate": float(same.mean()),
        "mismatches": mismatches,
        "deal_rate": {"negmas": float(negmas_deal.mean()), "eqx": float(deal.mean())},
        "mean_price": {"negmas": _nanmean(negmas_price), "eqx": _nanmean(eqx_price)},
        "per_pair": per_pair,
        "observed_valuation_max_abs_diff": float(max(np.abs(obs_s - v_s).max(),
                                                     np.abs(obs_r - v_r).max())),
        "eqx_large_batch": large,
        **_run_context(negmas, params, max_price, max_rounds),
    }


def _nanmean(x: np.ndarray) -> float | None:
    x = np.asarray(x, np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else None


def _load_average() -> float | None:
    """The 1-minute load average at the end of the run (other processes share the cores)."""
    import os

    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def print_report(r: dict[str, Any]) -> None:
    """Human-readable summary of :func:`run_negmas_benchmark`'s result."""
    print(f"{r['n']} negotiations (seed {r['seed']}), pairs cycled over the 3x3 kinds; "
          f"NegMAS {r['versions']['negmas']}, JAX {r['versions']['jax']}, "
          f"{r['machine']['cores']} cores, 1-min load average "
          f"{r['machine']['load_average_1min'] or float('nan'):.2f}")
    print(f"  NegMAS, one at a time : {r['negmas_negotiations_per_s']:>14,.1f} negotiations/s "
          f"({r['negmas_seconds']:.2f} s)")
    print(f"  ours, one jitted call : {r['eqx_negotiations_per_s']:>14,.0f} negotiations/s "
          f"({r['eqx_seconds'] * 1e3:.3f} ms, best of {r['eqx_repeats']})")
    print(f"  speedup               : {r['negotiation_speedup']:>14,.0f}x")
    print(f"  same agreement (price and step) in {r['agreement_match_rate']:.2%} of negotiations"
          f"; deal rate NegMAS {r['deal_rate']['negmas']:.3f}, ours {r['deal_rate']['eqx']:.3f}")
    if r["eqx_large_batch"]:
        b = r["eqx_large_batch"]
        print(f"  (extra) ours, {b['n']} in one call: {b['negotiations_per_s']:,.0f} "
              f"negotiations/s, {b['speedup_vs_negmas']:,.0f}x NegMAS")
    for p in r["per_pair"]:
        print(f"    {p['supplier']:>8} vs {p['retailer']:<8} n={p['n']:<4} match "
              f"{p['match_rate']:.3f} deal {p['deal_rate']:.3f} mean price "
              f"{p['mean_price'] if p['mean_price'] is not None else float('nan'):8.1f} "
              f"mean rounds {p['mean_rounds']:.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m baselines.negmas_tournament",
        description="NegMAS's time-based negotiators in NegMAS vs in our vectorized JAX env: "
                    "same agreements? how much faster?")
    parser.add_argument("--n", type=int, default=2000, help="negotiations (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="NumPy seed of the valuations")
    parser.add_argument("--quick", action="store_true", help="n <= 27, no large batch (CI)")
    parser.add_argument("--large-batch", type=int, default=LARGE_BATCH,
                        help=f"also time ours on this many negotiations (default {LARGE_BATCH}; "
                             "0 skips)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        result = run_negmas_benchmark(args.n, args.seed, args.quick, args.large_batch)
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
