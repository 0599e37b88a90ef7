"""The trained policies: ``GET /agent/policies``, ``/agent/{id}/policy`` (metadata and
performance) and ``/agent/{id}/download`` (the policy file) (:mod:`serve.policies`)."""

from __future__ import annotations

from pathlib import Path

from anyio import to_thread
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from eqx_jax.env import make_params, params_to_dict
from serve import policies
from serve.db import Policy
from serve.deps import API, CurrentUser, Services, ServicesDep, error_responses, not_found
from serve.schemas import PolicyInfo

router = APIRouter(prefix=f"{API}/agent", tags=["agents"])


def policy_info(pol: Policy) -> PolicyInfo:
    cfg = pol.config or {}
    try:
        game = params_to_dict(make_params(**(cfg.get("env") or {})))
    except (ValueError, TypeError):
        game = {}
    return PolicyInfo(
        agent_id=pol.id, agent_type=pol.agent_type, algorithm=pol.algorithm.upper(),
        roles=policies.policy_roles(pol), source=pol.source, trained_at=pol.trained_at,
        performance_metrics=pol.performance_metrics or {}, game=game, config=cfg,
        job_id=pol.job_id, download_url=f"{API}/agent/{pol.id}/download")


async def _policy_or_404(svc: Services, agent_id: str) -> Policy:
    pol = await to_thread.run_sync(policies.get_policy, svc.db, agent_id)
    if pol is None:
        raise not_found("agent", agent_id)
    return pol


@router.get("/policies", response_model=list[PolicyInfo])
async def list_agents(svc: ServicesDep, user: CurrentUser):
    """Every registered trained policy (classic negotiators are always available by name)."""
    return [policy_info(p) for p in await to_thread.run_sync(policies.list_policies, svc.db)]


@router.get("/{agent_id}/policy", response_model=PolicyInfo, responses=error_responses(404))
async def get_policy(agent_id: str, svc: ServicesDep, user: CurrentUser):
    """A trained policy's metadata and performance metrics."""
    return policy_info(await _policy_or_404(svc, agent_id))


@router.get("/{agent_id}/download", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "the policy file"}, **error_responses(404)})
async def download_policy(agent_id: str, svc: ServicesDep, user: CurrentUser):
    """The exported policy file (``eqx_jax.train.export_policy`` format; ``eqx import`` it)."""
    pol = await _policy_or_404(svc, agent_id)
    if not Path(pol.path).is_file():
        raise HTTPException(404, f"the policy file of agent {agent_id!r} is missing")
    return FileResponse(pol.path, media_type="application/octet-stream",
                        filename=f"{agent_id}.eqx")
