"""``POST /agent/train``, ``GET /agent/jobs/{id}`` and ``DELETE /agent/jobs/{id}``: training
jobs (:mod:`serve.jobs`)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, HTTPException

from serve.auth import Principal
from serve.db import Job
from serve.deps import (
    API,
    CurrentUser,
    ServicesDep,
    error_responses,
    field_error,
    not_found,
    too_many,
)
from serve.jobs import ACTIVE, QuotaExceeded, build_config
from serve.schemas import JobStatus, TrainRequest, TrainResponse

router = APIRouter(prefix=f"{API}/agent", tags=["agents"])


@router.post("/train", response_model=TrainResponse, status_code=202,
             responses=error_responses(401, 413, 422, 429))
async def train(body: TrainRequest, svc: ServicesDep, user: CurrentUser):
    """Queue a training job (PPO: the eqx_jax trainer, in a separate process). Every
    ``training_config`` value is bounded (422 naming the field and its range); more than
    ``EQX_MAX_JOBS_PER_USER`` queued or running jobs of the caller: 429 with Retry-After."""
    config, err = await to_thread.run_sync(build_config, body, svc.settings)
    if err is not None:
        return field_error(*err)
    try:
        job = await to_thread.run_sync(svc.jobs.submit, user.user_id, body.agent_type,
                                       body.algorithm, config)
    except QuotaExceeded as e:
        raise too_many(str(e), e.retry_after_s) from None
    await svc.jobs.enqueue(job.id)
    return TrainResponse(job_id=job.id, estimated_duration_minutes=job.estimated_duration_minutes)


def job_status(job: Job) -> JobStatus:
    return JobStatus(
        job_id=job.id, status=job.status, agent_type=job.agent_type, algorithm=job.algorithm,
        progress=min(1.0, job.updates_done / job.total_updates) if job.total_updates else 0.0,
        updates_done=job.updates_done, total_updates=job.total_updates,
        estimated_duration_minutes=job.estimated_duration_minutes,
        last_metrics=job.last_metrics, policy_id=job.policy_id, error=job.error,
        attempts=job.attempts or 0, created_at=job.created_at, started_at=job.started_at,
        finished_at=job.finished_at)


async def _visible_job(svc: ServicesDep, job_id: str, user: Principal) -> Job:
    """The job if the caller may see it (owner or admin), else 404 (ids do not leak)."""
    job = await to_thread.run_sync(svc.jobs.get, job_id)
    if job is None or (job.user_id != user.user_id and not user.is_admin):
        raise not_found("job", job_id)
    return job


@router.get("/jobs/{job_id}", response_model=JobStatus, responses=error_responses(401, 404, 429))
async def get_job(job_id: str, svc: ServicesDep, user: CurrentUser):
    """A training job's status and progress (updates done / total)."""
    return job_status(await _visible_job(svc, job_id, user))


@router.delete("/jobs/{job_id}", response_model=JobStatus,
               responses=error_responses(401, 404, 409, 429))
async def cancel_job(job_id: str, svc: ServicesDep, user: CurrentUser):
    """Cancel a queued or running job (owner or admin): a running trainer's process group is
    stopped (SIGTERM, then SIGKILL after ``EQX_JOB_STOP_GRACE_S``) before the answer; the job
    is ``cancelled``. A job that already finished: 409."""
    job = await _visible_job(svc, job_id, user)
    if job.status not in ACTIVE or not await svc.jobs.cancel(job_id):
        job = await _visible_job(svc, job_id, user)
        raise HTTPException(409, f"job {job_id!r} is already {job.status}; only queued or "
                                 "running jobs can be cancelled")
    return job_status(await _visible_job(svc, job_id, user))
