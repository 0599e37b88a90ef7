"""``eqx train``, ``eqx evaluate``, ``eqx export`` and ``eqx import``: PPO runs, their checks
against game theory, and portable policy files."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import jax

from eqx_jax.cli.common import CliError, fmt, option_error, positive_int, print_json
from eqx_jax.games.registry import DEFAULT_GAME, GAMES
from eqx_jax.negotiators import NEGOTIATORS

#: PPOConfig fields as the command line spells them.
TRAIN_OPTIONS = {"total_timesteps": "total_timesteps (--total-steps)",
                 "num_envs": "num_envs (--num-envs)"}


def _init_distributed() -> None:
    """``jax.distributed.initialize`` for ``--distributed``, before JAX starts its backend.

    Explicit settings come from JAX_COORDINATOR_ADDRESS (host:port of process 0),
    JAX_NUM_PROCESSES and JAX_PROCESS_ID; without them JAX detects the cluster itself (Slurm,
    Open MPI, Kubernetes/JobSet, TPU pods).
    """
    kwargs: dict = {}
    num, pid = os.environ.get("JAX_NUM_PROCESSES"), os.environ.get("JAX_PROCESS_ID")
    if num is not None or pid is not None:
        if num is None or pid is None or not os.environ.get("JAX_COORDINATOR_ADDRESS"):
            raise CliError("--distributed: set all three of JAX_COORDINATOR_ADDRESS (host:port "
                           "of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID, or none of "
                           "them on a cluster JAX detects (Slurm, Open MPI, Kubernetes)")
        try:
            kwargs["num_processes"], kwargs["process_id"] = int(num), int(pid)
        except ValueError:
            raise CliError(f"JAX_NUM_PROCESSES ({num!r}) and JAX_PROCESS_ID ({pid!r}) must be "
                           "integers") from None
        if kwargs["num_processes"] < 1 or not 0 <= kwargs["process_id"] < kwargs["num_processes"]:
            raise CliError(f"JAX_PROCESS_ID must be in [0, JAX_NUM_PROCESSES - 1] and "
                           f"JAX_NUM_PROCESSES >= 1, got {pid} of {num}")
        kwargs["coordinator_address"] = os.environ["JAX_COORDINATOR_ADDRESS"]
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as e:
        raise CliError(f"--distributed: jax.distributed.initialize failed: {e}") from None


def cmd_train(a: argparse.Namespace) -> None:
    """``eqx train``: a config file and overrides -> a trained run directory."""
    if a.distributed:
        _init_distributed()
    # Imported here, after jax.distributed.initialize: it must run before JAX starts a backend.
    from eqx_jax.ppo import PPOConfig
    from eqx_jax.train import RunError, load_config_file, train_run

    try:
        if a.resume:
            overrides = [f for f in ("config", "game", "scenario", "total_steps", "seed",
                                     "opponent",
                                     "num_envs", "rounds", "supplier_value", "retailer_value")
                         if getattr(a, f) is not None]
            if overrides:
                raise CliError("--resume continues the run's saved config; drop "
                               + ", ".join("--" + f.replace("_", "-") for f in overrides))
            config = None
        else:
            d = load_config_file(a.config) if a.config else {}
            if a.game is not None:
                d["game"] = a.game
            if a.scenario is not None:
                d["scenario"] = a.scenario
            if d.get("game", DEFAULT_GAME) != DEFAULT_GAME and (
                    a.supplier_value is not None or a.retailer_value is not None):
                raise CliError(f"--supplier-value / --retailer-value are settings of the "
                               f"{DEFAULT_GAME!r} game; set the {d['game']!r} game's private "
                               "values under env: in --config (low = high fixes a value)")
            if a.total_steps is not None:
                d["total_timesteps"] = a.total_steps
            if a.seed is not None:
                d["seed"] = a.seed
            if a.opponent is not None:
                d["opponent"] = a.opponent
            if a.num_envs is not None:
                d["num_envs"] = a.num_envs
            env = dict(d.get("env") or {})
            if a.rounds is not None:
                env["max_rounds"] = a.rounds
            for side in ("supplier", "retailer"):
                v = getattr(a, f"{side}_value")
                if v is not None:
                    env[f"{side}_low"] = env[f"{side}_high"] = v
            d["env"] = env
            try:
                config = PPOConfig.from_dict(d)
            except (ValueError, TypeError) as e:
                raise option_error(e, TRAIN_OPTIONS) from None
        if a.devices is not None:
            positive_int("--devices", a.devices, 1 << 20)
        summary = train_run(config, a.out, resume=a.resume, progress=not a.json,
                            devices=a.devices)
    except RunError as e:
        raise CliError(str(e)) from None
    if a.json:
        print_json(summary)
        return
    last = summary["last_update"]
    sps = summary["env_steps_per_s"]
    print(f"Trained {summary['env_steps']:,} env steps in {summary['wall_time_s']:.1f} s"
          + (f" ({sps:,.0f} env steps/s after compilation)" if sps else "")
          + f" -> {summary['run_dir']}/")
    if last:
        print(f"  last update: deal rate {last.get('deal_rate', float('nan')):.3f}, mean rounds "
              f"{last.get('mean_rounds', float('nan')):.2f}, mean price "
              f"{last.get('mean_price', float('nan')):,.0f}, returns supplier "
              f"{last.get('return_supplier', float('nan')):,.1f} / retailer "
              f"{last.get('return_retailer', float('nan')):,.1f}")
    if not summary["finished"]:
        print(f"  stopped after {summary['updates']} of {summary['total_updates']} updates; "
              f"continue with: eqx train --resume --out {summary['run_dir']}")


GROUP_GAME = "group"
#: ``eqx evaluate``'s default best-response budget, env steps per side (seat): short enough
#: for ``make run`` (README, Private information: what longer budgets find).
SHORT_BR_STEPS = 1_000_000


def cmd_evaluate(a: argparse.Namespace) -> None:
    """``eqx evaluate``: a run against the SPE, the negotiators and best responses."""
    from eqx_jax import evaluate as ev
    from eqx_jax.train import RunError, load_policy

    positive_int("--episodes", a.episodes, 10_000_000)
    try:
        config, params = load_policy(a.run)
    except RunError as e:
        raise CliError(str(e)) from None
    one_update = config.num_envs * config.num_steps
    if a.br_steps is None:
        a.br_steps = max(SHORT_BR_STEPS, one_update)
    else:
        positive_int("--br-steps", a.br_steps, 10**10)
        if a.br_steps < one_update:  # each role's best response trains at least one update
            raise CliError(f"--br-steps must be at least {one_update} (one update of the run's "
                           f"{config.num_envs} envs x {config.num_steps} steps), got "
                           f"{a.br_steps}")
    key = jax.random.key(a.seed)
    k_eval, k_tour, k_br = jax.random.split(key, 3)
    if config.game == GROUP_GAME:
        _evaluate_group(a, config, params, k_eval, k_br)
        return
    try:
        result: dict[str, Any] = {"run": a.run, "evaluation": ev.evaluate_policies(
            config, params, k_eval, a.episodes, a.supplier_value, a.retailer_value)}
        if a.tournament:
            result["tournament"] = ev.tournament_vs_negotiators(config, params, k_tour,
                                                                a.tournament_episodes)
        if a.exploitability:
            result["exploitability"] = ev.exploitability(config, params, k_br, a.br_steps,
                                                         num_episodes=a.episodes,
                                                         br_init=a.br_init)
    except ValueError as e:
        raise CliError(str(e)) from None
    if a.json:
        print_json(result)
        return
    _print_evaluation(result)


def _evaluate_group(a: argparse.Namespace, config, params: dict, key: jax.Array,
                    k_br: jax.Array) -> None:
    """``eqx evaluate`` of a group-game run: greedy and stochastic self-play of the trained
    seats, the N-party metrics and, on a complete-information scenario, the SPE distances
    (:func:`eqx_jax.group_evaluate.evaluate_group_policies`); ``--exploitability``: a PPO best
    response per seat (:func:`eqx_jax.group_evaluate.group_exploitability`)."""
    from eqx_jax.group_evaluate import evaluate_group_policies, group_exploitability

    if a.tournament:
        raise CliError("--tournament is not available for the group game (the classic "
                       "negotiators play it: eqx simulate --game group --negotiators ...)")
    try:
        result: dict[str, Any] = {"run": a.run, "evaluation": evaluate_group_policies(
            config, params, key, a.episodes)}
        if a.exploitability:
            result["exploitability"] = group_exploitability(
                config, params, k_br, a.br_steps, num_episodes=a.episodes, br_init=a.br_init)
    except ValueError as err:
        raise CliError(str(err)) from None
    if a.json:
        print_json(result)
        return
    _print_group_evaluation(result)


def _print_group_evaluation(result: dict) -> None:
    """The text form of ``eqx evaluate`` for a group-game run."""
    e = result["evaluation"]
    print(f"Evaluation of {result['run']} (group, {e['scenario']}: {', '.join(e['parties'])}), "
          f"{e['episodes']:,} episodes")
    print(f"  {'metric':28s} {'greedy':>30s} {'stochastic':>30s}")
    for k, v in e["greedy"].items():
        if k == "spe":
            continue
        w = e["stochastic"].get(k)
        show = (lambda x: " / ".join(fmt(y) for y in x) if isinstance(x, list)  # noqa: E731
                else fmt(x))
        print(f"  {k:28s} {show(v):>30s} {show(w) if w is not None else '':>30s}")
    if "spe" in e["greedy"]:
        s = e["greedy"]["spe"]
        print(f"  subgame-perfect equilibrium: {s['outcome']} at step {s['step']}, utilities "
              + " / ".join(fmt(x) for x in (s["utilities"] or [])))
    if "exploitability" in result:
        x = result["exploitability"]
        print(f"\nExploitability (PPO best response per seat, {x['total_timesteps']:,} steps; "
              "a lower bound):")
        for party, s in x["seats"].items():
            print(f"  best-response {party}: gains {s['gain']:,.2f} reward units over the "
                  f"trained {party} ({fmt(s['gain_share'])} of the mean surplus "
                  f"{x['mean_available_surplus']:,.1f})")


def _print_game_evaluation(result: dict) -> None:
    """The text form of ``eqx evaluate`` for a game beyond one price: every metric, both
    modes."""
    e = result["evaluation"]
    print(f"Evaluation of {result['run']} ({e['game']}): {e['supplier']} (supplier) vs "
          f"{e['retailer']} (retailer), {e['num_episodes']:,} episodes")
    print(f"  {'metric':28s} {'greedy':>12s} {'stochastic':>12s}")
    for k in e["greedy"]:
        print(f"  {k:28s} {fmt(e['greedy'][k]):>12s} {fmt(e['stochastic'].get(k)):>12s}")
    if "spe" in e and isinstance(e["spe"], dict):
        shown = {k: v for k, v in e["spe"].items() if isinstance(v, int | float | str)}
        print("  subgame-perfect equilibrium: "
              + ", ".join(f"{k} {fmt(v) if not isinstance(v, str) else v}"
                          for k, v in shown.items()))
    print("  (spe_*: against the subgame-perfect equilibrium of each episode's "
          "complete-information game; full_info_spe_* / with private values: the "
          "full-information benchmark of the drawn values)")


def _print_evaluation(result: dict) -> None:
    """The text form of ``eqx evaluate``'s result."""
    e = result["evaluation"]
    if "game" in e:
        _print_game_evaluation(result)
        _print_exploitability(result)
        return
    print(f"Evaluation of {result['run']}: {e['supplier']} (supplier) vs {e['retailer']} "
          f"(retailer), {e['num_episodes']:,} episodes")
    keys = ["deal_rate", "mean_rounds", "mean_price", "welfare_efficiency",
            "supplier_reward", "supplier_spe_reward", "supplier_price_of_private_information",
            "retailer_reward", "retailer_spe_reward", "retailer_price_of_private_information"]
    founding = ["nash_distance", "pareto_score", "negotiation_efficiency", "supplier_share",
                "surplus_captured"]
    if "spe" in e:
        keys += ["spe_price_error", "spe_price_rel_error", "spe_round_error",
                 "spe_supplier_payoff_error", "spe_retailer_payoff_error"]
    _print_rows(e, f"{'metric':38s} {'greedy':>12s} {'stochastic':>12s}", keys)
    print("  (welfare_efficiency: both rewards' sum over the largest sum the episode allowed, "
          "a deal in round 2; *_spe_reward: the complete-information equilibrium of the drawn "
          "valuations; price_of_private_information: that minus the reward)")
    _print_rows(e, "founding design's definitions (they ignore when the deal closes):", founding)
    print("  (its targets: nash_distance < 0.05, pareto_score > 0.85; the midpoint they "
          "measure is not the equilibrium; surplus_captured counts a late deal as a full one)")
    if "mechanisms" in e["greedy"]:
        _print_mechanisms(e)
    if "pbe_comparison" in e:
        _print_pbe_comparison(e["pbe_comparison"])
    if "spe" in e:
        spe = e["spe"]
        price = "no agreement" if spe["price"] is None else f"{spe['price']:,.2f}"
        print(f"  subgame-perfect equilibrium of this game: {price} in round {spe['round']}, "
              f"payoffs {spe['supplier_payoff']:,.2f} / {spe['retailer_payoff']:,.2f}")
    else:
        print("  (valuations are private: pass --supplier-value and --retailer-value to compare "
              "with the subgame-perfect equilibrium)")
    if "tournament" in result:
        print("\nAgainst the classic negotiators (greedy PPO; mean payoff with 95 % CI):")
        for r in result["tournament"]:
            print(f"  {r['supplier']:>11s} vs {r['retailer']:<11s} deal {r['deal_rate']:.3f}  "
                  f"supplier {r['supplier_reward']:9,.1f} [{r['supplier_reward_ci_low']:,.1f}, "
                  f"{r['supplier_reward_ci_high']:,.1f}]  retailer "
                  f"{r['retailer_reward']:9,.1f} [{r['retailer_reward_ci_low']:,.1f}, "
                  f"{r['retailer_reward_ci_high']:,.1f}]")
    _print_exploitability(result)


