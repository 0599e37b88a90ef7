"""``POST /agent/train`` and ``GET /agent/jobs/{id}``: training jobs (:mod:`serve.jobs`)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter

from serve.db import Job
from serve.deps import API, CurrentUser, ServicesDep, field_error, not_found
from serve.jobs import ALGORITHMS, build_config
from serve.schemas import JobStatus, TrainRequest, TrainResponse

router = APIRouter(prefix=f"{API}/agent", tags=["agents"])


@router.post("/train", response_model=TrainResponse, status_code=202,
             responses={422: {"description": "unknown algorithm or invalid training_config"}})
async def train(body: TrainRequest, svc: ServicesDep, user: CurrentUser):
    """Queue a training job (PPO: the eqx_jax trainer, in a separate process)."""
    algorithm = body.algorithm.lower()
    if algorithm not in ALGORITHMS:
        return field_error("algorithm", f"algorithm {body.algorithm!r} is not implemented; "
                                        f"allowed: {', '.join(ALGORITHMS)}")
    config, err = await to_thread.run_sync(build_config, body, svc.settings)
    if err is not None:
        return field_error(*err)
    job = await to_thread.run_sync(svc.jobs.submit, user.user_id, body.agent_type, algorithm,
                                   config)
    svc.jobs.enqueue(job.id)
    return TrainResponse(job_id=job.id, estimated_duration_minutes=job.estimated_duration_minutes)


def job_status(job: Job) -> JobStatus:
    return JobStatus(
        job_id=job.id, status=job.status, agent_type=job.agent_type, algorithm=job.algorithm,
        progress=min(1.0, job.updates_done / job.total_updates) if job.total_updates else 0.0,
        updates_done=job.updates_done, total_updates=job.total_updates,
        estimated_duration_minutes=job.estimated_duration_minutes,
        last_metrics=job.last_metrics, policy_id=job.policy_id, error=job.error,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at)


@router.get("/jobs/{job_id}", response_model=JobStatus)
async def get_job(job_id: str, svc: ServicesDep, user: CurrentUser):
    """A training job's status and progress (updates done / total)."""
    job = await to_thread.run_sync(svc.jobs.get, job_id)
    if job is None or (job.user_id != user.user_id and not user.is_admin):
        raise not_found("job", job_id)
    return job_status(job)
