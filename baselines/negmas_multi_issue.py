"""The same multi-issue negotiations in NegMAS and in our vectorized JAX env.

NegMAS's time-based negotiators (``BoulwareTBNegotiator``, ``LinearTBNegotiator``,
``ConcederTBNegotiator``) play a multi-issue scenario (``configs/scenarios/``) in NegMAS's
``SAOMechanism``, and their exact re-implementation
(:func:`eqx_jax.negotiators.negmas_game_time_based`) plays it in
:class:`eqx_jax.games.multi_issue.MultiIssueEnv`; this module checks that both reach the same
agreement (outcome and step) and compares their speed. The single-price counterpart is
``baselines/negmas_tournament.py``.

The NegMAS scenario (built by :func:`negmas_scenario`), for each negotiation:

* the scenario's issues: a discrete issue is NegMAS's ``make_issue(n)`` (values 0..n-1, our
  value indices); a continuous issue is given as the discrete issue of its
  :data:`~eqx_jax.negotiators.NEGMAS_CONTINUOUS_LEVELS` evenly spaced values, the values
  NegMAS's inverter enumerates for a continuous issue anyway (``levels=10``), so that both
  sides play the same finite outcome space;
* each agent's ``LinearAdditiveUtilityFunction`` with a ``TableFun`` per issue holding the
  float64 value table our negotiator uses (:class:`~eqx_jax.negotiators.OutcomeGrid`), the
  agent's weights and ``reserved_value`` as drawn by our env's ``reset`` (float32 numbers,
  exactly what our negotiators observe);
* ``SAOMechanism(n_steps=max_rounds, one_offer_per_step=True, time_limit=None)``, the supplier
  added first so that it opens, as in our env.

A mismatch is explained when the two negotiations first differ by an offer of exactly the same
utility for the agent that made it (a "tie": NegMAS orders equal utilities by NumPy's unstable
argsort, ours by enumeration order); any other mismatch is "unexplained" (none is expected).

Units: utilities in [0, 1]; outcomes as value indices (a continuous issue: its grid index);
steps are our rounds; times in seconds; rates in negotiations per second. NegMAS is imported
only when a NegMAS function runs; without it they raise ``ImportError`` naming
``pip install -e ".[negmas]"``.

CLI: ``python -m baselines.negmas_multi_issue [--scenario NAME] [--n 2000] [--seed 0]
[--quick] [--large-batch N] [--json out.json]``.
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

from baselines.negmas_tournament import (
    NEGMAS_CLASS_NAMES,
    PAIRS,
    _cores,
    _import_negmas,
    _load_average,
)
from eqx_jax.checks import check_number
from eqx_jax.env import AGENTS
from eqx_jax.games.multi_issue import MultiIssueEnv, make_multi_issue_params
from eqx_jax.games.scenario import load_scenario
from eqx_jax.negotiators import (
    NEGMAS_CONTINUOUS_LEVELS,
    NEGMAS_EXPONENTS,
    OutcomeGrid,
    negmas_mi_action,
    negmas_mi_utilities,
    negmas_outcome_grid,
)

#: The scenarios the benchmark plays by default (every shipped scenario has <= 800 outcomes).
SCENARIOS: tuple[str, ...] = ("integrative-4", "distributive-2", "supply-chain-4")
LARGE_BATCH = 65536
#: Negotiations per vectorized chunk (make_eqx_play): measured on this project's 2-core CPU
#: on integrative-4, 2,048 ran 50,000 negotiations/s and 8,192 at once 6,400/s (the arrays of
#: a move outgrow the caches).
CHUNK = 2048


# ----------------------------------------------------------------------------------- NegMAS
def negmas_scenario(grid: OutcomeGrid, names: Sequence[str]) -> tuple[list, list[list]]:
    """NegMAS's issues for ``grid`` and each agent's value functions as ``TableFun``s.

    Returns ``(issues, tables)``: ``tables[a][k]`` maps issue k's NegMAS values to agent a's
    float64 values."""
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
               for k, issue in enumerate(issues)] for a in range(2)]
    return issues, tables


def negmas_negotiate(grid: OutcomeGrid, issues: list, tables: list[list],
                     kinds: tuple[str, str], weights: np.ndarray, reservation: np.ndarray,
                     max_rounds: int) -> dict[str, Any]:
    """One NegMAS negotiation on a scenario built by :func:`negmas_scenario`.

    ``weights``: (2, K) and ``reservation``: (2,), each agent's (utility units).
    Returns ``{"deal": bool, "agreement": tuple of value indices | None, "step": int (NegMAS's
    state.step: our round), "timedout": bool, "broken": bool, "offers": [(agent, value
    indices), ...] in order}``."""
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
        negotiator = getattr(sao_negotiators, NEGMAS_CLASS_NAMES[kind])(name=AGENTS[a])
        mechanism.add(negotiator, ufun=ufun)
        ids.append(negotiator.id)
    state = mechanism.run()
    offers = [(ids.index(who), _indices(grid, offer)) for _, who, offer in
              mechanism.extended_trace]
    deal = state.agreement is not None
    return {"deal": deal, "agreement": _indices(grid, state.agreement) if deal else None,
            "step": int(state.step), "timedout": bool(state.timedout),
            "broken": bool(state.broken), "offers": offers}


def _indices(grid: OutcomeGrid, outcome: Sequence[Any]) -> tuple[int, ...]:
    """A NegMAS outcome (or ours, natural units) as value indices (nearest grid value)."""
    return tuple(int(np.argmin(np.abs(grid.values[k] - float(x))))
                 for k, x in enumerate(outcome))


def _negmas_batch(grid: OutcomeGrid, names: Sequence[str], pairs: Sequence[tuple[str, str]],
                  weights: np.ndarray, reservation: np.ndarray, max_rounds: int
                  ) -> tuple[list[dict[str, Any]], float]:
    """Play NegMAS negotiations one at a time (building each mechanism, its two negotiators and
    their utility functions is part of the time); returns the outcomes and the wall time, s."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        issues, tables = negmas_scenario(grid, names)
        out = [negmas_negotiate(grid, issues, tables, p, w, r, max_rounds)
               for p, w, r in zip(pairs, weights, reservation, strict=True)]
        seconds = time.perf_counter() - t0
    return out, seconds


