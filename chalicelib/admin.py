"""The operator's surface (contract §4): ``/admin`` (the dashboard page) and ``/admin/api/*`` (JSON,
behind ``Authorization: Bearer <ADMIN_TOKEN>``, compared in constant time).

Lists page through GSIs with opaque cursors and never scan a table; queue counts come from SQS's own
attributes.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from chalice import Blueprint, Response

from chalicelib import aws, credentials, dispatch, operations, queues
from chalicelib.consumer import CONSUMERS
from chalicelib.errors import FilaError, InvalidPayload, NotFound, Unauthorized, error_response, json_response
from chalicelib.jobs import Job, jobs
from chalicelib.schedules import HOURLY, SYNC_CRM, runs, sync_crm
from chalicelib.settings import settings
from chalicelib.store import events
from chalicelib.sweep import EVERY_MINUTE, sweep

blueprint = Blueprint(__name__)
PAGE = Path(__file__).with_name("dashboard.html")
# name -> (its EventBridge expression, what "run now" runs and the run id it reports)
SCHEDULES: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    SYNC_CRM: (HOURLY.to_string(), lambda: {"run_id": sync_crm()["run_id"]}),
    "recovery-sweep": (EVERY_MINUTE.to_string(),
                       lambda: {"run_id": f"run#{uuid.uuid4().hex[:8]}", "enqueued": sweep()}),
}


def _authorized() -> None:
    header = blueprint.current_request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    valid = credentials.secrets("ADMIN_TOKEN")
    if scheme.lower() != "bearer" or not any(
            hmac.compare_digest(token.encode("utf-8", "surrogatepass"), v.encode()) for v in valid):
        raise Unauthorized("missing or wrong admin token")


def api(path: str, methods: tuple[str, ...] = ("GET",)) -> Any:
    """A JSON admin route: authorised first, FilaErrors mapped to their status codes."""
    def register(view: Any) -> Any:
        def wrapped(**params: str) -> Response:
            try:
                _authorized()
                # Job ids hold '#' and ':' (derived from event ids): clients percent-encode them, and not
                # every gateway decodes path parameters (chalice local does not).
                return json_response(200, view(**{k: unquote(v) for k, v in params.items()}))
            except FilaError as err:
                return error_response(err)
        wrapped.__name__ = view.__name__
        return blueprint.route(f"/admin/api{path}", methods=list(methods))(wrapped)
    return register


@blueprint.route("/admin", methods=["GET"])
def dashboard() -> Response:
    return Response(PAGE.read_text(), status_code=200, headers={"Content-Type": "text/html; charset=utf-8",
                                                                 "Cache-Control": "no-store"})


@api("/queues")
def list_queues() -> dict[str, Any]:
    return {"queues": [queue_counts(name) for name in CONSUMERS]}


def queue_counts(name: str) -> dict[str, Any]:
    sqs = aws.client("sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    main = sqs.get_queue_attributes(QueueUrl=queues.queue_url(name), AttributeNames=names)["Attributes"]
    dead = sqs.get_queue_attributes(QueueUrl=queues.dlq_url(name), AttributeNames=names[:2])["Attributes"]
    return {"name": name, "waiting": int(main["ApproximateNumberOfMessages"]),
            "in_flight": int(main["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(main["ApproximateNumberOfMessagesDelayed"]),
            "dead": sum(int(dead[n]) for n in names[:2])}


@api("/events/{source}/{event_id}")
def show_event(source: str, event_id: str) -> dict[str, Any]:
    event = events.get(source, event_id)
    if event is None:
        raise NotFound(f"no event {source}/{event_id}")
    return {"source": event.source, "event_id": event.event_id, "type": event.type, "status": event.status,
            "received_at": event.received_at, "headers": event.headers,
            "jobs": [job_summary(j) for j in jobs.for_event(event.key)]}


@api("/events/{source}/{event_id}/replay", methods=("POST",))
def replay_event(source: str, event_id: str) -> dict[str, Any]:
    return {"jobs": [job_summary(j) for j in dispatch.replay(source, event_id)]}


@api("/jobs")
def list_jobs() -> dict[str, Any]:
    query = dict(blueprint.current_request.query_params or {})
    try:
        limit = max(1, min(int(query.get("limit", "50")), 200))
        cursor = json.loads(base64.urlsafe_b64decode(query["cursor"])) if query.get("cursor") else None
    except (ValueError, TypeError):
        raise InvalidPayload("limit must be a number and cursor a value from next_cursor") from None
    if query.get("queue") and query["queue"] not in CONSUMERS:
        raise NotFound(f"no queue {query['queue']!r}")
    found, after = jobs.page(status=query.get("status") or None, queue=query.get("queue") or None,
                             limit=limit, cursor=cursor)
    return {"jobs": [job_summary(j) for j in found],
            "next_cursor": base64.urlsafe_b64encode(json.dumps(after).encode()).decode() if after else None}


@api("/jobs/{job_id}")
def show_job(job_id: str) -> dict[str, Any]:
    job = jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job_detail(job)


@api("/jobs/{job_id}/retry", methods=("POST",))
def retry_job(job_id: str) -> dict[str, Any]:
    return job_detail(operations.retry(job_id))


@api("/jobs/{job_id}/promote", methods=("POST",))
def promote_job(job_id: str) -> dict[str, Any]:
    return job_detail(operations.promote(job_id))


@api("/queues/{name}/redrive", methods=("POST",))
def redrive_queue(name: str) -> dict[str, Any]:
    if name not in CONSUMERS:
        raise NotFound(f"no queue {name!r}")
    return {"moved": operations.redrive(name)}


@api("/queues/{name}/retry-failed", methods=("POST",))
def retry_failed(name: str) -> dict[str, Any]:
    if name not in CONSUMERS:
        raise NotFound(f"no queue {name!r}")
    failed, _ = jobs.page(status="failed", queue=name, limit=200)
    return {"retried": [operations.retry(j.job_id).job_id for j in failed]}


@api("/queues/{name}/dlq")
def peek_dlq(name: str) -> dict[str, Any]:
    """The DLQ's messages with their reasons (peeked: they stay in the DLQ)."""
    if name not in CONSUMERS:
        raise NotFound(f"no queue {name!r}")
    response = aws.client("sqs").receive_message(
        QueueUrl=queues.dlq_url(name), MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0,
        MessageAttributeNames=["All"])
    out = []
    for message in response.get("Messages", []):
        try:
            body = json.loads(message["Body"])
        except ValueError:
            body = {"raw": message["Body"][:500]}
        reason = message.get("MessageAttributes", {}).get("reason", {}).get("StringValue") \
            or body.get("reason") or "moved by SQS after maxReceiveCount"
        out.append({"message_id": message["MessageId"], "job_id": body.get("job_id"),
                    "name": body.get("name"), "reason": reason, "attempts": len(body.get("attempts", []))})
    return {"queue": name, "messages": out}


