"""``eqx bench``, registered into the ``eqx`` command (entry-point group ``eqx.commands``):
``env`` (the JAX env against the plain-Python reference loop, :mod:`baselines.bench_env`) and
``train`` (eqx train against Ray RLlib and NegMAS, :mod:`baselines.bench_train`)."""

from __future__ import annotations

import argparse
import importlib.util
import os

from eqx_jax.checks import FieldError, check_number
from eqx_jax.cli import CliError, positive_int, print_json
from eqx_jax.games.registry import DEFAULT_GAME, GAMES


def cmd_bench(a: argparse.Namespace) -> None:
    """``eqx bench env|train``."""
    # One XLA host device per core, so the benchmark can also run the vectorized env on every
    # core (a single CPU device runs each fused loop on one thread). This must be set before
    # JAX starts its backend, which nothing before this line does.
    from baselines.bench_env import cpu_cores  # imports JAX but does not start its backend

    if a.devices is None:
        a.devices = cpu_cores()
    positive_int("--devices", a.devices, 256)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={a.devices}".strip())
    from baselines import bench_env as bench

    if a.what not in ("env", "train"):
        raise CliError(f"unknown benchmark {a.what!r}; available: env, train")
    for n in a.sizes or ():
        positive_int("--sizes", n, 1 << 24)
    if a.what == "train":
        _bench_train(a)
        return
    sizes = a.sizes or ([1, 1024, 16384] if a.quick else list(bench.DEFAULT_SIZES))
    if a.game != "group" and (a.agents is not None or a.scaling):
        raise CliError("--agents and --scaling are for --game group only")
    if a.game == "group":
        _bench_group(a, sizes)
        return
    if a.game != DEFAULT_GAME:
        from baselines import bench_games

        result = bench_games.bench_game(a.game, sizes, a.seconds, a.quick, a.scenario)
        print_json(result) if a.json else bench_games.print_game_report(result)
        return
    result = bench.bench_env(sizes=sizes, quick=a.quick, seconds=a.seconds)
    if a.json:
        print_json(result)
    else:
        bench.print_report(result)


def _bench_group(a: argparse.Namespace, sizes: list[int]) -> None:
    """``eqx bench env --game group [--scenario NAME] [--agents N] [--scaling]``."""
    from baselines import bench_env as bench

    if a.scaling_size is not None:
        positive_int("--scaling-size", a.scaling_size, 1 << 24)
    try:
        result = bench.bench_group(a.scenario, a.agents, sizes, a.seconds, a.quick, a.scaling,
                                   a.scaling_size)
    except ValueError as e:  # a bad --scenario / --agents, named by the loader
        raise CliError(str(e)) from None
    print_json(result) if a.json else bench.print_group_report(result)


def _bench_train(a: argparse.Namespace) -> None:
    """``eqx bench train``: names a missing extra before anything runs."""
    from baselines import bench_train

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
        if v is not None:
            try:
                check_number(f"--{name.replace('_', '-')}", v, 1, 86_400, note="seconds")
            except FieldError as e:
                raise CliError(str(e)) from None
    result = bench_train.bench_train(
        quick=a.quick, rllib_seconds=a.rllib_seconds or (60.0 if a.quick else 600.0),
        eqx_seconds=a.eqx_seconds, sizes=a.sizes, skip_rllib=a.skip_rllib,
        skip_negmas=a.skip_negmas)
    result["outputs"] = bench_train.write_outputs(result, a.out)
    if a.json:
        print_json(result)
    else:
        print(bench_train.markdown_table(result))
        print("written: " + ", ".join(result["outputs"].values()))


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the ``eqx`` command's subparsers."""
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
    p.add_argument("--game", default=DEFAULT_GAME, choices=sorted(GAMES),
                   help=f"env: the game (default {DEFAULT_GAME})")
    p.add_argument("--scenario", default=None,
                   help="env --game multi-issue / group: a scenario file or name "
                        "(configs/scenarios/; group default supply-chain-3p)")
    p.add_argument("--agents", type=int, default=None,
                   help="env --game group: seat the scenario's first N parties (2..8)")
    p.add_argument("--scaling", action="store_true",
                   help="env --game group: also time consortium-8p with N = 2, 3, 4, 8 parties")
    p.add_argument("--scaling-size", type=int, default=None,
                   help="env --game group --scaling: parallel episodes of the scaling runs "
                        "(default: the largest of --sizes)")
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
