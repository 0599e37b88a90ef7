"""Training jobs: the queue and the workers that run them (routes: :mod:`serve.routers.jobs`).

``POST /agent/train`` validates the request (:mod:`serve.job_config`: the bounds of every
field, the founding design's keys mapped to ``PPOConfig``'s), checks the caller's quota
(``max_jobs_per_user`` queued + running), stores a ``queued`` job and returns at once. A
bounded number of workers (``max_concurrent_jobs``) run each job as a separate process,
``python -m eqx_jax.cli train --config <json> --out <data_dir>/jobs/<id> --json``, in a process
group of its own and with only the environment a trainer needs (:func:`trainer_env`: never the
server's ``EQX_*`` secrets), so training never competes with the server's event loop for the
GIL. Progress is the run directory's ``metrics.jsonl`` (one line per PPO update), read
incrementally (:class:`ProgressReader`). A finished job registers its ``policy.eqx`` as a policy
whose id is the job id.

Stopping a trainer (cancel, the ``job_max_wall_s`` limit, server shutdown) sends SIGTERM to its
process group, then SIGKILL after ``job_stop_grace_s`` seconds. Each trainer's pid, process
group and fingerprint (start time and command line) are kept in ``<data_dir>/jobs/<id>.trainer
.json`` while it runs: a server killed with SIGKILL leaves its trainers running, and the next
start-up stops each one that is still that trainer, and marks its job ``interrupted``.

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
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
from anyio import to_thread
from sqlalchemy import select, update

from serve.db import Database, Job, utcnow
from serve.job_config import ALGORITHMS
from serve.schemas import TrainRequest
from serve.settings import Settings

if TYPE_CHECKING:
    from eqx_jax.ppo import PPOConfig

log = logging.getLogger("eqx.serve.jobs")

__all__ = ["ALGORITHMS", "JobManager", "ProgressReader", "QuotaExceeded", "build_config",
           "trainer_env"]

#: Job states that hold a slot of the owner's quota (and can be cancelled).
ACTIVE = ("queued", "running")
#: Seconds between progress reads (and wall-time checks) of a running job.
PROGRESS_POLL_S = 1.0
#: The most bytes of metrics.jsonl read per poll (the rest waits for the next one).
MAX_READ_BYTES = 1 << 20
#: Environment variables a trainer inherits: by name, and by prefix (JAX/XLA, the BLAS and
#: OpenMP thread knobs, CUDA, locale). Nothing else: the server's secrets stay in the server.
TRAINER_ENV_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
    "PYTHONPATH", "PYTHONHASHSEED", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "SYSTEMROOT"})
TRAINER_ENV_PREFIXES = ("LC_", "JAX_", "XLA_", "OMP_", "MKL_", "OPENBLAS_", "CUDA_", "NVIDIA_",
                        "TF_CPP_")
INTERRUPTED = "the server stopped while this job was running"


class QuotaExceeded(Exception):
    """The caller already has ``max_jobs_per_user`` queued or running jobs."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


#: The server's settings a trainer does share: the compilation cache's (eqx_jax.compile_cache),
#: so that ``eqx serve --no-compile-cache`` reaches its trainers too. No secret among them.
TRAINER_EQX_NAMES = frozenset({"EQX_COMPILE_CACHE", "EQX_COMPILE_CACHE_DIR"})


