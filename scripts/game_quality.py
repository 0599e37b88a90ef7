"""Trained agents against the exact equilibrium in the games beyond one price (the README's
"Games" figures): train each setting with the same PPO, evaluate greedily against each
episode's SPE, measure exploitability with a PPO best response; JSON and a Markdown table.

    python -m scripts.game_quality --out docs/bench/game_quality     # ~20 min on 2 cores
    python -m scripts.game_quality --quick --out /tmp/q               # a smoke run

The run directories go to runs/game_quality/ (not committed); the tables to --out.

Settings: the price-quantity game of configs/price-quantity.yaml (c = 50, a = 160, b = 1,
T = 10, seed reward), four more complete-information settings (two seed games with T = 8, a
short seed game with a steep demand curve, a discounted game), and the game with private values
(c ~ U[40, 60], a ~ U[140, 180]). Each setting trains for the config's 8,000,000 steps or for
its own ``STEPS`` (the settings with T < 10 or another reward model need 24M-48M: at 8M their
agents still agreed two rounds late).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import jax

from eqx_jax.evaluate import evaluate_policies, exploitability
from eqx_jax.ppo import PPOConfig
from eqx_jax.train import load_config_file, load_policy, train_run

BASE = "configs/price-quantity.yaml"
SETTINGS: dict[str, dict[str, Any]] = {
    "seed c=50 a=160 b=1 T=10": {},
    "discounted (0.9, 0.9) c=40 a=140 b=1.25 T=8": {
        "reward_model": "discounted", "discount": [0.9, 0.9], "max_rounds": 8,
        "cost_low": 40, "cost_high": 40, "demand_low": 140, "demand_high": 140,
        "demand_slope": 1.25},
    "seed c=60 a=180 b=2 T=6": {
        "max_rounds": 6, "cost_low": 60, "cost_high": 60, "demand_low": 180,
        "demand_high": 180, "demand_slope": 2.0},
    "seed c=30 a=170 b=1 T=8": {
        "max_rounds": 8, "cost_low": 30, "cost_high": 30, "demand_low": 170,
        "demand_high": 170},
    "seed c=40 a=200 b=1.5 T=8": {
        "max_rounds": 8, "cost_low": 40, "cost_high": 40, "demand_low": 200,
        "demand_high": 200, "demand_slope": 1.5},
    "private c~U[40,60] a~U[140,180] T=10": {
        "cost_low": 40, "cost_high": 60, "demand_low": 140, "demand_high": 180},
}
#: Training steps of the settings that need more than the config's 8,000,000.
STEPS: dict[str, int] = {
    "discounted (0.9, 0.9) c=40 a=140 b=1.25 T=8": 24_000_000,
    "seed c=60 a=180 b=2 T=6": 24_000_000,
    "seed c=30 a=170 b=1 T=8": 48_000_000,
    "seed c=40 a=200 b=1.5 T=8": 24_000_000,
}
KEEP = ("deal_rate", "mean_rounds", "mean_price", "spe_price", "spe_price_rel_error",
        "mean_quantity", "spe_quantity", "spe_quantity_rel_error", "efficient_quantity_rel_error",
        "spe_round", "spe_round_match", "efficiency", "supplier_reward", "spe_supplier_payoff",
        "retailer_reward", "spe_retailer_payoff")


def run_dir_for(runs: Path, name: str) -> Path:
    """The run directory of the setting ``name`` under ``runs`` (non-alphanumerics -> "-")."""
    return runs / "".join(ch if ch.isalnum() else "-" for ch in name)


def train_and_evaluate(config: PPOConfig, run_dir: Path, episodes: int
                       ) -> tuple[dict[str, Any], float, dict, dict[str, Any]]:
    """Train ``config`` afresh in ``run_dir`` (the quality scripts' own scratch runs: an old
    run there is removed) and evaluate the trained pair over ``episodes`` episodes (key 1).
    Returns (the training summary, the training wall time in s, the params, the evaluation)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    summary = train_run(config, run_dir, progress=False)
    train_s = time.perf_counter() - t0
    params = load_policy(run_dir)[1]
    return summary, train_s, params, evaluate_policies(config, params, jax.random.key(1),
                                                       episodes)


def run_setting(name: str, env: dict[str, Any], out: Path, steps: int | None,
                br_steps: int | None, episodes: int) -> dict[str, Any]:
    """Train, evaluate and measure exploitability of one setting; the JSON-able row."""
    d = load_config_file(BASE)
    d["env"] = {**d["env"], **env}
    if steps:
        d["total_timesteps"] = steps
    config = PPOConfig.from_dict(d)
    summary, train_s, params, ev = train_and_evaluate(
        config, run_dir_for(Path("runs/game_quality"), name), episodes)
    ex = exploitability(config, params, jax.random.key(2), br_steps or config.total_timesteps)
    return {"setting": name, "env": config.env, "train_steps": config.total_timesteps,
            "train_wall_s": train_s, "env_steps_per_s": summary["env_steps_per_s"],
            "greedy": {k: ev["greedy"].get(k) for k in KEEP},
            "mean_available_surplus": ev["mean_available_surplus"],
            "exploitability_gain_share": ex["max_gain_share"],
            "exploitability": {s: {k: ex[s][k] for k in ("gain", "gain_share")}
                               for s in ("supplier", "retailer")}}


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table of the README."""
    head = ("| setting | training steps | deal rate | round (SPE) | unit price (SPE) | "
            "quantity (SPE) | efficiency | exploitability |\n|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        g = r["greedy"]
        lines.append(
            f"| {r['setting']} | {r['train_steps'] / 1e6:g}M | {g['deal_rate']:.3f} | "
            f"{g['mean_rounds']:.2f} "
            f"({g['spe_round']:.2f}) | {g['mean_price']:.2f} ({g['spe_price']:.2f}; "
            f"{100 * g['spe_price_rel_error']:.1f} %) | {g['mean_quantity']:.1f} "
            f"({g['spe_quantity']:.1f}; {100 * g['spe_quantity_rel_error']:.1f} %) | "
            f"{g['efficiency']:.3f} | {100 * r['exploitability_gain_share']:.1f} % |")
    return head + "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/bench/game_quality")
    p.add_argument("--quick", action="store_true", help="300k training steps per setting")
    p.add_argument("--only", default=None, help="run only settings containing this text")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per setting (default: STEPS, else the config's "
                        "8,000,000)")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    steps = 300_000 if a.quick else a.steps
    br = 200_000 if a.quick else 4_000_000
    rows = [run_setting(name, env, out, steps or STEPS.get(name), br, 10_000)
            for name, env in SETTINGS.items() if a.only is None or a.only in name]
    machine = {"device": str(jax.devices()[0]), "cores": len(os.sched_getaffinity(0))}
    (out / "game_quality.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                      indent=2, default=str))
    (out / "game_quality.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
