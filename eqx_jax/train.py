"""Training runs on disk: ``eqx train`` / ``--resume`` / ``eqx export`` / ``eqx import``.

A run directory ``runs/NAME/`` holds:

* ``config.json``: the full :class:`eqx_jax.ppo.PPOConfig` (plus the package version);
* ``metrics.jsonl``: one JSON object per PPO update (means over seeds), with ``update`` and
  ``env_steps``;
* ``checkpoint/``: an Orbax checkpoint of the whole :class:`eqx_jax.ppo.RunnerState` (both
  policies, Adam states, the running episodes, the PRNG key, the update counter), written after
  every chunk, so ``--resume`` continues exactly where the run stopped;
* ``training_curves.png``: returns, deal rate, and mean price against the equilibrium price band;
* ``policy.eqx``: the portable policy file (see :func:`export_policy`);
* ``summary.json``: the final figures (wall time, env steps per second, last metrics).

Training runs in jitted chunks of updates so progress can be shown; chunks run back to back give
exactly the result of one uninterrupted call (see :func:`eqx_jax.ppo.make_train_chunked`), which
is also why a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from tqdm import tqdm

from eqx_jax import __version__
from eqx_jax.env import spe_kwargs
from eqx_jax.games.registry import DEFAULT_GAME, get_game
from eqx_jax.ppo import PPOConfig, RunnerState, make_train_chunked, seed_params

POLICY_FORMAT = "eqx-policy-v1"


class RunError(Exception):
    """A user-facing problem with a run directory or policy file."""


# --------------------------------------------------------------------------------- config
def load_config_file(path: str | Path) -> dict[str, Any]:
    """A PPO config from YAML or JSON (a mapping of PPOConfig fields)."""
    p = Path(path)
    if not p.is_file():
        raise RunError(f"config file {str(p)!r} does not exist")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parse error becomes one clear line
        raise RunError(f"cannot parse {str(p)!r}: {e}") from None
    if not isinstance(data, dict):
        raise RunError(f"{str(p)!r} must hold a mapping of config fields, "
                       f"got {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------- checkpoints
def _to_saveable(runner: RunnerState) -> dict:
    """Typed PRNG keys cannot be serialised: store their raw data."""
    return {"params": runner.params, "opt_state": runner.opt_state,
            "env_state": runner.env_state, "obs": runner.obs,
            "explore_round": runner.explore_round,
            "key": jax.random.key_data(runner.key), "update": runner.update}


def _checkpointer():
    import orbax.checkpoint as ocp

    return ocp.StandardCheckpointer()


def _is_main_process() -> bool:
    """Under ``jax.distributed`` every host runs the same program; only process 0 writes the
    run's files (the checkpoint is written by all of them together, each its own shards)."""
    return jax.process_index() == 0


def _sync(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def checkpoint_path(run_dir: Path) -> Path | None:
    """The run's last complete checkpoint: ``checkpoint``, or ``checkpoint.old`` when the
    process was killed between the two renames of :func:`save_checkpoint`; None without one."""
    for name in ("checkpoint", "checkpoint.old"):
        if (run_dir / name).is_dir():
            return run_dir / name
    return None


def save_checkpoint(run_dir: Path, runner: RunnerState) -> None:
    """Write ``run_dir/checkpoint`` atomically (a new one replaces the old only when complete):
    the new one is written to ``checkpoint.tmp``, the old one renamed ``checkpoint.old``, the
    new one renamed into place, then the old one deleted, so that a process killed at any
    instant leaves a complete checkpoint (:func:`checkpoint_path`). Deleting the old one before
    the rename, as this once did, left a half-deleted checkpoint to a SIGKILL.

    Multi-host: every process must call it (Orbax writes each process's shards; ``run_dir``
    must be on a file system all hosts share)."""
    tmp = run_dir / "checkpoint.tmp"
    if _is_main_process() and tmp.exists():
        shutil.rmtree(tmp)
    _sync("eqx-checkpoint-clean")
    ckptr = _checkpointer()
    ckptr.save(tmp.resolve(), _to_saveable(runner))
    ckptr.wait_until_finished()
    final, old = run_dir / "checkpoint", run_dir / "checkpoint.old"
    if _is_main_process():
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            final.rename(old)
        tmp.rename(final)
        if old.exists():
            shutil.rmtree(old)
    _sync("eqx-checkpoint-done")


def load_checkpoint(run_dir: Path, template: RunnerState) -> RunnerState:
    """Restore the runner state; ``template`` (e.g. a fresh ``init``) gives shapes, dtypes and
    where each array lives (its sharding over the devices of this run, which may differ from the
    devices that saved it)."""
    path = checkpoint_path(run_dir)
    if path is None:
        raise RunError(f"{str(run_dir)!r} has no checkpoint to resume from")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                            _to_saveable(template))
    restored = _checkpointer().restore(path.resolve(), abstract)
    impl = jax.random.key_impl(template.key)
    return RunnerState(params=restored["params"], opt_state=restored["opt_state"],
                       env_state=restored["env_state"], obs=restored["obs"],
                       explore_round=restored["explore_round"],
                       key=jax.random.wrap_key_data(restored["key"], impl=impl),
                       update=restored["update"])


