"""The same N-party negotiations in NegMAS and in our vectorized JAX group env.

NegMAS's time-based negotiators (``BoulwareTBNegotiator``, ``LinearTBNegotiator``,
``ConcederTBNegotiator``) play a group scenario (``configs/scenarios/``, e.g.
``supply-chain-3p``) with N negotiators in NegMAS's ``SAOMechanism(one_offer_per_step=True)``,
and their exact re-implementation (:func:`eqx_jax.negotiators.negmas_game_time_based`) plays it
in :class:`eqx_jax.games.group.GroupEnv`; this module checks that both reach the same agreement
(outcome and step) and compares their speed. It is ``baselines/negmas_multi_issue.py`` for N
parties and reuses its pieces (outcome indices, utilities in NegMAS's order, the timing rules).

The NegMAS scenario, for each negotiation: the scenario's issues (a continuous issue as the
discrete issue of its :data:`~eqx_jax.negotiators.NEGMAS_CONTINUOUS_LEVELS` grid values, the
values NegMAS's inverter enumerates anyway), each party's ``LinearAdditiveUtilityFunction``
of ``TableFun``s holding our float64 value tables, with the weights and ``reserved_value``
drawn by our env's ``reset``; ``SAOMechanism(n_steps=max_rounds, one_offer_per_step=True,
time_limit=None)``, the parties added in seat order (seat 0 opens, as in our env).

Negotiation ``i`` plays the kind combination ``combos(N)[i % 3 ** N]`` (seat j gets the j-th
kind). A mismatch is explained (a "tie") when the two negotiations first differ by an offer of
exactly the same utility for the party that made it (NegMAS orders equal utilities by NumPy's
unstable argsort, ours by enumeration order); any other mismatch is "unexplained".

Units: utilities in [0, 1]; outcomes as value indices (a continuous issue: its grid index);
steps are single actions (our ``round``); times in seconds; rates in negotiations per second.
NegMAS is imported only when a NegMAS function runs (``ImportError`` naming
``pip install -e ".[negmas]"`` without it).

CLI: ``python -m baselines.negmas_group [--scenario NAME] [--n 2000] [--seed 0]
[--quick] [--large-batch N] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
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

from baselines.negmas_multi_issue import CHUNK, _indices, _utility
from baselines.negmas_tournament import (
    KINDS,
    NEGMAS_CLASS_NAMES,
    _cores,
    _import_negmas,
    _load_average,
)
from eqx_jax.checks import check_number
from eqx_jax.env import COUNTER
from eqx_jax.games.group import GroupEnv, load_group_scenario, make_group_params
from eqx_jax.negotiators import (
    NEGMAS_CONTINUOUS_LEVELS,
    NEGMAS_EXPONENTS,
    OutcomeGrid,
    negmas_mi_action,
    negmas_mi_utilities,
    negmas_outcome_grid,
)

#: The scenarios the benchmark plays by default (3 and 4 parties, 200 outcomes each).
SCENARIOS: tuple[str, ...] = ("supply-chain-3p", "supply-chain-4p")
LARGE_BATCH = 65536
#: ``--quick`` caps the negotiations at this many (every combination of 3 parties once).
QUICK_N = 27


def combos(num_parties: int) -> tuple[tuple[str, ...], ...]:
    """Every assignment of the three kinds to ``num_parties`` seats (3 ** N tuples, seat 0's kind
    varying slowest)."""
    return tuple(itertools.product(KINDS, repeat=num_parties))


def cycled_combos(num_parties: int, n: int) -> list[tuple[str, ...]]:
    """``n`` kind tuples, negotiation ``i`` playing ``combos(num_parties)[i % 3 ** N]``."""
    every = combos(num_parties)
    return [every[i % len(every)] for i in range(n)]


# ----------------------------------------------------------------------------------- NegMAS
def negmas_group_scenario(grid: OutcomeGrid, names: Sequence[str]) -> tuple[list, list[list]]:
    """NegMAS's issues for ``grid`` and every party's value functions as ``TableFun``s.

    Returns ``(issues, tables)``: ``tables[a][k]`` maps issue k's NegMAS values to party a's
    float64 values (N parties: those of ``grid``)."""
    negmas = _import_negmas()
    from negmas.preferences.value_fun import TableFun

    issues = []
    for k, values in enumerate(grid.values):
        if grid.continuous[k]:
            issues.append(negmas.make_issue([float(x) for x in values], names[k]))
        else:
            issues.append(negmas.make_issue(int(values.size), names[k]))
    tables = [[TableFun(dict(zip(list(issue.all), (float(x) for x in grid.tables[a][k]),
                                 strict=True)))
               for k, issue in enumerate(issues)] for a in range(len(grid.tables))]
    return issues, tables


def negmas_group_negotiate(grid: OutcomeGrid, issues: list, tables: list[list],
                           kinds: Sequence[str], weights: np.ndarray, reservation: np.ndarray,
                           max_rounds: int) -> dict[str, Any]:
    """One NegMAS negotiation of ``len(kinds)`` parties on :func:`negmas_group_scenario`'s
    scenario. ``weights``: (N, K), ``reservation``: (N,) (utility units).

    Returns ``{"deal": bool, "agreement": value indices | None, "step": int (NegMAS's
    state.step: our round), "timedout": bool, "broken": bool, "offers": [(seat, value indices),
    ...] in order}``."""
    negmas = _import_negmas()
    from negmas.preferences import LinearAdditiveUtilityFunction
    from negmas.sao import negotiators as sao_negotiators

    mechanism = negmas.SAOMechanism(issues=issues, n_steps=int(max_rounds), time_limit=None,
                                    one_offer_per_step=True)
    ids = []
    for a, kind in enumerate(kinds):
        ufun = LinearAdditiveUtilityFunction(
            tables[a], weights=[float(x) for x in weights[a]], issues=issues,
            reserved_value=float(reservation[a]))
        negotiator = getattr(sao_negotiators, NEGMAS_CLASS_NAMES[kind])(name=f"p{a}")
        mechanism.add(negotiator, ufun=ufun)
        ids.append(negotiator.id)
    state = mechanism.run()
    offers = [(ids.index(who), _indices(grid, offer)) for _, who, offer in
              mechanism.extended_trace]
    deal = state.agreement is not None
    return {"deal": deal, "agreement": _indices(grid, state.agreement) if deal else None,
            "step": int(state.step), "timedout": bool(state.timedout),
            "broken": bool(state.broken), "offers": offers}


def _negmas_batch(grid: OutcomeGrid, names: Sequence[str], kinds: Sequence[tuple[str, ...]],
                  weights: np.ndarray, reservation: np.ndarray, max_rounds: int
                  ) -> tuple[list[dict[str, Any]], float]:
    """NegMAS negotiations one at a time (building each mechanism, its negotiators and their
    utility functions is part of the time); the outcomes and the wall time, s."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        issues, tables = negmas_group_scenario(grid, names)
        out = [negmas_group_negotiate(grid, issues, tables, c, w, r, max_rounds)
               for c, w, r in zip(kinds, weights, reservation, strict=True)]
        seconds = time.perf_counter() - t0
    return out, seconds


