"""The ``eqx`` command: ``simulate``, ``solve``, ``bench``, ``train``, ``export``, ``import``.

Every subcommand has ``--help``, defaults for the default game, and ``--json`` for one JSON
object on stdout. Bad input exits with status 2 and a one-line message naming the field.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from eqx_jax.env import EnvParams, make_params, params_to_dict, spe_kwargs


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


# ------------------------------------------------------------------------------ game options
def add_game_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("game settings (defaults: the founding design's game)")
    g.add_argument("--rounds", type=int, default=10, help="max rounds T (default 10)")
    g.add_argument("--reward", choices=["seed", "discounted"], default="seed",
                   help="reward model (default seed)")
    g.add_argument("--max-price", type=float, default=10000.0, help="price cap (default 10000)")
    g.add_argument("--supplier-low", type=float, default=4000.0,
                   help="supplier valuation prior U[low, high] (default 4000)")
    g.add_argument("--supplier-high", type=float, default=6000.0, help="(default 6000)")
    g.add_argument("--retailer-low", type=float, default=7000.0,
                   help="retailer valuation prior U[low, high] (default 7000)")
    g.add_argument("--retailer-high", type=float, default=9000.0, help="(default 9000)")
    g.add_argument("--supplier-value", type=float, default=None,
                   help="fix the supplier's valuation (sets low = high)")
    g.add_argument("--retailer-value", type=float, default=None,
                   help="fix the retailer's valuation (sets low = high)")
    g.add_argument("--discount", type=float, nargs=2, default=(0.95, 0.95),
                   metavar=("D_S", "D_R"), help="discounted model: per-round discount factors")


def params_from_args(a: argparse.Namespace) -> EnvParams:
    s_lo, s_hi = a.supplier_low, a.supplier_high
    r_lo, r_hi = a.retailer_low, a.retailer_high
    if a.supplier_value is not None:
        s_lo = s_hi = a.supplier_value
    if a.retailer_value is not None:
        r_lo = r_hi = a.retailer_value
    try:
        return make_params(
            max_rounds=a.rounds, reward_model=a.reward, max_price=a.max_price,
            supplier_low=s_lo, supplier_high=s_hi, retailer_low=r_lo, retailer_high=r_hi,
            discount=tuple(a.discount),
        )
    except ValueError as e:
        raise CliError(_option_names(str(e))) from None


def _option_names(msg: str) -> str:
    """Name fields the way the command line spells them (max_rounds -> --rounds)."""
    return (msg.replace("max_rounds", "--rounds").replace("max_price", "--max-price")
            .replace("supplier_low", "--supplier-low/--supplier-value")
            .replace("supplier_high", "--supplier-high/--supplier-value")
            .replace("retailer_low", "--retailer-low/--retailer-value")
            .replace("retailer_high", "--retailer-high/--retailer-value")
            .replace("supplier_value", "--supplier-value")
            .replace("retailer_value", "--retailer-value"))


def _positive_int(name: str, value: int, high: int = 10**9) -> int:
    if not 1 <= value <= high:
        raise CliError(f"{name} must be in [1, {high}], got {value}")
    return value


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def _print_json(obj: Any) -> None:
    print(json.dumps(_jsonable(obj), indent=2))


def _fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        return "n/a" if not math.isfinite(x) else f"{x:,.{digits}f}"
    return str(x)


# ---------------------------------------------------------------------------------- simulate
def cmd_simulate(a: argparse.Namespace) -> None:
    import jax

    from eqx_jax import simulate
    from eqx_jax.negotiators import NEGOTIATORS

    params = params_from_args(a)
    _positive_int("--episodes", a.episodes, 10_000_000)
    key = jax.random.key(a.seed)
    for side in ("supplier", "retailer"):
        if getattr(a, side) not in NEGOTIATORS:
            raise CliError(f"--{side} must be one of {', '.join(NEGOTIATORS)}, "
                           f"got {getattr(a, side)!r}")
    if a.tournament:
        rows = simulate.tournament(key, params, num_episodes=a.episodes)
        eq = equilibrium_summary(params)
        if a.json:
            _print_json({"game": params_to_dict(params), "episodes_per_pair": a.episodes,
                         "tournament": rows, "equilibrium": eq})
            return
        print(f"Tournament of classic negotiators: {a.episodes:,} episodes per pairing, "
              f"{_game_line(params)}\n")
        print_table(rows, [
            ("supplier", "supplier", 11), ("retailer", "retailer", 11),
            ("deal_rate", "deal", 6), ("mean_rounds", "rounds", 6), ("mean_price", "price", 8),
            ("nash_distance", "nash_d", 6), ("pareto_score", "pareto", 6),
            ("surplus_captured", "surplus", 7), ("supplier_reward", "R_sup", 8),
            ("retailer_reward", "R_ret", 8),
        ])
        print()
        print_equilibrium(eq)
        return
    rec = simulate.play(key, params, a.supplier, a.retailer, a.episodes)
    from eqx_jax.metrics import summarize

    summary = summarize(rec)
    if a.json:
        _print_json({"game": params_to_dict(params), "supplier": a.supplier,
                     "retailer": a.retailer, "metrics": summary})
        return
    print(f"{a.supplier} (supplier) vs {a.retailer} (retailer), {a.episodes:,} episodes, "
          f"{_game_line(params)}")
    for k, v in summary.items():
        print(f"  {k:24s} {_fmt(v)}")


def _game_line(p: EnvParams) -> str:
    rm = params_to_dict(p)["reward_model"]
    return (f"T={p.max_rounds}, reward={rm}, supplier U[{p.supplier_low:g}, {p.supplier_high:g}], "
            f"retailer U[{p.retailer_low:g}, {p.retailer_high:g}]")


def print_table(rows: list[dict], cols: list[tuple[str, str, int]]) -> None:
    print("  ".join(f"{title:>{w}}" if i > 1 else f"{title:<{w}}"
                    for i, (_, title, w) in enumerate(cols)))
    for r in rows:
        cells = []
        for i, (key, _, w) in enumerate(cols):
            v = r[key]
            if isinstance(v, float):
                v = 0.0 if abs(v) < 5e-4 else v  # no "-0.000"
                s = "n/a" if not math.isfinite(v) else (
                    f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
            else:
                s = str(v)
            cells.append(f"{s:>{w}}" if i > 1 else f"{s:<{w}}")
        print("  ".join(cells))


def equilibrium_summary(params: EnvParams) -> dict:
    """The SPE at the prior means (complete information), the NBS, and the
    incomplete-information references (Chatterjee-Samuelson, Myerson-Satterthwaite)."""
    from eqx_jax import equilibrium
    from eqx_jax.metrics import nash_bargaining_solution

    v_s = (params.supplier_low + params.supplier_high) / 2
    v_r = (params.retailer_low + params.retailer_high) / 2
    game = spe_kwargs(params)
    spe = equilibrium.solve_spe(v_s, v_r, params.max_rounds, **game).to_dict()
    nbs = nash_bargaining_solution(
        v_s, v_r, params.max_rounds, reward_model=game["reward_model"],
        max_price=params.max_price, speed_bonus=params.speed_bonus,
        bonus_fraction=params.bonus_fraction, discount=params.discount,
        disagreement=params.timeout_payoff)
    return {
        "supplier_value": v_s, "retailer_value": v_r,
        "spe": spe,
        "nash_bargaining_solution": nbs,
        **incomplete_info_references(params),
    }


def incomplete_info_references(params: EnvParams) -> dict:
    """Chatterjee-Samuelson and Myerson-Satterthwaite for the priors (None if a prior is a point:
    with a known valuation there is no incomplete-information problem to reference)."""
    from eqx_jax import equilibrium

    priors = (params.supplier_low, params.supplier_high, params.retailer_low, params.retailer_high)
    if params.supplier_low >= params.supplier_high or params.retailer_low >= params.retailer_high:
        return {"chatterjee_samuelson": None, "myerson_satterthwaite": None}
    return {"chatterjee_samuelson": equilibrium.chatterjee_samuelson(*priors),
            "myerson_satterthwaite": equilibrium.myerson_satterthwaite(*priors)}


def print_equilibrium(eq: dict) -> None:
    spe, nbs = eq["spe"], eq["nash_bargaining_solution"]
    where = eq.get("where", "at the prior means")
    print(f"Equilibrium of the complete-information game {where} "
          f"(V_s = {eq['supplier_value']:,.2f}, V_r = {eq['retailer_value']:,.2f}):")
    if spe["outcome"] == "agreement":
        print(f"  subgame-perfect equilibrium: agreement at {spe['price']:,.2f} in round "
              f"{spe['round']}, payoffs supplier {spe['supplier_payoff']:,.2f}, "
              f"retailer {spe['retailer_payoff']:,.2f}")
    else:
        print(f"  subgame-perfect equilibrium: no agreement ({spe['end']} in round "
              f"{spe['round']}), payoffs {spe['supplier_payoff']:g} / {spe['retailer_payoff']:g}")
    for line in spe["explanation"]:
        print(f"    {line}")
    if nbs["outcome"] == "agreement":
        print(f"  Nash bargaining solution: {nbs['price']:,.2f} in round {nbs['round']} "
              f"(the founding design's midpoint: "
              f"{(eq['supplier_value'] + eq['retailer_value']) / 2:,.2f})")
    cs, ms = eq["chatterjee_samuelson"], eq["myerson_satterthwaite"]
    if cs is None or ms is None:
        return
    print("Incomplete information, uniform priors (k = 1/2 double auction references):")
    if cs["equilibrium"] == "posted_price":
        print("  the priors do not overlap, so there are always gains from trade: any single "
              f"posted price between the supports is an efficient equilibrium "
              f"(expected gains {cs['gains']:,.2f} = first best)")
    else:
        print(f"  Chatterjee-Samuelson linear equilibrium: the supplier asks "
              f"{cs['seller_slope']:.4g} V_s + {cs['seller_intercept']:,.2f}, the retailer bids "
              f"{cs['buyer_slope']:.4g} V_r + {cs['buyer_intercept']:,.2f}; trade iff "
              f"V_r - V_s >= {cs['trade_threshold']:,.2f} "
              f"({'valid' if cs['valid'] else 'not an equilibrium here: ' + cs['reason']})")
    ratio = "n/a" if ms["ratio"] is None else f"{ms['ratio']:.4f}"
    print(f"  Myerson-Satterthwaite second best: trade iff V_r - V_s >= {ms['g']:,.2f}, expected "
          f"gains {ms['second_best_gains']:,.2f} of a first best {ms['first_best_gains']:,.2f} "
          f"(ratio {ratio})")


# ------------------------------------------------------------------------------------- solve
def cmd_solve(a: argparse.Namespace) -> None:
    from eqx_jax import equilibrium
    from eqx_jax.metrics import nash_bargaining_solution

    v_s = 5000.0 if a.supplier_value is None else a.supplier_value
    v_r = 8000.0 if a.retailer_value is None else a.retailer_value
    # The valuations are the solver's input; the game's priors stay as given (for the
    # incomplete-information references), so do not fold the values into the priors here.
    a.supplier_value = a.retailer_value = None
    params = params_from_args(a)
    game = spe_kwargs(params)
    try:
        spe = equilibrium.solve_spe(v_s, v_r, params.max_rounds, **game)
    except ValueError as e:
        raise CliError(_option_names(str(e))) from None
    d = spe.to_dict()
    d["nash_bargaining_solution"] = nash_bargaining_solution(
        v_s, v_r, params.max_rounds, reward_model=game["reward_model"],
        max_price=params.max_price, speed_bonus=params.speed_bonus,
        bonus_fraction=params.bonus_fraction, discount=params.discount,
        disagreement=params.timeout_payoff)
    if a.json:
        _print_json(d)
        return
    print_equilibrium({"where": "with both valuations known",
                       "supplier_value": v_s, "retailer_value": v_r, "spe": d,
                       "nash_bargaining_solution": d["nash_bargaining_solution"],
                       **incomplete_info_references(params)})


# ------------------------------------------------------------------------------------- bench
def cmd_bench(a: argparse.Namespace) -> None:
    import os

    # One XLA host device per core, so the benchmark can also run the vectorized env on every
    # core (a single CPU device runs each fused loop on one thread). This must be set before
    # JAX starts its backend, which nothing before this line does.
    from eqx_jax.bench import cpu_cores  # imports JAX but does not start its backend

    if a.devices is None:
        a.devices = cpu_cores()
    _positive_int("--devices", a.devices, 256)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={a.devices}".strip())
    from eqx_jax import bench

    if a.what not in ("env", "train"):
        raise CliError(f"unknown benchmark {a.what!r}; available: env, train")
    for n in a.sizes or ():
        _positive_int("--sizes", n, 1 << 24)
    if a.what == "train":
        _bench_train(a)
        return
    sizes = a.sizes or ([1, 1024, 16384] if a.quick else list(bench.DEFAULT_SIZES))
    result = bench.bench_env(sizes=sizes, quick=a.quick, seconds=a.seconds)
    if a.json:
        _print_json(result)
    else:
        bench.print_report(result)


def _bench_train(a: argparse.Namespace) -> None:
    import importlib.util

    from eqx_jax import bench_train

    missing = [(mod, extra) for mod, extra, skip in (("ray", "rllib", a.skip_rllib),
                                                     ("negmas", "negmas", a.skip_negmas))
               if not skip and importlib.util.find_spec(mod) is None]
    if missing:
        raise CliError("eqx bench train compares with "
                       + " and ".join(m for m, _ in missing) + ", which is not installed: "
                       f'pip install -e ".[{",".join(e for _, e in missing)}]" (or skip it: '
                       + " ".join(f"--skip-{e}" for _, e in missing) + ")")
    for name in ("rllib_seconds", "eqx_seconds"):
        v = getattr(a, name)
        if v is not None and not 1 <= v <= 86_400:
            raise CliError(f"--{name.replace('_', '-')} must be in [1, 86400] seconds, got {v}")
    result = bench_train.bench_train(
        quick=a.quick, rllib_seconds=a.rllib_seconds or (60.0 if a.quick else 600.0),
        eqx_seconds=a.eqx_seconds, sizes=a.sizes, skip_rllib=a.skip_rllib,
        skip_negmas=a.skip_negmas)
    result["outputs"] = bench_train.write_outputs(result, a.out)
    if a.json:
        _print_json(result)
    else:
        print(bench_train.markdown_table(result))
        print("written: " + ", ".join(result["outputs"].values()))


# ------------------------------------------------------------------------------------- train
def _init_distributed() -> None:
    """``jax.distributed.initialize`` for ``--distributed``, before JAX starts its backend.

    Explicit settings come from JAX_COORDINATOR_ADDRESS (host:port of process 0),
    JAX_NUM_PROCESSES and JAX_PROCESS_ID; without them JAX detects the cluster itself (Slurm,
    Open MPI, Kubernetes/JobSet, TPU pods).
    """
    import os

    import jax

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
    if a.distributed:
        _init_distributed()
    from eqx_jax.ppo import PPOConfig
    from eqx_jax.train import RunError, load_config_file, train_run

    try:
        if a.resume:
            overrides = [f for f in ("config", "total_steps", "seed", "opponent", "num_envs",
                                     "rounds", "supplier_value", "retailer_value")
                         if getattr(a, f) is not None]
            if overrides:
                raise CliError("--resume continues the run's saved config; drop "
                               + ", ".join("--" + f.replace("_", "-") for f in overrides))
            config = None
        else:
            d = load_config_file(a.config) if a.config else {}
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
                raise CliError(str(e).replace("total_timesteps", "total_timesteps (--total-steps)")
                               .replace("num_envs", "num_envs (--num-envs)")) from None
        if a.devices is not None and a.devices < 1:
            raise CliError(f"--devices must be >= 1, got {a.devices}")
        summary = train_run(config, a.out, resume=a.resume, progress=not a.json,
                            devices=a.devices)
    except RunError as e:
        raise CliError(str(e)) from None
    if a.json:
        _print_json(summary)
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


def cmd_evaluate(a: argparse.Namespace) -> None:
    import jax

    from eqx_jax import evaluate as ev
    from eqx_jax.train import RunError, load_policy

    _positive_int("--episodes", a.episodes, 10_000_000)
    try:
        config, params = load_policy(a.run)
    except RunError as e:
        raise CliError(str(e)) from None
    key = jax.random.key(a.seed)
    k_eval, k_tour, k_br = jax.random.split(key, 3)
    try:
        result: dict[str, Any] = {"run": a.run, "evaluation": ev.evaluate_policies(
            config, params, k_eval, a.episodes, a.supplier_value, a.retailer_value)}
        if a.tournament:
            result["tournament"] = ev.tournament_vs_negotiators(config, params, k_tour,
                                                                a.tournament_episodes)
        if a.exploitability:
            result["exploitability"] = ev.exploitability(config, params, k_br, a.br_steps)
    except ValueError as e:
        raise CliError(str(e)) from None
    if a.json:
        _print_json(result)
        return
    _print_evaluation(result)


def _print_evaluation(result: dict) -> None:
    e = result["evaluation"]
    print(f"Evaluation of {result['run']}: {e['supplier']} (supplier) vs {e['retailer']} "
          f"(retailer), {e['num_episodes']:,} episodes")
    keys = ["deal_rate", "mean_rounds", "mean_price", "nash_distance", "pareto_score",
            "negotiation_efficiency", "supplier_share", "surplus_captured", "supplier_reward",
            "retailer_reward"]
    if "spe" in e:
        keys += ["spe_price_error", "spe_price_rel_error", "spe_round_error",
                 "spe_supplier_payoff_error", "spe_retailer_payoff_error"]
    print(f"  {'metric':28s} {'greedy':>12s} {'stochastic':>12s}")
    for k in keys:
        print(f"  {k:28s} {_fmt(e['greedy'].get(k, float('nan'))):>12s} "
              f"{_fmt(e['stochastic'].get(k, float('nan'))):>12s}")
    print("  (founding design's targets: nash_distance < 0.05, pareto_score > 0.85; "
          "the midpoint they measure is not the equilibrium)")
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
    if "exploitability" in result:
        x = result["exploitability"]
        print(f"\nExploitability (PPO best response, {x['total_timesteps']:,} steps; "
              "a lower bound):")
        for side in ("supplier", "retailer"):
            s = x[side]
            print(f"  best-response {side}: gains {s['gain']:,.2f} reward units over the trained "
                  f"{side} ({_fmt(s['gain_share'])} of the mean surplus)")


def cmd_export(a: argparse.Namespace) -> None:
    from eqx_jax.train import RunError, export_policy, load_policy

    try:
        config, params = load_policy(a.run)
        path = export_policy(config, params, a.file)
    except RunError as e:
        raise CliError(str(e)) from None
    if a.json:
        _print_json({"policy_file": str(path), "networks": sorted(params)})
    else:
        print(f"wrote {path} (networks: {', '.join(sorted(params))})")


def cmd_import(a: argparse.Namespace) -> None:
    from pathlib import Path

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
        _print_json({"run_dir": str(out), "networks": sorted(params)})
    else:
        print(f"imported {a.file} into {out}/ (networks: {', '.join(sorted(params))})")


# ---------------------------------------------------------------- BEGIN serve/user (issue #4)
# The live server lives in the optional `serve` package; it is imported only when these
# subcommands run, so `eqx` works without the serve extra.
_SERVE_EXTRA_MISSING = 'the server needs the serve extra: pip install -e ".[serve]"'


def _import_serve_cli():
    """``serve.cli``, or exit 2 with one line when the serve extra is not installed."""
    import importlib

    try:
        for dep in ("fastapi", "uvicorn", "pydantic_settings", "sqlalchemy", "alembic", "jwt",
                    "argon2", "httpx"):
            importlib.import_module(dep)
        return importlib.import_module("serve.cli")
    except ImportError:
        print(_SERVE_EXTRA_MISSING, file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(a: argparse.Namespace) -> None:
    code = _import_serve_cli().serve(host=a.host, port=a.port, log_level=a.log_level)
    if code:
        raise SystemExit(code)


def cmd_user_add(a: argparse.Namespace) -> None:
    code = _import_serve_cli().user_add(a.name, admin=a.admin)
    if code:
        raise SystemExit(code)


def add_server_commands(sub) -> None:
    p = sub.add_parser("serve", help="run the live server (FastAPI + WebSocket, docs at /docs)",
                       description="Run the live server with uvicorn. Settings come from "
                                   "EQX_* environment variables (see docs/server.md).")
    p.add_argument("--host", default=None, help="bind address (default EQX_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default EQX_PORT or 8000)")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("user", help="manage the server's users",
                       description="Manage the live server's users (in its database).")
    user_sub = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    q = user_sub.add_parser("add", help="add a user (password from a prompt, or stdin)")
    q.add_argument("name", help="user name (letters, digits, _ . @ -)")
    q.add_argument("--admin", action="store_true", help="may read every user's sessions")
    q.set_defaults(func=cmd_user_add)
# ------------------------------------------------------------------ END serve/user (issue #4)


# -------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from eqx_jax.negotiators import NEGOTIATORS  # light (jax is already imported by env)

    parser = argparse.ArgumentParser(
        prog="eqx", description="EquilibriumX: vectorized bargaining games in JAX.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="play classic negotiators over vectorized episodes",
                       description="Play two classic negotiators (or all of them, --tournament) "
                                   "over many vectorized episodes and print the metrics.")
    p.add_argument("--episodes", type=int, default=10_000,
                   help="episodes (per pairing in a tournament; default 10000)")
    p.add_argument("--supplier", default="boulware", help="supplier negotiator (default boulware)")
    p.add_argument("--retailer", default="conceder", help="retailer negotiator (default conceder)")
    p.add_argument("--tournament", action="store_true",
                   help="every negotiator against every other, plus the game's equilibrium")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_game_args(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("solve", help="subgame-perfect equilibrium of the complete-info game",
                       description="Solve the complete-information game by backward induction "
                                   "(exact) and print the subgame-perfect equilibrium.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_game_args(p)
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("bench", help="speed benchmarks (env: JAX env vs plain-Python loop; "
                                     "train: eqx train vs Ray RLlib, and NegMAS)",
                       description="env: env steps per second of the jitted, vmapped JAX env "
                                   "against a plain-Python PettingZoo loop. train: eqx train "
                                   "against Ray RLlib PPO on the same game (throughput, time to "
                                   "a 0.9 deal rate, memory), scaling with envs and devices, "
                                   "and negotiations/s against NegMAS; writes JSON, Markdown "
                                   "and PNG to --out.")
    p.add_argument("what", nargs="?", default="env",
                   help="env (default) or train")
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="parallel episode counts (env default 1 1024 16384 131072; train: "
                        "trainer sizes, default 1 16 256 2048 16384 131072)")
    p.add_argument("--out", default="bench", help="train: output directory (default bench/)")
    p.add_argument("--rllib-seconds", type=float, default=None,
                   help="train: RLlib's training wall time (default 600, quick 60)")
    p.add_argument("--eqx-seconds", type=float, default=None,
                   help="train: cap on eqx's training wall time (default 600; it stops "
                        "earlier when its default run is done)")
    p.add_argument("--skip-rllib", action="store_true", help="train: leave RLlib out")
    p.add_argument("--skip-negmas", action="store_true", help="train: leave NegMAS out")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="target seconds per measurement (default 2)")
    p.add_argument("--quick", action="store_true", help="small sizes and short runs (CI smoke)")
    p.add_argument("--devices", type=int, default=None,
                   help="CPU: XLA host devices to split the episodes over (default: one per core)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="train PPO agents (self-play or against a negotiator)",
                       description="Train supplier and retailer policies with multi-agent PPO, "
                                   "jitted end to end, into a run directory (config, metrics "
                                   "log, Orbax checkpoint, plot, policy file).")
    p.add_argument("--config", default=None, help="YAML or JSON file of PPOConfig fields")
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
    p.add_argument("--exploitability", action="store_true",
                   help="also train a best response against each frozen side (slow: two "
                        "training runs)")
    p.add_argument("--br-steps", type=int, default=None,
                   help="env steps of each best-response run (default: the run's total)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

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
    add_server_commands(sub)  # serve / user (issue #4)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as e:
        print(f"eqx {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
