"""Trained agents against the exact equilibrium in the bundles game with complete information
(the issue's target: "on bundles, the SPE agreement on at least 90 % of a set of small
instances"): train PPO with both value vectors observed, play each instance greedily, compare
each agreement with the instance's subgame-perfect equilibrium; JSON and a Markdown table.

    python -m scripts.quality_bundles --out docs/bench/game_quality   # ~8 min on 2 cores
    python -m scripts.quality_bundles --quick --out /tmp/q            # a smoke run

The run directories go to runs/quality_bundles/ (not committed); the tables to --out
(``bundles.json``, ``bundles.md``).

The instances (configs/bundles-complete-info.yaml): 30 of OpenSpiel's valid instances whose
SPE outcome is the same in *every* subgame-perfect equilibrium (:func:`spe_outcomes`), at
max_turns 3, discount 0.58, prob_end 0. Why these settings: with discount 1 the last proposer
takes everything and the deal waits for the last turn; with discount < 1 every equilibrium deal
comes at turn 2, the first acceptance. 0.58 ** j * k is never an integer for k = 1..10 value
points and j = 1, 2, so a responder is never indifferent between an integer-valued deal now and
a discounted one later. Why the uniqueness filter: where some player is indifferent (a
last-turn responder offered nothing; a proposer between splits it values the same), several
SPE outcomes exist and a learner has no reason to pick the solver's tie-break.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eqx_jax.ppo import PPOConfig, default_sides, resolve_policy
from eqx_jax.references import bundles_instance_spes, bundles_spe_distance
from eqx_jax.simulate import play_batch
from eqx_jax.solvers.bundles import NUM_ITEM_TYPES, split_values, splits, valid_instances
from eqx_jax.train import load_config_file
from scripts.game_quality import train_and_evaluate

CONFIG = "configs/bundles-complete-info.yaml"
#: The quality settings (max_turns, discount) and the size of the instance set.
MAX_TURNS, DISCOUNT, NUM_INSTANCES, SELECTION_SEED = 3, 0.58, 30, 0
_DIGITS = 9  # outcome values are rounded to this many decimals before comparing


# ------------------------------------------------------------------------ the instance set
def _choose(children: list[set], mover: int) -> set:
    """The outcomes of a node whose ``mover`` picks among children with outcome sets
    ``children``: an outcome of child c is an SPE outcome of the node iff the mover gets at
    least, from c, the least it could get from every other child (the subgames are independent,
    so each child's equilibrium is chosen on its own)."""
    floor = max(min(w[mover] for w in s) for s in children)
    return {w for s in children for w in s if w[mover] >= floor - 1e-9}


def spe_outcomes(pool, values, max_turns: int, discount: float) -> set[tuple[float, float, int]]:
    """Every subgame-perfect equilibrium outcome ``(value 0, value 1, final turn)`` of one
    complete-information instance (``prob_end`` 0), by backward induction over *sets* of
    outcomes (every selection among indifferent moves). A deal at turn k is worth
    ``discount ** max(0, k - 2)`` per value point; no deal is ``(0, 0, max_turns)``.
    Independent of :func:`eqx_jax.solvers.bundles.solve_spe`, whose outcome is one of these."""
    pool = np.asarray(pool, np.int64)
    offers = splits(pool)
    cont: list[set] = [{(0.0, 0.0, max_turns)}] * len(offers)  # after an offer at max_turns
    for k in range(max_turns, 0, -1):
        mover = (k - 1) % 2
        counter = _choose(cont, mover)
        if k == 1:
            return counter
        factor = discount ** max(0, k - 2)
        proposer = 1 - mover
        shares0 = offers if proposer == 0 else pool - offers
        accept = np.round(factor * split_values(pool, values, shares0), _DIGITS)
        cont = [_choose([{(float(a[0]), float(a[1]), k)}, counter], mover) for a in accept]
    raise AssertionError("unreachable")


def clear_instances(max_turns: int = MAX_TURNS, discount: float = DISCOUNT,
                    num: int = NUM_INSTANCES, seed: int = SELECTION_SEED) -> np.ndarray:
    """(num, 9) rows ``pool, values0, values1``: the first ``num`` of OpenSpiel's valid
    instances, in a seeded random order, whose SPE outcome is unique (:func:`spe_outcomes`)."""
    rows = valid_instances()
    order = np.random.default_rng(seed).permutation(len(rows))
    out = []
    for i in order:
        pool, vals = rows[i, :3], rows[i, 3:].reshape(2, NUM_ITEM_TYPES)
        if len(spe_outcomes(pool, vals, max_turns, discount)) == 1:
            out.append(rows[i])
            if len(out) == num:
                break
    return np.asarray(out, np.int64)


# ---------------------------------------------------------------------------- the quality run
#: Greedy-play keys kept in the JSON rows (eqx_jax.references.bundles_spe_distance and
#: eqx_jax.simulate.summarize_game).
KEEP = ("deal_rate", "mean_rounds", "spe_turn", "spe_agreement_share", "spe_returns_share",
        "spe_agreement_instances", "spe_returns_instances", "spe_turn_match", "pareto_optimal",
        "efficiency", "supplier_reward", "spe_supplier_return", "retailer_reward",
        "spe_retailer_return")


def instance_rows(config: PPOConfig, params: dict, episodes: int, seed: int = 1
                  ) -> list[dict[str, Any]]:
    """Per instance of ``config``'s table: the SPE (split, turn, values) and what the greedy
    trained pair plays (its first episode of that instance: greedy play with no chance end is
    the same every time), and the share of its episodes on the SPE split and returns."""
    env, p = config.make_env(), config.env_params
    sup, ret = (resolve_policy(config, params, name, role, True)
                for name, role in zip(default_sides(config), env.agents, strict=True))
    record = jax.jit(lambda k: play_batch(k, p, sup, ret, episodes, env))(jax.random.key(seed))
    rec = {k: np.asarray(v) for k, v in record.items()}
    spes = bundles_instance_spes(p, rec["instance"])
    rows = []
    for i, spe in spes.items():
        mine = rec["instance"] == i
        first = int(np.argmax(mine))
        one = bundles_spe_distance({k: v[mine] for k, v in rec.items()}, p)
        table = np.asarray(p.table)[i]
        rows.append({
            "instance": i, "pool": table[:3].tolist(), "values": table[3:].reshape(2, 3).tolist(),
            "spe_split": spe.shares[0].tolist(), "spe_turn": spe.turn,
            "spe_values": spe.values.tolist(),
            "played_deal": bool(rec["deal"][first] > 0.5),
            "played_split": [int(rec[f"supplier_items_{k}"][first]) for k in range(3)],
            "played_turn": int(rec["round"][first]),
            "played_values": [float(rec["supplier_reward"][first]),
                              float(rec["retailer_reward"][first])],
            "episodes": int(mine.sum()), "spe_agreement_share": one["spe_agreement_share"],
            "spe_returns_share": one["spe_returns_share"]})
    return rows


def run(out_dir: str | Path, quick: bool = False, steps: int | None = None,
        episodes: int = 10_000) -> tuple[list[dict[str, Any]], str]:
    """Train the config, evaluate greedily; write ``bundles.json`` / ``bundles.md`` to
    ``out_dir`` and return (the JSON rows, the Markdown table). ``quick``: 300,000 training
    steps and 2,000 episodes (a smoke run)."""
    d = load_config_file(CONFIG)
    if quick:
        d["total_timesteps"], episodes = 300_000, 2_000
    elif steps:
        d["total_timesteps"] = steps
    config = PPOConfig.from_dict(d)
    summary, train_s, params, ev = train_and_evaluate(
        config, Path("runs/quality_bundles") / ("quick" if quick else "full"), episodes)
    per_instance = instance_rows(config, params, episodes)
    row = {"setting": f"max_turns {d['env']['max_turns']}, discount {d['env']['discount']}, "
                      f"prob_end {d['env']['prob_end']}, {len(per_instance)} instances",
           "config": CONFIG, "train_steps": config.total_timesteps, "train_wall_s": train_s,
           "env_steps_per_s": summary["env_steps_per_s"], "episodes": episodes,
           "discrete_head": getattr(config, "discrete_head", None),
           "greedy": {k: ev["greedy"].get(k) for k in KEEP},
           "stochastic": {k: ev["stochastic"].get(k) for k in KEEP},
           "instances_at_spe_split": float(np.mean([r["spe_agreement_share"] == 1.0
                                                    for r in per_instance])),
           "instances_at_spe_returns": float(np.mean([r["spe_returns_share"] == 1.0
                                                      for r in per_instance])),
           "per_instance": per_instance}
    rows = [row]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    machine = {"device": str(jax.devices()[0]), "cores": len(os.sched_getaffinity(0))}
    (out / "bundles.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                 indent=2, default=str))
    table = markdown(rows)
    (out / "bundles.md").write_text(table)
    return rows, table


def markdown(rows: list[dict[str, Any]]) -> str:
    """The summary table, then each instance: SPE vs greedy play."""
    head = ("| setting | train steps | instances at the SPE split (returns) | episodes at the "
            "SPE split (returns) | deal rate | turn (SPE) | Pareto optimal | supplier / "
            "retailer return (SPE) |\n|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        g = r["greedy"]
        lines.append(
            f"| {r['setting']} | {r['train_steps']:,} | "
            f"{100 * r['instances_at_spe_split']:.0f} % ({100 * r['instances_at_spe_returns']:.0f}"
            f" %) | {100 * g['spe_agreement_share']:.1f} % ({100 * g['spe_returns_share']:.1f} %)"
            f" | {g['deal_rate']:.3f} | {g['mean_rounds']:.2f} ({g['spe_turn']:.2f}) | "
            f"{g['pareto_optimal']:.3f} | {g['supplier_reward']:.2f} / {g['retailer_reward']:.2f}"
            f" ({g['spe_supplier_return']:.2f} / {g['spe_retailer_return']:.2f}) |")
    out = head + "\n".join(lines) + "\n"
    for r in rows:
        out += ("\n| instance | SPE split (player 0 keeps) | SPE values | played split | "
                "played values | at the SPE |\n|---|---|---|---|---|---|\n")
        for x in r["per_instance"]:
            inst = " ".join(",".join(str(v) for v in part)
                            for part in (x["pool"], *x["values"]))
            split = _items(x["played_split"]) if x["played_deal"] else "no deal"
            at = ("yes" if x["spe_agreement_share"] == 1.0 else
                  "same returns" if x["spe_returns_share"] == 1.0 else "no")
            out += (f"| `{inst}` | {_items(x['spe_split'])} at turn {x['spe_turn']} | "
                    f"{x['spe_values'][0]:g} / {x['spe_values'][1]:g} | {split} at turn "
                    f"{x['played_turn']} | {x['played_values'][0]:.4g} / "
                    f"{x['played_values'][1]:.4g} | {at} |\n")
    return out


def _items(x) -> str:
    return "(" + ", ".join(str(int(v)) for v in x) + ")"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/bench/game_quality")
    p.add_argument("--quick", action="store_true", help="300k training steps (a smoke run)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: the config's)")
    a = p.parse_args()
    print(run(a.out, a.quick, a.steps)[1])


if __name__ == "__main__":
    main()
