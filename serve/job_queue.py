"""Training jobs on several machines: a queue in Redis (arq) and ``eqx worker`` trainer
processes (scale-out mode, ``REDIS_URL`` set).

``POST /agent/train`` stores the job ``queued`` in the database (the same checks as one
process) and enqueues its id on the arq queue ``eqx:jobs``. An ``eqx worker`` (any machine that
shares the database and the data directory's ``jobs/`` run directories) takes it, claims it in
the database (``queued -> running``, so each job runs once whatever arq does), and runs the same
trainer subprocess and supervision as the one-process server (:class:`serve.jobs.JobManager`):
progress every second, the wall-time limit, a cancel through any API worker (seen on the next
progress read), the policy registered at the end.

Faults: a trainer killed by a signal is started again with ``--resume`` from its last
checkpoint (training resumes bitwise) while the job has attempts left (``job_max_attempts``),
then the job fails with the reason. Each ``eqx worker`` has a heartbeat (:mod:`serve.bus`); its
trainers die with it (``PR_SET_PDEATHSIG``), and the other workers' job reaper queues the jobs of
a worker missing for ``worker_ttl_s`` again (or fails them, out of attempts). Jobs survive a
restart of the API workers: they never ran there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from anyio import to_thread
from sqlalchemy import select

from serve.db import Job

log = logging.getLogger("eqx.serve.job_queue")

#: The arq queue of training jobs.
QUEUE = "eqx:jobs"


async def open_pool(redis_url: str) -> Any:
    """An arq pool on ``redis_url`` (the API's, to enqueue)."""
    from arq import create_pool
    from arq.connections import RedisSettings

    return await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=QUEUE)


async def enqueue(pool: Any, job_id: str) -> None:
    """Queue one run of a stored ``queued`` job (each retry is a new arq job)."""
    await pool.enqueue_job("run_job", job_id, _job_id=f"{job_id}:{uuid.uuid4().hex[:8]}",
                           _queue_name=QUEUE)


async def run_job(ctx: dict[str, Any], job_id: str) -> None:
    """arq's task: run the job's trainer here (a no-op when it is no longer ``queued``)."""
    await ctx["jobs"]._run(job_id)


class JobReaper:
    """Queues again (or fails) the running jobs of ``eqx worker`` processes that died."""

    def __init__(self, jobs: Any, bus: Any, interval_s: float):
        self.jobs, self.bus, self.interval_s = jobs, bus, interval_s
        self.requeued = 0

    def _running_workers(self) -> set[str]:
        with self.jobs.db.session() as s:
            return {w for w in s.scalars(select(Job.worker_id).distinct().where(
                Job.status == "running", Job.worker_id.is_not(None)))}

    def _take_over(self, dead: set[str]) -> list[str]:
        """The jobs of ``dead`` workers queued again (the others failed)."""
        with self.jobs.db.session() as s:
            rows = list(s.scalars(select(Job).where(Job.status == "running",
                                                    Job.worker_id.in_(list(dead)))))
        return [job.id for job in rows
                if self.jobs.retry_or_fail(job, f"its worker {job.worker_id} stopped")]

    async def sweep(self) -> list[str]:
        dead = await self.bus.dead_workers(await to_thread.run_sync(self._running_workers))
        if not dead:
            return []
        ids = await to_thread.run_sync(self._take_over, dead)
        for job_id in ids:
            await self.jobs.enqueue(job_id)
        self.requeued += len(ids)
        return ids

    async def loop(self) -> None:
        from serve.bus import every

        await every(self.interval_s, self.sweep, "job reaper")


async def _startup(ctx: dict[str, Any]) -> None:
    from serve.bus import RedisBus
    from serve.db import Database
    from serve.jobs import JobManager

    settings = ctx["settings"]
    db = Database(settings.db_url, settings.db_pool_size, settings.db_max_overflow)
    await to_thread.run_sync(db.migrate)
    bus = RedisBus(settings.redis_url, ttl_s=settings.worker_ttl_s)
    await bus.start()
    jobs = JobManager(db, settings, worker_id=bus.worker_id, trainer=True, bus=bus)

    async def stop_job(body: dict[str, Any]) -> dict[str, Any]:
        return {"stopped": await jobs.stop_trainer(body["job_id"])}

    bus.handle("stop_job", stop_job)
    await jobs.start()
    reaper = JobReaper(jobs, bus, settings.worker_ttl_s / 2)
    ctx.update(db=db, bus=bus, jobs=jobs, reaper=reaper,
               reaper_task=asyncio.create_task(reaper.loop(), name="job-reaper"))
    log.info("eqx worker %s ready (database %s, %d trainer(s) at once)", bus.worker_id,
             db.engine.url.render_as_string(True), settings.max_concurrent_jobs)


async def _shutdown(ctx: dict[str, Any]) -> None:
    ctx["reaper_task"].cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await ctx["reaper_task"]
    await ctx["jobs"].shutdown()
    await ctx["bus"].stop()
    ctx["db"].dispose()


def run_worker(settings: Any) -> None:
    """``eqx worker``: take training jobs from the queue until SIGINT/SIGTERM (blocking)."""
    from arq.connections import RedisSettings
    from arq.worker import Worker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(
        functions=[run_job], queue_name=QUEUE, redis_settings=RedisSettings.from_dsn(
            settings.redis_url),
        on_startup=_startup, on_shutdown=_shutdown, ctx={"settings": settings},
        max_jobs=settings.max_concurrent_jobs,
        # The wall-time limit is the JobManager's (it stops the trainer and fails the job);
        # arq's own timeout only backs it up.
        job_timeout=settings.job_max_wall_s + settings.job_stop_grace_s + 60,
        max_tries=1, keep_result=0, poll_delay=0.2, handle_signals=True)
    worker.run()
