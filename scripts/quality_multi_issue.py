"""Trained agents against the issue's quality targets on the multi-issue scenarios: train each
scenario with the same PPO (configs/multi-issue.yaml), evaluate greedily against the SPE,
measure exploitability with a PPO best response; JSON and a Markdown table.

    python -m scripts.quality_multi_issue --out docs/bench/game_quality     # ~1 h on 2 cores
    python -m scripts.quality_multi_issue --quick --out /tmp/q               # a smoke run

Targets (checked per row, ``meets_target``):

* complete information (the ``-fixed`` scenarios: weights and reservations at the prior
  means): the agreements within 2 % of the SPE's utilities, i.e. each side's mean relative
  utility error ``|u - u*| / u*`` over the deals <= 0.02 (and every episode a deal);
* private weights and reservations (the shipped scenarios): deal rate > 95 %, Pareto
  optimality >= 0.95 (mean distance to the frontier <= 0.05 of the utility range) and
  exploitability (the larger side's best-response gain) <= 5 % of the mean surplus.

The run directories go to ``--runs`` (default runs/quality_multi_issue/, not committed); the
tables to ``--out`` (multi_issue.json, multi_issue.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import jax

from eqx_jax.evaluate import exploitability
from eqx_jax.ppo import PPOConfig
from eqx_jax.train import load_config_file
from scripts.game_quality import run_dir_for, train_and_evaluate

BASE = "configs/multi-issue.yaml"
#: Setting name -> scenario (a name in configs/scenarios/).
SETTINGS: dict[str, str] = {
    "distributive-2 fixed": "distributive-2-fixed",
    "integrative-4 fixed": "integrative-4-fixed",
    "supply-chain-4 fixed": "supply-chain-4-fixed",
    "distributive-2 private": "distributive-2",
    "integrative-4 private": "integrative-4",
    "supply-chain-4 private": "supply-chain-4",
}
#: The targets (docs/games.md, "multi-issue"; the issue's section 5).
SPE_UTILITY_TOLERANCE = 0.02
MIN_DEAL_RATE, MIN_PARETO, MAX_EXPLOITABILITY = 0.95, 0.95, 0.05
KEEP = ("deal_rate", "mean_rounds", "supplier_utility", "retailer_utility",
        "pareto_optimality", "nash_optimality", "max_welfare_optimality", "supplier_reward",
        "retailer_reward")
#: The SPE distances kept (after the prefix spe_ or full_info_spe_).
KEEP_SPE = ("episodes", "round", "round_match", "supplier_utility", "retailer_utility",
            "supplier_utility_rel_error", "retailer_utility_rel_error", "utility_within_2pct",
            "supplier_payoff", "retailer_payoff", "supplier_reward_gap", "retailer_reward_gap")


def meets_target(row: dict[str, Any]) -> bool:
    """Whether a row meets its target (see the module docstring)."""
    g = row["greedy"]
    if row["complete_information"]:
        errs = (g["spe"]["supplier_utility_rel_error"], g["spe"]["retailer_utility_rel_error"])
        return (g["deal_rate"] == 1.0 and all(math.isfinite(e) for e in errs)
                and max(errs) <= SPE_UTILITY_TOLERANCE)
    return (g["deal_rate"] > MIN_DEAL_RATE and g["pareto_optimality"] >= MIN_PARETO
            and row["exploitability_gain_share"] <= MAX_EXPLOITABILITY)


def config_for(scenario: str, steps: int | None, base: str = BASE) -> PPOConfig:
    """The config file ``base`` on ``scenario`` (``steps``: total_timesteps, else the
    file's)."""
    d = load_config_file(base)
    d["scenario"] = scenario
    if steps:
        d["total_timesteps"] = steps
    return PPOConfig.from_dict(d)


def run_setting(name: str, scenario: str, runs: Path, steps: int | None, br_steps: int | None,
                episodes: int, base: str = BASE) -> dict[str, Any]:
    """Train, evaluate and measure exploitability of one setting; the JSON-able row."""
    config = config_for(scenario, steps, base)
    summary, train_s, params, ev = train_and_evaluate(config, run_dir_for(runs, name),
                                                      episodes)
    ex = exploitability(config, params, jax.random.key(2), br_steps or config.total_timesteps)
    prefix = "spe_" if ev["complete_information"] else "full_info_spe_"
    greedy = {k: ev["greedy"].get(k) for k in KEEP}
    greedy["spe"] = {k: ev["greedy"].get(prefix + k) for k in KEEP_SPE}
    row = {"setting": name, "scenario": scenario, "config": base,
           "complete_information": ev["complete_information"],
           "train_steps": config.total_timesteps, "train_wall_s": train_s,
           "env_steps_per_s": summary["env_steps_per_s"], "spe": ev.get("spe"),
           "greedy": greedy, "mean_available_surplus": ev["mean_available_surplus"],
           "exploitability_steps": ex["total_timesteps"],
           "exploitability_gain_share": ex["max_gain_share"],
           "exploitability": {s: {k: ex[s][k] for k in ("gain", "gain_share")}
                              for s in ("supplier", "retailer")}}
    row["meets_target"] = meets_target(row)
    return row


def _cell(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table of docs/games.md: the SPE columns are the game's SPE (fixed scenarios) or
    the mean full-information SPE of each episode's drawn weights (private ones)."""
    head = ("| setting | deal rate | round (SPE) | supplier utility (SPE; error) | "
            "retailer utility (SPE; error) | Pareto optimality | exploitability | target |\n"
            "|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        g, s = r["greedy"], r["greedy"]["spe"]
        util = [f"{_cell(g[f'{side}_utility'])} ({_cell(s[f'{side}_utility'])}; "
                f"{_cell(100 * (s[f'{side}_utility_rel_error'] or math.nan), 1)} %)"
                for side in ("supplier", "retailer")]
        lines.append(
            f"| {r['setting']} | {g['deal_rate']:.3f} | {g['mean_rounds']:.2f} "
            f"({s['round']:.2f}) | {util[0]} | {util[1]} | {_cell(g['pareto_optimality'])} | "
            f"{_cell(100 * r['exploitability_gain_share'], 1)} % | "
            f"{'met' if r['meets_target'] else 'not met'} |")
    return head + "\n".join(lines) + "\n"


def _merged(path: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` and the rows of the other settings already in ``path`` (a run with ``only``
    replaces its own settings' rows), in the order of :data:`SETTINGS`."""
    by_name = {}
    if path.is_file():
        by_name = {r["setting"]: r for r in json.loads(path.read_text()).get("rows", [])}
    by_name.update({r["setting"]: r for r in rows})
    return [by_name[n] for n in SETTINGS if n in by_name]


def run(out_dir: str | Path, quick: bool = False, only: str | None = None,
        steps: int | None = None, br_steps: int | None = None,
        runs: str | Path = "runs/quality_multi_issue", base: str = BASE
        ) -> tuple[list[dict[str, Any]], str]:
    """Every setting (or those whose name contains ``only``, merged with the other rows
    already in ``out_dir``): the rows and the Markdown table, both also written to
    ``out_dir`` (multi_issue.json / multi_issue.md). ``quick``: 200,000 training and 100,000
    best-response steps, 1,000 episodes (a smoke run)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = 200_000 if quick else steps
    br = 100_000 if quick else br_steps
    episodes = 1_000 if quick else 10_000
    rows: list[dict[str, Any]] = []
    for name, scenario in SETTINGS.items():
        if only is None or only in name:  # saved after each setting (a run takes minutes)
            rows = write(out, [run_setting(name, scenario, Path(runs), steps, br, episodes,
                                           base)])
    return rows, markdown(rows)


def write(out: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge ``rows`` into ``out``/multi_issue.json (:func:`_merged`), write it and the
    Markdown table; the merged rows."""
    rows = _merged(out / "multi_issue.json", rows)
    machine = {"device": str(jax.devices()[0]), "cores": len(os.sched_getaffinity(0))}
    (out / "multi_issue.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                     indent=2, default=str))
    (out / "multi_issue.md").write_text(markdown(rows))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/bench/game_quality")
    p.add_argument("--quick", action="store_true", help="a smoke run (200k steps per setting)")
    p.add_argument("--only", default=None, help="run only settings containing this text")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per setting (default: the config's)")
    p.add_argument("--br-steps", type=int, default=None,
                   help="best-response steps per side (default: the training steps)")
    p.add_argument("--runs", default="runs/quality_multi_issue", help="run directories")
    p.add_argument("--config", default=BASE, help=f"the PPO config file (default {BASE})")
    p.add_argument("--table-only", action="store_true",
                   help="rewrite the Markdown table from --out's multi_issue.json, no runs")
    a = p.parse_args()
    if a.table_only:
        print(markdown(write(Path(a.out), [])))
        return
    print(run(a.out, a.quick, a.only, a.steps, a.br_steps, a.runs, a.config)[1])


if __name__ == "__main__":
    main()