def trainer_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a trainer process: the allowed variables of ``environ`` (no other
    ``EQX_*`` one than :data:`TRAINER_EQX_NAMES`, nor ``DATABASE_URL``), unbuffered output."""
    env = {k: v for k, v in environ.items()
           if k in TRAINER_EQX_NAMES
           or (not k.startswith("EQX_")
               and (k in TRAINER_ENV_NAMES or k.startswith(TRAINER_ENV_PREFIXES)))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ProgressReader:
    """Reads a growing ``metrics.jsonl`` incrementally: each :meth:`poll` reads only the bytes
    after the last read (at most :data:`MAX_READ_BYTES`), counts the complete lines and keeps
    the last one; a partial last line waits for its end."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0  # bytes of the file consumed so far
        self.lines = 0  # complete JSON lines seen
        self.last: dict[str, Any] | None = None
        self._partial = b""

    def poll(self) -> bool:
        """Read what is new; whether a complete line arrived."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read(MAX_READ_BYTES)
        except OSError:
            return False
        if not data:
            return False
        self.offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > MAX_READ_BYTES:  # not a metrics line: drop it
            self._partial = b""
        seen = False
        for raw in complete:
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError:
                continue
            if isinstance(row, dict):
                self.lines, self.last, seen = self.lines + 1, row, True
        return seen


# ------------------------------------------------------------------ trainer processes
def fingerprint(pid: int) -> dict[str, Any]:
    """What identifies a running process beyond its (reusable) pid."""
    p = psutil.Process(pid)
    return {"pid": pid, "pgid": os.getpgid(pid), "create_time": p.create_time(),
            "cmdline": p.cmdline()}


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_orphan(record: Mapping[str, Any], grace_s: float) -> bool:
    """Stop the process group of ``record`` (a :func:`fingerprint`) if its leader is still that
    process (same start time, command line and group); whether it was stopped. Blocking."""
    try:
        p = psutil.Process(int(record["pid"]))
        same = (abs(p.create_time() - float(record["create_time"])) < 0.05
                and p.cmdline() == list(record["cmdline"])
                and os.getpgid(p.pid) == int(record["pgid"]))
    except (psutil.Error, OSError, KeyError, TypeError, ValueError):
        return False
    if not same or not _alive(p):
        return False
    pgid = int(record["pgid"])
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait_s
        while _alive(p) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _alive(p):
            break
    return True


async def stop_group(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM to a trainer's process group, SIGKILL to what is left after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the leader if it ignored SIGTERM, or its children
    await proc.wait()


def die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL when the parent dies (PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def log_tail(path: Path, lines: int = 5, max_bytes: int = 4096) -> str:
    """The last ``lines`` lines of a log file (reading at most its last ``max_bytes``)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - max_bytes))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


