"""What an operator can do to jobs and lanes (the admin API and the CLI call these).

Jobs that the worker failed carry ``"redrive": true`` in their DLQ message, so the worker starts their
attempts over when the message comes back, however it was moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib import clock, worker
from chalicelib.errors import Conflict, InvalidPayload, NotFound
from chalicelib.jobs import Job, JobStatus
from chalicelib.system import JobSystem

CLEANABLE = (JobStatus.COMPLETED, JobStatus.FAILED)
CLEAN_PER_CALL = 500  # records one call removes (an API call stays well inside its timeout)


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


def set_paused(system: JobSystem, lane: str, paused: bool) -> dict[str, object]:
    """Stop (or restart) consuming ``lane``: its mapping first (on AWS), then the flag everyone reads.
    Messages stay in the queue meanwhile, and its depth keeps counting."""
    if system.mappings is not None:
        system.mappings.set_enabled(lane, not paused)
    system.lanes.set_paused(lane, paused, time.time())
    return {"name": lane, "paused": paused}


def clean(system: JobSystem, lane: str, status: str, older_than: str, limit: int = CLEAN_PER_CALL
          ) -> dict[str, object]:
    """Remove the lane's ``status`` jobs that finished more than ``older_than`` seconds ago, up to
    ``limit`` of them; ``more`` says whether to call again (the CLI does, showing progress)."""
    if status not in CLEANABLE:
        raise InvalidPayload(f"status must be one of {[str(s) for s in CLEANABLE]}, not {status!r}")
    try:
        age = int(older_than)
    except (TypeError, ValueError):
        age = -1
    if age < 0:
        raise InvalidPayload(f"older_than must be a whole number of seconds >= 0, not {older_than!r}")
    removed, more = system.jobs.clean(lane, JobStatus(status), clock.iso(time.time() - age), limit)
    return {"removed": removed, "more": more}
