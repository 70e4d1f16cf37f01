"""Running one job message: claim, run, settle.

- Claim: one conditional write makes the job ``active`` under a lock that outlives this invocation
  (a crashed worker's lock expires and the message, back after its visibility timeout, is claimed
  again). A job already finished, or held by a live worker, is never run twice.
- Success: follow-ups (chained jobs, with derived ids) are enqueued, then one write records the
  result. That completion record is what makes a re-delivered message a no-op.
- Failure: the attempt (error type, message, trimmed traceback, time) is appended; the message's
  visibility becomes the backoff delay and the record ``delayed``. After the last attempt, or on
  ``Permanent``, the consumer itself sends the job to its queue's DLQ with the reason and history,
  marks it ``failed`` and reports the message done (SQS's maxReceiveCount stays only a safety net).

The job record is the idempotency record (Powertools' idempotency utility would add a second table
and a second write per job for what the claim and the completion write already guarantee).
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from typing import Any

from chalicelib import aws, metrics, queues
from chalicelib.jobs import (
    COMPLETED,
    DELAYED,
    FAILED,
    HANDLERS,
    SQS_MAX_DELAY,
    Job,
    Permanent,
    RetryAfter,
    enqueue,
    jobs,
    now_iso,
)
from chalicelib.logs import logger

MAX_VISIBILITY = 12 * 60 * 60  # SQS: at most 12 h after the message was sent
LOCK_MARGIN_SECONDS = 5
TRACE_LINES = 12


class Hooks:
    """What else follows a job's life (an event's status follows its jobs): override what you need.
    ``completed`` and ``failed`` may run again for the same job (a redelivered message after a worker
    died between the settle and its hooks): make them idempotent."""

    def claimed(self, job: Job) -> None: ...

    def completed(self, job: Job) -> None: ...

    def failed(self, job: Job) -> None: ...

    def restarted(self, job: Job) -> None: ...


HOOKS: list[Hooks] = []


def restart(job_id: str, now: float) -> bool:
    """A failed job back to ``waiting``, attempts starting over (retry, redrive)."""
    if not jobs.reset_failed(job_id, now):
        return False
    job = jobs.get(job_id)
    if job is not None:
        for hook in HOOKS:
            hook.restarted(job)
    return True


@dataclass(frozen=True)
class Delivery:
    """One SQS record as the consumer sees it."""

    receipt_handle: str
    body: dict[str, Any]
    queue: str  # key in infra/resources.json
    sent_at: float  # epoch seconds


def run(delivery: Delivery, remaining_ms: float, now: float | None = None) -> bool:
    """Process one job message; True when the message is done (delete it), False to see it again."""
    now = time.time() if now is None else now
    body = delivery.body
    not_before = float(body.get("not_before", 0))
    if not_before > now:
        return later(delivery, not_before - now, now)
    if body.get("redrive"):  # back from the DLQ: its attempts start over
        restart(str(body["job_id"]), now)
    job = jobs.claim(str(body["job_id"]), remaining_ms / 1000 + LOCK_MARGIN_SECONDS, now)
    if job is None:
        return _unclaimable(delivery, str(body["job_id"]), now)
    log = {"job_id": job.job_id, "job": job.name, "attempt": job.attempts_made, "event_key": job.event_key}
    if job.attempts_made > job.options.attempts:  # the last attempt's worker died mid-run
        _fail(job, RuntimeError("the worker stopped during the last attempt"), "", now)
        return True
    for hook in HOOKS:
        hook.claimed(job)
    spec = HANDLERS.get(job.name)
    try:
        if spec is None:
            raise Permanent(f"no handler is registered for job {job.name!r}")
        result = spec.run(job)
        children = [enqueue(name, data, job_id=f"{job.job_id}>{name}", parent=job.job_id,
                            event_key=job.event_key, retrying=job.attempts_made > 1, **options)
                    for name, data, options in job.follow_ups]
    except Exception as err:
        trace = "".join(traceback.format_exception(err)[-TRACE_LINES:])
        if isinstance(err, Permanent) or job.attempts_made >= job.options.attempts:
            _fail(job, err, trace, time.time())
            logger.warning("job failed", extra={**log, "error": type(err).__name__})
            metrics.record({"job": job.name, "outcome": "failed"}, count="Jobs")
            return True
        delay = err.seconds if isinstance(err, RetryAfter) else job.options.backoff.seconds(job.attempts_made)
        jobs.settle(job, DELAYED, attempt=_attempt(job, err, trace), now=time.time())
        logger.info("job retry", extra={**log, "error": type(err).__name__, "delay": delay})
        metrics.record({"job": job.name, "outcome": "retried"}, count="Jobs")
        return later(delivery, delay, now)
    job.children = [child.job_id for child in children]
    if not jobs.settle(job, COMPLETED, result=result, keep=job.options.keep_completed,
                       children=job.children, now=time.time()):
        logger.warning("job completed after its claim was lost", extra=log)
        return True
    for hook in HOOKS:
        hook.completed(job)
    logger.info("job completed", extra=log)
    metrics.record({"job": job.name, "outcome": "completed"}, count="Jobs")
    return True


def later(delivery: Delivery, seconds: float, now: float) -> bool:
    """See this message again in ``seconds``: its visibility if SQS allows it, else a new message
    that carries ``not_before`` (a hop; delays beyond 12 h hop several times)."""
    seconds = max(0, round(seconds))
    age = now - delivery.sent_at
    if seconds <= MAX_VISIBILITY - age - 60:
        aws.client("sqs").change_message_visibility(
            QueueUrl=queues.queue_url(delivery.queue), ReceiptHandle=delivery.receipt_handle,
            VisibilityTimeout=seconds)
        return False
    message = {**delivery.body, "not_before": now + seconds}
    queues.send(delivery.queue, message, delay_seconds=min(seconds, SQS_MAX_DELAY))
    return True


def _unclaimable(delivery: Delivery, job_id: str, now: float) -> bool:
    job = jobs.get(job_id)
    if job is None:
        to_dlq(delivery.queue, delivery.body, f"no job {job_id!r} exists (expired or never created)")
        return True
    if job.status in (COMPLETED, FAILED):
        # the worker that settled it may have died before its hooks ran: run them again (idempotent)
        for hook in HOOKS:
            hook.completed(job) if job.status == COMPLETED else hook.failed(job)
        logger.info("duplicate delivery dropped", extra={"job_id": job_id, "status": job.status})
        return True
    # another worker holds it: look again once its claim can lapse (it may have died holding it)
    return later(delivery, max(1.0, (job.lock_until or now + 60) - now + 1), now)


def _attempt(job: Job, err: BaseException, trace: str) -> dict[str, Any]:
    return {"n": job.attempts_made, "at": now_iso(), "error_type": type(err).__name__,
            "message": str(err)[:2000], "traceback": trace[-8000:]}


def _fail(job: Job, err: BaseException, trace: str, now: float) -> None:
    attempt = _attempt(job, err, trace)
    reason = f"{attempt['error_type']}: {attempt['message']}"[:500]
    to_dlq(job.queue, {"kind": "job", "job_id": job.job_id, "name": job.name, "redrive": True,
                       "reason": reason, "attempts": [*job.attempts, attempt]}, reason)
    if jobs.settle(job, FAILED, attempt=attempt, keep=job.options.keep_failed, now=now):
        for hook in HOOKS:
            hook.failed(job)


def to_dlq(queue: str, body: dict[str, Any], reason: str) -> None:
    """The consumer's own move to the DLQ, with the reason SQS's redrive would not keep."""
    aws.client("sqs").send_message(
        QueueUrl=queues.dlq_url(queue), MessageBody=json.dumps(body, separators=(",", ":")),
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"}})
