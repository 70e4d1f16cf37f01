"""Job records: every change of a job's state is one conditional write, so two workers never both win.

- claim: ``waiting``, a ``delayed`` one whose time has come, or an ``active`` one whose worker's lock
  has lapsed (it died) becomes ``active`` under this worker's lock, one attempt more;
- settle: the attempt this worker claimed ends (``completed``, ``delayed`` until its retry, ``failed``),
  together with the creation of the jobs it chains, all or nothing;
- reset (retry, redrive), promote and clean, for operators; progress and log lines, for handlers.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from chalicelib import clock
from chalicelib.jobs import Job, JobStatus, Options
from chalicelib.store import Change, ConditionFailed, Expect, Query, Record, Store, Write, absent_or_above

TABLE = "jobs"
GROUP_MAX = 100  # writes in one all-or-nothing group (DynamoDB's TransactWriteItems)
ALL_OF_AN_EVENT = 1000  # an event's jobs (routed, chained, replayed) fit in one query's page


def to_record(job: Job) -> Record:
    return {"job_id": job.job_id, "name": job.name, "queue": job.queue, "data": job.data_json(),
            "options": json.dumps(job.options.to_dict()), "status": str(job.status),
            "attempts_made": job.attempts_made, "created_at": job.created_at, "updated_at": job.updated_at,
            "event_key": job.event_key, "parent": job.parent, "due_at": job.due_at,
            "lock_until": job.lock_until}  # set when it is created claimed (dispatch runs it there)


def from_record(r: Record) -> Job:
    return Job(job_id=r["job_id"], name=r["name"], queue=r["queue"], data=json.loads(r["data"]),
               options=Options.from_dict(json.loads(r["options"])), status=JobStatus(r["status"]),
               attempts_made=int(r.get("attempts_made", 0)),
               attempts=[json.loads(a) for a in r.get("attempts", [])],
               result=json.loads(r["result"]) if "result" in r else None, event_key=r.get("event_key"),
               parent=r.get("parent"), created_at=r["created_at"],
               updated_at=r.get("updated_at") or r["created_at"], finished_at=r.get("finished_at"),
               expires_at=r.get("expires_at"), lock_until=r.get("lock_until"), due_at=r.get("due_at"),
               children=list(r.get("children", [])), percent=r.get("progress"),
               logs=list(r.get("logs", [])))


def _runnable(now: float) -> Expect:
    """What a job must be to be claimed now (a status is only equal to something if the record exists)."""
    return Expect(any_of=(
        Expect(equal={"status": JobStatus.WAITING}),
        Expect(equal={"status": JobStatus.DELAYED}, below={"due_at": now + 1}),
        Expect(equal={"status": JobStatus.ACTIVE}, below={"lock_until": now})))


def _claim(lock_until: float, now: float, token: str) -> Change:
    return Change(put={"status": JobStatus.ACTIVE, "lock_until": lock_until, "updated_at": clock.iso(now),
                       "due_at": None, "claimed_by": token},
                  add={"attempts_made": 1})


def new_job_write(job: Job) -> Write:
    return Write(TABLE, {"job_id": job.job_id}, record=to_record(job), expect=Expect(exists=False))


class JobRecords:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, job: Job) -> bool:
        """Add a new job; False if one with its id exists (nothing is written)."""
        try:
            self.store.write([new_job_write(job)])
        except ConditionFailed:
            return False
        return True

    def create_all(self, jobs: Sequence[Job]) -> bool:
        """Add new jobs, all or none (False: one of their ids exists)."""
        try:
            self.store.write([new_job_write(job) for job in jobs])
        except ConditionFailed:
            return False
        return True

    def get(self, job_id: str) -> Job | None:
        found = self.store.get(TABLE, {"job_id": job_id})
        return from_record(found) if found else None

    def get_many(self, job_ids: Sequence[str]) -> list[Job]:
        return [from_record(r) for r in self.store.get_many(TABLE, [{"job_id": i} for i in job_ids])]

    def claim(self, job_id: str, lock_until: float, now: float) -> Job | None:
        """This worker's attempt, or None if the job is not runnable now (finished, not yet due, or held
        by a worker whose lock has not lapsed)."""
        token = uuid.uuid4().hex
        try:
            record = self.store.update(TABLE, {"job_id": job_id}, _claim(lock_until, now, token),
                                       _runnable(now))
        except ConditionFailed as failed:
            # the SDK retries a claim whose answer was lost: when the first try landed, the retry meets
            # this worker's own claim, which is no reason to wait out its lock
            if failed.current is None or failed.current.get("claimed_by") != token:
                return None
            record = failed.current
        return from_record(record)

    def claim_all(self, job_ids: Sequence[str], lock_until: float, now: float) -> dict[str, Job]:
        """Claim these jobs in one all-or-nothing write (one per hundred) and read them back in one call:
        a batch's claims in two calls instead of one each, under each job's own condition. The jobs this
        worker now holds, by id: all of a write's, or none if one of its jobs was not runnable (each is
        then claimed on its own)."""
        token = uuid.uuid4().hex
        claim, runnable = _claim(lock_until, now, token), _runnable(now)  # the same for every job
        for start in range(0, len(job_ids), GROUP_MAX):
            # a failed write: one is not runnable, unless the SDK retried one that had landed (records tell)
            with contextlib.suppress(ConditionFailed):
                self.store.write([Write(TABLE, {"job_id": i}, change=claim, expect=runnable)
                                  for i in job_ids[start:start + GROUP_MAX]])
        records = self.store.get_many(TABLE, [{"job_id": i} for i in job_ids])
        return {r["job_id"]: from_record(r) for r in records if r.get("claimed_by") == token}

    def settle(self, job: Job, status: JobStatus, *, now: float, attempt: dict[str, Any] | None = None,
               result: Any = None, keep: int | None = None, due_at: float | None = None,
               children: Sequence[Job] = ()) -> bool:
        """Record the outcome of the attempt this worker claimed, and create the jobs it chains, at
        once; False (nothing written) if the claim was lost."""
        put: dict[str, Any] = {"status": status, "updated_at": clock.iso(now), "lock_until": None,
                               "due_at": due_at}
        append: dict[str, list[Any]] = {}
        if attempt is not None:
            append["attempts"] = [json.dumps(attempt)]
        if job.unsent:  # what its handler reported since the last write
            append["logs"] = list(job.unsent)
        if job.percent is not None:
            put["progress"] = job.percent
        if status.finished:
            put.update(finished_at=clock.iso(now), expires_at=int(now + (keep or 0)))
        if children:
            put["children"] = [c.job_id for c in children]
        if result is not None:
            put["result"] = json.dumps(result)
        mine = Expect(equal={"status": JobStatus.ACTIVE, "attempts_made": job.attempts_made})
        try:
            self.store.write([
                Write(TABLE, {"job_id": job.job_id}, change=Change(put=put, append=append), expect=mine),
                *(new_job_write(c) for c in children)])
        except ConditionFailed as failed:  # unless an SDK retry met this very write
            # a group's cancellation carries no item, and not every endpoint keeps the SDK's token
            # idempotent: read it, or the jobs it chains would be left to no one
            seen = failed.current or self.store.get(TABLE, {"job_id": job.job_id}) or {}
            return (seen.get("status") == status and seen.get("updated_at") == put["updated_at"]
                    and seen.get("attempts_made") == job.attempts_made)
        return True

    def reset(self, job_id: str, now: float) -> bool:
        """A failed job back to ``waiting``, its attempts starting over (its history kept)."""
        return self._change(job_id, Change(put={"status": JobStatus.WAITING, "attempts_made": 0,
                                                "updated_at": clock.iso(now), "expires_at": None,
                                                "finished_at": None}),
                            Expect(equal={"status": JobStatus.FAILED}))

    def promote(self, job_id: str, now: float) -> bool:
        """A delayed job made due now."""
        return self._change(job_id, Change(put={"status": JobStatus.WAITING, "updated_at": clock.iso(now),
                                                "due_at": None}),
                            Expect(equal={"status": JobStatus.DELAYED}))

    def _change(self, job_id: str, change: Change, expect: Expect) -> bool:
        try:
            self.store.update(TABLE, {"job_id": job_id}, change, expect)
        except ConditionFailed:
            return False
        return True

    def report(self, job: Job, progress: int | None, lines: Sequence[str]) -> bool:
        """A running job's progress and new log lines, while this worker's claim holds; False if not."""
        put: dict[str, Any] = {} if progress is None else {"progress": progress}
        change = Change(put=put, append={"logs": list(lines)} if lines else {})
        return self._change(job.job_id, change, Expect(equal={"status": JobStatus.ACTIVE,
                                                              "attempts_made": job.attempts_made}))

    def failed_by_lane(self, now: float | None = None) -> dict[str, int]:
        """How many jobs are failed, by lane: what is really dead, whatever a retried job left in a DLQ."""
        live = absent_or_above("expires_at", clock.now() if now is None else now)
        return self.store.count(Query(TABLE, "by_status", JobStatus.FAILED, where=live), by="queue")

    def clean(self, queue: str, status: JobStatus, finished_before: str, limit: int) -> tuple[int, bool]:
        """Remove up to ``limit`` of the lane's jobs that became ``status`` before ``finished_before``
        (ISO); how many were removed, and whether more may be left. A job that moved on meanwhile stays."""
        where = Expect(equal={"queue": queue}, below={"finished_at": finished_before})
        query = Query(TABLE, "by_status", str(status), before=finished_before, where=where)
        removed, cursor = 0, None
        while removed < limit:
            page, cursor = self.store.query(query, min(100, limit - removed), cursor)
            for record in page:
                try:
                    self.store.delete(TABLE, {"job_id": record["job_id"]}, Expect(equal={"status": status}))
                    removed += 1
                except ConditionFailed:
                    pass
            if cursor is None:
                return removed, False
        return removed, True

    def page(self, *, status: str | None = None, queue: str | None = None, limit: int = 50,
             cursor: str | None = None, now: float | None = None) -> tuple[list[Job], str | None]:
        """Newest first: all, or by status, or by queue (an index query, never a scan); records past their
        retention never show, even before TTL deletes them."""
        live = absent_or_above("expires_at", clock.now() if now is None else now)
        index, value = ("by_status", status) if status else \
            ("by_queue", queue) if queue else ("by_time", "job")
        where = Expect(any_of=live.any_of, equal={"queue": queue} if status and queue else {})
        records, after = self.store.query(Query(TABLE, index, str(value), newest_first=True, where=where),
                                          limit, cursor)
        return [from_record(r) for r in records], after

    def of_event(self, event_key: str) -> list[Job]:
        """Every job an event started (routed, chained, replayed), oldest first."""
        records, _ = self.store.query(Query(TABLE, "by_event", event_key), ALL_OF_AN_EVENT)
        return [from_record(r) for r in records]