def _print_mechanisms(e: dict) -> None:
    """Gains from trade against the mechanism-design bounds (both valuations private)."""
    g, st = e["greedy"]["mechanisms"], e["stochastic"]["mechanisms"]
    cs = "" if g["chatterjee_samuelson_valid"] else " (not an equilibrium for these priors)"
    print(f"  gains from trade (currency units, delay not counted): first best "
          f"{fmt(g['first_best_gains'])}, Myerson-Satterthwaite second best "
          f"{fmt(g['second_best_gains'])}, Chatterjee-Samuelson double auction "
          f"{fmt(g['chatterjee_samuelson_gains'])}{cs}")
    for k in ("realised_gains", "gains_over_first_best", "gains_over_second_best",
              "gains_over_chatterjee_samuelson", "trade_rate_with_gains",
              "trade_rate_without_gains"):
        print(f"  {k:38s} {fmt(g[k]):>12s} {fmt(st[k]):>12s}")


def _print_pbe_comparison(c: dict) -> None:
    """The greedy pair's path against the perfect Bayesian equilibrium (one-sided offers)."""
    pbe = c["pbe"]
    print("  against the perfect Bayesian equilibrium (greedy play, each retailer type):")
    for e in c["price_errors"]:
        print(f"    round {e['round']} offer (on the {e['type']} type's path): "
              f"{fmt(e['price'])} vs {fmt(e['pbe_price'])} (error {fmt(e['rel_error'])})")
    for t in ("high", "low"):
        print(f"    {t} type accepts in round {c[t]['accept_round']} (equilibrium: "
              f"{c[t]['pbe_accept_round']}), deal rate {fmt(c[t]['deal_rate'])}")
    print(f"    prices within 2 %: {c['prices_within_2pct']}; acceptance rounds equal: "
          f"{c['accept_rounds_equal']} (equilibrium payoffs: supplier "
          f"{fmt(pbe['supplier_payoff'])}, high {fmt(pbe['high_payoff'])}, low "
          f"{fmt(pbe['low_payoff'])})")


