"""Running one job message: claim, run, settle.

- Claim: one conditional write makes the job ``active`` under a lock that outlives this invocation
  (a crashed worker's lock lapses and the message, back after its visibility timeout, is claimed
  again); the consumer makes the claims of a batch's records that start at once in one write. A
  finished job, one held by a live worker, or one still waiting out its backoff is never run by a
  duplicate message: that message comes back when the job could be run. A job dispatched on the lane
  its event's message arrived on is created claimed instead, and run there (``run_claimed``).
- Success: one write records the result and creates the chained jobs (ids derived from this one);
  then they are woken. That completion record is what makes a re-delivered message a no-op.
- Failure: the attempt (error type, message, trimmed traceback, time) is appended, the job is
  ``delayed`` until its retry and the message's visibility becomes the backoff. After the last attempt,
  or on ``Permanent``, the worker itself sends the job to its lane's DLQ with the reason and history
  and marks it ``failed`` (SQS's maxReceiveCount stays only a safety net). A worker killed between the
  two leaves the job claimed, so the next attempt sends it again: at least once into the DLQ; once a
  redriven copy completes it, the other finds it completed and is dropped.

The job record is the idempotency record (Powertools' idempotency utility would add a second table
and a second write per job for what the claim and the completion write already guarantee).
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass
from typing import Any

from chalicelib import clock
from chalicelib.jobs import Job, JobStatus, Permanent, RetryAfter, child_id
from chalicelib.logs import logger
from chalicelib.queues import MAX_DELAY_SECONDS, MAX_VISIBILITY_SECONDS
from chalicelib.resources import RateLimit
from chalicelib.system import JobSystem

LOCK_MARGIN_SECONDS = 5
TRACE_LINES = 12
REPORT_EVERY = 1.0  # seconds
PACE_AT_MOST = 1.0  # seconds a start waits in the worker for its turn under its lane's rate limit
TAKES_AT_MOST = 3  # turns a start past its window's limit waits for in place before a new message


@dataclass(frozen=True)
class Delivery:
    """One SQS record as the worker sees it."""

    receipt_handle: str
    body: dict[str, Any]
    lane: str
    sent_at: float  # epoch seconds


def run(system: JobSystem, delivery: Delivery, remaining_ms: float, now: float | None = None,
        claimed: Job | None = None) -> bool:
    """Process one job message; True when the message is done (delete it), False to see it again.
    ``claimed``: its job, already claimed with its batch's (``goes_to_claim``)."""
    now = time.time() if now is None else now
    if claimed is not None:
        return run_claimed(system, claimed, delivery, now)
    body, job_id = delivery.body, str(delivery.body["job_id"])
    not_before = float(body.get("not_before", 0))
    if not_before > now:
        return later(system, delivery, not_before - now, now, until=not_before)
    limit = system.limits.get(delivery.lane)
    if limit is not None:
        asked = now
        granted, wait, now = take_turn(system, delivery.lane, limit, now, remaining_ms)
        if not granted:
            return over_limit(system, delivery, wait, now)
        remaining_ms -= (now - asked) * 1000  # waited for its turn: the invocation's end came closer
    if body.get("redrive"):  # back from the DLQ: its attempts start over
        restart(system, job_id, now)
    job = system.jobs.claim(job_id, lock_until(now, remaining_ms), now)
    if job is None:
        return _unclaimable(system, delivery, job_id, now)
    return run_claimed(system, job, delivery, now)


