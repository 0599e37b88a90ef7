"""Side-by-side benchmark of training (``eqx bench train``): EquilibriumX against the founding
design's stack (Ray RLlib PPO on the plain-Python PettingZoo env) and against NegMAS.

Everything runs in one command, on one machine, on the same game (the default game of
:class:`eqx_jax.env.EnvParams`):

1. env throughput: the jitted, vmapped env against the plain-Python reference loop
   (:func:`baselines.bench_env.bench_env`);
2. training: ``eqx train``'s default PPO and RLlib PPO (``baselines/rllib_ppo.py``), each in its
   own process, each timed by its wall clock: env steps per second including learning, time to
   the quality bar (deal rate > 0.9 on the episodes of an update / iteration), the deal rate each
   has reached at the same wall time, and the peak memory (sum of the RSS of the process and all
   its children, Ray's raylet, GCS and workers included, sampled every 0.1 s);
3. scaling: trainer throughput against the number of parallel envs, and against the device
   count (XLA host devices on a CPU, one per core; GPUs on a GPU machine);
4. NegMAS: negotiations per second of NegMAS's time-based negotiators and of ours on the same
   2,000 random-valuation negotiations (``baselines/negmas_tournament.py``), and on 2,000
   random-weight negotiations of each multi-issue scenario (``baselines/negmas_multi_issue.py``:
   the share of identical agreements and the throughput ratio, ours at a large batch), and
   the same on the 3- and 4-party group scenarios with N negotiators
   (``baselines/negmas_group.py``).

Output: a JSON object (``rllib_env_steps_per_s``, ``eqx_env_steps_per_s``, ``train_speedup``,
``time_to_quality_s`` for both, ...), a Markdown table and a PNG plot in ``--out``.
``--quick`` shrinks everything for CI smoke tests: its figures are well formed, not meaningful.

Both training clocks start after setup, reported as ``setup_s``: for eqx, compiling the program
(on a throw-away run of one update); for RLlib, starting Ray and building the algorithm. The
time to quality is given without (``time_to_quality_s``) and with (``..._with_setup_s``) it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from baselines import bench_env
from baselines.memory import PeakRSSMonitor

QUALITY_DEAL_RATE = 0.9
TARGETS = {"train_speedup": 300.0, "time_to_quality_speedup": 100.0,
           "negotiation_speedup": 100_000.0}
DEFAULT_TRAINER_SIZES: tuple[int, ...] = (1, 16, 256, 2048, 16384, 131072)
QUICK_TRAINER_SIZES: tuple[int, ...] = (1, 256)


# ------------------------------------------------------------------------------ measuring
def run_measured(cmd: Sequence[str], env: dict[str, str], timeout: float) -> tuple[dict, float]:
    """Run ``cmd`` (which writes its JSON result to the path given as its last argument);
    returns (the JSON, peak RSS of its process tree in MiB). Raises RuntimeError on failure."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        with open(Path(tmp) / "log.txt", "w+") as log:
            proc = subprocess.Popen([*cmd, str(out)], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            with PeakRSSMonitor(proc.pid, interval=0.1) as memory:
                try:
                    rc = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    rc = "timeout"
            peak = memory.peak_mb
            if rc != 0 or not out.exists():
                log.seek(0)
                raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({rc}):\n"
                                   + log.read()[-3000:])
        return json.loads(out.read_text()), peak


