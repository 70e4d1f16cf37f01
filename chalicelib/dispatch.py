"""Events into jobs, and the event's status following its jobs.

A claimed event gets the jobs its type routes to (``routing.ROUTES``), each with an id derived from
the event, so a re-delivered or swept event message never doubles them; every job retries on its
own, so a flaky CRM never re-sends the Slack message. The event is ``queued`` once its jobs exist,
``processing`` when one starts, ``completed`` when all completed (chained ones included), ``failed``
while one is failed, and back to ``processing`` when that one is retried.
"""

from __future__ import annotations

from typing import Any

from chalicelib import display, worker
from chalicelib.errors import NotFound
from chalicelib.jobs import Job, enqueue
from chalicelib.logs import logger
from chalicelib.routing import Route, route_for
from chalicelib.store import COMPLETED, IGNORED, RECEIVED, Event, events


def take_event(message: dict[str, Any], redelivered: bool = False) -> None:
    """Dispatch a stored event into its jobs; a second message for it adds nothing.

    The counters are set before the jobs exist (a job may finish before this function returns), and
    the jobs are enqueued whenever the event is not finished: their ids are derived from the event,
    so a message redelivered after a failure half-way completes the set instead of doubling it, and
    re-sends the message of any job never claimed (its first send may be what failed). A second
    message that is not a redelivery (the sweep racing a slow send) re-sends nothing.
    """
    event = events.get(message["source"], message["event_id"])
    if event is None:
        logger.warning("event message for an unknown event dropped", extra=message)
        return
    route = route_for(event.type)
    if route is None:
        events.transition(event.key, RECEIVED, IGNORED)
        return
    if event.status == RECEIVED:
        events.start_jobs(event.key, len(route.jobs))
    elif event.status in (COMPLETED, IGNORED):
        return
    _enqueue_jobs(event, route, prefix=event.key, retrying=redelivered)
    logger.info("event dispatched", extra={"source": event.source, "event_id": event.event_id,
                                           "jobs": list(route.jobs)})


def replay(source: str, event_id: str) -> list[Job]:
    """Dispatch a stored event again, as new jobs."""
    event = events.get(source, event_id)
    if event is None:
        raise NotFound(f"no event {source}/{event_id}")
    route = route_for(event.type)
    if route is None:
        return []
    number = events.replay(event.key, len(route.jobs))
    return _enqueue_jobs(event, route, prefix=f"{event.key}:replay-{number}")


def _enqueue_jobs(event: Event, route: Route, prefix: str, retrying: bool = False) -> list[Job]:
    data = {"source": event.source, "event_id": event.event_id, "type": event.type, **facts(event.payload())}
    return [enqueue(name, data, job_id=f"{prefix}:{name}", event_key=event.key, retrying=retrying,
                    priority="high" if route.lane == "high" else None) for name in route.jobs]


def facts(payload: dict[str, Any]) -> dict[str, Any]:
    """What the handlers need, from the shapes Stripe, Shopify and Standard Webhooks send."""
    obj = payload.get("data", {})
    if isinstance(obj, dict) and isinstance(obj.get("object"), dict):
        obj = obj["object"]
    if not isinstance(obj, dict):
        obj = {}
    metadata = _dict(obj.get("metadata"))
    customer = _dict(obj.get("customer"))
    email = _first(obj, "receipt_email", "customer_email", "email") or _first(payload, "email") \
        or _first(customer, "email")
    name = _first(obj, "customer_name", "name") or _first(metadata, "customer_name") or " ".join(
        p for p in (_first(customer, "first_name"), _first(customer, "last_name")) if p) or email
    amount = obj.get("amount_paid", obj.get("amount", obj.get("amount_received")))
    return {  # bounded here, once: every job of the event carries them, and every sink bounds again
        "email": display.crm(email), "name": display.crm(name),
        "amount": amount if isinstance(amount, int) else None,
        "currency": display.crm(str(obj.get("currency") or "").upper(), 16) or None,
        "reference": display.crm(_first(obj, "number", "id"), 255) or None,
    }


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(data: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


class EventProgress(worker.Hooks):
    """The event's status follows its jobs: sets of job ids on the event item, so counting a job
    twice (its hook run again after a crash) changes nothing."""

    def claimed(self, job: Job) -> None:
        if job.event_key and job.attempts_made == 1:  # a retry finds the event processing already
            events.job_started(job.event_key)

    def completed(self, job: Job) -> None:
        if job.event_key:
            events.job_outcome(job.event_key, job.job_id, completed=True, children=job.children)

    def failed(self, job: Job) -> None:
        if job.event_key:
            events.job_outcome(job.event_key, job.job_id, failed=True)

    def restarted(self, job: Job) -> None:
        if job.event_key:
            events.job_outcome(job.event_key, job.job_id)


worker.HOOKS.append(EventProgress())