def take_turn(system: JobSystem, lane: str, limit: RateLimit, now: float, remaining_ms: float
              ) -> tuple[bool, float, float]:
    """A start under the lane's rate limit: (granted, seconds to its turn if not, the clock at the start).

    A turn at most PACE_AT_MOST away is waited for here, less the take's own round trip: a granted start's
    place in its window, and a start past the window's limit, which takes again at the turn it was told
    (TAKES_AT_MOST times at most). A new message for it would cost three SQS calls and come back on a
    whole second. A longer wait, or one the invocation has no time for, is not: a granted start starts
    now, a refused one gets a new message."""
    tries, left = 0, remaining_ms / 1000 - LOCK_MARGIN_SECONDS
    while True:
        tries += 1
        asked = time.monotonic()
        granted, wait = system.lanes.take(lane, limit, now)
        if wait > min(PACE_AT_MOST, left) or (not granted and tries == TAKES_AT_MOST):
            return granted, wait, now
        time.sleep(max(0.0, wait - (time.monotonic() - asked)))
        now, left = now + wait, left - wait
        if granted:
            return True, 0.0, now


def goes_to_claim(system: JobSystem, body: Any, lane: str, now: float) -> bool:
    """Whether ``run`` takes this job message straight to its claim: not held back, not paced, not back
    from the DLQ (so its claim may be made together with its batch's)."""
    try:
        return body.get("kind") == "job" and isinstance(body.get("job_id"), str) \
            and float(body.get("not_before", 0)) <= now \
            and system.limits.get(lane) is None and not body.get("redrive")
    except (AttributeError, TypeError, ValueError):
        return False


def lock_until(now: float, remaining_ms: float) -> float:
    """Until when a claim holds: past this invocation's end, so only a dead worker's claim lapses."""
    return now + remaining_ms / 1000 + LOCK_MARGIN_SECONDS


def run_claimed(system: JobSystem, job: Job, delivery: Delivery | None, now: float) -> bool:
    """Run the attempt this worker claimed and settle it; True when its message is done with.
    ``delivery`` None: the job was created claimed (dispatch runs it) and has no message of its own yet,
    so a retry is a new message."""
    log = {"job_id": job.job_id, "job": job.name, "attempt": job.attempts_made, "event_key": job.event_key}
    if job.attempts_made > job.options.attempts:  # the last attempt's worker died mid-run
        _fail(system, job, RuntimeError("the worker stopped during the last attempt"), "", now)
        return True
    system.emit("claimed", job)
    job.store = system.store  # for handlers that keep records of their own (contacts)
    job.reporter = Reporter(system, now)
    spec = system.handlers.get(job.name)
    try:
        if spec is None:
            raise Permanent(f"no handler is registered for job {job.name!r}")
        result = spec.run(job)
        children = [system.new_job(name, data, job_id=child_id(job.job_id, name), parent=job.job_id,
                                   event_key=job.event_key, **options)
                    for name, data, options in job.follow_ups]
    except Exception as err:
        trace = "".join(traceback.format_exception(err)[-TRACE_LINES:])
        if isinstance(err, Permanent) or job.attempts_made >= job.options.attempts:
            _fail(system, job, err, trace, time.time())
            logger.warning("job failed", extra={**log, "error": type(err).__name__})
            return True
        delay = err.seconds if isinstance(err, RetryAfter) else job.options.backoff.seconds(job.attempts_made)
        settled = time.time()
        system.jobs.settle(job, JobStatus.DELAYED, attempt=_attempt(job, err, trace), due_at=settled + delay,
                           now=settled)
        logger.info("job retry", extra={**log, "error": type(err).__name__, "delay": delay})
        system.emit("retried", job, err)
        if delivery is None:
            job.status, job.due_at = JobStatus.DELAYED, settled + delay
            system.wake_all([job], now=settled)
            return True
        return later(system, delivery, delay, now)
    if not system.jobs.settle(job, JobStatus.COMPLETED, result=result, keep=job.options.keep_completed,
                              children=children, now=time.time()):
        logger.warning("job completed after its claim was lost", extra=log)
        return True
    job.status, job.result, job.children = JobStatus.COMPLETED, result, [c.job_id for c in children]
    system.wake_all(children)  # if this fails, the message comes back and _unclaimable wakes them
    logger.info("job completed", extra=log)
    system.emit("completed", job)
    return True


