"""The policy registry: trained policy files the server can play, with their metadata.

At startup the run directory ``settings.default_policy_dir`` (``runs/default``, what ``make run``
trains) is registered as policy ``"default"`` when it holds a ``policy.eqx``; training jobs
register theirs under new ids. Performance metrics come from the run's ``summary.json`` (the
last PPO update's rollout statistics: deal rate, mean rounds, nash distance, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select

from eqx_jax.env import AGENTS, params_to_dict
from serve.db import Database, Policy, utcnow

log = logging.getLogger("eqx.serve.policies")

#: summary.json["last_update"] keys reported as performance metrics (renamed where the founding
#: design uses another name).
_METRIC_KEYS = {"nash_distance": "nash_distance", "deal_rate": "deal_rate",
                "mean_rounds": "average_rounds", "mean_price": "mean_price",
                "pareto_score": "pareto_score", "walk_rate": "walk_rate",
                "timeout_rate": "timeout_rate", "return_supplier": "return_supplier",
                "return_retailer": "return_retailer", "supplier_share": "supplier_share"}


def read_run(run_dir: Path) -> dict[str, Any]:
    """Config, roles, metrics and training time of a run directory (or a lone policy file)."""
    from eqx_jax.train import load_policy

    policy_file = run_dir / "policy.eqx" if run_dir.is_dir() else run_dir
    config, _ = load_policy(policy_file)
    roles = list(config.trained_roles)
    metrics: dict[str, Any] = {}
    summary_path = policy_file.parent / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
            last = summary.get("last_update") or {}
            metrics = {new: last[old] for old, new in _METRIC_KEYS.items() if old in last}
            metrics.update({"env_steps": summary.get("env_steps"),
                            "wall_time_s": summary.get("wall_time_s"),
                            "finished": summary.get("finished"),
                            "source": "summary.json: last PPO update's rollouts (stochastic "
                                      "play on the training game)"})
        except (OSError, ValueError):
            log.warning("unreadable %s", summary_path)
    trained_at = dt.datetime.fromtimestamp(policy_file.stat().st_mtime, dt.UTC)
    return {"path": str(policy_file.resolve()), "config": config.to_dict(),
            "game": params_to_dict(config.env_params), "roles": roles,
            "agent_type": "both" if len(roles) == 2 else roles[0],
            "performance_metrics": metrics, "trained_at": trained_at}


def register(db: Database, policy_id: str, run_dir: Path, *, source: str,
             algorithm: str = "ppo", job_id: str | None = None) -> Policy:
    """Insert or refresh a policy row from a run directory."""
    info = read_run(run_dir)
    with db.session() as s:
        pol = s.get(Policy, policy_id) or Policy(id=policy_id, created_at=utcnow())
        pol.path = info["path"]
        pol.source = source
        pol.algorithm = algorithm
        pol.agent_type = info["agent_type"]
        pol.config = info["config"]
        pol.performance_metrics = info["performance_metrics"]
        pol.trained_at = info["trained_at"]
        pol.job_id = job_id
        s.add(pol)
        return pol


def register_default(db: Database, run_dir: Path) -> str | None:
    """Register ``run_dir`` as ``"default"`` when it has a policy file; returns a status line."""
    if not (run_dir / "policy.eqx").is_file():
        return None
    try:
        register(db, "default", run_dir, source="run")
    except Exception as e:  # noqa: BLE001 - a broken run must not stop the server
        log.warning("could not register %s as the default policy: %s", run_dir, e)
        return f"error: {e}"
    return str(run_dir)


def policy_roles(pol: Policy) -> list[str]:
    if pol.agent_type == "both":
        return list(AGENTS)
    return [pol.agent_type]


def list_policies(db: Database) -> list[Policy]:
    with db.session() as s:
        return list(s.scalars(select(Policy).order_by(Policy.created_at)))


def get_policy(db: Database, policy_id: str) -> Policy | None:
    with db.session() as s:
        return s.get(Policy, policy_id)