class JobManager:
    """A queue of job ids and ``max_concurrent_jobs`` workers that run them as processes."""

    def __init__(self, db: Database, settings: Settings, *, worker_id: str | None = None,
                 trainer: bool | None = None, bus: Any = None):
        self.db = db
        #: Reaches the ``eqx worker`` running a job (scale-out).
        self.bus = bus
        self.settings = settings
        #: The process whose trainers these are (stored on each job it claims).
        self.worker_id = worker_id
        #: Jobs go through the Redis queue (:mod:`serve.job_queue`) rather than this process's.
        self.remote = settings.scale_out
        #: Whether this process runs trainers: the one-process server, or ``eqx worker``.
        self.trainer = (not self.remote) if trainer is None else trainer
        self.pool: Any = None
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.cancelled: set[str] = set()  # ids cancelled while queued or running
        self._workers: list[asyncio.Task] = []
        self.jobs_dir = settings.data_dir / "jobs"
        #: Several workers share the database (see :meth:`_recover`).
        self.shared = settings.scale_out

    def _orphaned_here(self, job_id: str) -> bool:
        """A job recorded in this data directory whose trainer has stopped."""
        try:
            record = json.loads(self._pid_path(job_id).read_text())
        except (OSError, ValueError):
            return False
        try:
            p = psutil.Process(record["pid"])
            return not (_alive(p) and fingerprint(p.pid) == record)
        except (psutil.Error, KeyError):
            return True

    def _pid_path(self, job_id: str) -> Path:
        return self.jobs_dir / f"{job_id}.trainer.json"

    async def start(self) -> None:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        if self.remote:
            from serve.job_queue import open_pool

            self.pool = await open_pool(self.settings.redis_url or "")
            return  # the trainers are `eqx worker` processes, fed by the queue
        queued = await to_thread.run_sync(self._recover)
        for job_id in queued:
            self.queue.put_nowait(job_id)
        self._workers = [asyncio.create_task(self._worker(), name=f"job-worker-{i}")
                         for i in range(self.settings.max_concurrent_jobs)]

    def _recover(self) -> list[str]:
        """After a restart: jobs left ``running`` lost their server; their trainers, if still
        running (a SIGKILLed server), are stopped, and the jobs marked ``interrupted``. Queued
        ones are queued again, oldest first (each runs once: a worker claims a job by moving it
        from ``queued`` to ``running``).

        With several workers (``shared``) only the jobs whose trainer record is in this data
        directory and whose trainer is no longer running are ended: a running trainer may be a
        sibling worker's, and a job without a record here runs on another machine."""
        with self.db.session() as s:
            running = list(s.scalars(select(Job.id).where(Job.status == "running")))
        for job_id in running:
            if self.shared and not self._orphaned_here(job_id):
                continue
            path, error = self._pid_path(job_id), INTERRUPTED
            with contextlib.suppress(OSError, ValueError):
                record = json.loads(path.read_text())
                if stop_orphan(record, self.settings.job_stop_grace_s):
                    error += f"; its trainer (pid {record['pid']}) was stopped at start-up"
                    log.warning("stopped the orphaned trainer of job %s (pid %s)", job_id,
                                record["pid"])
            path.unlink(missing_ok=True)
            self._transition(job_id, ("running",), status="interrupted", finished_at=utcnow(),
                             error=error)
        with self.db.session() as s:
            return list(s.scalars(select(Job.id).where(Job.status == "queued")
                                  .order_by(Job.created_at)))

    async def shutdown(self) -> None:
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.aclose()

    def summary(self) -> dict[str, Any]:
        return {"queued": self.queue.qsize(), "running": len(self.procs),
                "max_concurrent": self.settings.max_concurrent_jobs}

    # ------------------------------------------------------------------ submit / cancel
    def estimate_minutes(self, total_steps: int) -> float:
        s = self.settings
        return round((s.job_overhead_s + total_steps / s.job_steps_per_s) / 60.0, 2)

    def _retry_after_s(self, jobs: Iterable[Job]) -> float:
        """Seconds until the first of ``jobs`` (the caller's active ones) should be done."""
        now, waits = utcnow(), []
        for j in jobs:
            if j.started_at is not None:
                elapsed = (now - j.started_at).total_seconds()
                waits.append(j.estimated_duration_minutes * 60.0 - elapsed)
        return min(3600.0, max(1.0, min(waits, default=self.settings.job_overhead_s)))

    def submit(self, user_id: int, agent_type: str, algorithm: str,
               config: PPOConfig) -> Job:
        """Store a ``queued`` job (blocking: call it from a worker thread; then
        :meth:`enqueue` it). :class:`QuotaExceeded` if the user has ``max_jobs_per_user``
        queued or running jobs."""
        job_id = str(uuid.uuid4())
        job = Job(id=job_id, user_id=user_id, status="queued", agent_type=agent_type,
                  algorithm=algorithm, config=config.to_dict(),
                  run_dir=str((self.jobs_dir / job_id).resolve()),
                  estimated_duration_minutes=self.estimate_minutes(
                      config.total_timesteps * config.num_seeds),
                  total_updates=config.num_updates, created_at=utcnow())
        cap = self.settings.max_jobs_per_user
        with self.db.write() as s:  # one writer: two requests cannot both take the last slot
            active = list(s.scalars(select(Job).where(Job.user_id == user_id,
                                                      Job.status.in_(ACTIVE))))
            if len(active) >= cap:
                raise QuotaExceeded(
                    f"job quota reached: at most {cap} queued or running training jobs per "
                    "user (EQX_MAX_JOBS_PER_USER); cancel one or wait for one to finish",
                    self._retry_after_s(active))
            s.add(job)
        return job

    async def enqueue(self, job_id: str) -> None:
        """Hand a stored ``queued`` job to the trainers: this process's, or the Redis queue's
        (``eqx worker``)."""
        if self.remote:
            from serve.job_queue import enqueue

            await enqueue(self.pool, job_id)
        else:
            self.queue.put_nowait(job_id)

    def get(self, job_id: str) -> Job | None:
        """A job's row (blocking)."""
        with self.db.session() as s:
            return s.get(Job, job_id)

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job: ``cancelled`` in the database, and a running
        trainer's process group stopped before this returns. False if the job was no longer
        queued or running."""
        ok = await to_thread.run_sync(functools.partial(
            self._transition, job_id, ACTIVE, status="cancelled", finished_at=utcnow(),
            error="cancelled"))
        if not ok:
            return False
        if self.remote and self.bus is not None:
            await self._stop_remote(job_id)
            return True
        await self.stop_trainer(job_id)
        return True

    async def stop_trainer(self, job_id: str) -> bool:
        """Stop this process's trainer of a cancelled job (before returning); whether one
        ran here."""
        self.cancelled.add(job_id)
        proc = self.procs.get(job_id)
        if proc is not None:
            await stop_group(proc, self.settings.job_stop_grace_s)
        return proc is not None

    async def _stop_remote(self, job_id: str) -> None:
        """Ask the ``eqx worker`` running a cancelled job to stop its trainer now (else it sees
        the cancel on its next progress read, within a second)."""
        from serve.bus import RemoteError, WorkerGone

        job = await to_thread.run_sync(self.get, job_id)
        if job is None or not job.worker_id:
            return
        with contextlib.suppress(WorkerGone, RemoteError):
            await self.bus.call(job.worker_id, "stop_job", {"job_id": job_id},
                                timeout_s=self.settings.job_stop_grace_s + 10)

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
                    self._transition, job_id, ACTIVE, status="failed", finished_at=utcnow(),
                    error=f"{type(e).__name__}: {e}"[:1000]))
            finally:
                self.cancelled.discard(job_id)

    def _transition(self, job_id: str, from_states: Iterable[str], **values: Any) -> bool:
        """Update a job only if it is in one of ``from_states`` (so a cancel and the end of a
        run cannot overwrite each other); whether it was."""
        with self.db.session() as s:
            res = s.execute(update(Job).where(Job.id == job_id,
                                              Job.status.in_(tuple(from_states)))
                            .values(**values))
            return res.rowcount > 0

    def _progress(self, job_id: str, reader: ProgressReader) -> bool:
        """Store the updates done and the latest update's metrics, when new lines arrived.
        Whether the job is still ``running`` in the database (False: cancelled, possibly
        through another worker, which cannot reach this trainer)."""
        with self.db.session() as s:
            if reader.poll():
                s.execute(update(Job).where(Job.id == job_id).values(
                    updates_done=reader.lines, last_metrics=reader.last))
            return s.scalar(select(Job.status).where(Job.id == job_id)) == "running"

    async def _spawn(self, job: Job) -> asyncio.subprocess.Process:
        """Start the trainer of ``job`` in a new process group; record its fingerprint."""
        cfg_path = self.jobs_dir / f"{job.id}.config.json"
        cfg_path.write_text(json.dumps(job.config))
        cmd = [sys.executable, "-m", "eqx_jax.cli", "train", "--out", job.run_dir, "--json"]
        from eqx_jax.train import checkpoint_path  # the core's rule of a complete checkpoint

        if checkpoint_path(Path(job.run_dir)) is not None:
            cmd.append("--resume")  # a retry: the run's saved config, from its checkpoint
        else:
            cmd += ["--config", str(cfg_path)]
        # A trainer of `eqx worker` dies with it, so that the worker that takes the job over
        # never races a trainer still writing the run directory.
        extra = {"preexec_fn": die_with_parent} if self.remote else {}
        with open(self.jobs_dir / f"{job.id}.log", "ab") as log_file:  # the child keeps its fd
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.PIPE, stderr=log_file,
                env=trainer_env(os.environ), start_new_session=True, **extra)
        with contextlib.suppress(psutil.Error, OSError):  # it may already have exited
            self._pid_path(job.id).write_text(json.dumps(fingerprint(proc.pid)))
        return proc

    async def _supervise(self, job: Job, proc: asyncio.subprocess.Process) -> tuple[str, bytes]:
        """Wait for the trainer, reading its progress every second; stop it past the wall-time
        limit. Returns the outcome (``exited``, ``cancelled``, ``timeout``) and its stdout."""
        out_task = asyncio.create_task(proc.stdout.read())
        reader = ProgressReader(Path(job.run_dir) / "metrics.jsonl")
        deadline = time.monotonic() + self.settings.job_max_wall_s
        outcome = "exited"
        try:
            while proc.returncode is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    outcome = "timeout"
                    await stop_group(proc, self.settings.job_stop_grace_s)
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), min(PROGRESS_POLL_S, left))
                if (not await to_thread.run_sync(self._progress, job.id, reader)
                        and proc.returncode is None):
                    self.cancelled.add(job.id)
                    await stop_group(proc, self.settings.job_stop_grace_s)
            out = await out_task
        finally:
            out_task.cancel()
        await to_thread.run_sync(self._progress, job.id, reader)
        if job.id in self.cancelled:
            outcome = "cancelled"
        return outcome, out

    async def _run(self, job_id: str) -> None:
        if not await to_thread.run_sync(functools.partial(
                self._transition, job_id, ("queued",), status="running",
                started_at=utcnow(), worker_id=self.worker_id, attempts=Job.attempts + 1)):
            return  # unknown, or cancelled while queued, or another worker's already
        job = await to_thread.run_sync(self.get, job_id)
        if job is None:
            return
        proc = await self._spawn(job)
        self.procs[job_id] = proc
        try:
            if job_id in self.cancelled:  # cancelled between the transition and the spawn
                await stop_group(proc, self.settings.job_stop_grace_s)
            outcome, out = await self._supervise(job, proc)
        except asyncio.CancelledError:  # shutdown: stop the trainer and say so
            await asyncio.shield(stop_group(proc, self.settings.job_stop_grace_s))
            if self.remote:  # an `eqx worker` stopping: another one resumes the job
                await asyncio.shield(self._hand_over(job))
            else:
                await asyncio.shield(to_thread.run_sync(functools.partial(
                    self._transition, job_id, ("running",), status="interrupted",
                    finished_at=utcnow(), error=INTERRUPTED)))
            raise
        finally:
            self.procs.pop(job_id, None)
            self._pid_path(job_id).unlink(missing_ok=True)
        if await to_thread.run_sync(self._finish, job, proc.returncode, outcome, out):
            await self.enqueue(job_id)

    async def _hand_over(self, job: Job) -> None:
        if await to_thread.run_sync(self.retry_or_fail, job, "its worker was stopped"):
            await self.enqueue(job.id)

    def retry_or_fail(self, job: Job, why: str) -> bool:
        """A trainer that did not finish (killed by a signal, or its worker died): the job is
        queued again, to resume from its last checkpoint, while it has attempts left
        (``job_max_attempts``), else failed with the reason. Whether it was queued again."""
        limit = self.settings.job_max_attempts
        if job.attempts < limit:
            log.warning("job %s: %s; retrying from its last checkpoint (attempt %d of %d)",
                        job.id, why, job.attempts + 1, limit)
            return self._transition(job.id, ("running",), status="queued", worker_id=None,
                                    error=f"{why}; retried from its last checkpoint")
        self._transition(job.id, ("running",), status="failed", finished_at=utcnow(),
                         error=f"{why}, after {job.attempts} attempt(s) "
                               "(EQX_JOB_MAX_ATTEMPTS)")
        return False

    def _finish(self, job: Job, returncode: int | None, outcome: str, out: bytes) -> bool:
        """Record how the trainer ended; register the policy of a run that completed. True
        when the job was queued again (a trainer killed by a signal)."""
        end = {"finished_at": utcnow()}
        if outcome == "cancelled":
            return False
        if outcome == "exited" and returncode is not None and returncode < 0:
            return self.retry_or_fail(job, f"its trainer was killed by signal {-returncode}")
        if outcome == "timeout":
            limit = f"{self.settings.job_max_wall_s:g}"
            self._transition(job.id, ("running",), status="failed", **end, error=(
                f"stopped: the job ran longer than the wall-time limit of {limit} s "
                "(EQX_JOB_MAX_WALL_S)"))
            return False
        if returncode != 0:
            tail = log_tail(self.jobs_dir / f"{job.id}.log")
            self._transition(job.id, ("running",), status="failed", **end,
                             error=f"eqx train exited with {returncode}: {tail}"[-1000:])
            return False
        try:
            summary = json.loads(out.decode() or "{}")
        except ValueError:
            summary = {}
        from serve.policies import register

        current = self.get(job.id)
        if current is None or current.status != "running":
            return False  # cancelled as it finished
        # The policy exists before the job says "completed", so a client that sees the status
        # can play it at once.
        register(self.db, job.id, Path(job.run_dir), source="job", algorithm=job.algorithm,
                 job_id=job.id)
        self._transition(job.id, ("running",), status="completed", **end, policy_id=job.id,
                         updates_done=summary.get("updates", job.total_updates), error=None)
        log.info("job %s finished; policy %s registered", job.id, job.id)
        return False


def build_config(req: TrainRequest, settings: Settings) -> tuple[
        PPOConfig | None, tuple[str, str] | None]:
    """``(PPOConfig, None)`` for a valid request, else ``(None, (field, message))``. The
    request's bounds (:mod:`serve.job_config`) are already checked; this maps the founding
    design's keys, checks what only PPOConfig knows (e.g. that ``num_minibatches`` divides the
    batch) and this server's ``max_job_timesteps``."""
    from eqx_jax.ppo import PPOConfig, sides_for_agent_type

    try:
        config = PPOConfig.from_dict(sides_for_agent_type(
            req.agent_type, req.training_config.ppo_fields()))
    except (ValueError, TypeError) as e:
        return None, ("training_config", str(e))
    if config.total_timesteps * config.num_seeds > settings.max_job_timesteps:
        return None, ("training_config", "total_timesteps x num_seeds must be at most "
                                         f"{settings.max_job_timesteps} on this server "
                                         f"(EQX_MAX_JOB_TIMESTEPS), got "
                                         f"{config.total_timesteps * config.num_seeds}")
    return config, None
