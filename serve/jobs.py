"""Training jobs: the queue and the workers that run them (routes: :mod:`serve.routers.jobs`).

``POST /agent/train`` validates the request (algorithm ``ppo`` only; ``training_config`` through
``eqx_jax.ppo.PPOConfig.from_dict``), stores a ``queued`` job and returns at once. A bounded
number of workers (``max_concurrent_jobs``) run each job as a separate process,
``python -m eqx_jax.cli train --config <json> --out <data_dir>/jobs/<id> --json``, so training
never competes with the server's event loop for the GIL. Progress is the run directory's
``metrics.jsonl`` (one line per PPO update). A finished job registers its ``policy.eqx`` as a
policy whose id is the job id.

``estimated_duration_minutes`` = (``job_overhead_s`` + total env steps / ``job_steps_per_s``) / 60,
with the defaults 30 s (start-up and XLA compilation) and 40,000 env steps/s (the trainer's
measured default-config throughput on the 2-core CI machine: 25,000-50,000, README "Training").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from sqlalchemy import select, update

from serve.db import Database, Job, utcnow
from serve.schemas import TrainRequest
from serve.settings import Settings

if TYPE_CHECKING:
    from eqx_jax.ppo import PPOConfig

log = logging.getLogger("eqx.serve.jobs")

ALGORITHMS = ("ppo",)


class JobManager:
    """A queue of job ids and ``max_concurrent_jobs`` workers that run them as processes."""

    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._workers: list[asyncio.Task] = []
        self.jobs_dir = settings.data_dir / "jobs"

    async def start(self) -> None:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        queued = await to_thread.run_sync(self._recover)
        for job_id in queued:
            self.queue.put_nowait(job_id)
        self._workers = [asyncio.create_task(self._worker(), name=f"job-worker-{i}")
                         for i in range(self.settings.max_concurrent_jobs)]

    def _recover(self) -> list[str]:
        """After a restart: running jobs died with the old process (``interrupted``); queued
        ones are queued again, oldest first."""
        with self.db.session() as s:
            s.execute(update(Job).where(Job.status == "running").values(
                status="interrupted", finished_at=utcnow(),
                error="the server stopped while this job was running"))
            return list(s.scalars(select(Job.id).where(Job.status == "queued")
                                  .order_by(Job.created_at)))

    async def shutdown(self) -> None:
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def summary(self) -> dict[str, Any]:
        return {"queued": self.queue.qsize(), "running": len(self.procs),
                "max_concurrent": self.settings.max_concurrent_jobs}

    # ------------------------------------------------------------------ submit
    def estimate_minutes(self, total_steps: int) -> float:
        s = self.settings
        return round((s.job_overhead_s + total_steps / s.job_steps_per_s) / 60.0, 2)

    def submit(self, user_id: int, agent_type: str, algorithm: str,
               config: PPOConfig) -> Job:
        """Store a ``queued`` job (blocking: call it from a worker thread; then
        :meth:`enqueue` it)."""
        job_id = str(uuid.uuid4())
        job = Job(id=job_id, user_id=user_id, status="queued", agent_type=agent_type,
                  algorithm=algorithm, config=config.to_dict(),
                  run_dir=str((self.jobs_dir / job_id).resolve()),
                  estimated_duration_minutes=self.estimate_minutes(
                      config.total_timesteps * config.num_seeds),
                  total_updates=config.num_updates, created_at=utcnow())
        with self.db.session() as s:
            s.add(job)
        return job

    def enqueue(self, job_id: str) -> None:
        """Hand a stored job to the workers (on the event loop)."""
        self.queue.put_nowait(job_id)

    def get(self, job_id: str) -> Job | None:
        """A job's row (blocking)."""
        with self.db.session() as s:
            return s.get(Job, job_id)

    # ------------------------------------------------------------------ run
    async def _worker(self) -> None:
        while True:
            job_id = await self.queue.get()
            try:
                await self._run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - one bad job must not stop the worker
                log.exception("job %s crashed", job_id)
                await to_thread.run_sync(functools.partial(
                    self._set, job_id, status="failed", finished_at=utcnow(),
                    error=f"{type(e).__name__}: {e}"[:1000]))

    def _set(self, job_id: str, **values: Any) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**values))

    def _progress(self, job: Job) -> None:
        """Read metrics.jsonl: updates done and the latest update's metrics."""
        path = Path(job.run_dir) / "metrics.jsonl"
        try:
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        except OSError:
            return
        if not lines:
            return
        try:
            last = json.loads(lines[-1])
        except ValueError:  # a line being written right now
            last = json.loads(lines[-2]) if len(lines) > 1 else None
        self._set(job.id, updates_done=len(lines), last_metrics=last)

    async def _run(self, job_id: str) -> None:
        job = await to_thread.run_sync(self.get, job_id)
        if job is None or job.status != "queued":
            return
        run_dir = Path(job.run_dir)
        cfg_path = self.jobs_dir / f"{job_id}.config.json"
        cfg_path.write_text(json.dumps(job.config))
        log_path = self.jobs_dir / f"{job_id}.log"
        await to_thread.run_sync(lambda: self._set(job_id, status="running",
                                                   started_at=utcnow()))
        cmd = [sys.executable, "-m", "eqx_jax.cli", "train", "--config", str(cfg_path),
               "--out", str(run_dir), "--json"]
        with open(log_path, "wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.PIPE, stderr=log_file,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
            self.procs[job_id] = proc
            try:
                out_task = asyncio.create_task(proc.stdout.read())
                while proc.returncode is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(proc.wait(), 1.0)
                    await to_thread.run_sync(self._progress, job)
                out = await out_task
            except asyncio.CancelledError:
                # Server shutdown: stop the trainer (its process group) and say so.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 5.0)
                await asyncio.shield(to_thread.run_sync(lambda: self._set(
                    job_id, status="interrupted", finished_at=utcnow(),
                    error="the server stopped while this job was running")))
                raise
            finally:
                self.procs.pop(job_id, None)
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            await to_thread.run_sync(lambda: self._set(
                job_id, status="failed", finished_at=utcnow(),
                error=f"eqx train exited with {proc.returncode}: " + " | ".join(tail)[-1000:]))
            return
        from serve.policies import register

        try:
            summary = json.loads(out.decode() or "{}")
        except ValueError:
            summary = {}

        def finish() -> None:
            register(self.db, job_id, run_dir, source="job", algorithm=job.algorithm,
                     job_id=job_id)
            self._progress(job)
            self._set(job_id, status="completed", finished_at=utcnow(), policy_id=job_id,
                      updates_done=summary.get("updates", job.total_updates))

        await to_thread.run_sync(finish)
        log.info("job %s finished; policy %s registered", job_id, job_id)


def build_config(req: TrainRequest, settings: Settings) -> tuple[
        PPOConfig | None, tuple[str, str] | None]:
    """``(PPOConfig, None)`` for a valid request, else ``(None, (field, message))``."""
    from eqx_jax.ppo import PPOConfig, sides_for_agent_type

    try:
        config = PPOConfig.from_dict(sides_for_agent_type(req.agent_type, req.training_config))
    except (ValueError, TypeError) as e:
        return None, ("training_config", str(e))
    if config.total_timesteps * config.num_seeds > settings.max_job_timesteps:
        return None, ("training_config", "total_timesteps x num_seeds must be at most "
                                         f"{settings.max_job_timesteps} on this server")
    return config, None