# ---------------------------------------------------------------------------- policy files
def export_policy(config: PPOConfig, params: dict, path: str | Path) -> Path:
    """One portable file: both policies (one seed's network params) and the game they were
    trained for (the full config, whose ``env`` holds the game settings). msgpack via
    ``flax.serialization``; load with :func:`load_policy`."""
    payload = {
        "format": POLICY_FORMAT,
        "config": json.dumps(config.to_dict()),
        "env_params": json.dumps(get_game(config.game).params_to_dict(config.env_params)),
        "params": jax.tree.map(np.asarray, params),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(serialization.msgpack_serialize(payload))
    return path


def load_policy(path: str | Path) -> tuple[PPOConfig, dict]:
    """``(config, params)`` from a policy file, or from a run directory (its ``policy.eqx``)."""
    p = Path(path)
    if p.is_dir():
        p = p / "policy.eqx"
    if not p.is_file():
        raise RunError(f"no policy file at {str(p)!r} (train a run or `eqx export` one first)")
    try:
        payload = serialization.msgpack_restore(p.read_bytes())
    except Exception as e:  # noqa: BLE001
        raise RunError(f"{str(p)!r} is not an EquilibriumX policy file ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != POLICY_FORMAT:
        raise RunError(f"{str(p)!r} is not an EquilibriumX policy file ({POLICY_FORMAT})")
    config = PPOConfig.from_dict(json.loads(payload["config"]))
    params = jax.tree.map(jnp.asarray, payload["params"])
    return config, params


# --------------------------------------------------------------------------------- running
@functools.lru_cache(maxsize=8)
def chunked_trainer(config: PPOConfig, devices: int | None = None):
    """:func:`make_train_chunked`, memoised per config and device count so that a resumed run
    (or a second run of the same config in one process) reuses the compiled program."""
    return make_train_chunked(config, devices=devices)


def _metrics_rows(metrics: dict, first_update: int, batch: int) -> list[dict]:
    """(num_seeds, n) metric arrays -> n JSON rows (means over seeds)."""
    means = {k: np.asarray(v, np.float64).mean(axis=0) for k, v in metrics.items()}
    n = next(iter(means.values())).shape[0]
    rows = []
    for i in range(n):
        u = first_update + i + 1
        row = {"update": u, "env_steps": u * batch}
        row.update({k: float(v[i]) for k, v in means.items()})
        rows.append(row)
    return rows


class Progress:
    """Training progress on ``out`` with tqdm: a live bar with the ETA on a terminal; on
    anything else (a log file, a pipe) the same text as a plain line at most every
    ``log_every_s`` seconds and at the end, so that logs hold no carriage returns."""

    def __init__(self, total: int, done: int, out, enabled: bool, log_every_s: float = 30.0):
        self.enabled, self.out = enabled, out
        self.live = enabled and hasattr(out, "isatty") and out.isatty()
        self.bar = tqdm(total=total, initial=done, unit="update", file=out,
                        disable=not self.live, dynamic_ncols=True)
        self.total, self.t0, self.log_every_s = total, time.perf_counter(), log_every_s
        self.start, self.last_line = done, -math.inf

    def update(self, done: int, sps: float, deal_rate: float) -> None:
        """``done`` updates of ``total``; ``sps``: env steps/s; ``deal_rate``: of the last one."""
        if not self.enabled:
            return
        postfix = f"{sps:,.0f} env steps/s, deal rate {deal_rate:.3f}"
        if self.live:
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(done - self.bar.n)
            return
        now = time.perf_counter()
        if now - self.last_line >= self.log_every_s or done >= self.total:
            meter = tqdm.format_meter(done - self.start, self.total - self.start, now - self.t0,
                                      unit="update", postfix=postfix, ncols=0)
            self.out.write(f"updates {done}/{self.total}: {meter}\n")
            self.out.flush()
            self.last_line = now

    def close(self) -> None:
        self.bar.close()


def _prepare_run_dir(config: PPOConfig | None, run_dir: Path, resume: bool,
                     main: bool) -> PPOConfig:
    """The run's config: the saved one for ``resume``, else ``config`` (refusing to overwrite
    a run); creates ``run_dir`` on the main process."""
    if resume:
        cfg_path = run_dir / "config.json"
        if not cfg_path.is_file():
            raise RunError(f"{str(run_dir)!r} is not a run directory (no config.json)")
        saved = json.loads(cfg_path.read_text())
        saved.pop("eqx_version", None)
        config = PPOConfig.from_dict(saved)
    elif checkpoint_path(run_dir) is not None:
        raise RunError(f"{str(run_dir)!r} already holds a run; use --resume to continue it or "
                       "choose another --out")
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    _sync("eqx-run-dir")
    return config


def _start_runner(config: PPOConfig, run_dir: Path, runner: RunnerState, resume: bool,
                  main: bool) -> tuple[RunnerState, int]:
    """(the runner to continue from, updates already done): the checkpoint's for ``resume``
    (the metrics log cut back to what it covers), else the fresh one with a new log."""
    metrics_path = run_dir / "metrics.jsonl"
    if resume:
        runner = load_checkpoint(run_dir, runner)
        done = int(np.asarray(runner.update).reshape(-1)[0])
        # Keep only the log lines the checkpoint covers (a crash may have logged a later chunk).
        if main and metrics_path.exists():
            rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line]
            rows = [r for r in rows if r["update"] <= done]
            metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return runner, done
    if main:
        (run_dir / "config.json").write_text(
            json.dumps({**config.to_dict(), "eqx_version": __version__}, indent=2))
        metrics_path.write_text("")
    return runner, 0


def _run_chunks(config: PPOConfig, run_dir: Path, runner: RunnerState, train_chunk, done: int,
                target: int, chunk: int, progress: Progress, main: bool,
                on_chunk: Callable[[int, dict], None] | None) -> dict[str, Any]:
    """Train from update ``done`` to ``target`` in chunks of ``chunk`` updates, logging and
    checkpointing after each. Returns the runner, the updates done, the last metrics row and
    the steady-state throughput (env steps and seconds after the first, compiling chunk) and
    when the first chunk ended (``time.perf_counter``)."""
    batch = config.num_envs * config.num_steps
    steps_timed, time_timed, last, compiled_once = 0, 0.0, {}, False
    first_chunk_done = None
    while done < target:
        n = min(chunk, target - done)
        t0 = time.perf_counter()
        runner, metrics = train_chunk(runner, n)
        jax.block_until_ready(metrics)
        dt = time.perf_counter() - t0
        if compiled_once:  # the first chunk includes compilation
            steps_timed += n * batch * config.num_seeds
            time_timed += dt
        compiled_once = True
        first_chunk_done = first_chunk_done or time.perf_counter()
        rows = _metrics_rows(metrics, done, batch)
        if main:
            with (run_dir / "metrics.jsonl").open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        done += n
        save_checkpoint(run_dir, runner)
        last = rows[-1]
        sps = steps_timed / time_timed if time_timed else n * batch * config.num_seeds / dt
        progress.update(done, sps, last.get("deal_rate", float("nan")))
        if on_chunk:
            on_chunk(done, last)
    return {"runner": runner, "done": done, "last": last, "first_chunk_done": first_chunk_done,
            "env_steps_per_s": steps_timed / time_timed if time_timed else None}


def _finish(config: PPOConfig, run_dir: Path, result: dict[str, Any], total: int, wall: float,
            mesh, main: bool) -> dict[str, Any]:
    """The summary; on the main process also the policy file, the plot and summary.json."""
    params = result["runner"].params
    if jax.process_count() > 1:  # seeds may live on other hosts: gather them everywhere
        from jax.experimental import multihost_utils

        params = multihost_utils.process_allgather(params, tiled=True)
    params = seed_params(params, 0)
    done = result["done"]
    summary = {
        "run_dir": str(run_dir),
        "updates": done,
        "total_updates": total,
        "finished": done >= total,
        "env_steps": done * config.num_envs * config.num_steps * config.num_seeds,
        "wall_time_s": wall,
        "start_up_s": result["start_up_s"],
        "env_steps_per_s": result["env_steps_per_s"],
        "devices": int(mesh.devices.size),
        "device_kind": f"{mesh.devices.flat[0].platform}: {mesh.devices.flat[0].device_kind}",
        "processes": jax.process_count(),
        "last_update": result["last"],
    }
    if main:
        export_policy(config, params, run_dir / "policy.eqx")
        rows = [json.loads(line)
                for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
        plot_training(config, rows, run_dir / "training_curves.png")
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    _sync("eqx-run-done")
    return summary


def train_run(
    config: PPOConfig | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    chunk_updates: int | None = None,
    stop_after_updates: int | None = None,
    out=sys.stderr,
    on_chunk: Callable[[int, dict], None] | None = None,
    devices: int | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run in ``run_dir``; returns the summary (also in summary.json).

    ``devices``: how many of the visible devices to split the envs and seeds over (default all;
    see :func:`eqx_jax.ppo.make_mesh`); a run may be resumed on another device count. Under
    ``jax.distributed`` all processes call this with the same arguments; process 0 writes the
    files, all of them the checkpoint.

    ``stop_after_updates`` stops early (the checkpoint allows ``resume``); used by tests and by
    anyone who wants to train in sessions. ``chunk_updates``: updates per jitted chunk (default
    about 1/40 of the run); it changes only how often progress is shown, never the result.
    ``progress``: show it on ``out`` (see :class:`Progress`).
    """
    t_entry = time.perf_counter()
    run_dir = Path(run_dir)
    main = _is_main_process()
    config = _prepare_run_dir(config, run_dir, resume, main)
    total = config.num_updates
    try:
        init, train_chunk = chunked_trainer(config, devices)
    except ValueError as e:  # the device count does not fit the config
        raise RunError(str(e)) from None
    runner, done = _start_runner(config, run_dir, init(jax.random.key(config.seed)), resume,
                                 main)
    target = total if stop_after_updates is None else min(total, stop_after_updates)
    t_start = time.perf_counter()
    bar = Progress(total, done, out, enabled=progress and main)
    try:
        result = _run_chunks(config, run_dir, runner, train_chunk, done, target,
                             chunk_updates or max(1, total // 40), bar, main, on_chunk)
    finally:
        bar.close()
    # Set-up, compilation (or loading it from the persistent cache) and the first chunk.
    result["start_up_s"] = (result["first_chunk_done"] - t_entry
                            if result["first_chunk_done"] else None)
    return _finish(config, run_dir, result, total, time.perf_counter() - t_start,
                   train_chunk.mesh, main)


# ------------------------------------------------------------------------------------ plot
def equilibrium_price_band(config: PPOConfig, samples: int = 2000) -> tuple[float, float, float]:
    """SPE prices of the complete-information game over private values drawn from the priors:
    (5th percentile, median, 95th percentile). A point when the values are fixed; nan for a
    game without an SPE solver."""
    from eqx_jax.equilibrium import spe_price_batch

    p = config.env_params
    rng = np.random.default_rng(0)
    if config.game == "price-quantity":
        from eqx_jax.references import pq_spe_kwargs
        from eqx_jax.solvers.price_quantity import spe_pq_batch

        c = rng.uniform(p.cost_low, p.cost_high, samples)
        a = rng.uniform(p.demand_low, p.demand_high, samples)
        out = spe_pq_batch(c, a, float(p.demand_slope), int(p.max_rounds), **pq_spe_kwargs(p))
    elif config.game == DEFAULT_GAME:
        vs = rng.uniform(p.supplier_low, p.supplier_high, samples)
        vr = rng.uniform(p.retailer_low, p.retailer_high, samples)
        out = spe_price_batch(vs, vr, p.max_rounds, **spe_kwargs(p))
    else:
        return (float("nan"),) * 3
    prices = np.asarray(out["price"], np.float64)
    prices = prices[np.isfinite(prices)]
    if prices.size == 0:
        return (float("nan"),) * 3
    lo, mid, hi = np.percentile(prices, [5, 50, 95])
    return float(lo), float(mid), float(hi)


def plot_training(config: PPOConfig, rows: list[dict], path: Path) -> Path | None:
    """Training curves as a PNG: returns per agent, deal rate, mean price vs the SPE band."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["env_steps"] for r in rows]) * config.num_seeds
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for role in ("supplier", "retailer"):
        key = f"return_{role}"
        if key in rows[0]:
            axes[0].plot(steps, [r[key] for r in rows], label=role)
    axes[0].set(title="Mean episode return", xlabel="env steps", ylabel="reward")
    axes[0].legend()
    axes[1].plot(steps, [r["deal_rate"] for r in rows], color="tab:green")
    axes[1].set(title="Deal rate", xlabel="env steps", ylim=(0, 1.02))
    axes[2].plot(steps, [r.get("mean_price", float("nan")) for r in rows],
                 label="mean deal price")
    lo, mid, hi = equilibrium_price_band(config)
    if np.isfinite(mid):
        axes[2].axhspan(lo, hi, color="tab:orange", alpha=0.2,
                        label="SPE price band (5-95 %, complete info)")
        axes[2].axhline(mid, color="tab:orange", linestyle="--", label="SPE median")
    axes[2].set(title="Price vs equilibrium", xlabel="env steps", ylabel="price")
    axes[2].legend(fontsize="small")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