def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- eqx worker
def eqx_training_curve(seconds: float, total_steps: int | None, chunk_updates: int,
                       devices: int | None = None, num_envs: int | None = None,
                       ) -> dict[str, Any]:
    """Train ``eqx train``'s default PPO (in this process) for ``total_steps`` env steps or
    ``seconds`` of wall time, whichever comes first; the deal-rate curve against wall time.

    ``setup_s``: compiling the program (on a throw-away run of one update); the training clock
    starts after it, like RLlib's after Ray's start and the algorithm's build. Each chunk's
    updates are spread evenly over the chunk's time for the curve.
    """
    import jax
    import numpy as np

    from eqx_jax.ppo import PPOConfig, make_train_chunked

    over: dict[str, Any] = {}
    if total_steps is not None:
        over["total_timesteps"] = total_steps
    if num_envs is not None:
        over["num_envs"] = num_envs
    config = PPOConfig(**over)
    batch = config.batch_size
    # Setup, like RLlib's algorithm build: compile init and the chunk program (one compilation
    # serves every chunk length) on a throw-away run, then train a fresh one on the clock.
    t_setup = time.perf_counter()
    init, train_chunk = make_train_chunked(config, devices=devices)
    jax.block_until_ready(train_chunk(init(jax.random.key(config.seed)), 1))
    setup_s = time.perf_counter() - t_setup
    t_start = time.perf_counter()
    runner = init(jax.random.key(config.seed))
    done, curve = 0, []
    steady_steps, steady_time = 0, 0.0
    while done < config.num_updates and time.perf_counter() - t_start < seconds:
        n = min(chunk_updates, config.num_updates - done)
        t0 = time.perf_counter()
        runner, metrics = train_chunk(runner, n)
        deal = np.asarray(jax.block_until_ready(metrics["deal_rate"]), np.float64).mean(axis=0)
        t1 = time.perf_counter()
        steady_steps += n * batch
        steady_time += t1 - t0
        for i in range(n):
            curve.append({"t_s": (t0 - t_start) + (t1 - t0) * (i + 1) / n,
                          "env_steps": (done + i + 1) * batch, "deal_rate": float(deal[i])})
        done += n
    wall = time.perf_counter() - t_start
    sps = steady_steps / steady_time
    hit = next((p for p in curve if p["deal_rate"] > QUALITY_DEAL_RATE), None)
    return {
        "eqx_env_steps_per_s": sps,
        "env_steps": done * batch,
        "updates": done,
        "train_seconds": wall,
        "setup_s": setup_s,
        "time_to_quality_s": hit["t_s"] if hit else None,
        "steps_to_quality": hit["env_steps"] if hit else None,
        "final_deal_rate": curve[-1]["deal_rate"] if curve else None,
        "curve": curve,
        "device": str(jax.devices()[0].platform) + ": " + jax.devices()[0].device_kind,
        "config": config.to_dict(),
    }