# ------------------------------------------------------------------------------------- ours
@functools.lru_cache(maxsize=8)
def make_eqx_play(scenario: str, n: int, trace: bool = False) -> Callable[..., dict]:
    """A jitted ``(key, supplier_exps, retailer_exps) -> record`` playing ``n`` negotiations of
    ``scenario`` at once in :class:`MultiIssueEnv` with NegMAS's negotiators (vmap over the
    negotiations, the rounds unrolled; only the mover's negotiator is evaluated, the env
    ignores the other's action; each agent's utility of every outcome is computed once per
    negotiation, :func:`~eqx_jax.negotiators.negmas_mi_utilities`). More than :data:`CHUNK`
    negotiations are played :data:`CHUNK` at a time (``lax.map``), so that the (CHUNK,
    outcomes) float64 arrays of a move stay in the CPU caches.

    ``key``: the env's reset key (the private weights and reservation values); exponents: (n,)
    float32 NegMAS exponents. ``record``: ``deal`` (n,) bool, ``agreement`` (n, K) natural
    units, ``round`` (n,) i32 (the deal's round, or max_rounds on a timeout), ``weights``
    (n, 2, K), ``reservation`` (n, 2); with ``trace``, ``moves`` (n, T) i32 action types,
    ``offers`` (n, T, K) and ``active`` (n, T) bool (the negotiation had not ended).
    """
    env = MultiIssueEnv(scenario, outcome_metrics=False)
    params = make_multi_issue_params(scenario)
    grid = negmas_outcome_grid(scenario)
    kinds = tuple(NEGMAS_EXPONENTS.values())
    utilities = [jax.vmap(lambda o, a=a: negmas_mi_utilities(env, grid, o, a)) for a in (0, 1)]
    acts = [jax.vmap(lambda o, e, u, a=a: negmas_mi_action(env, grid, o, params, e, kinds, u, a))
            for a in (0, 1)]
    get_obs = jax.vmap(env.get_obs, (0, None))
    step = jax.vmap(env.step_env, (0, 0, None))
    k_num, horizon = env.offer_size, int(params.max_rounds)

    def play_chunk(keys, supplier_exps, retailer_exps):
        size = keys.shape[0]
        obs, state = jax.vmap(env.reset, (0, None))(keys, params)
        start, exps = state, (supplier_exps, retailer_exps)
        # Each agent's utility of every outcome, once per negotiation (its weights are fixed).
        own = [utilities[a](obs[AGENTS[a]]) for a in (0, 1)]
        record = {"deal": jnp.zeros((size,), bool), "agreement": jnp.zeros((size, k_num)),
                  "round": jnp.zeros((size,), jnp.int32)}

        def move(carry, a):
            """Round ``t`` of every negotiation, ``a = t % 2`` (static) the mover."""
            obs, state, record, finished = carry
            action = acts[a](obs[AGENTS[a]], exps[a], own[a])
            state, _, done, info = step(state, {ag: action for ag in AGENTS}, params)
            new = done & ~finished
            record = {k: jnp.where(new.reshape((-1,) + (1,) * (v.ndim - 1)), info[k], v)
                      for k, v in record.items()}
            out = (action["action_type"], action["offer"], ~finished) if trace else ()
            return (get_obs(state, params), state, record, finished | done), out

        def two_rounds(carry, _):
            carry, first = move(carry, 0)
            carry, second = move(carry, 1)
            return carry, (first, second)

        # Every negotiation moves in lockstep (round t's mover is t % 2): scanning over pairs
        # of rounds keeps each mover's role static (a rolled loop; unrolled rounds ran slower).
        carry = (obs, state, record, jnp.zeros((size,), bool))
        carry, pairs = jax.lax.scan(two_rounds, carry, None, length=horizon // 2)
        if horizon % 2:
            carry, last = move(carry, 0)
        _, _, record, _ = carry
        if trace:  # (T, n) in round order
            seq = [jnp.stack([pairs[0][j], pairs[1][j]], 1).reshape(
                (-1,) + pairs[0][j].shape[1:]) for j in range(3)]
            if horizon % 2:
                seq = [jnp.concatenate([x, y[None]]) for x, y in zip(seq, last, strict=True)]
            record.update(moves=seq[0].T, offers=jnp.swapaxes(seq[1], 0, 1), active=seq[2].T)
        record = {**record, "weights": start.weights_array(),
                  "reservation": start.reservation_array()}
        return record

    def play(key, supplier_exps, retailer_exps):
        keys = jax.random.split(key, n)
        if n <= CHUNK:
            return play_chunk(keys, supplier_exps, retailer_exps)
        chunks = -(-n // CHUNK)
        pad = chunks * CHUNK - n
        split = [jnp.concatenate([x, x[:pad]]).reshape((chunks, CHUNK) + x.shape[1:])
                 for x in (keys, supplier_exps, retailer_exps)]
        out = jax.lax.map(lambda c: play_chunk(*c), split)
        return {k: v.reshape((-1,) + v.shape[2:])[:n] for k, v in out.items()}

    return jax.jit(play)


def _exponents(pairs: Sequence[tuple[str, str]]) -> tuple[jax.Array, jax.Array]:
    exps = np.asarray([[NEGMAS_EXPONENTS[s], NEGMAS_EXPONENTS[r]] for s, r in pairs],
                      np.float32).reshape(-1, 2)
    return jnp.asarray(exps[:, 0]), jnp.asarray(exps[:, 1])


def eqx_negotiate(scenario: str, pairs: Sequence[tuple[str, str]], seed: int,
                  trace: bool = True) -> dict[str, np.ndarray]:
    """Play ``len(pairs)`` negotiations of ``scenario`` in our env (reset key ``seed``) in one
    call; NumPy results (the arrays of :func:`make_eqx_play`'s record)."""
    record = make_eqx_play(scenario, len(pairs), trace)(jax.random.key(seed), *_exponents(pairs))
    return {k: np.asarray(v) for k, v in record.items()}


# ------------------------------------------------------------------------------- comparisons
def _utility(grid: OutcomeGrid, agent: int, weights: np.ndarray, index: Sequence[int]) -> float:
    """Agent's utility of an outcome (value indices) in NegMAS's summation order, float64."""
    u = 0.0
    for k, i in enumerate(index):
        u += float(weights[k]) * float(grid.tables[agent][k][i])
    return u


def _our_offers(grid: OutcomeGrid, ours: dict[str, np.ndarray], i: int) -> list:
    """Negotiation ``i``'s offers in our env as ``[(agent, value indices), ...]``."""
    out = []
    for rnd in range(ours["moves"].shape[1]):
        if ours["active"][i, rnd] and ours["moves"][i, rnd] == 1:  # a COUNTER
            out.append((rnd % 2, _indices(grid, ours["offers"][i, rnd])))
    return out


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
    for (agent, a), (_, b) in zip(mine, theirs, strict=False):
        if a != b:
            w = ours["weights"][i, agent]
            same = _utility(grid, agent, w, a) == _utility(grid, agent, w, b)
            return "tie" if same else "unexplained"
    return "unexplained"


def compare(scenario: str, pairs: Sequence[tuple[str, str]], seed: int
            ) -> tuple[list[str], list[dict[str, Any]], dict[str, np.ndarray]]:
    """Play ``pairs`` on the same draws in ours and NegMAS; ``(verdicts, negmas outcomes,
    ours)`` with one :func:`classify` verdict per negotiation."""
    verdicts, theirs, ours, _ = _compare_timed(scenario, pairs, seed)
    return verdicts, theirs, ours


def _compare_timed(scenario: str, pairs: Sequence[tuple[str, str]], seed: int):
    """:func:`compare` and the wall time of the NegMAS negotiations alone, s."""
    grid = negmas_outcome_grid(scenario)
    names = [issue.name for issue in load_scenario(scenario).issues]
    ours = eqx_negotiate(scenario, pairs, seed)
    max_rounds = int(make_multi_issue_params(scenario).max_rounds)
    theirs, seconds = _negmas_batch(grid, names, pairs, ours["weights"], ours["reservation"],
                                    max_rounds)
    return [classify(grid, t, ours, i) for i, t in enumerate(theirs)], theirs, ours, seconds


def _time_eqx(scenario: str, n: int, seed: int, repeats: int) -> float:
    """Best wall time (s) of one call over ``n`` negotiations (no trace), after a warm-up."""
    pairs = [PAIRS[i % len(PAIRS)] for i in range(n)]
    play, inputs = make_eqx_play(scenario, n), (jax.random.key(seed), *_exponents(pairs))
    jax.block_until_ready(play(*inputs))
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(play(*inputs))
        best = min(best, time.perf_counter() - t0)
    return best


def run_benchmark(scenario: str = "integrative-4", n: int = 2000, seed: int = 0,
                  quick: bool = False, large_batch: int | None = None) -> dict[str, Any]:
    """NegMAS vs ours on the same ``n`` random negotiations of ``scenario``; JSON-able.

    Negotiation ``i`` plays the kinds ``PAIRS[i % 9]``; private weights and reservation values
    are drawn by our env's reset (key ``seed``) and handed to NegMAS. NegMAS plays them one at
    a time; ours in one jitted call (best of several, after a warm-up), and again over
    ``large_batch`` negotiations (default :data:`LARGE_BATCH`; 0 skips; skipped when
    ``quick``, which also caps ``n`` at 27). ``negotiation_speedup``: ours at the large batch
    (at ``n`` without one) over NegMAS, negotiations per second.
    """
    negmas = _import_negmas()
    n = min(n, 27) if quick else n
    check_number("n", n, 1, integer=True)
    pairs = [PAIRS[i % len(PAIRS)] for i in range(n)]
    t0 = time.perf_counter()
    grid, names = negmas_outcome_grid(scenario), [i.name for i in load_scenario(scenario).issues]
    with warnings.catch_warnings():  # one untimed NegMAS negotiation: imports, first calls
        warnings.simplefilter("ignore")
        k_num = len(names)
        negmas_negotiate(grid, *negmas_scenario(grid, names), ("linear", "linear"),
                         np.full((2, k_num), 1.0 / k_num), np.full(2, 0.2), 10)
    verdicts, theirs, ours, negmas_seconds = _compare_timed(scenario, pairs, seed)
    repeats = 3 if quick else 10
    eqx_seconds = _time_eqx(scenario, n, seed, repeats)
    large_n = 0 if quick else (LARGE_BATCH if large_batch is None else int(large_batch))
    large_seconds = _time_eqx(scenario, large_n, seed + 1, 3) if large_n > 0 else None
    negmas_rate, eqx_rate = n / negmas_seconds, n / eqx_seconds
    large_rate = large_n / large_seconds if large_seconds else None
    counts = {v: verdicts.count(v) for v in ("match", "tie", "unexplained")}
    return {
        "scenario": scenario, "n": n, "seed": seed, "quick": quick,
        "outcomes": grid.size,
        "continuous_levels": NEGMAS_CONTINUOUS_LEVELS,
        "agreement_match_rate": counts["match"] / n, "counts": counts,
        "mismatches": [{"i": i, "pair": list(pairs[i]), "verdict": v,
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
    print(f"{r['scenario']}: {r['n']} negotiations ({r['outcomes']} outcomes), pairs cycled "
          f"over the 3x3 kinds; NegMAS {r['versions']['negmas']}, {r['machine']['cores']} "
          f"cores, 1-min load {r['machine']['load_average_1min'] or float('nan'):.2f}")
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
        prog="python -m baselines.negmas_multi_issue",
        description="NegMAS's time-based negotiators on a multi-issue scenario, in NegMAS vs in "
                    "our vectorized JAX env: same agreements? how much faster?")
    parser.add_argument("--scenario", default="integrative-4",
                        help="scenario name or file (default integrative-4)")
    parser.add_argument("--n", type=int, default=2000, help="negotiations (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="the env's reset key")
    parser.add_argument("--quick", action="store_true", help="n <= 27, no large batch (CI)")
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
