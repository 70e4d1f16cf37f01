"""What an operator can do to jobs and lanes (the admin API and the CLI call these).

Jobs that the worker failed carry ``"redrive": true`` in their DLQ message, so the worker starts their
attempts over when the message comes back, however it was moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib import worker
from chalicelib.errors import Conflict, NotFound
from chalicelib.jobs import Job, JobStatus
from chalicelib.system import JobSystem


def retry(system: JobSystem, job_id: str) -> Job:
    """A failed job queued again, attempts starting over. 404 if unknown, 409 if not failed."""
    return _wake_if(system, job_id, JobStatus.FAILED, lambda: worker.restart(system, job_id, time.time()))


def promote(system: JobSystem, job_id: str) -> Job:
    """A delayed job made due now. 404 if unknown, 409 if not delayed."""
    return _wake_if(system, job_id, JobStatus.DELAYED, lambda: system.jobs.promote(job_id, time.time()))


def _wake_if(system: JobSystem, job_id: str, status: JobStatus, change: Callable[[], bool]) -> Job:
    job = system.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    if job.status != status or not change():
        raise Conflict(f"job {job_id!r} is {job.status}, not {status}")
    changed = system.jobs.get(job_id) or job
    system.wake_all([changed])
    return changed


def redrive(system: JobSystem, lane: str, progress: Callable[[int], None] | None = None) -> int:
    """Move every message of ``lane``'s DLQ back to it; how many were moved."""
    return system.queues.redrive(lane, progress)
