"""The operator's surface: ``/admin`` (the dashboard page) and ``/admin/api/*`` (JSON, behind
``Authorization: Bearer <ADMIN_TOKEN>``, compared in constant time). docs/contract.md lists the calls.

Lists page through indexes with opaque cursors and never scan a table; queue counts come from SQS's
own attributes.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from chalice import Blueprint, Response

from chalicelib import credentials, dispatch, operations, runtime, schedules, stats
from chalicelib.errors import FilaError, InvalidPayload, NotFound, Unauthorized, error_response, json_response
from chalicelib.events import status_of
from chalicelib.jobs import Job, JobStatus
from chalicelib.resources import lanes
from chalicelib.sweep import EVERY_MINUTE, sweep
from chalicelib.system import JobSystem

blueprint = Blueprint(__name__)
PAGE = Path(__file__).with_name("dashboard.html")
# name -> (its EventBridge expression, what "run now" runs and the run id it reports)
SCHEDULES: dict[str, tuple[str, Callable[[JobSystem], dict[str, Any]]]] = {
    schedules.SYNC_CRM: (schedules.HOURLY.to_string(),
                         lambda system: {"run_id": schedules.sync_crm(system.store)["run_id"]}),
    "recovery-sweep": (EVERY_MINUTE.to_string(),
                       lambda system: {"run_id": f"run#{uuid.uuid4().hex[:8]}", "enqueued": sweep(system)}),
}


def _authorized() -> None:
    header = blueprint.current_request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    valid = credentials.secrets("ADMIN_TOKEN")
    if scheme.lower() != "bearer" or not any(
            hmac.compare_digest(token.encode("utf-8", "surrogatepass"), v.encode()) for v in valid):
        raise Unauthorized("missing or wrong admin token")


def api(path: str, methods: tuple[str, ...] = ("GET",)) -> Any:
    """A JSON admin route: authorised first, FilaErrors mapped to their status codes; the view gets the
    job system and the path parameters."""
    def register(view: Any) -> Any:
        def wrapped(**params: str) -> Response:
            try:
                _authorized()
                # Job ids hold '#' and ':' (derived from event ids): clients percent-encode them, and not
                # every gateway decodes path parameters (chalice local does not).
                decoded = {k: unquote(v) for k, v in params.items()}
                return json_response(200, view(runtime.system(), **decoded))
            except FilaError as err:
                return error_response(err)
        wrapped.__name__ = view.__name__
        return blueprint.route(f"/admin/api{path}", methods=list(methods))(wrapped)
    return register


def _query() -> dict[str, str]:
    return dict(blueprint.current_request.query_params or {})


def _lane(name: str) -> str:
    if name not in lanes():
        raise NotFound(f"no queue {name!r}; expected one of {sorted(lanes())}")
    return name


@blueprint.route("/admin", methods=["GET"])
def dashboard() -> Response:
    return Response(PAGE.read_text(), status_code=200, headers={"Content-Type": "text/html; charset=utf-8",
                                                                 "Cache-Control": "no-store"})


@api("/queues")
def list_queues(system: JobSystem) -> dict[str, Any]:
    """Each lane's counts from SQS; ``dead`` from the job records (failed and not retried: a retried
    job's message left in the DLQ is not dead), ``dlq_messages`` what the DLQ holds."""
    paused, dead = system.lanes.paused(lanes()), system.jobs.failed_by_lane()
    out = []
    for name, lane in lanes().items():
        counts = system.queues.counts(name)
        limit = lane.rate_limit
        out.append({"name": name, "waiting": counts.waiting, "in_flight": counts.in_flight,
                    "delayed": counts.delayed, "dead": dead.get(name, 0),
                    "dlq_messages": system.queues.dlq_depth(name), "paused": name in paused,
                    "rate_limit": {"max": limit.max, "per_seconds": limit.per_seconds} if limit else None})
    return {"queues": out}


@api("/queues/{name}/pause", methods=("POST",))
def pause_queue(system: JobSystem, name: str) -> dict[str, Any]:
    return operations.set_paused(system, _lane(name), True)


@api("/queues/{name}/resume", methods=("POST",))
def resume_queue(system: JobSystem, name: str) -> dict[str, Any]:
    return operations.set_paused(system, _lane(name), False)


@api("/queues/{name}/clean", methods=("POST",))
def clean_queue(system: JobSystem, name: str) -> dict[str, Any]:
    query = _query()
    return operations.clean(system, _lane(name), query.get("status", ""), query.get("older_than", ""),
                            _number(query, "limit", operations.CLEAN_PER_CALL, 1, operations.CLEAN_PER_CALL))


@api("/queues/{name}/stats")
def queue_stats(system: JobSystem, name: str) -> dict[str, Any]:
    """Per minute over the last ``minutes`` (default 60): completed, failed, retried, depth, and wait
    and run time percentiles (see chalicelib/stats.py for how they are counted)."""
    minutes = _number(_query(), "minutes", 60, 1, 24 * 60)
    until = time.time()
    since = until - 60 * (minutes - 1)
    records = system.lanes.minutes(_lane(name), since, until)
    return {"queue": name, **stats.series(records, since, minutes)}