def _print_rows(e: dict, title: str, keys: list[str]) -> None:
    print(f"  {title}")
    for k in keys:
        print(f"  {k:38s} {fmt(e['greedy'].get(k, float('nan'))):>12s} "
              f"{fmt(e['stochastic'].get(k, float('nan'))):>12s}")


def _print_exploitability(result: dict) -> None:
    if "exploitability" in result:
        x = result["exploitability"]
        print(f"\nExploitability (PPO best response from the {x['br_init']} network, "
              f"{x['total_timesteps']:,} steps per side; a lower bound):")
        for side in ("supplier", "retailer"):
            s = x[side]
            print(f"  best-response {side}: gains {s['gain']:,.2f} reward units over the trained "
                  f"{side} ({fmt(s['gain_share'])} of the mean surplus)")


def cmd_export(a: argparse.Namespace) -> None:
    """``eqx export``: a run's policies to one portable file."""
    from eqx_jax.train import RunError, export_policy, load_policy

    try:
        config, params = load_policy(a.run)
        path = export_policy(config, params, a.file)
    except RunError as e:
        raise CliError(str(e)) from None
    if a.json:
        print_json({"policy_file": str(path), "networks": sorted(params)})
    else:
        print(f"wrote {path} (networks: {', '.join(sorted(params))})")


