"""Events into jobs.

A stored event's message carries what dispatch needs (type and facts), so dispatch is one write (the
event ``queued`` and its jobs created, all or nothing). The jobs of the lane the message arrived on are
created claimed by this invocation and run here: no message, receive or claim of their own (a payment
event's three jobs cost no call but their settle), at once: a slow CRM does not hold up the Slack
message or the invoice. Jobs of other lanes get one send per lane.

Job ids are derived from the event, so a second message for it (a redelivery, the sweep's copy) creates
nothing. A redelivery means the first try may have stopped after the write (SQS unreachable, the
invocation killed): it wakes every job of the event not finished. Each job then retries on its own,
with a message of its own: a flaky CRM never re-sends the Slack message.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib import pools, worker
from chalicelib.errors import NotFound
from chalicelib.events import Event, EventStatus, event_key
from chalicelib.jobs import Job, JobStatus
from chalicelib.logs import logger
from chalicelib.resources import lanes
from chalicelib.routing import ROUTES, Route, route_for
from chalicelib.system import JobSystem


def event_message(event: Event) -> dict[str, Any]:
    """The message that dispatches a stored event (sent at the ack, or by the sweep)."""
    return {"kind": "event", "source": event.source, "event_id": event.event_id, "type": event.type,
            "facts": event.facts}


def take_event(system: JobSystem, message: dict[str, Any], redelivered: bool = False, lane: str | None = None,
               remaining_ms: float = 0) -> None:
    """Dispatch a stored event into its jobs, running those of ``lane`` (the message's) here; a second
    message for it adds nothing."""
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
    now = time.time()
    here = [job for job in jobs if _runs_here(system, job, lane)]
    elsewhere = [job for job in jobs if not _runs_here(system, job, lane)]
    for job in here:  # created claimed: the write that creates it is its claim
        job.status, job.attempts_made = JobStatus.ACTIVE, 1
        job.lock_until = worker.lock_until(now, remaining_ms)
    if system.events.dispatch(key, jobs):
        system.wake_all(elsewhere)
        logger.info("event dispatched", extra={"event_key": key, "jobs": list(route.jobs), "here": len(here)})
        _run_at_once(system, here, lane)
    elif redelivered:  # the first try may have stopped after its write: finish it
        system.wake_unfinished(system.jobs.of_event(key))


MOST_JOBS = max(len(route.jobs) for route in ROUTES)  # of one event


def _run_at_once(system: JobSystem, jobs: list[Job], lane: str | None) -> None:
    """Run claimed jobs side by side (the first on this thread), each settling on its own; the first
    error is raised once all have run, so the record is seen again (its redelivery wakes what is
    unfinished)."""
    if lane is None or len(jobs) <= 1:
        for job in jobs:
            worker.run_claimed(system, job, None, time.time())
        return
    others = pools.pool(f"jobs-{lane}", lanes()[lane].parallel * (MOST_JOBS - 1))  # each record's others
    running = [others.submit(worker.run_claimed, system, job, None, time.time()) for job in jobs[1:]]
    errors: list[BaseException] = []
    try:
        worker.run_claimed(system, jobs[0], None, time.time())
    except Exception as e:
        errors.append(e)
    errors += [err for future in running if (err := future.exception()) is not None]
    if errors:
        raise errors[0]


def _runs_here(system: JobSystem, job: Job, lane: str | None) -> bool:
    """A job due now on the lane this message arrived on, and not rate-limited (its starts are paced)."""
    return lane is not None and job.queue == lane and job.due_at is None and lane not in system.limits


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