class Reporter:
    """Stores a running job's progress and log lines: with its settle (no write of their own) unless the
    handler has run for REPORT_EVERY seconds, then at most once per REPORT_EVERY while it runs."""

    def __init__(self, system: JobSystem, claimed_at: float) -> None:
        self.system, self.last = system, claimed_at

    def __call__(self, job: Job) -> None:
        now = time.time()
        if now - self.last < REPORT_EVERY:
            return
        self.last = now
        lines = list(job.unsent)
        if self.system.jobs.report(job, job.percent, lines):
            job.logs += lines
            del job.unsent[:len(lines)]


def over_limit(system: JobSystem, delivery: Delivery, wait: float, now: float) -> bool:
    """A job over its lane's rate limit waits, without spending an attempt: a new message that comes back
    when its turn is due (a changed visibility would count a receive toward the DLQ)."""
    seconds = math.ceil(wait)
    body = {**delivery.body, "not_before": now + wait} if seconds > MAX_DELAY_SECONDS else delivery.body
    system.queues.send(delivery.lane, body, delay=min(seconds, MAX_DELAY_SECONDS))
    return True


def restart(system: JobSystem, job_id: str, now: float) -> bool:
    """A failed job back to ``waiting``, attempts starting over (retry, redrive)."""
    if not system.jobs.reset(job_id, now):
        return False
    job = system.jobs.get(job_id)
    if job is not None:
        system.emit("restarted", job)
    return True


def later(system: JobSystem, delivery: Delivery, seconds: float, now: float,
          until: float | None = None) -> bool:
    """See this message again in ``seconds`` (at ``until``): its visibility if SQS allows it, else a new
    message that carries ``not_before`` (a hop; delays beyond 12 h hop several times)."""
    seconds = max(0, round(seconds))
    if seconds <= MAX_VISIBILITY_SECONDS - (now - delivery.sent_at) - 60:
        system.queues.change_visibility(delivery.lane, delivery.receipt_handle, seconds)
        return False
    system.queues.send(delivery.lane, {**delivery.body, "not_before": until or now + seconds},
                       delay=min(seconds, MAX_DELAY_SECONDS))
    return True


def _unclaimable(system: JobSystem, delivery: Delivery, job_id: str, now: float) -> bool:
    job = system.jobs.get(job_id)
    if job is None:
        reason = f"no job {job_id!r} exists (expired or never created)"
        system.queues.to_dlq(delivery.lane, delivery.body, reason)
        return True
    if job.status == JobStatus.COMPLETED:
        # the worker that completed it may have died before it woke the jobs it chained
        system.wake_unclaimed(job.children)
        logger.info("duplicate delivery dropped", extra={"job_id": job_id, "status": job.status})
        return True
    if job.status == JobStatus.FAILED:
        logger.info("duplicate delivery dropped", extra={"job_id": job_id, "status": job.status})
        return True
    # held by another worker (whose lock may lapse: it may have died), or waiting out its backoff
    wake_at = job.lock_until if job.status == JobStatus.ACTIVE else job.due_at
    return later(system, delivery, max(1.0, (wake_at or now + 60) - now + 1), now)


def _attempt(job: Job, err: BaseException, trace: str) -> dict[str, Any]:
    return {"n": job.attempts_made, "at": clock.iso(), "error_type": type(err).__name__,
            "message": str(err)[:2000], "traceback": trace[-8000:]}


def _fail(system: JobSystem, job: Job, err: BaseException, trace: str, now: float) -> None:
    attempt = _attempt(job, err, trace)
    reason = f"{attempt['error_type']}: {attempt['message']}"[:500]
    system.queues.to_dlq(job.queue, {"kind": "job", "job_id": job.job_id, "name": job.name, "redrive": True,
                                     "reason": reason, "attempts": [*job.attempts, attempt]}, reason)
    if system.jobs.settle(job, JobStatus.FAILED, attempt=attempt, keep=job.options.keep_failed, now=now):
        job.status = JobStatus.FAILED
        system.emit("failed", job, err)
