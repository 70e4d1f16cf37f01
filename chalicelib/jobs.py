"""Jobs: Bull's ``queue.add(name, data, opts)`` on SQS + DynamoDB.

A job is a record in the jobs table (the truth: status, attempts with their errors, result) and a
message on its queue (the wake-up call: ``{"kind": "job", "job_id": …}``). Adding a job whose id
exists is a no-op that returns the existing job, for as long as its record lives (not only while it
waits, as in Bull). Handlers register with ``@handler(name, …)``; what they raise decides retries:
``Permanent`` fails at once, ``RetryAfter`` retries after the given delay, anything else retries with
the job's backoff until its attempts are spent.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import aws, queues
from chalicelib.backoff import Backoff, exponential
from chalicelib.settings import resource_name

WAITING, DELAYED, ACTIVE, COMPLETED, FAILED = "waiting", "delayed", "active", "completed", "failed"
# Above this many attempts, SQS's own maxReceiveCount (10, infra/) would move the message first.
MAX_ATTEMPTS = 9
SQS_MAX_DELAY = 900
DAY = 86400


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
    queue: str
    data: Any
    options: Options
    status: str = WAITING
    attempts_made: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None
    event_key: str | None = None
    parent: str | None = None
    created_at: str = ""
    updated_at: str = ""
    finished_at: str | None = None
    expires_at: int | None = None
    lock_until: int | None = None  # while active: when its worker's claim lapses
    children: list[str] = field(default_factory=list)  # ids of the jobs it chained, once completed
    follow_ups: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list, repr=False)

    def chain(self, name: str, data: Any, **options: Any) -> None:
        """Enqueue ``name`` once this job completes, with an id derived from this one: a retried
        parent never creates a second child."""
        self.follow_ups.append((name, data, options))


@dataclass(frozen=True)
class Spec:
    name: str
    run: Callable[[Job], Any]
    queue: str | None
    options: Options


HANDLERS: dict[str, Spec] = {}


def handler(name: str, *, queue: str | None = None, **options: Any) -> Callable[[Callable[[Job], Any]], Any]:
    """Register the function that runs jobs called ``name`` (``queue`` pins them to a queue, e.g.
    ``email`` for the rate-limited one); ``options`` are the defaults for ``enqueue``."""
    def register(run: Callable[[Job], Any]) -> Callable[[Job], Any]:
        HANDLERS[name] = Spec(name, run, queue, Options(**options))
        return run
    return register


def now_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def queue_for(name: str, priority: str | None, queue: str | None) -> str:
    spec = HANDLERS.get(name)
    pinned = spec.queue if spec else None
    return queue or pinned or ("high" if priority == "high" else "default")


def enqueue(name: str, data: Any, *, attempts: int | None = None, backoff: Backoff | None = None,
            priority: str | None = None, delay: int = 0, job_id: str | None = None,
            keep_completed: int | None = None, keep_failed: int | None = None, queue: str | None = None,
            event_key: str | None = None, parent: str | None = None, retrying: bool = False) -> Job:
    """Add a job; with an existing ``job_id`` return that job and add nothing (``retrying``: this
    call repeats one that may have failed after the write, so send the message of a job that was
    never claimed again)."""
    defaults = HANDLERS[name].options if name in HANDLERS else Options()
    options = Options(
        attempts=attempts if attempts is not None else defaults.attempts,
        backoff=backoff or defaults.backoff,
        delay=delay or defaults.delay,
        keep_completed=keep_completed if keep_completed is not None else defaults.keep_completed,
        keep_failed=keep_failed if keep_failed is not None else defaults.keep_failed,
    )
    if not 1 <= options.attempts <= MAX_ATTEMPTS:
        raise ValueError(f"attempts must be 1..{MAX_ATTEMPTS} (SQS maxReceiveCount stays above it)")
    stamp = now_iso()
    job = Job(job_id=job_id or uuid.uuid4().hex, name=name, queue=queue_for(name, priority, queue), data=data,
              options=options, status=DELAYED if options.delay else WAITING, event_key=event_key,
              parent=parent, created_at=stamp, updated_at=stamp)
    if not jobs.create(job):
        existing = jobs.get(job.job_id)
        if existing is None:  # expired between the two calls: treat as new
            return enqueue(name, data, attempts=attempts, backoff=backoff, priority=priority, delay=delay,
                           job_id=job_id, keep_completed=keep_completed, keep_failed=keep_failed,
                           queue=queue, event_key=event_key, parent=parent, retrying=retrying)
        if retrying and existing.status in (WAITING, DELAYED) and existing.attempts_made == 0:
            # never claimed: the send after its first write may have failed (SQS unreachable). A
            # second message is harmless: the claim runs the job once.
            age = time.time() - datetime.fromisoformat(existing.created_at.replace("Z", "+00:00")).timestamp()
            wake(existing, max(0.0, existing.options.delay - age))
        return existing
    wake(job, options.delay)
    return job


def wake(job: Job, delay: float = 0) -> None:
    """Send the job's message, due in ``delay`` seconds (longer than SQS's 900 s: it hops)."""
    message: dict[str, Any] = {"kind": "job", "job_id": job.job_id}
    if delay > SQS_MAX_DELAY:
        message["not_before"] = time.time() + delay
    queues.send(job.queue, message, delay_seconds=int(min(delay, SQS_MAX_DELAY)))


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": str(int(value))}


def job_from_item(item: dict[str, Any]) -> Job:
    return Job(
        job_id=item["job_id"]["S"], name=item["name"]["S"], queue=item["queue"]["S"],
        data=json.loads(item["data"]["S"]), options=Options.from_dict(json.loads(item["options"]["S"])),
        status=item["status"]["S"], attempts_made=int(item.get("attempts_made", {"N": "0"})["N"]),
        attempts=[json.loads(a["S"]) for a in item.get("attempts", {}).get("L", [])],
        result=json.loads(item["result"]["S"]) if "result" in item else None,
        event_key=item.get("event_key", {}).get("S"), parent=item.get("parent", {}).get("S"),
        created_at=item["created_at"]["S"], updated_at=item.get("updated_at", item["created_at"])["S"],
        finished_at=item.get("finished_at", {}).get("S"),
        expires_at=int(item["expires_at"]["N"]) if "expires_at" in item else None,
        lock_until=int(item["lock_until"]["N"]) if "lock_until" in item else None,
        children=[c["S"] for c in item.get("children", {}).get("L", [])],
    )


class JobStore:
    """The jobs table. Every state change is one conditional write, so two workers never both win."""

    @property
    def table(self) -> str:
        return resource_name("jobs")

    def create(self, job: Job) -> bool:
        item = {
            "job_id": _s(job.job_id), "name": _s(job.name), "queue": _s(job.queue),
            "data": _s(json.dumps(job.data)), "options": _s(json.dumps(job.options.to_dict())),
            "status": _s(job.status), "attempts_made": _n(0), "created_at": _s(job.created_at),
            "kind": _s("job"),  # the by_time index's one partition: every job, newest first
            "updated_at": _s(job.updated_at),
        }
        if job.event_key:
            item["event_key"] = _s(job.event_key)
        if job.parent:
            item["parent"] = _s(job.parent)
        return self._write("put_item", Item=item, ConditionExpression="attribute_not_exists(job_id)")

    def get(self, job_id: str) -> Job | None:
        item = aws.client("dynamodb").get_item(TableName=self.table, Key={"job_id": _s(job_id)},
                                               ConsistentRead=True).get("Item")
        return job_from_item(item) if item else None

    def claim(self, job_id: str, lock_seconds: float, now: float) -> Job | None:
        """Make the job ``active`` for this worker (one more attempt), or None if it is not runnable:
        finished, or active under another worker's unexpired lock."""
        try:
            item = aws.client("dynamodb").update_item(
                TableName=self.table, Key={"job_id": _s(job_id)},
                UpdateExpression="SET #s = :active, lock_until = :lock, updated_at = :at, "
                                 "attempts_made = attempts_made + :one",
                ConditionExpression="attribute_exists(job_id) AND (#s IN (:waiting, :delayed) "
                                    "OR (#s = :active AND lock_until < :now))",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":active": _s(ACTIVE), ":waiting": _s(WAITING),
                                           ":delayed": _s(DELAYED), ":lock": _n(now + lock_seconds),
                                           ":now": _n(now), ":one": _n(1), ":at": _s(now_iso(now))},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as err:
            if aws.is_conditional_failure(err):
                return None
            raise
        return job_from_item(item)

    def settle(self, job: Job, status: str, *, attempt: dict[str, Any] | None = None, result: Any = None,
               keep: int | None = None, children: list[str] | None = None, now: float) -> bool:
        """Record the outcome of the attempt this worker claimed; False if the claim was lost."""
        names = {"#s": "status"}
        values: dict[str, Any] = {":status": _s(status), ":active": _s(ACTIVE), ":at": _s(now_iso(now)),
                                  ":n": _n(job.attempts_made)}
        sets = ["#s = :status", "updated_at = :at"]
        if attempt is not None:
            sets.append("attempts = list_append(if_not_exists(attempts, :empty), :attempt)")
            values[":attempt"] = {"L": [_s(json.dumps(attempt))]}
            values[":empty"] = {"L": []}
        if status in (COMPLETED, FAILED):
            sets += ["finished_at = :at", "expires_at = :expires"]
            values[":expires"] = _n(now + (keep or 0))
        if children:
            sets.append("children = :children")
            values[":children"] = {"L": [_s(c) for c in children]}
        if result is not None:
            sets.append("#r = :result")
            names["#r"] = "result"
            values[":result"] = _s(json.dumps(result))
        return self._write(
            "update_item", Key={"job_id": _s(job.job_id)},
            UpdateExpression="SET " + ", ".join(sets) + " REMOVE lock_until",
            ConditionExpression="#s = :active AND attempts_made = :n",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    def reset_failed(self, job_id: str, now: float) -> bool:
        """A failed job back to ``waiting`` with its attempts starting over (history kept)."""
        return self._write(
            "update_item", Key={"job_id": _s(job_id)},
            UpdateExpression="SET #s = :waiting, attempts_made = :zero, updated_at = :at "
                             "REMOVE expires_at, finished_at",
            ConditionExpression="#s = :failed",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":waiting": _s(WAITING), ":failed": _s(FAILED), ":zero": _n(0),
                                       ":at": _s(now_iso(now))})

    def promote(self, job_id: str, now: float) -> bool:
        """A delayed job made due now."""
        return self._write(
            "update_item", Key={"job_id": _s(job_id)},
            UpdateExpression="SET #s = :waiting, updated_at = :at", ConditionExpression="#s = :delayed",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":waiting": _s(WAITING), ":delayed": _s(DELAYED),
                                       ":at": _s(now_iso(now))})

    def page(self, *, status: str | None = None, queue: str | None = None, limit: int = 50,
             cursor: dict[str, Any] | None = None, now: float | None = None
             ) -> tuple[list[Job], dict[str, Any] | None]:
        """Newest first, all or by status or by queue (a GSI query, never a scan); expired records never
        show, even before TTL deletes them."""
        index, key, value = (("by_status", "status", status) if status else ("by_queue", "queue", queue)
                             if queue else ("by_time", "kind", "job"))
        live = "(attribute_not_exists(expires_at) OR expires_at > :now)"
        names = {"#k": key}
        values = {":v": _s(str(value)), ":now": _n(time.time() if now is None else now)}
        if status and queue:
            live += " AND #q = :q"
            names["#q"], values[":q"] = "queue", _s(queue)
        request: dict[str, Any] = {
            "TableName": self.table, "IndexName": index, "ScanIndexForward": False,
            "KeyConditionExpression": "#k = :v", "FilterExpression": live,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
        }
        found: list[Job] = []
        while len(found) < limit:
            request["Limit"] = limit - len(found)
            if cursor:
                request["ExclusiveStartKey"] = cursor
            response = aws.client("dynamodb").query(**request)
            found += [job_from_item(item) for item in response.get("Items", [])]
            cursor = response.get("LastEvaluatedKey")
            if not cursor:
                break
        return found, cursor

    def for_event(self, event_key: str) -> list[Job]:
        """Every job an event started (chained and replayed ones too), oldest first."""
        response = aws.client("dynamodb").query(
            TableName=self.table, IndexName="by_event", KeyConditionExpression="event_key = :k",
            ExpressionAttributeValues={":k": _s(event_key)})
        return [job_from_item(item) for item in response.get("Items", [])]

    def _write(self, operation: str, **request: Any) -> bool:
        try:
            getattr(aws.client("dynamodb"), operation)(TableName=self.table, **request)
        except ClientError as err:
            if aws.is_conditional_failure(err):
                return False
            raise
        return True


jobs = JobStore()
