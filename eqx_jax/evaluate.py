"""Trained agents against the truth: evaluation, a tournament against the classic negotiators, and
exploitability (how much a best response gains against a frozen trained policy).

Everything here is plain-Python orchestration around jitted JAX (:func:`eqx_jax.simulate.play_batch`
and the PPO trainer of :mod:`eqx_jax.ppo`) and returns plain dicts of Python floats / ints /
strings (JSON-ready; like :func:`eqx_jax.metrics.summarize`, a mean over zero deals is ``nan``).

``params`` is always *one* run's parameters dict (``seed_params(runner_state.params, i)``).
Who plays each side by default ("the incumbent"): the PPO network where the config trains that
role, else the config's fixed opponent (a negotiator name, or ``opponent_policy`` for a config
with ``opponent="policy"``). This is the same rule as :func:`eqx_jax.ppo.evaluate`, except that
with ``ppo_roles="both"`` against a negotiator, :func:`exploitability` uses the PPO network of
each role (both exist).

* :func:`evaluate_policies`: greedy and stochastic play; on complete-information games also the
  subgame-perfect equilibrium (:func:`eqx_jax.equilibrium.solve_spe`) and the distances of the
  outcome from it.
* :func:`tournament_vs_negotiators`: the greedy PPO policy against every negotiator in
  :data:`eqx_jax.negotiators.NEGOTIATORS`, in each role PPO plays, with 95 % confidence intervals.
* :func:`exploitability`: for each side, a PPO best response trained against the frozen incumbent
  of the other side.
* :func:`mean_available_surplus`: ``E[(V_r - V_s)^+]`` under the game's priors, exactly.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from eqx_jax.checks import check_choice, check_number
from eqx_jax.efficiency import mechanism_benchmarks
from eqx_jax.env import (
    AGENTS,
    OBS_INDEX,
    TWO_TYPE,
    BargainingEnv,
    EnvParams,
    game_settings,
    make_params,
    spe_kwargs,
)
from eqx_jax.equilibrium import solve_spe
from eqx_jax.games.registry import DEFAULT_GAME
from eqx_jax.games.scenario import load_scenario
from eqx_jax.metrics import nash_bargaining_solution, summarize
from eqx_jax.negotiators import NEGOTIATORS, Policy
from eqx_jax.pbe_evaluate import compare_with_pbe, has_pbe
from eqx_jax.ppo import (
    BR_INITS,
    PPOConfig,
    best_response_config,
    default_sides,
    make_policy,
    make_train_chunked,
    resolve_policy,
    warm_start,
)
from eqx_jax.references import (
    MI_SPE_EPISODES,
    MIRecordingEnv,
    bundles_mean_surplus,
    bundles_spe_distance,
    mi_episode_spes,
    mi_mean_surplus,
    mi_record_draws,
    mi_spe_distance,
    mi_spe_summary,
    pq_mean_surplus,
    pq_spe_distance,
)
from eqx_jax.simulate import (
    play_batch,
    records_to_numpy,
    role_policy,
    summarize_game,
    switch_policy,
)

#: z-value of a two-sided 95 % normal confidence interval.
Z95 = 1.96
_MODES = {"greedy": True, "stochastic": False}


# ===================================================================================== helpers
def _check_episodes(num_episodes: Any) -> int:
    return int(check_number("num_episodes", num_episodes, 1, integer=True))


def _other(role: str) -> str:
    return AGENTS[1 - AGENTS.index(role)]


def _float(x: Any) -> float:
    return float(x) if x is not None else math.nan


def mean_available_surplus(env_params: EnvParams) -> float:
    """``E[max(V_r - V_s, 0)]`` with ``V_s ~ U[supplier_low, supplier_high]`` and
    ``V_r ~ U[retailer_low, retailer_high]`` independent (a fixed value when low == high), exactly.

    (With the two-type retailer prior, ``V_r`` is ``retailer_high`` with probability
    ``retailer_high_prob``, else ``retailer_low``.) For a given ``V_s = s``,
    ``g(s) = E[(V_r - s)^+]`` is piecewise quadratic in ``s`` with breaks at ``retailer_low`` and
    ``retailer_high``; it is integrated over the supplier's prior by
    Gauss-Legendre quadrature on each piece (exact for quadratics). Currency units.
    """
    a, b = float(env_params.supplier_low), float(env_params.supplier_high)
    c, d = float(env_params.retailer_low), float(env_params.retailer_high)
    pi = float(env_params.retailer_high_prob)
    two_types = int(env_params.retailer_prior) == TWO_TYPE

    def g(s: np.ndarray) -> np.ndarray:
        if two_types:  # V_r is d with probability pi, else c
            return pi * np.maximum(d - s, 0.0) + (1 - pi) * np.maximum(c - s, 0.0)
        if d == c:
            return np.maximum(c - s, 0.0)
        lo = np.clip(s, c, d)  # integrate (r - s) dr / (d - c) over r in [max(s, c), d]
        return (d - lo) * ((d + lo) / 2 - s) / (d - c)

    if a == b:
        return float(g(np.array(a)))
    x, w = np.polynomial.legendre.leggauss(3)
    edges = sorted({a, b, *[e for e in (c, d) if a < e < b]})
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        s = (hi - lo) / 2 * x + (hi + lo) / 2
        total += (hi - lo) / 2 * float(np.dot(w, g(s)))
    return total / (b - a)


def _uniform_priors(p: EnvParams) -> tuple[float, float, float, float] | None:
    """(supplier_low, supplier_high, retailer_low, retailer_high) when both valuations are
    private (low < high): the supports of :func:`eqx_jax.efficiency.mechanism_benchmarks`."""
    b = tuple(float(x) for x in (p.supplier_low, p.supplier_high, p.retailer_low,
                                 p.retailer_high))
    uniform = int(p.retailer_prior) != TWO_TYPE
    return b if uniform and b[0] < b[1] and b[2] < b[3] else None


def _complete_information(p: EnvParams) -> bool:
    return p.supplier_low == p.supplier_high and p.retailer_low == p.retailer_high


# ========================================================================= evaluate_policies
def evaluate_policies(config: PPOConfig, params: dict, key: jax.Array,
                      num_episodes: int = 10_000, supplier_value: float | None = None,
                      retailer_value: float | None = None, *,
                      opponent_policy: Policy | None = None) -> dict[str, Any]:
    """Play the trained policies over ``num_episodes`` vectorized episodes, greedy and stochastic.

    Who plays: as :func:`eqx_jax.ppo.evaluate` (PPO on the roles the config trains, else the
    config's opponent; for ``opponent="policy"`` configs pass ``opponent_policy``).
    ``supplier_value`` / ``retailer_value`` (currency units) fix that side's valuation
    (overriding the config's prior: low = high). Both modes play the same episodes (same key:
    same valuations).

    Returns ``{"supplier": name, "retailer": name, "num_episodes", "supplier_value",
    "retailer_value" (the fixed values, or None), "complete_information": bool,
    "mean_available_surplus", "greedy": {...}, "stochastic": {...}}``; each mode holds the
    :func:`eqx_jax.metrics.summarize` output (``deal_rate``, ``mean_rounds``, ``nash_distance``,
    ``pareto_score``, ``negotiation_efficiency``, ``supplier_share``, ``surplus_captured``,
    ``supplier_reward`` / ``retailer_reward`` = mean rewards, ...).

    On a complete-information game (both valuations fixed, by the config or the arguments) also
    ``"spe"``: :func:`eqx_jax.equilibrium.solve_spe` of the game (price, round, payoffs, outcome,
    end), ``"nbs"``: the Nash bargaining solution, and in each mode the distances from the SPE:
    ``spe_price_error = |mean_price - spe_price|`` (currency units), ``spe_price_rel_error`` (that
    / spe_price), ``spe_round_error = |mean_rounds - spe_round|`` (rounds),
    ``spe_supplier_payoff_error`` / ``spe_retailer_payoff_error`` (|mean reward - SPE payoff|,
    reward units), and ``nbs_price_error``. ``nan`` where undefined (no deal, or no SPE price).

    One-sided offers with a two-type retailer (:func:`eqx_jax.pbe_evaluate.has_pbe`): also
    ``"pbe_comparison"``, the greedy pair's price path and acceptance rounds against the perfect
    Bayesian equilibrium (:func:`eqx_jax.pbe_evaluate.compare_with_pbe`).

    With both valuations private and uniform, each mode also holds ``"mechanisms"``: the gains
    from trade against the first best, the Myerson-Satterthwaite second best and the
    Chatterjee-Samuelson double auction (:func:`eqx_jax.efficiency.mechanism_benchmarks`).
    """
    n = _check_episodes(num_episodes)
    if config.game != DEFAULT_GAME:
        if supplier_value is not None or retailer_value is not None:
            raise ValueError(f"supplier_value / retailer_value are settings of the "
                             f"{DEFAULT_GAME!r} game; fix the {config.game!r} game's private "
                             "values in its settings (low = high)")
        return evaluate_game_policies(config, params, key, n, opponent_policy=opponent_policy)
    env_over = dict(config.env)
    max_price = float(config.env_params.max_price)
    fixed = {}
    for side, value in (("supplier", supplier_value), ("retailer", retailer_value)):
        if value is not None:
            v = float(check_number(f"{side}_value", value, 0.0, max_price))
            env_over[f"{side}_low"] = env_over[f"{side}_high"] = v
            fixed[side] = v
    env_params = make_params(**env_over)
    env = BargainingEnv(config.num_history)
    names = default_sides(config)
    complete = _complete_information(env_params)
    out: dict[str, Any] = {
        "supplier": names[0], "retailer": names[1], "num_episodes": n,
        "supplier_value": fixed.get("supplier"), "retailer_value": fixed.get("retailer"),
        "complete_information": complete,
        "mean_available_surplus": mean_available_surplus(env_params),
    }
    matches = [[resolve_policy(config, params, name, role, deterministic, opponent_policy)
                for name, role in zip(names, AGENTS, strict=True)]
               for deterministic in _MODES.values()]
    records = jax.jit(lambda k: [play_batch(k, env_params, sup, ret, n, env)
                                 for sup, ret in matches])(key)
    priors = _uniform_priors(env_params)
    for mode, record in zip(_MODES, records, strict=True):
        rec = records_to_numpy(record, env_params)
        out[mode] = summarize(rec, game_settings(env_params))
        if priors is not None:
            out[mode]["mechanisms"] = mechanism_benchmarks(
                rec["supplier_value"], rec["retailer_value"], rec["deal"], priors)

    if complete:
        _add_spe_distances(out, env_params)
    if has_pbe(env_params):
        greedy = matches[0]
        out["pbe_comparison"] = compare_with_pbe(jax.random.fold_in(key, 1), env_params,
                                                 (greedy[0], greedy[1]), env=env)
    return out


def _add_spe_distances(out: dict[str, Any], env_params: EnvParams) -> None:
    """``out["spe"]``, ``out["nbs"]`` and each mode's distances from them (see
    :func:`evaluate_policies`), for a complete-information price game."""
    v_s, v_r = float(env_params.supplier_low), float(env_params.retailer_low)
    game = spe_kwargs(env_params)
    spe = solve_spe(v_s, v_r, int(env_params.max_rounds), **game)
    out["spe"] = {k: spe.to_dict()[k] for k in
                  ("price", "round", "supplier_payoff", "retailer_payoff", "outcome", "end")}
    nbs = nash_bargaining_solution(
        v_s, v_r, int(env_params.max_rounds),
        **{k: v for k, v in game.items() if k not in ("walk_payoff", "timeout_payoff")},
        disagreement=game["timeout_payoff"])
    out["nbs"] = dict(nbs)
    spe_price, nbs_price = _float(spe.price), _float(nbs["price"])
    for mode in _MODES:
        m = out[mode]
        price_err = abs(m["mean_price"] - spe_price)
        m["spe_price_error"] = price_err
        m["spe_price_rel_error"] = price_err / spe_price if spe_price else math.nan
        m["spe_round_error"] = abs(m["mean_rounds"] - spe.round)
        m["spe_supplier_payoff_error"] = abs(m["supplier_reward"] - spe.supplier_payoff)
        m["spe_retailer_payoff_error"] = abs(m["retailer_reward"] - spe.retailer_payoff)
        m["nbs_price_error"] = abs(m["mean_price"] - nbs_price)


def _game_reference(config: PPOConfig) -> tuple[bool, float]:
    """(complete information?, mean available surplus) of a game beyond one price."""
    p = config.env_params
    if config.game == "price-quantity":
        return (p.cost_low == p.cost_high and p.demand_low == p.demand_high,
                pq_mean_surplus(p))
    if config.game == "multi-issue":
        scenario = config.scenario or "integrative-4"
        fixed = bool(np.all(p.weight_low == p.weight_high)
                     and np.all(p.reservation_low == p.reservation_high))
        return fixed, mi_mean_surplus(scenario, float(p.utility_scale))
    if config.game == "bundles":
        return (bool((config.env_options or {}).get("observe_other_values", False)),
                bundles_mean_surplus(p))
    return False, math.nan


def evaluate_game_policies(config: PPOConfig, params: dict, key: jax.Array, n: int, *,
                           opponent_policy: Policy | None = None) -> dict[str, Any]:
    """:func:`evaluate_policies` for the games beyond one price: the trained pair over ``n``
    episodes, greedy and stochastic (same episodes), each mode's
    :func:`eqx_jax.simulate.summarize_game` plus, in the price-quantity game, the distances
    from the SPE of each episode's complete-information game
    (:func:`eqx_jax.references.pq_spe_distance`), in the multi-issue game those of
    :func:`_mi_spe_distances`, and in the bundles game the comparison of each episode with its
    instance's SPE, each instance solved once (:func:`eqx_jax.references.
    bundles_spe_distance`: ``spe_agreement_share`` same split and turn, ``spe_returns_share``
    same returns, ``spe_turn_match``, the SPE's returns); ``complete_information`` is the
    bundles env's ``observe_other_values`` option."""
    env_params, env = config.env_params, config.make_env()
    if config.game == "multi-issue":
        env = MIRecordingEnv(env)  # records each episode's drawn weights
    names = default_sides(config)
    complete, surplus = _game_reference(config)
    out: dict[str, Any] = {"game": config.game, "supplier": names[0], "retailer": names[1],
                           "num_episodes": n, "complete_information": complete,
                           "mean_available_surplus": surplus}
    matches = [[resolve_policy(config, params, name, role, deterministic, opponent_policy)
                for name, role in zip(names, AGENTS, strict=True)]
               for deterministic in _MODES.values()]
    records = jax.jit(lambda k: [play_batch(k, env_params, sup, ret, n, env)
                                 for sup, ret in matches])(key)
    for mode, record in zip(_MODES, records, strict=True):
        out[mode] = summarize_game(record, env)
        if config.game == "price-quantity":
            out[mode].update(pq_spe_distance({k: np.asarray(v) for k, v in record.items()},
                                             env_params))
        if config.game == "bundles":
            out[mode].update(bundles_spe_distance(
                {k: np.asarray(v) for k, v in record.items()}, env_params))
    if config.game == "multi-issue":
        _mi_spe_distances(out, config, dict(zip(_MODES, records, strict=True)), env)
    return out


def _mi_spe_distances(out: dict[str, Any], config: PPOConfig, records: dict[str, dict],
                      env: MIRecordingEnv) -> None:
    """The multi-issue game's distances from the SPE (:func:`eqx_jax.references.
    mi_spe_distance`), added to each mode of ``out``.

    Complete information: ``out["spe"]`` (the SPE: outcome, round, agreement by issue,
    utilities, payoffs) and in each mode ``spe_*`` over all episodes (``spe_supplier_utility_
    rel_error``, ``spe_utility_within_2pct``, ``spe_round_error``, ...). Private weights: in
    each mode ``full_info_spe_*``, the same distances from the SPE of the complete-information
    game of each episode's drawn weights and reservations (a benchmark agents that do not know
    them cannot be expected to reach), over the first :data:`MI_SPE_EPISODES` episodes."""
    scenario = config.scenario or "integrative-4"
    first = {k: np.asarray(v) for k, v in records["greedy"].items()}
    w, r = mi_record_draws(first, env.offer_size)
    if out["complete_information"]:
        out["spe"] = mi_spe_summary(scenario, config.env_params)
        sc = load_scenario(scenario)  # its exact values (the record's are float32)
        spe = mi_episode_spes(sc, config.env_params, sc.weight_low[None],
                              sc.reservation_low[None])
        spes = {k: np.repeat(v, len(w)) for k, v in spe.items()}
        prefix = "spe_"
    else:
        s = min(MI_SPE_EPISODES, len(w))
        spes = mi_episode_spes(scenario, config.env_params, w[:s], r[:s])
        prefix = "full_info_spe_"
    for mode, record in records.items():
        out[mode].update(mi_spe_distance({k: np.asarray(v) for k, v in record.items()}, spes,
                                         prefix))


# ================================================================ tournament_vs_negotiators
def mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % normal-approximation confidence interval ``mean ± 1.96 std / sqrt(n)``.

    ``x``: a non-empty array of samples, any shape (flattened), in any unit; returns
    ``(mean, ci_low, ci_high)`` in that unit as Python floats. The std is the sample std
    (``ddof=1``), or 0 for a single sample.
    """
    x = np.asarray(x, np.float64)
    mean = float(x.mean())
    half = Z95 * float(x.std(ddof=1 if x.size > 1 else 0)) / math.sqrt(x.size)
    return mean, mean - half, mean + half



def tournament_vs_negotiators(config: PPOConfig, params: dict, key: jax.Array,
                              num_episodes: int = 2000) -> list[dict[str, Any]]:
    """The greedy PPO policy against every negotiator of :data:`NEGOTIATORS`, in both roles.

    Every (PPO role, negotiator) pairing plays ``num_episodes`` episodes; all pairings run in one
    jitted call (``vmap`` over the pairings; per side, ``lax.switch`` selects PPO or the
    negotiator, as :func:`eqx_jax.simulate.tournament` does). Only the roles PPO plays in the
    config (both for self-play). Rows, PPO supplier first, negotiators in the order of
    NEGOTIATORS: ``ppo_role``, ``supplier`` / ``retailer`` ("ppo" or the negotiator's name),
    ``episodes``, ``supplier_reward`` / ``retailer_reward`` (mean payoff, reward units) with
    ``..._ci_low`` / ``..._ci_high`` (95 % normal approximation, mean ± 1.96 std / sqrt(n)),
    ``deal_rate``, ``mean_price`` (over deals; nan without any), ``mean_rounds``.
    """
    n = _check_episodes(num_episodes)
    if config.game != DEFAULT_GAME:
        raise ValueError(f"the classic negotiators play the {DEFAULT_GAME!r} game; this run "
                         f"plays {config.game!r} (drop --tournament)")
    env_params = config.env_params
    env = BargainingEnv(config.num_history)
    names = list(NEGOTIATORS)
    roles = list(config.trained_roles)
    # Branch 0 of a side is PPO (if it plays that side), branch 1 + i negotiator i.
    branches = {}
    for role in AGENTS:
        ppo = ([make_policy(params[config.network_for(role)], config, deterministic=True)]
               if role in roles else [])
        branches[role] = ppo + [NEGOTIATORS[name] for name in names]
    pairs = [(role, i) for role in roles for i in range(len(names))]
    index = np.array([[0 if role == AGENTS[0] else 1 + i,
                       0 if role == AGENTS[1] else 1 + i] for role, i in pairs], np.int32)
    if AGENTS[0] not in roles:
        index[:, 0] -= 1  # no PPO branch on that side
    if AGENTS[1] not in roles:
        index[:, 1] -= 1

    def one(k, idx):
        return play_batch(k, env_params, switch_policy(branches[AGENTS[0]], idx[0]),
                          switch_policy(branches[AGENTS[1]], idx[1]), n, env)

    records = jax.jit(jax.vmap(one))(jax.random.split(key, len(pairs)), jnp.asarray(index))
    rows = []
    for j, (role, i) in enumerate(pairs):
        rec = records_to_numpy({k: v[j] for k, v in records.items()}, env_params)
        summary = summarize(rec)
        row: dict[str, Any] = {
            "ppo_role": role,
            "supplier": "ppo" if role == AGENTS[0] else names[i],
            "retailer": names[i] if role == AGENTS[0] else "ppo",
            "episodes": n,
        }
        for side in AGENTS:
            mean, lo, hi = mean_ci(rec[f"{side}_reward"])
            row.update({f"{side}_reward": mean, f"{side}_reward_ci_low": lo,
                        f"{side}_reward_ci_high": hi})
        row.update(deal_rate=summary["deal_rate"], mean_price=summary["mean_price"],
                   mean_rounds=summary["mean_rounds"])
        rows.append(row)
    return rows


# ============================================================================ exploitability
def _play_best_responses(br_cfg: PPOConfig, all_br_params: dict, frozen: dict[str, Policy],
                         env_params: EnvParams, env: BargainingEnv, n: int,
                         key: jax.Array) -> tuple[tuple[dict, dict], dict]:
    """Evaluate every seed's best responses and the trained pair on the same ``n`` episodes.

    ``all_br_params``: the best-response run's parameters, with a leading (num_seeds,) axis;
    ``frozen``: {role: frozen incumbent policy}. One jitted call, ``vmap`` over the seeds, all
    with the same ``key`` (same valuations). Returns ``((BR supplier vs frozen retailer, frozen
    supplier vs BR retailer), trained)``: episode records, the first two with a leading
    (num_seeds,) axis, each field (num_seeds, n); the trained record's fields (n,).
    """

    def evaluate_all(br_params, k):
        """(BR supplier vs frozen retailer, frozen supplier vs BR retailer), one seed."""
        br = {r: make_policy(br_params[r], br_cfg, deterministic=True) for r in AGENTS}
        return (play_batch(k, env_params, br[AGENTS[0]], frozen[AGENTS[1]], n, env),
                play_batch(k, env_params, frozen[AGENTS[0]], br[AGENTS[1]], n, env))

    def trained_match(k):
        return play_batch(k, env_params, frozen[AGENTS[0]], frozen[AGENTS[1]], n, env)

    @jax.jit
    def run_eval(all_br_params, k):
        return jax.vmap(evaluate_all, (0, None))(all_br_params, k), trained_match(k)

    return run_eval(all_br_params, key)


def _summary(config: PPOConfig, env, record: dict, env_params) -> dict[str, Any]:
    """The summary of one match's record in ``config``'s game (the price game's
    :func:`eqx_jax.metrics.summarize`, else :func:`eqx_jax.simulate.summarize_game`)."""
    if config.game == DEFAULT_GAME:
        return summarize(records_to_numpy(record, env_params), game_settings(env_params))
    return summarize_game(record, env)


def _side_exploitability(side: str, br_record: dict, trained: dict[str, Any], metrics: dict,
                         num_seeds: int, names: dict[str, str], surplus: float,
                         summary) -> dict[str, Any]:
    """One side's entry of :func:`exploitability`'s result.

    ``br_record``: that side's best-response episode records, fields (num_seeds, n);
    ``trained``: the :func:`eqx_jax.metrics.summarize` of the trained pair; ``metrics``: the
    best-response run's training metrics (``return_<side>``: (num_seeds, num_updates));
    ``surplus``: :func:`mean_available_surplus`, currency units. The seed whose best response
    evaluates best is kept; rewards and gains in reward units, ``gain_share`` per currency unit
    of surplus (nan if it is 0).
    """
    br = [summary({k: v[i] for k, v in br_record.items()}) for i in range(num_seeds)]
    rewards = [r[f"{side}_reward"] for r in br]
    best = int(np.argmax(rewards))
    curve = np.asarray(metrics[f"return_{side}"][best])
    gain = br[best][f"{side}_reward"] - trained[f"{side}_reward"]
    return {
        "trained": names[side],
        "frozen_opponent": names[_other(side)],
        "best_response_reward": br[best][f"{side}_reward"],
        "trained_reward": trained[f"{side}_reward"],
        "gain": gain,
        "gain_share": gain / surplus if surplus > 0 else math.nan,
        "best_response_deal_rate": br[best]["deal_rate"],
        "trained_deal_rate": trained["deal_rate"],
        "best_response_mean_price": br[best].get("mean_price", math.nan),
        "trained_mean_price": trained.get("mean_price", math.nan),
        "best_response_seed_rewards": [float(r) for r in rewards],
        "best_response_train_return": float(curve[-max(1, curve.size // 10):].mean()),
    }


def exploitability(config: PPOConfig, params: dict, key: jax.Array,
                   total_timesteps: int | None = None, *, num_episodes: int = 10_000,
                   num_seeds: int = 1, deterministic: bool = True,
                   opponent_policy: Policy | None = None,
                   br_init: str = "incumbent") -> dict[str, Any]:
    """How much a best response gains against each frozen side of the trained pair.

    For each side X (supplier, retailer), with Y the other side:

    1. freeze the incumbent of Y (its trained PPO network, greedy if ``deterministic`` else
       sampling, or the config's fixed opponent where PPO does not play Y); it is a constant of
       the compiled training program, never updated;
    2. train a PPO network for X against it with the same PPO and the config's knobs
       (``total_timesteps`` env steps, default ``config.total_timesteps``), starting from the
       incumbent X's own weights (``br_init="incumbent"``, the default: the search starts at
       the trained payoff, so even a short budget finds the directions in which X gains; where
       PPO does not play X, or with ``br_init="fresh"``, from a fresh network). Both sides' best
       responses train in one run (:func:`best_response_config`: one compilation);
       ``num_seeds`` independent runs train at once and, per side, the seed whose best
       response evaluates best is kept (a tighter lower bound);
    3. evaluate the best response greedily against the frozen Y over ``num_episodes`` episodes;
       the trained payoff is the incumbent X against the same frozen Y (both incumbents are the
       frozen policies, so this is the self-play evaluation of the trained pair), on the *same*
       episodes (same key: same valuations);
    4. ``gain = best_response_reward - trained_reward`` (reward units) and ``gain_share = gain /
       mean_available_surplus`` (:func:`mean_available_surplus`: ``E[(V_r - V_s)^+]`` under the
       priors, or the fixed surplus; nan if it is 0). Note the units: reward units over currency
       units. Rewards are discounted price gains (seed model: ``D(t) <= 1`` plus a small bonus),
       so the share is at most about ``D`` of the round of the deal (0.64 in round 2 of T = 10).

    Returns ``{"total_timesteps", "num_episodes", "num_seeds", "deterministic",
    "mean_available_surplus", "supplier": {...}, "retailer": {...}, "max_gain",
    "max_gain_share"}``; each side's dict: ``trained`` / ``frozen_opponent`` (who plays: "ppo" or
    the opponent's name), ``best_response_reward``, ``trained_reward``, ``gain``, ``gain_share``,
    ``best_response_deal_rate`` / ``trained_deal_rate``, ``best_response_mean_price`` /
    ``trained_mean_price``, ``best_response_seed_rewards`` (evaluated reward of each seed's best
    response), ``best_response_train_return`` (training return of the kept seed, mean over the
    last tenth of its updates).

    Caveat: a PPO best response is only *a* response found by a local, sample-based optimiser
    with a finite budget, so ``gain`` is a lower bound on the true exploitability (the best
    response's payoff minus the trained policy's); it can even come out negative (the best
    response undertrained). A large gain is conclusive, a small one is not. And a gain of ~0 on
    both sides says the pair is (close to) a Nash equilibrium, not that it is subgame perfect:
    a frozen policy may hold an off-path threat it would not carry out (compare the outcome with
    the SPE of :func:`evaluate_policies`).
    """
    n = _check_episodes(num_episodes)
    env_params = config.env_params
    env = config.make_env()
    surplus = (mean_available_surplus(env_params) if config.game == DEFAULT_GAME
               else _game_reference(config)[1])
    names = {role: config.player(role) for role in AGENTS}
    frozen = {role: resolve_policy(config, params, names[role], role, deterministic,
                                   opponent_policy)
              for role in AGENTS}
    check_choice("br_init", br_init, BR_INITS)  # before the (slow) best-response run
    br_cfg = best_response_config(config, total_timesteps, num_seeds)
    k_train, k_eval = jax.random.split(key)
    init, train_chunk = make_train_chunked(br_cfg, opponent_policy=role_policy(
        [frozen[AGENTS[0]], frozen[AGENTS[1]]], OBS_INDEX["role"]))
    runner = warm_start(init(k_train), config, params, br_init)
    runner, metrics = train_chunk(runner, br_cfg.num_updates)
    br_records, trained_record = _play_best_responses(br_cfg, runner.params, frozen,
                                                      env_params, env, n, k_eval)
    summary = functools.partial(_summary, config, env, env_params=env_params)
    trained = summary(trained_record)
    out: dict[str, Any] = {"total_timesteps": br_cfg.total_timesteps // 2, "num_episodes": n,
                           "num_seeds": num_seeds, "deterministic": bool(deterministic),
                           "br_init": br_init,
                           "mean_available_surplus": surplus}
    for j, side in enumerate(AGENTS):
        out[side] = _side_exploitability(side, br_records[j], trained, metrics, num_seeds,
                                         names, surplus, summary)
    out["max_gain"] = max(out[s]["gain"] for s in AGENTS)
    out["max_gain_share"] = out["max_gain"] / surplus if surplus > 0 else math.nan
    return out
