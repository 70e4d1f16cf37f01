"""Events: every accepted delivery, stored once per (source, event id), and the status it shows.

An event is stored ``received`` (or ``ignored``: no route) and becomes ``queued`` once its jobs exist.
Past that, its status is derived from its jobs when it is read, not kept up to date by each job: no
write per job, and no counter that a crash between two writes could leave wrong. ``processing`` once
one of them has started, ``completed`` when all have (the chained ones too), ``failed`` while one is
failed, and ``processing`` again when that one is retried.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.jobs import Job, JobStatus


class EventStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    IGNORED = "ignored"


@dataclass
class Event:
    source: str
    event_id: str
    type: str
    received_at: str
    body: bytes
    status: EventStatus = EventStatus.RECEIVED
    lane: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)  # what the handlers need (schemes.facts)
    replays: int = 0

    @property
    def key(self) -> str:
        return event_key(self.source, self.event_id)

    def payload(self) -> Any:
        return json.loads(self.body)


def event_key(source: str, event_id: str) -> str:
    return f"{source}#{event_id}"


def status_of(stored: EventStatus, jobs: Iterable[Job]) -> EventStatus:
    """What an event is, from what was stored and what its jobs are now."""
    if stored != EventStatus.QUEUED:
        return stored
    found = list(jobs)
    if any(job.status == JobStatus.FAILED for job in found):
        return EventStatus.FAILED
    if found and all(job.status == JobStatus.COMPLETED for job in found):
        return EventStatus.COMPLETED
    started = any(job.attempts_made or job.status in (JobStatus.ACTIVE, JobStatus.COMPLETED) for job in found)
    return EventStatus.PROCESSING if started else EventStatus.QUEUED
