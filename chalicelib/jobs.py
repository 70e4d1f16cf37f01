"""Jobs: what Bull's ``queue.add(name, data, opts)`` makes, and what a handler raises to steer it.

A job is a record (its status, attempts with their errors, result) and a message on its lane (the
wake-up call). Ids are given or derived (an event's jobs: ``<source>#<event id>:<job>``, a chained
one: ``<parent>><job>``), so adding a job twice adds nothing. What a handler raises decides what
happens next: ``Permanent`` fails at once, ``RetryAfter`` retries after the given delay, anything else
retries with the job's backoff until its attempts are spent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from chalicelib.backoff import Backoff, exponential
from chalicelib.queues import MAX_DELAY_SECONDS

DAY = 86400
# Above this many attempts, SQS's own maxReceiveCount (10, infra/) would move the message first.
MAX_ATTEMPTS = 9
MAX_LOG_LINES = 100  # a job's log lines, over all its attempts (Bull keeps them unbounded, in Redis)
MAX_LOG_LINE = 500  # characters of one line
__all__ = ["MAX_DELAY_SECONDS"]


class JobStatus(StrEnum):
    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


class Permanent(Exception):
    """Raise from a handler: do not retry (a 4xx from a target, bad data)."""


class RetryAfter(Exception):
    """Raise from a handler: retry after ``seconds`` (a 429's Retry-After), still counting attempts."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds:g}s")
        self.seconds = seconds


@dataclass(frozen=True)
class Options:
    attempts: int = 3
    backoff: Backoff = field(default_factory=exponential)
    delay: int = 0
    keep_completed: int = 7 * DAY  # seconds a completed job's record is kept (TTL)
    keep_failed: int = 30 * DAY

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= MAX_ATTEMPTS:
            raise ValueError(f"attempts must be 1..{MAX_ATTEMPTS} (SQS maxReceiveCount stays above it)")

    def with_(self, **given: Any) -> Options:
        """These options, overridden by the ones given (None: keep)."""
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "backoff": self.backoff.to_dict(), "delay": self.delay,
                "keep_completed": self.keep_completed, "keep_failed": self.keep_failed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Options:
        return cls(attempts=int(data["attempts"]), backoff=Backoff.from_dict(data["backoff"]),
                   delay=int(data["delay"]), keep_completed=int(data["keep_completed"]),
                   keep_failed=int(data["keep_failed"]))


@dataclass
class Job:
    job_id: str
    name: str
    queue: str  # its lane
    data: Any
    options: Options = field(default_factory=Options)
    status: JobStatus = JobStatus.WAITING
    attempts_made: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None
    event_key: str | None = None
    parent: str | None = None
    created_at: str = ""
    updated_at: str = ""
    finished_at: str | None = None
    expires_at: int | None = None
    lock_until: float | None = None  # while active: when its worker's claim lapses
    due_at: float | None = None  # while delayed: when it may run (a duplicate message waits for it)
    children: list[str] = field(default_factory=list)  # ids of the jobs it chained, once completed
    follow_ups: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list, repr=False)
    store: Any = field(default=None, repr=False, compare=False)  # the store of the system running it
    percent: int | None = None  # progress, 0-100, as its handler last reported it
    logs: list[str] = field(default_factory=list)
    unsent: list[str] = field(default_factory=list, repr=False, compare=False)  # lines not yet stored
    reporter: Callable[[Job], None] | None = field(default=None, repr=False, compare=False)

    def progress(self, percent: float) -> None:
        """Report how far the handler is (0-100), like Bull's ``job.progress()``; shown on the job's page."""
        self.percent = max(0, min(100, int(percent)))
        self._report()

    def log(self, line: str) -> None:
        """Add a line to the job's log (kept over its attempts, up to MAX_LOG_LINES of MAX_LOG_LINE)."""
        kept = len(self.logs) + len(self.unsent)
        if kept < MAX_LOG_LINES - 1:
            self.unsent.append(str(line)[:MAX_LOG_LINE])
        elif kept == MAX_LOG_LINES - 1:
            self.unsent.append(f"... more lines were dropped (at most {MAX_LOG_LINES} are kept)")
        self._report()

    def _report(self) -> None:
        if self.reporter is not None:
            self.reporter(self)

    def chain(self, name: str, data: Any, **options: Any) -> None:
        """Add ``name`` once this job completes, with an id derived from this one (a retried parent never
        makes a second child)."""
        self.follow_ups.append((name, data, options))

    @property
    def never_claimed(self) -> bool:
        return self.status in (JobStatus.WAITING, JobStatus.DELAYED) and self.attempts_made == 0

    def data_json(self) -> str:
        return json.dumps(self.data, separators=(",", ":"))


def child_id(parent: str, name: str) -> str:
    return f"{parent}>{name}"


def wake_message(job: Job, not_before: float | None = None) -> dict[str, Any]:
    """The message that runs a job (``not_before``: a delay longer than SQS's, hopping)."""
    message: dict[str, Any] = {"kind": "job", "job_id": job.job_id}
    if not_before is not None:
        message["not_before"] = not_before
    return message
