"""The job system: its handlers, its hooks, where its jobs are kept and how they are woken.

Built explicitly, like dramatiq's broker or arq's ``Worker(functions=[...])``: the deployed functions
use the one ``chalicelib.runtime`` builds; a test builds its own, with its own handlers and an
in-memory store. Hooks follow a job's life (metrics, say); ``emit`` runs each of them, and one that
raises is logged and skipped, never in the way of the job or of the other hooks.

    @handler("send-receipt-email", lane="email", attempts=5)
    def send_receipt(job): ...

    system = JobSystem([send_receipt], store=DynamoStore(), queues=SqsQueues())
    system.enqueue("send-receipt-email", {"to": "ada@example.com"}, delay=3600, job_id="receipt-1843")
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib import clock
from chalicelib.backoff import Backoff
from chalicelib.jobs import Job, JobStatus, Options, wake_message
from chalicelib.logs import logger
from chalicelib.mappings import Mappings
from chalicelib.queues import MAX_DELAY_SECONDS, Queues
from chalicelib.resources import RateLimit, lanes
from chalicelib.store import Store
from chalicelib.store.events import Bodies, EventRecords
from chalicelib.store.jobs import JobRecords
from chalicelib.store.lanes import LaneRecords


@dataclass(frozen=True)
class Handler:
    """What runs the jobs called ``name``: ``lane`` pins them to a lane (``email``, say); ``options`` are
    their defaults."""

    name: str
    run: Callable[[Job], Any]
    lane: str | None = None
    options: Options = field(default_factory=Options)

    def __call__(self, job: Job) -> Any:
        return self.run(job)


def handler(name: str, *, lane: str | None = None,
            **options: Any) -> Callable[[Callable[[Job], Any]], Handler]:
    """Declare a handler (nothing is registered: a JobSystem is given the handlers it runs)."""
    return lambda run: Handler(name, run, lane, Options(**options))


class Hook:
    """Something that follows a job's life: override what you need. A moment may be told twice for the
    same job (a message delivered again after a worker died): make hooks idempotent or tolerant."""

    def claimed(self, job: Job) -> None: ...

    def completed(self, job: Job) -> None: ...

    def retried(self, job: Job, error: BaseException) -> None: ...

    def failed(self, job: Job, error: BaseException) -> None: ...

    def restarted(self, job: Job) -> None: ...

    def flush(self) -> None:
        """The end of a batch: write what was kept in memory (counts, say)."""


class JobSystem:
    def __init__(self, handlers: Iterable[Handler], *, store: Store, queues: Queues,
                 hooks: Iterable[Hook] = (), bodies: Bodies | None = None,
                 mappings: Mappings | None = None, limits: dict[str, RateLimit] | None = None) -> None:
        """``mappings``: what pauses a lane's consumer on AWS (None: the pause flag alone);
        ``limits``: each lane's rate limit (default: as declared in resources.json)."""
        self.handlers = {h.name: h for h in handlers}
        self.store, self.queues, self.mappings, self.hooks = store, queues, mappings, list(hooks)
        self.jobs = JobRecords(store)
        self.events = EventRecords(store, bodies)
        self.lanes = LaneRecords(store)
        self.limits = limits if limits is not None else \
            {name: lane.rate_limit for name, lane in lanes().items() if lane.rate_limit}

    def with_queues(self, queues: Queues) -> JobSystem:
        """This system, sending through ``queues`` (a batch's record holding its wakes, say)."""
        view = copy.copy(self)
        view.queues = queues
        return view

    def emit(self, moment: str, job: Job, *args: Any) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, moment)(job, *args)
            except Exception:
                logger.exception("hook failed", extra={"hook": type(hook).__name__, "moment": moment,
                                                       "job_id": job.job_id})

    def flush(self) -> None:
        """Tell every hook a batch ended (each one isolated, like ``emit``)."""
        for hook in self.hooks:
            try:
                hook.flush()
            except Exception:
                logger.exception("hook flush failed", extra={"hook": type(hook).__name__})

    def new_job(self, name: str, data: Any, *, job_id: str | None = None, attempts: int | None = None,
                backoff: Backoff | None = None, priority: str | None = None, delay: int | None = None,
                keep_completed: int | None = None, keep_failed: int | None = None, queue: str | None = None,
                event_key: str | None = None, parent: str | None = None, now: float | None = None) -> Job:
        """A job (not yet stored): its lane is ``queue``, else its handler's, else by ``priority``."""
        spec = self.handlers.get(name)
        options = (spec.options if spec else Options()).with_(
            attempts=attempts, backoff=backoff, delay=delay, keep_completed=keep_completed,
            keep_failed=keep_failed)
        lane = queue or (spec.lane if spec else None) or ("high" if priority == "high" else "default")
        now = clock.now() if now is None else now
        stamp = clock.iso(now)
        return Job(job_id=job_id or uuid.uuid4().hex, name=name, queue=lane, data=data, options=options,
                   status=JobStatus.DELAYED if options.delay else JobStatus.WAITING, event_key=event_key,
                   parent=parent, created_at=stamp, updated_at=stamp,
                   due_at=now + options.delay if options.delay else None)

    def enqueue(self, name: str, data: Any, **options: Any) -> Job:
        """Add a job and wake it. With the id of an existing job, that job, and nothing added."""
        job = self.new_job(name, data, **options)
        if self.jobs.create(job):
            self.wake_all([job])
            return job
        return self.jobs.get(job.job_id) or job

    def wake_all(self, jobs: Sequence[Job], now: float | None = None) -> None:
        """Send each job's message: due ones ten to a call per lane, delayed ones with their delay (past
        SQS's 900 s, a message that hops)."""
        now = time.time() if now is None else now
        due: dict[str, list[dict[str, Any]]] = {}
        for job in jobs:
            wait = max(0.0, (job.due_at or now) - now)
            if wait < 1:
                due.setdefault(job.queue, []).append(wake_message(job))
            else:
                hop = job.due_at if wait > MAX_DELAY_SECONDS else None
                self.queues.send(job.queue, wake_message(job, hop), delay=int(min(wait, MAX_DELAY_SECONDS)))
        for lane, messages in due.items():
            self.queues.send_batch(lane, messages)

    def wake_unfinished(self, jobs: Sequence[Job]) -> int:
        """Send again the messages of those jobs not finished: the first send may be what failed, or the
        invocation that ran them where they were dispatched died. A second message is harmless: the
        claim runs a job once, and a message early for its job waits for it. How many were sent."""
        unfinished = [job for job in jobs if not job.status.finished]
        self.wake_all(unfinished)
        return len(unfinished)

    def wake_unclaimed(self, job_ids: Sequence[str]) -> int:
        """Send again the messages of those jobs that were never claimed (the first send may be what
        failed); a second message is harmless: the claim runs a job once. How many were sent."""
        unclaimed = [job for job in self.jobs.get_many(job_ids) if job.never_claimed] if job_ids else []
        self.wake_all(unclaimed)
        return len(unclaimed)
