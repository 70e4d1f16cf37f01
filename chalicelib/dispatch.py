"""Events into jobs.

A stored event's message carries what dispatch needs (type and facts), so dispatch is one write (the
event ``queued`` and its jobs created, all or nothing) and one send per lane. Job ids are derived from
the event, so a second message for it (a redelivery, the sweep's copy) creates nothing; a redelivery,
whose first try may have failed after the write, wakes again the jobs never claimed. Each job then
retries on its own: a flaky CRM never re-sends the Slack message.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import NotFound
from chalicelib.events import Event, EventStatus, event_key
from chalicelib.jobs import Job
from chalicelib.logs import logger
from chalicelib.routing import Route, route_for
from chalicelib.system import JobSystem


def event_message(event: Event) -> dict[str, Any]:
    """The message that dispatches a stored event (sent at the ack, or by the sweep)."""
    return {"kind": "event", "source": event.source, "event_id": event.event_id, "type": event.type,
            "facts": event.facts}


def take_event(system: JobSystem, message: dict[str, Any], redelivered: bool = False) -> None:
    """Dispatch a stored event into its jobs; a second message for it adds nothing."""
    key = event_key(message["source"], message["event_id"])
    if "facts" not in message:  # a message from before facts travelled with it
        event = system.events.get(message["source"], message["event_id"])
        if event is None:
            logger.warning("event message for an unknown event dropped", extra={"event_key": key})
            return
        message = event_message(event)
    route = route_for(message["type"])
    if route is None:
        system.events.transition(key, EventStatus.RECEIVED, EventStatus.IGNORED)
        return
    jobs = _jobs(system, message, route, key, prefix=key)
    if system.events.dispatch(key, jobs):
        system.wake_all(jobs)
        logger.info("event dispatched", extra={"event_key": key, "jobs": list(route.jobs)})
    elif redelivered:  # the first try may have failed after its write (SQS unreachable): finish it
        system.wake_unclaimed([job.job_id for job in jobs])


def replay(system: JobSystem, source: str, event_id: str) -> list[Job]:
    """Dispatch a stored event again, as new jobs."""
    event = system.events.get(source, event_id)
    if event is None:
        raise NotFound(f"no event {source}/{event_id}")
    route = route_for(event.type)
    if route is None:
        return []
    number = system.events.next_replay(event.key)
    jobs = _jobs(system, event_message(event), route, event.key, prefix=f"{event.key}:replay-{number}")
    system.jobs.create_all(jobs)
    system.wake_all(jobs)
    return jobs


def _jobs(system: JobSystem, message: dict[str, Any], route: Route, key: str, prefix: str) -> list[Job]:
    data = {"source": message["source"], "event_id": message["event_id"], "type": message["type"],
            **message["facts"]}
    return [system.new_job(name, data, job_id=f"{prefix}:{name}", event_key=key,
                           priority="high" if route.lane == "high" else None) for name in route.jobs]
