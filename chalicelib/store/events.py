"""Event records: durable, de-duplicated storage of every accepted delivery.

Keyed by ``<source>#<event id>`` and written with a condition, so a re-delivery is detected by the
write itself. A body too large for an item goes to S3 first (claim check) and the item points at it.
Dispatch turns a ``received`` event ``queued`` and creates its jobs in one all-or-nothing write.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Sequence
from typing import Protocol

from chalicelib import aws
from chalicelib.events import Event, EventStatus, event_key
from chalicelib.jobs import Job
from chalicelib.settings import resource_name, settings
from chalicelib.store import Change, ConditionFailed, Expect, Query, Record, Store, Write
from chalicelib.store.jobs import new_job_write

TABLE = "events"


class Bodies(Protocol):
    """Where bodies too large for a record go (S3, claim check)."""

    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class S3Bodies:
    def put(self, key: str, body: bytes) -> None:
        aws.client("s3").put_object(Bucket=resource_name("documents"), Key=key, Body=body,
                                    ContentType="application/json")

    def get(self, key: str) -> bytes:
        return bytes(aws.client("s3").get_object(Bucket=resource_name("documents"), Key=key)["Body"].read())


def to_record(event: Event) -> Record:
    return {"pk": event.key, "source": event.source, "event_id": event.event_id, "type": event.type,
            "status": str(event.status), "received_at": event.received_at, "headers": dict(event.headers),
            "lane": event.lane, "facts": dict(event.facts)}


def from_record(r: Record, body: bytes) -> Event:
    return Event(source=r["source"], event_id=r["event_id"], type=r["type"], received_at=r["received_at"],
                 body=body, status=EventStatus(r["status"]), lane=r.get("lane"),
                 headers=dict(r.get("headers", {})), facts=dict(r.get("facts", {})),
                 replays=int(r.get("replays", 0)))


class EventRecords:
    def __init__(self, store: Store, bodies: Bodies | None = None) -> None:
        self.store, self.bodies = store, bodies or S3Bodies()

    def add(self, event: Event) -> bool:
        """Store a new event durably; False if (source, event id) was stored before."""
        record = {**to_record(event), "write_token": uuid.uuid4().hex}
        if len(event.body) > settings().inline_payload_bytes:
            digest = hashlib.sha256(event.body).hexdigest()[:16]
            record["body_ref"] = f"payloads/{event.source}/{event.event_id}/{digest}.json"
            self.bodies.put(record["body_ref"], event.body)
        else:
            record["body"] = event.body.decode()
        try:
            self.store.write([Write(TABLE, {"pk": event.key}, record=record, expect=Expect(exists=False))])
        except ConditionFailed as failed:
            # the SDK retries a write whose answer was lost: when the first try landed, the retry meets
            # this call's own record, and that is no duplicate (nor an event left for the sweep)
            return failed.current is not None and failed.current.get("write_token") == record["write_token"]
        return True

    def get(self, source: str, event_id: str) -> Event | None:
        record = self.store.get(TABLE, {"pk": event_key(source, event_id)})
        if record is None:
            return None
        body = self.bodies.get(record["body_ref"]) if "body_ref" in record else record["body"].encode()
        return from_record(record, body)

    def dispatch(self, key: str, jobs: Sequence[Job]) -> bool:
        """The event ``queued`` and its jobs created, in one write; False (nothing written) if it was not
        ``received`` any more (dispatched before). The SDK retries a write whose answer was lost: when the
        first try landed, the retry fails its condition on this call's own write, and that is no second
        dispatch (the chaos soak lost six events so: their jobs, created claimed, were left to no one)."""
        token = uuid.uuid4().hex
        queued = Change(put={"status": EventStatus.QUEUED, "dispatch_token": token})
        was_received = Expect(equal={"status": EventStatus.RECEIVED})
        try:
            self.store.write([
                Write(TABLE, {"pk": key}, change=queued, expect=was_received),
                *(new_job_write(job) for job in jobs)])
        except ConditionFailed:  # no item in a cancellation; not every endpoint keeps the token: read it
            current = self.store.get(TABLE, {"pk": key})
            return current is not None and current.get("dispatch_token") == token
        return True

    def transition(self, key: str, was: EventStatus, now: EventStatus) -> bool:
        try:
            self.store.update(TABLE, {"pk": key}, Change(put={"status": now}), Expect(equal={"status": was}))
        except ConditionFailed:
            return False
        return True

    def stale_received(self, before: str, limit: int) -> list[Event]:
        """Up to ``limit`` events still ``received``, not yet swept, that arrived before ``before``."""
        records, _ = self.store.query(Query(TABLE, "by_status", EventStatus.RECEIVED, before=before,
                                            where=Expect(missing=("swept_at",))), limit)
        return [from_record(r, b"") for r in records]

    def mark_swept(self, key: str, at: str) -> None:
        """Note that the sweep has sent this event again, once the send is done (a sweeper that dies
        before this leaves the event to the next sweep). Also when it was dispatched meanwhile, most
        often by that very message: an idle consumer takes it before the mark lands. Never recreates an
        event that is gone."""
        with contextlib.suppress(ConditionFailed):
            self.store.update(TABLE, {"pk": key}, Change(put={"swept_at": at}), Expect(exists=True))

    def next_replay(self, key: str) -> int:
        """Count one more replay of a stored event; its number."""
        counted = self.store.update(TABLE, {"pk": key}, Change(add={"replays": 1}), Expect(exists=True))
        return int(counted["replays"])