# ----------------------------------------------------------------------------- scaling
def trainer_throughput(num_envs: int, devices: int | None = None,
                       min_seconds: float = 1.0) -> dict[str, Any]:
    """Env steps per second (including learning) of the default PPO at ``num_envs`` parallel
    envs, after compilation, best of 3 timings of a chunk sized to take ``min_seconds``."""
    import jax

    from eqx_jax.ppo import PPOConfig, make_train_chunked

    base = PPOConfig()
    max_updates = 10_000
    config = PPOConfig(num_envs=num_envs, num_minibatches=base.num_minibatches,
                       total_timesteps=num_envs * base.num_steps * max_updates)
    init, train_chunk = make_train_chunked(config, devices=devices)
    runner = init(jax.random.key(0))
    t0 = time.perf_counter()
    runner, m = train_chunk(runner, 1)  # compiles
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    runner, m = train_chunk(runner, 1)
    jax.block_until_ready(m)
    one = time.perf_counter() - t0
    n = int(max(1, min(max_updates // 4, min_seconds / max(one, 1e-6))))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        runner, m = train_chunk(runner, n)
        jax.block_until_ready(m)
        best = min(best, time.perf_counter() - t0)
    return {"num_envs": num_envs, "devices": len(train_chunk.mesh.devices.flat),
            "env_steps_per_s": n * config.batch_size / best, "updates_timed": n,
            "compile_s": compile_s}


# ------------------------------------------------------------------------------ the bench
def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("eqx-jax", "jax", "jaxlib", "flax", "optax", "ray", "torch", "gymnasium",
                "pettingzoo", "negmas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _at_time(curve: list[dict], t: float) -> float | None:
    """The deal rate of the last curve point at or before ``t`` seconds (None: none yet)."""
    rate = None
    for p in curve:
        if p["t_s"] <= t:
            rate = p["deal_rate"]
    return rate


def _say(log, msg: str) -> None:
    print(f"[bench train] {msg}", file=log, flush=True)


def _machine(quick: bool) -> dict[str, Any]:
    """What the benchmark runs on: device, cores, memory, versions, the bar and the targets."""
    import jax

    device = jax.devices()[0]
    return {
        "quick": quick, "device": f"{device.platform}: {device.device_kind}",
        "num_devices": jax.device_count(),
        "machine": {"cpu": bench_env.cpu_name(), "cores": bench_env.cpu_cores(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                       / 2**30, 1)},
        "versions": _versions(), "quality_bar": {"deal_rate_above": QUALITY_DEAL_RATE},
        "targets": TARGETS,
    }


def _eqx_worker(num_envs: int | None, seconds: float, quick: bool, log) -> dict[str, Any]:
    """One measured ``eqx train`` process (``num_envs``: None for the defaults) on one XLA
    device, ``eqx train``'s default on a CPU."""
    env = _child_env(XLA_FLAGS=" ".join(
        f for f in os.environ.get("XLA_FLAGS", "").split()
        if "xla_force_host_platform_device_count" not in f))
    cmd = [sys.executable, "-m", "baselines.bench_train", "--worker", "eqx",
           "--seconds", str(seconds)]
    if num_envs is not None:
        cmd += ["--num-envs", str(num_envs)]
    if quick:
        cmd += ["--total-steps", str(16384 * 6), "--chunk-updates", "2"]
    run, peak = run_measured(cmd, env, timeout=seconds + 600)
    run["peak_rss_mb"] = peak
    _say(log, f"  {run['eqx_env_steps_per_s']:,.0f} env steps/s, deal rate > "
         f"{QUALITY_DEAL_RATE} after {run['time_to_quality_s']} s, peak {peak:,.0f} MB")
    return run


def _rllib_worker(seconds: float, quick: bool, log) -> dict[str, Any]:
    """One measured RLlib PPO process (OMP_NUM_THREADS=1: it is 5x slower without it here)."""
    _say(log, f"RLlib PPO on the reference PettingZoo env in a subprocess ({seconds:.0f} s)")
    cmd = [sys.executable, "-m", "baselines.rllib_ppo", "--seconds", str(seconds)]
    if quick:
        cmd.append("--quick")
    cmd.append("--json")
    rllib, peak = run_measured(cmd, _child_env(OMP_NUM_THREADS="1"), timeout=seconds + 900)
    rllib["peak_rss_tree_mb"] = peak
    _say(log, f"  {rllib['rllib_env_steps_per_s']:,.0f} env steps/s, deal rate > "
         f"{QUALITY_DEAL_RATE} after {rllib['time_to_quality_s']} s, peak {peak:,.0f} MB")
    return rllib


def _time_to_quality(eqx_run: dict, matched: dict, rllib: dict) -> dict[str, Any]:
    """Time to the deal-rate bar of both trainers (training clock, then with setup) and
    their ratios; RLlib's whole run is a lower bound on its time when it never got there."""
    ttq = {"eqx": matched["time_to_quality_s"], "rllib": rllib["time_to_quality_s"],
           "eqx_default_settings": eqx_run["time_to_quality_s"]}
    out: dict[str, Any] = {"time_to_quality_s": ttq,
                           "setup_s": {"eqx": matched["setup_s"], "rllib": rllib["setup_s"]}}
    # The same with each side's setup (eqx: compilation; RLlib: Ray start + build).
    with_setup = {k: (ttq[k] + run["setup_s"] if ttq[k] is not None else None)
                  for k, run in (("eqx", matched), ("rllib", rllib))}
    out["time_to_quality_with_setup_s"] = with_setup
    if with_setup["eqx"] and with_setup["rllib"]:
        out["time_to_quality_with_setup_speedup"] = with_setup["rllib"] / with_setup["eqx"]
    if ttq["eqx"] and ttq["rllib"]:
        out["time_to_quality_speedup"] = ttq["rllib"] / ttq["eqx"]
        if ttq["eqx_default_settings"]:
            out["time_to_quality_speedup_default_settings"] = (
                ttq["rllib"] / ttq["eqx_default_settings"])
    elif ttq["eqx"] and not ttq["rllib"]:
        out["time_to_quality_speedup_at_least"] = rllib["train_seconds"] / ttq["eqx"]
    return out


def _quality_at_equal_time(eqx_run: dict, matched: dict, rllib: dict) -> dict[str, Any]:
    """The deal rate each trainer had reached at the end of each other's runs."""
    q = {}
    for name, run in (("eqx_matched_batch", matched), ("eqx_default_settings", eqx_run)):
        t = run["train_seconds"]
        q[name] = {"t_s": t, "eqx_deal_rate": run["final_deal_rate"],
                   "rllib_deal_rate": _at_time(rllib["curve"], t)}
    q["rllib_run"] = {"t_s": rllib["train_seconds"], "rllib_deal_rate": rllib["final_deal_rate"],
                      "eqx_deal_rate": _at_time(eqx_run["curve"], rllib["train_seconds"])}
    return q


def _against_rllib(eqx_run: dict, eqx_seconds: float, rllib_seconds: float, quick: bool,
                   log) -> dict[str, Any]:
    """RLlib's run, eqx with RLlib's update batch, and every ratio between them."""
    from eqx_jax.ppo import PPOConfig

    rllib = _rllib_worker(rllib_seconds, quick, log)
    # eqx with RLlib's update batch (the same env steps per PPO update, epochs and
    # minibatches): the like-for-like time to quality. eqx's default batch is 4x RLlib's,
    # which needs more env steps to reach the bar (its advantage is throughput).
    base = PPOConfig()
    matched_envs = max(1, int(rllib["hyperparameters"]["train_batch_size"]) // base.num_steps)
    _say(log, f"eqx train with RLlib's batch ({matched_envs} envs x {base.num_steps} steps)")
    matched = _eqx_worker(matched_envs, eqx_seconds, quick, log)
    return {
        "rllib": rllib, "rllib_env_steps_per_s": rllib["rllib_env_steps_per_s"],
        "train_speedup": eqx_run["eqx_env_steps_per_s"] / rllib["rllib_env_steps_per_s"],
        "eqx_matched_batch": matched,
        "train_speedup_matched_batch": (matched["eqx_env_steps_per_s"]
                                        / rllib["rllib_env_steps_per_s"]),
        **_time_to_quality(eqx_run, matched, rllib),
        "quality_at_equal_time": _quality_at_equal_time(eqx_run, matched, rllib),
        "peak_memory_mb": {"eqx": eqx_run["peak_rss_mb"],
                           "eqx_matched_batch": matched["peak_rss_mb"],
                           "rllib": rllib["peak_rss_tree_mb"]},
    }


def _scaling(env: dict, sizes: Sequence[int] | None, num_devices: int, quick: bool,
             log) -> dict[str, Any]:
    """Trainer throughput over parallel envs (1 device) and over 1 and all devices."""
    sizes = list(sizes or (QUICK_TRAINER_SIZES if quick else DEFAULT_TRAINER_SIZES))
    _say(log, f"trainer scaling over {sizes} parallel envs")
    min_seconds = 0.3 if quick else 1.5
    scaling = [trainer_throughput(n, devices=1, min_seconds=min_seconds) for n in sizes]
    per_device = []
    for n_envs in ((max(sizes),) if quick else (2048, 16384)):
        for d in sorted({1, num_devices}):
            if n_envs % d == 0:
                _say(log, f"trainer at {n_envs} envs on {d} device(s)")
                done = [r for r in scaling if r["num_envs"] == n_envs] if d == 1 else []
                # quick: the scaling run at that size is the one-device figure (one compile less)
                per_device.append(done[0] if quick and done else trainer_throughput(
                    n_envs, devices=d, min_seconds=min_seconds))
    return {
        "scaling": {
            "trainer_env_steps_per_s": {str(r["num_envs"]): r["env_steps_per_s"]
                                        for r in scaling},
            "env_steps_per_s": env["jax_steps_per_s"], "details": scaling},
        "devices": {"trainer": per_device,
                    "env_all_devices_steps_per_s": env["jax_all_devices_steps_per_s"]},
    }


def bench_train(*, quick: bool = False, rllib_seconds: float = 600.0,
                eqx_seconds: float | None = None, sizes: Sequence[int] | None = None,
                skip_rllib: bool = False, skip_negmas: bool = False,
                log=sys.stderr) -> dict[str, Any]:
    """Run the whole side-by-side benchmark (see the module docstring); JSON-able result."""
    result = _machine(quick)
    _say(log, f"running on {result['device']} ({result['num_devices']} device(s)); "
         f"quick={quick}")
    _say(log, "env throughput: JAX env vs the plain-Python reference loop")
    env = bench_env.bench_env(sizes=[1024] if quick else list(bench_env.DEFAULT_SIZES),
                              quick=quick, seconds=2.0)
    result["env"] = {k: env[k] for k in ("jax_steps_per_s", "jax_all_devices_steps_per_s",
                                         "pettingzoo_steps_per_s", "speedup")}
    # Training: each trainer in its own process.
    eqx_seconds = eqx_seconds if eqx_seconds is not None else (60.0 if quick else 600.0)
    _say(log, "eqx train (default settings) in a subprocess")
    eqx_run = _eqx_worker(None, eqx_seconds, quick, log)
    result["eqx"] = eqx_run
    result["eqx_env_steps_per_s"] = eqx_run["eqx_env_steps_per_s"]
    if not skip_rllib:
        result.update(_against_rllib(eqx_run, eqx_seconds, rllib_seconds, quick, log))
    result.update(_scaling(env, sizes, result["num_devices"], quick, log))
    if not skip_negmas:
        _say(log, "NegMAS vs ours on the same random-valuation negotiations")
        # Imported only here: NegMAS is an optional extra (--skip-negmas runs without it).
        from baselines.negmas_tournament import run_negmas_benchmark

        neg = run_negmas_benchmark(n=2000, quick=quick)
        result["negmas"] = neg
        result["negotiation_speedup"] = neg["negotiation_speedup"]
        _say(log, "NegMAS vs ours on the multi-issue scenarios")
        from baselines.negmas_multi_issue import SCENARIOS, run_benchmark

        result["negmas_multi_issue"] = {  # quick: integrative-4 only (27 negotiations)
            sc: run_benchmark(sc, n=2000, quick=quick)
            for sc in (SCENARIOS[:1] if quick else SCENARIOS)}
        _say(log, "NegMAS vs ours on the group scenarios (N negotiators)")
        from baselines.negmas_group import SCENARIOS as GROUP_SCENARIOS
        from baselines.negmas_group import run_benchmark as run_group_benchmark

        result["negmas_group"] = {  # quick: supply-chain-3p only (27 negotiations)
            sc: run_group_benchmark(sc, n=2000, quick=quick)
            for sc in (GROUP_SCENARIOS[:1] if quick else GROUP_SCENARIOS)}
    return result


# ------------------------------------------------------------------------------- reports
def _negmas_group_rows(name: str, m: dict) -> list[str]:
    """The table rows of one group scenario's NegMAS comparison (baselines/negmas_group.py)."""
    big = m["eqx_large_batch"] or {"n": m["n"], "negotiations_per_s": m["eqx_negotiations_per_s"]}
    return [f"| group `{name}` ({len(m['parties'])} parties) negotiations/s ({m['n']:,} random "
            f"weights; ours {big['n']:,} at once) | {_fmt(big['negotiations_per_s'])} | "
            f"{_fmt(m['negmas_negotiations_per_s'], '', 1)} (NegMAS) | "
            f"{m['negotiation_speedup']:,.0f}x | >= {TARGETS['negotiation_speedup']:,.0f}x |",
            f"| same agreement as NegMAS (outcome and step), group `{name}` | "
            f"{m['agreement_match_rate']:.1%} (exact-utility ties {m['counts']['tie']}, "
            f"unexplained {m['counts']['unexplained']}) | | | |"]


def _fmt(x: float | None, unit: str = "", digits: int = 0) -> str:
    if x is None:
        return "not reached"
    return f"{x:,.{digits}f}{unit}"


def _rllib_rows(r: dict[str, Any]) -> list[str]:
    """The table rows that compare eqx with RLlib (throughput, time to quality, memory)."""
    lines: list[str] = []
    e, rl, mb = r["eqx"], r["rllib"], r["eqx_matched_batch"]
    lines.append(f"| training env steps/s (incl. learning), `eqx train` defaults | "
                 f"{_fmt(e['eqx_env_steps_per_s'])} | {_fmt(rl['rllib_env_steps_per_s'])} "
                 f"(RLlib PPO) | {r['train_speedup']:,.0f}x | >= "
                 f"{TARGETS['train_speedup']:,.0f}x |")
    lines.append(f"| the same, eqx with RLlib's batch ({mb['config']['num_envs']} envs) | "
                 f"{_fmt(mb['eqx_env_steps_per_s'])} | {_fmt(rl['rllib_env_steps_per_s'])} | "
                 f"{r['train_speedup_matched_batch']:,.0f}x | |")
    ttq = r["time_to_quality_s"]
    ratio = (f"{r['time_to_quality_speedup']:,.0f}x" if "time_to_quality_speedup" in r
             else f">= {r['time_to_quality_speedup_at_least']:,.0f}x"
             if "time_to_quality_speedup_at_least" in r else "-")
    lines.append(f"| time to deal rate > {QUALITY_DEAL_RATE}, same batch (training clock) | "
                 f"{_fmt(ttq['eqx'], ' s', 2)} | {_fmt(ttq['rllib'], ' s', 1)} | {ratio} | "
                 f">= {TARGETS['time_to_quality_speedup']:,.0f}x |")
    ratio_d = (f"{r['time_to_quality_speedup_default_settings']:,.0f}x"
               if "time_to_quality_speedup_default_settings" in r else "-")
    lines.append(f"| the same, `eqx train` defaults (4x RLlib's batch) | "
                 f"{_fmt(ttq['eqx_default_settings'], ' s', 2)} | "
                 f"{_fmt(ttq['rllib'], ' s', 1)} | {ratio_d} | |")
    ws, su = r["time_to_quality_with_setup_s"], r["setup_s"]
    ratio_ws = (f"{r['time_to_quality_with_setup_speedup']:,.0f}x"
                if "time_to_quality_with_setup_speedup" in r else "-")
    lines.append(f"| time to the bar plus setup (eqx: compile {su['eqx']:.1f} s; RLlib: Ray + "
                 f"build {su['rllib']:.1f} s), same batch | {_fmt(ws['eqx'], ' s', 1)} | "
                 f"{_fmt(ws['rllib'], ' s', 1)} | {ratio_ws} | |")
    q = r["quality_at_equal_time"]
    for key, label in (("eqx_matched_batch", "eqx, same batch"),
                       ("eqx_default_settings", "eqx defaults")):
        b_rate = q[key]["rllib_deal_rate"]
        b_text = _fmt(b_rate, "", 3) if b_rate is not None else "no iteration done yet"
        lines.append(f"| deal rate after {q[key]['t_s']:,.1f} s ({label}: whole run) | "
                     f"{_fmt(q[key]['eqx_deal_rate'], '', 3)} | {b_text} | | |")
    end = q["rllib_run"]
    lines.append(f"| deal rate after {end['t_s']:,.0f} s (RLlib: whole run) | "
                 f"{_fmt(end['eqx_deal_rate'], '', 3)} (its run had ended) | "
                 f"{_fmt(end['rllib_deal_rate'], '', 3)} | | |")
    m = r["peak_memory_mb"]
    lines.append(f"| peak memory (process tree RSS), defaults | {m['eqx']:,.0f} MB | "
                 f"{m['rllib']:,.0f} MB | {m['rllib'] / m['eqx']:,.1f}x less | |")
    return lines


def markdown_table(r: dict[str, Any]) -> str:
    """The README's table: one row per measured figure, EquilibriumX vs the baseline."""
    v = r["versions"]
    lines = [
        f"Measured on {r['device']} ({r['machine']['cpu']}, {r['machine']['cores']} cores, "
        f"{r['machine']['memory_gb']} GiB), Python {v['python']}, JAX {v['jax']}, "
        f"Ray {v.get('ray')}, torch {v.get('torch')}, NegMAS {v.get('negmas')}"
        + (" — QUICK MODE (smoke test, figures not meaningful)" if r["quick"] else "") + ".",
        "",
        "| figure | EquilibriumX | baseline | ratio | target |",
        "|---|---|---|---|---|",
    ]
    env = r["env"]
    best_env = max([*env["jax_steps_per_s"].values(),
                    *env["jax_all_devices_steps_per_s"].values()])
    lines.append(f"| env steps/s (no learning) | {_fmt(best_env)} | "
                 f"{_fmt(env['pettingzoo_steps_per_s'])} (plain-Python PettingZoo loop) | "
                 f"{env['speedup']:,.0f}x | |")
    if "rllib" in r:
        lines += _rllib_rows(r)
    else:
        e = r["eqx"]
        lines.append(f"| training env steps/s (incl. learning) | {_fmt(e['eqx_env_steps_per_s'])}"
                     " | not run (--skip-rllib) | | |")
        lines.append(f"| time to deal rate > {QUALITY_DEAL_RATE} | "
                     f"{_fmt(e['time_to_quality_s'], ' s', 1)} | not run | | |")
    if "negmas" in r:
        n = r["negmas"]
        lines.append(f"| negotiations/s ({n['n']:,} random valuations) | "
                     f"{_fmt(n['eqx_negotiations_per_s'])} | "
                     f"{_fmt(n['negmas_negotiations_per_s'], '', 1)} (NegMAS) | "
                     f"{n['negotiation_speedup']:,.0f}x | >= "
                     f"{TARGETS['negotiation_speedup']:,.0f}x |")
        lines.append(f"| same agreement as NegMAS (price and step) | "
                     f"{n['agreement_match_rate']:.1%} of negotiations | | | |")
    for name, m in r.get("negmas_multi_issue", {}).items():
        big = m["eqx_large_batch"] or {"n": m["n"], "negotiations_per_s":
                                       m["eqx_negotiations_per_s"]}
        lines.append(f"| multi-issue `{name}` negotiations/s ({m['n']:,} random weights; ours "
                     f"{big['n']:,} at once) | {_fmt(big['negotiations_per_s'])} | "
                     f"{_fmt(m['negmas_negotiations_per_s'], '', 1)} (NegMAS) | "
                     f"{m['negotiation_speedup']:,.0f}x | >= "
                     f"{TARGETS['negotiation_speedup']:,.0f}x |")
        lines.append(f"| same agreement as NegMAS (outcome and step), `{name}` | "
                     f"{m['agreement_match_rate']:.1%} (exact-utility ties "
                     f"{m['counts']['tie']}, unexplained {m['counts']['unexplained']}) | | | |")
    for name, m in r.get("negmas_group", {}).items():
        lines += _negmas_group_rows(name, m)
    lines += ["", "Training throughput against parallel envs (1 device) and devices:", "",
              "| parallel envs | " + " | ".join(r["scaling"]["trainer_env_steps_per_s"]) + " |",
              "|---|" + "---|" * len(r["scaling"]["trainer_env_steps_per_s"]),
              "| env steps/s | " + " | ".join(
                  _fmt(x) for x in r["scaling"]["trainer_env_steps_per_s"].values()) + " |", ""]
    for d in r["devices"]["trainer"]:
        lines.append(f"- {d['num_envs']:,} envs on {d['devices']} device(s): "
                     f"{d['env_steps_per_s']:,.0f} env steps/s")
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], path: Path) -> Path:
    """Deal rate against wall time (both trainers) and throughput against parallel envs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, run, colour in (("EquilibriumX (eqx train defaults)", r.get("eqx"), "tab:blue"),
                              ("EquilibriumX, RLlib's batch", r.get("eqx_matched_batch"),
                               "tab:cyan"),
                              ("Ray RLlib PPO", r.get("rllib"), "tab:red")):
        if run and run["curve"]:
            ax1.plot([p["t_s"] for p in run["curve"]], [p["deal_rate"] for p in run["curve"]],
                     color=colour, label=name)
    ax1.axhline(QUALITY_DEAL_RATE, color="grey", ls="--", lw=1, label="quality bar")
    ax1.set_xscale("log")
    ax1.set_xlabel("wall time (s, log)")
    ax1.set_ylabel("deal rate of the training episodes")
    ax1.set_ylim(0, 1.02)
    ax1.legend(loc="lower right")
    ax1.set_title("Learning the default game")
    tr = r["scaling"]["trainer_env_steps_per_s"]
    ax2.plot([int(n) for n in tr], list(tr.values()), "o-", label="PPO training (eqx)")
    en = r["scaling"]["env_steps_per_s"]
    ax2.plot([int(n) for n in en], list(en.values()), "s-", label="env only (jitted, vmapped)")
    if "rllib" in r:
        ax2.axhline(r["rllib_env_steps_per_s"], color="tab:red", ls="--", label="RLlib PPO")
    ax2.axhline(r["env"]["pettingzoo_steps_per_s"], color="grey", ls=":",
                label="plain-Python env loop")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("parallel environments")
    ax2.set_ylabel("env steps / s")
    ax2.legend(fontsize=8)
    ax2.set_title(f"Throughput on {r['device']} ({r['machine']['cores']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(r: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench_train.json", "markdown": out / "bench_train.md",
             "png": out / "bench_train.png"}
    paths["json"].write_text(json.dumps(r, indent=2) + "\n")
    paths["markdown"].write_text(markdown_table(r))
    plot(r, paths["png"])
    return {k: str(v) for k, v in paths.items()}


def _worker_main(argv: Sequence[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="eqx bench train's measured training process")
    p.add_argument("--worker", choices=["eqx"], required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--total-steps", type=int, default=None)
    p.add_argument("--chunk-updates", type=int, default=5)
    p.add_argument("--num-envs", type=int, default=None)
    p.add_argument("out")
    a = p.parse_args(argv)
    res = eqx_training_curve(a.seconds, a.total_steps, a.chunk_updates, num_envs=a.num_envs)
    Path(a.out).write_text(json.dumps(res))


if __name__ == "__main__":
    _worker_main()