@api("/schedules")
def list_schedules() -> dict[str, Any]:
    return {"schedules": [{"name": name, "expression": expression,
                           "runs": runs(name, limit=5)}
                          for name, (expression, _) in SCHEDULES.items()]}


@api("/schedules/{name}/run", methods=("POST",))
def run_schedule(name: str) -> dict[str, Any]:
    if name not in SCHEDULES:
        raise NotFound(f"no schedule {name!r}; expected one of {sorted(SCHEDULES)}")
    return SCHEDULES[name][1]()


@api("/local/outbox")
def outbox() -> dict[str, Any]:
    """Local stage only: the emails SES on the emulator would have sent."""
    if not settings().is_local:
        raise NotFound("the outbox exists in the local stage only")
    import urllib3

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    data = json.loads(urllib3.request("GET", f"{endpoint}/moto-api/data.json", timeout=5).data)
    messages = data.get("ses", {}).get("Message", [])
    return {"emails": [{"to": m["destinations"].get("ToAddresses", []), "subject": m.get("subject"),
                        "html": m.get("body"), "id": m.get("id")} for m in messages[-50:]][::-1]}


def job_summary(job: Job) -> dict[str, Any]:
    return {"job_id": job.job_id, "name": job.name, "queue": job.queue, "status": job.status,
            "attempts": job.attempts_made, "last_error": _last_error(job), "result": job.result,
            "created_at": job.created_at, "event_key": job.event_key}


def job_detail(job: Job) -> dict[str, Any]:
    return {**job_summary(job), "data": job.data, "options": job.options.to_dict(), "history": job.attempts,
            "parent": job.parent, "updated_at": job.updated_at, "finished_at": job.finished_at,
            "expires_at": job.expires_at}


def _last_error(job: Job) -> str | None:
    if not job.attempts:
        return None
    last = job.attempts[-1]
    return f"{last['error_type']}: {last['message']}"