def _number(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(query.get(name, default))
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidPayload(f"{name} must be a whole number from {low} to {high}")
    return value


@api("/events/{source}/{event_id}")
def show_event(system: JobSystem, source: str, event_id: str) -> dict[str, Any]:
    event = system.events.get(source, event_id)
    if event is None:
        raise NotFound(f"no event {source}/{event_id}")
    jobs = system.jobs.of_event(event.key)
    return {"source": event.source, "event_id": event.event_id, "type": event.type,
            "status": status_of(event.status, jobs), "received_at": event.received_at,
            "headers": event.headers, "jobs": [job_summary(j) for j in jobs]}


@api("/events/{source}/{event_id}/replay", methods=("POST",))
def replay_event(system: JobSystem, source: str, event_id: str) -> dict[str, Any]:
    return {"jobs": [job_summary(j) for j in dispatch.replay(system, source, event_id)]}


@api("/jobs")
def list_jobs(system: JobSystem) -> dict[str, Any]:
    query = _query()
    status, queue = query.get("status") or None, query.get("queue") or None
    if status is not None and status not in set(JobStatus):
        raise InvalidPayload(f"status must be one of {sorted(JobStatus)}")
    if queue is not None:
        _lane(queue)
    try:
        limit = max(1, min(int(query.get("limit", "50")), 200))
        found, after = system.jobs.page(status=status, queue=queue, limit=limit,
                                        cursor=query.get("cursor") or None)
    except (ValueError, TypeError, KeyError):
        raise InvalidPayload("limit must be a number and cursor a value from next_cursor") from None
    return {"jobs": [job_summary(j) for j in found], "next_cursor": after}


@api("/jobs/{job_id}")
def show_job(system: JobSystem, job_id: str) -> dict[str, Any]:
    job = system.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job_detail(job)


@api("/jobs/{job_id}/retry", methods=("POST",))
def retry_job(system: JobSystem, job_id: str) -> dict[str, Any]:
    return job_detail(operations.retry(system, job_id))


@api("/jobs/{job_id}/promote", methods=("POST",))
def promote_job(system: JobSystem, job_id: str) -> dict[str, Any]:
    return job_detail(operations.promote(system, job_id))


@api("/queues/{name}/redrive", methods=("POST",))
def redrive_queue(system: JobSystem, name: str) -> dict[str, Any]:
    return {"moved": operations.redrive(system, _lane(name))}


@api("/queues/{name}/retry-failed", methods=("POST",))
def retry_failed(system: JobSystem, name: str) -> dict[str, Any]:
    failed, _ = system.jobs.page(status=JobStatus.FAILED, queue=_lane(name), limit=200)
    return {"retried": [operations.retry(system, j.job_id).job_id for j in failed]}


@api("/queues/{name}/dlq")
def peek_dlq(system: JobSystem, name: str) -> dict[str, Any]:
    """The DLQ's messages with their reasons (peeked: they stay in the DLQ), each with its job's status
    now: ``stale`` when the job has moved on (retried, replayed), so it is not dead."""
    messages = [(m, str(m.body.get("job_id") or "")) for m in system.queues.peek_dlq(_lane(name), 10)]
    ids = [job_id for _, job_id in messages if job_id]
    now = {job.job_id: job.status for job in system.jobs.get_many(ids)} if ids else {}
    return {"queue": name, "messages": [
        {"message_id": m.message_id, "job_id": m.body.get("job_id"), "name": m.body.get("name"),
         "reason": m.reason, "attempts": len(m.body.get("attempts", [])), "job_status": now.get(job_id),
         "stale": bool(job_id) and now.get(job_id) != JobStatus.FAILED}
        for m, job_id in messages]}


@api("/schedules")
def list_schedules(system: JobSystem) -> dict[str, Any]:
    return {"schedules": [{"name": name, "expression": expression,
                           "runs": schedules.runs(system.store, name, 5)}
                          for name, (expression, _) in SCHEDULES.items()]}


@api("/schedules/{name}/run", methods=("POST",))
def run_schedule(system: JobSystem, name: str) -> dict[str, Any]:
    if name not in SCHEDULES:
        raise NotFound(f"no schedule {name!r}; expected one of {sorted(SCHEDULES)}")
    return SCHEDULES[name][1](system)


def job_summary(job: Job) -> dict[str, Any]:
    return {"job_id": job.job_id, "name": job.name, "queue": job.queue, "status": job.status,
            "attempts": job.attempts_made, "last_error": _last_error(job), "result": job.result,
            "created_at": job.created_at, "event_key": job.event_key}


def job_detail(job: Job) -> dict[str, Any]:
    return {**job_summary(job), "data": job.data, "options": job.options.to_dict(), "history": job.attempts,
            "parent": job.parent, "children": job.children, "updated_at": job.updated_at,
            "finished_at": job.finished_at, "expires_at": job.expires_at, "progress": job.percent,
            "logs": job.logs}


def _last_error(job: Job) -> str | None:
    if not job.attempts:
        return None
    last = job.attempts[-1]
    return f"{last['error_type']}: {last['message']}"