# ------------------------------------------------------------------------------------- ours
def _play_chunk(env: GroupEnv, params, grid: OutcomeGrid, trace: bool):
    """``(keys (B,), exps (B, N)) -> record`` for one chunk of :func:`make_group_play`."""
    n_par, k_num, horizon = env.num_agents, env.offer_size, int(params.max_rounds)
    kinds = tuple(NEGMAS_EXPONENTS.values())
    utilities = [jax.vmap(lambda o, a=a: negmas_mi_utilities(env, grid, o, a))
                 for a in range(n_par)]
    acts = [jax.vmap(lambda o, e, u, a=a: negmas_mi_action(env, grid, o, params, e, kinds, u, a))
            for a in range(n_par)]
    get_obs = jax.vmap(env.get_obs, (0, None))
    step = jax.vmap(env.step_env, (0, 0, None))

    def chunk(keys, exps):
        size = keys.shape[0]
        obs, start = jax.vmap(env.reset, (0, None))(keys, params)
        # Each party's utility of every outcome, once per negotiation (its weights are fixed).
        own = [utilities[a](obs[env.agents[a]]) for a in range(n_par)]
        record = {"deal": jnp.zeros((size,), bool), "agreement": jnp.zeros((size, k_num)),
                  "round": jnp.zeros((size,), jnp.int32)}

        def move(carry, a):
            """One step of every negotiation, ``a`` (static) the mover's seat."""
            obs, state, record, finished = carry
            action = acts[a](obs[env.agents[a]], exps[:, a], own[a])
            state, _, done, info = step(state, {ag: action for ag in env.agents}, params)
            new = done & ~finished
            record = {k: jnp.where(new.reshape((-1,) + (1,) * (v.ndim - 1)), info[k], v)
                      for k, v in record.items()}
            out = (action["action_type"], action["offer"], ~finished) if trace else ()
            return (get_obs(state, params), state, record, finished | done), out

        def one_turn_each(carry, _):
            outs = []
            for a in range(n_par):
                carry, out = move(carry, a)
                outs.append(out)
            return carry, outs

        # Every negotiation moves in lockstep (step s's mover is (s - 1) mod N): scanning over
        # turns of N steps keeps each mover's seat static, so only its negotiator is evaluated.
        carry = (obs, start, record, jnp.zeros((size,), bool))
        carry, turns = jax.lax.scan(one_turn_each, carry, None, length=horizon // n_par)
        tail = []
        for a in range(horizon % n_par):
            carry, out = move(carry, a)
            tail.append(out)
        record = carry[2]
        if trace:
            record.update(_trace_arrays(turns, tail))
        return {**record, "weights": start.weights_array(),
                "reservation": start.reservation_array()}

    return chunk


def _trace_arrays(turns: list, tail: list) -> dict[str, jax.Array]:
    """``moves`` (B, T), ``offers`` (B, T, K), ``active`` (B, T) in step order from the scan's
    per-seat outputs (each (T // N, B, ...)) and the remainder steps' (each (B, ...))."""
    seq = []
    for j in range(3):
        x = jnp.stack([turn[j] for turn in turns], 1)  # (T // N, N, B, ...)
        x = x.reshape((-1,) + x.shape[2:])
        if tail:
            x = jnp.concatenate([x, jnp.stack([t[j] for t in tail])])
        seq.append(x)
    return {"moves": seq[0].T, "offers": jnp.swapaxes(seq[1], 0, 1), "active": seq[2].T}


@functools.lru_cache(maxsize=8)
def make_group_play(scenario: str, n: int, trace: bool = False) -> Callable[..., dict]:
    """A jitted ``(key, exps) -> record`` playing ``n`` negotiations of ``scenario`` at once in
    :class:`GroupEnv` with NegMAS's negotiators (vmap over the negotiations; only the mover's
    negotiator is evaluated; each party's utility of every outcome computed once per
    negotiation), :data:`~baselines.negmas_multi_issue.CHUNK` at a time (``lax.map``).

    ``key``: the env's reset key; ``exps``: (n, N) float32 NegMAS exponents, one per seat.
    ``record``: ``deal`` (n,) bool, ``agreement`` (n, K) natural units, ``round`` (n,) i32 (the
    deal's step, or max_rounds on a timeout), ``weights`` (n, N, K), ``reservation`` (n, N);
    with ``trace``, ``moves`` (n, T) i32 action types, ``offers`` (n, T, K) and ``active``
    (n, T) bool (the negotiation had not ended before that step).
    """
    env = GroupEnv(scenario)
    params = make_group_params(scenario)
    chunk = _play_chunk(env, params, negmas_outcome_grid(env.scenario), trace)

    def play(key, exps):
        keys = jax.random.split(key, n)
        if n <= CHUNK:
            return chunk(keys, exps)
        chunks = -(-n // CHUNK)
        pad = chunks * CHUNK - n
        split = [jnp.concatenate([x, x[:pad]]).reshape((chunks, CHUNK) + x.shape[1:])
                 for x in (keys, exps)]
        out = jax.lax.map(lambda c: chunk(*c), split)
        return {k: v.reshape((-1,) + v.shape[2:])[:n] for k, v in out.items()}

    return jax.jit(play)


def _exponents(kinds: Sequence[tuple[str, ...]]) -> jax.Array:
    """(n, N) float32 NegMAS exponents of the kind tuples."""
    return jnp.asarray([[NEGMAS_EXPONENTS[k] for k in c] for c in kinds], jnp.float32)


def eqx_group_negotiate(scenario: str, kinds: Sequence[tuple[str, ...]], seed: int,
                        trace: bool = True) -> dict[str, np.ndarray]:
    """Play ``len(kinds)`` negotiations of ``scenario`` in our env (reset key ``seed``) in one
    call; NumPy results (the arrays of :func:`make_group_play`'s record)."""
    record = make_group_play(scenario, len(kinds), trace)(jax.random.key(seed),
                                                          _exponents(kinds))
    return {k: np.asarray(v) for k, v in record.items()}


# ------------------------------------------------------------------------------- comparisons
def _our_offers(grid: OutcomeGrid, ours: dict[str, np.ndarray], i: int) -> list:
    """Negotiation ``i``'s offers in our env as ``[(seat, value indices), ...]``."""
    n_par = ours["weights"].shape[1]
    return [(s % n_par, _indices(grid, ours["offers"][i, s]))
            for s in range(ours["moves"].shape[1])
            if ours["active"][i, s] and ours["moves"][i, s] == COUNTER]


def classify(grid: OutcomeGrid, negmas_outcome: dict[str, Any], ours: dict[str, np.ndarray],
             i: int) -> str:
    """``"match"`` (same agreement and step, or both without one at the same step), ``"tie"``
    (the first different offer has exactly the utility, for its maker, of NegMAS's) or
    ``"unexplained"``."""
    deal = bool(ours["deal"][i])
    agreement = _indices(grid, ours["agreement"][i]) if deal else None
    if (negmas_outcome["deal"] == deal and negmas_outcome["step"] == int(ours["round"][i])
            and negmas_outcome["agreement"] == agreement):
        return "match"
    mine, theirs = _our_offers(grid, ours, i), negmas_outcome["offers"]
    for (seat, a), (their_seat, b) in zip(mine, theirs, strict=False):
        if seat != their_seat:  # a different party countered: an accept/counter difference
            return "unexplained"
        if a != b:
            w = ours["weights"][i, seat]
            same = _utility(grid, seat, w, a) == _utility(grid, seat, w, b)
            return "tie" if same else "unexplained"
    return "unexplained"


def compare(scenario: str, kinds: Sequence[tuple[str, ...]], seed: int):
    """Play ``kinds`` (one tuple of N kinds per negotiation) on the same draws in ours and
    NegMAS; ``(verdicts, negmas outcomes, ours, NegMAS wall time s)``."""
    grid = negmas_outcome_grid(load_group_scenario(scenario))
    names = [issue.name for issue in load_group_scenario(scenario).issues]
    ours = eqx_group_negotiate(scenario, kinds, seed)
    max_rounds = int(make_group_params(scenario).max_rounds)
    theirs, seconds = _negmas_batch(grid, names, kinds, ours["weights"], ours["reservation"],
                                    max_rounds)
    return [classify(grid, t, ours, i) for i, t in enumerate(theirs)], theirs, ours, seconds


def _time_eqx(scenario: str, n: int, seed: int, repeats: int) -> float:
    """Best wall time (s) of one call over ``n`` negotiations (no trace), after a warm-up."""
    n_par = load_group_scenario(scenario).num_parties
    play = make_group_play(scenario, n)
    inputs = (jax.random.key(seed), _exponents(cycled_combos(n_par, n)))
    jax.block_until_ready(play(*inputs))
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(play(*inputs))
        best = min(best, time.perf_counter() - t0)
    return best


# --------------------------------------------------------------------------------- benchmark
def _warm_up_negmas(grid: OutcomeGrid, names: Sequence[str], n_par: int) -> None:
    """One untimed NegMAS negotiation (imports, first calls)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k_num = len(names)
        negmas_group_negotiate(grid, *negmas_group_scenario(grid, names), ("linear",) * n_par,
                               np.full((n_par, k_num), 1.0 / k_num), np.full(n_par, 0.2), 10)


def run_benchmark(scenario: str = "supply-chain-3p", n: int = 2000, seed: int = 0,
                  quick: bool = False, large_batch: int | None = None) -> dict[str, Any]:
    """NegMAS vs ours on the same ``n`` random negotiations of ``scenario``; JSON-able.

    Negotiation ``i`` plays :func:`cycled_combos`; weights and reservation values are drawn by
    our env's reset (key ``seed``) and handed to NegMAS, which plays one negotiation at a time;
    ours plays all in one jitted call (best of several, after a warm-up), and again over
    ``large_batch`` negotiations (default :data:`LARGE_BATCH`; 0 skips; skipped when
    ``quick``, which also caps ``n`` at :data:`QUICK_N`). ``negotiation_speedup``: ours at the
    large batch (at ``n`` without one) over NegMAS, negotiations per second. ``ValueError``
    naming ``n`` (>= 1) or ``scenario`` (unknown, or not a group scenario)."""
    check_number("n", n, 1, integer=True)
    n = min(n, QUICK_N) if quick else int(n)
    t0 = time.perf_counter()
    sc = load_group_scenario(scenario)
    negmas = _import_negmas()
    grid, names = negmas_outcome_grid(sc), [i.name for i in sc.issues]
    kinds = cycled_combos(sc.num_parties, n)
    _warm_up_negmas(grid, names, sc.num_parties)
    verdicts, theirs, ours, negmas_seconds = compare(scenario, kinds, seed)
    repeats = 3 if quick else 10
    eqx_seconds = _time_eqx(scenario, n, seed, repeats)
    large_n = 0 if quick else (LARGE_BATCH if large_batch is None else int(large_batch))
    large_seconds = _time_eqx(scenario, large_n, seed + 1, 3) if large_n > 0 else None
    negmas_rate, eqx_rate = n / negmas_seconds, n / eqx_seconds
    large_rate = large_n / large_seconds if large_seconds else None
    counts = {v: verdicts.count(v) for v in ("match", "tie", "unexplained")}
    return {
        "scenario": sc.name, "parties": list(sc.parties), "n": n, "seed": seed, "quick": quick,
        "outcomes": grid.size, "continuous_levels": NEGMAS_CONTINUOUS_LEVELS,
        "kind_combinations": len(combos(sc.num_parties)),
        "agreement_match_rate": counts["match"] / n, "counts": counts,
        "mismatches": [{"i": i, "kinds": list(kinds[i]), "verdict": v,
                        "negmas": {k: theirs[i][k] for k in ("deal", "agreement", "step")},
                        "eqx": {"deal": bool(ours["deal"][i]), "round": int(ours["round"][i]),
                                "agreement": list(map(float, ours["agreement"][i]))}}
                       for i, v in enumerate(verdicts) if v != "match"][:10],
        "deal_rate": {"negmas": float(np.mean([t["deal"] for t in theirs])),
                      "eqx": float(ours["deal"].mean())},
        "mean_round": float(ours["round"].mean()),
        "negmas_negotiations_per_s": negmas_rate, "negmas_seconds": negmas_seconds,
        "eqx_negotiations_per_s": eqx_rate, "eqx_seconds": eqx_seconds, "eqx_repeats": repeats,
        "eqx_large_batch": None if large_rate is None else {
            "n": large_n, "seconds": large_seconds, "negotiations_per_s": large_rate},
        "speedup_same_batch": eqx_rate / negmas_rate,
        "negotiation_speedup": (large_rate or eqx_rate) / negmas_rate,
        "wall_s": time.perf_counter() - t0,
        "versions": {"negmas": negmas.__version__, "jax": jax.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "machine": {"platform": platform.platform(), "device": str(jax.devices()[0]),
                    "cores": _cores(), "load_average_1min": _load_average()},
    }


def print_report(r: dict[str, Any]) -> None:
    """Human-readable summary of :func:`run_benchmark`'s result."""
    c = r["counts"]
    print(f"{r['scenario']}: {len(r['parties'])} parties, {r['n']} negotiations "
          f"({r['outcomes']} outcomes), the {r['kind_combinations']} kind combinations cycled; "
          f"NegMAS {r['versions']['negmas']}, {r['machine']['cores']} cores, 1-min load "
          f"{r['machine']['load_average_1min'] or float('nan'):.2f}")
    print(f"  same agreement (outcome and step): {r['agreement_match_rate']:.2%} "
          f"(ties {c['tie']}, unexplained {c['unexplained']}); deal rate NegMAS "
          f"{r['deal_rate']['negmas']:.3f}, ours {r['deal_rate']['eqx']:.3f}")
    print(f"  NegMAS, one at a time : {r['negmas_negotiations_per_s']:>12,.1f} negotiations/s")
    print(f"  ours, same {r['n']:>6}   : {r['eqx_negotiations_per_s']:>12,.0f} negotiations/s")
    if r["eqx_large_batch"]:
        b = r["eqx_large_batch"]
        print(f"  ours, {b['n']:>6} at once: {b['negotiations_per_s']:>12,.0f} negotiations/s")
    print(f"  speedup               : {r['negotiation_speedup']:>12,.0f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m baselines.negmas_group",
        description="NegMAS's time-based negotiators on an N-party group scenario, in NegMAS vs "
                    "in our vectorized JAX env: same agreements? how much faster?")
    parser.add_argument("--scenario", default="supply-chain-3p",
                        help="group scenario name or file (default supply-chain-3p)")
    parser.add_argument("--n", type=int, default=2000, help="negotiations (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="the env's reset key")
    parser.add_argument("--quick", action="store_true",
                        help=f"n <= {QUICK_N}, no large batch (CI)")
    parser.add_argument("--large-batch", type=int, default=LARGE_BATCH,
                        help=f"also time ours on this many (default {LARGE_BATCH}; 0 skips)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        result = run_benchmark(args.scenario, args.n, args.seed, args.quick, args.large_batch)
    except (ImportError, ValueError) as exc:
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