def cmd_import(a: argparse.Namespace) -> None:
    """``eqx import``: a policy file to a new run directory."""
    from eqx_jax.train import RunError, export_policy, load_policy

    try:
        config, params = load_policy(a.file)
        out = Path(a.out)
        if (out / "policy.eqx").exists():
            raise RunError(f"{str(out)!r} already holds a policy; choose another --out")
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        export_policy(config, params, out / "policy.eqx")
    except RunError as e:
        raise CliError(str(e)) from None
    if a.json:
        print_json({"run_dir": str(out), "networks": sorted(params)})
    else:
        print(f"imported {a.file} into {out}/ (networks: {', '.join(sorted(params))})")


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    """``eqx evaluate``'s options."""
    p = sub.add_parser("evaluate", help="trained policies against the truth",
                       description="Play a run's trained policies greedily and stochastically; "
                                   "compare with the subgame-perfect equilibrium (complete "
                                   "information), against the classic negotiators, and measure "
                                   "exploitability with a PPO best response.")
    p.add_argument("run", help="run directory or policy file")
    p.add_argument("--episodes", type=int, default=10_000, help="episodes (default 10000)")
    p.add_argument("--supplier-value", type=float, default=None,
                   help="fix the supplier's valuation for the evaluation")
    p.add_argument("--retailer-value", type=float, default=None,
                   help="fix the retailer's valuation for the evaluation")
    p.add_argument("--tournament", action="store_true",
                   help="also play every classic negotiator, both roles")
    p.add_argument("--tournament-episodes", type=int, default=2000,
                   help="episodes per tournament pairing (default 2000)")
    p.add_argument("--exploitability", action=argparse.BooleanOptionalAction, default=True,
                   help="train a PPO best response against each frozen side (each seat of a "
                        "group game), all in one run, and report its gain (default: on; "
                        "--no-exploitability skips it)")
    p.add_argument("--br-steps", type=int, default=None,
                   help="env steps of each best response (default "
                        f"{SHORT_BR_STEPS:,}, a short budget; more gives a tighter bound)")
    p.add_argument("--br-init", default="incumbent", choices=("incumbent", "fresh"),
                   help="where each best response starts: the trained network's own weights "
                        "(default) or a fresh network")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``train``, ``evaluate``, ``export``, ``import``."""
    p = sub.add_parser("train", help="train PPO agents (self-play or against a negotiator)",
                       description="Train supplier and retailer policies with multi-agent PPO, "
                                   "jitted end to end, into a run directory (config, metrics "
                                   "log, Orbax checkpoint, plot, policy file).")
    p.add_argument("--config", default=None, help="YAML or JSON file of PPOConfig fields")
    p.add_argument("--game", default=None, choices=sorted(GAMES),
                   help=f"the game (default {DEFAULT_GAME}; or the config's game:)")
    p.add_argument("--scenario", default=None,
                   help="multi-issue: a scenario file or a name in configs/scenarios/")
    p.add_argument("--total-steps", type=int, default=None,
                   help="env steps per seed (default 4000000)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--opponent", default=None,
                   help="self (default) or a classic negotiator: " + ", ".join(NEGOTIATORS))
    p.add_argument("--num-envs", type=int, default=None,
                   help="parallel episodes (default 2048)")
    p.add_argument("--rounds", type=int, default=None, help="max rounds T of the game")
    p.add_argument("--supplier-value", type=float, default=None,
                   help="fix the supplier's valuation (complete-information training)")
    p.add_argument("--retailer-value", type=float, default=None,
                   help="fix the retailer's valuation")
    p.add_argument("--out", default="runs/default", help="run directory (default runs/default)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint")
    p.add_argument("--devices", type=int, default=None,
                   help="split the envs (and seeds) over the first N devices (default: all "
                        "visible devices; on a CPU set XLA_FLAGS="
                        "--xla_force_host_platform_device_count=N for N host devices)")
    p.add_argument("--distributed", action="store_true",
                   help="multi-host: call jax.distributed.initialize (JAX_COORDINATOR_ADDRESS, "
                        "JAX_NUM_PROCESSES, JAX_PROCESS_ID, or auto-detected on Slurm/MPI/"
                        "Kubernetes) and train over every host's devices")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (no progress)")
    p.set_defaults(func=cmd_train)

    _add_evaluate_parser(sub)

    p = sub.add_parser("export", help="write a run's policies to one portable file",
                       description="Write both policies and the game they were trained for to "
                                   "one portable file.")
    p.add_argument("run", help="run directory (or a policy file)")
    p.add_argument("file", help="output file, e.g. policy.eqx")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="make a run directory from a policy file",
                       description="Create a run directory (config + policy) from a policy file, "
                                   "for evaluation and serving.")
    p.add_argument("file", help="policy file written by `eqx export`")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_import)
