"""``sync-crm`` (hourly): push every contact changed since the last successful run to the CRM.

The watermark advances only after a run pushed everything without error, and only from the value
that run started from, so two runs in one hour (the schedule and "run now", or a retry) push each
change at most once between them; each upsert carries an idempotency key made of the contact and its
change time, so even overlapping runs do not double an upsert at the CRM. Every run is recorded
(started, finished, contacts pushed, errors) in the schedules table.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from chalice import Blueprint, Cron

from chalicelib import clock, contacts, runtime
from chalicelib.logs import logger
from chalicelib.store import Change, ConditionFailed, Expect, Query, Store, Write
from chalicelib.targets import crm

blueprint = Blueprint(__name__)
TABLE = "schedules"
SYNC_CRM = "sync-crm"
EPOCH = "1970-01-01T00:00:00.000Z"
KEEP_RUNS_SECONDS = 30 * 86400


def watermark(store: Store, name: str) -> str:
    found = store.get(TABLE, {"name": name, "run_id": "state"})
    return str(found["watermark"]) if found else EPOCH


def _advance(store: Store, name: str, old: str, new: str) -> bool:
    try:
        store.update(TABLE, {"name": name, "run_id": "state"}, Change(put={"watermark": new}),
                     Expect(any_of=(Expect(missing=("watermark",)), Expect(equal={"watermark": old}))))
    except ConditionFailed:
        return False
    return True


def _record(store: Store, name: str, run_id: str, **fields: Any) -> None:
    record = {"name": name, "run_id": run_id, "expires_at": int(time.time()) + KEEP_RUNS_SECONDS,
              **{k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}}
    store.write([Write(TABLE, {"name": name, "run_id": run_id}, record=record)])


def runs(store: Store, name: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs of a schedule, newest first."""
    records, _ = store.query(Query(TABLE, None, name, prefix="run#", newest_first=True), limit)
    return [{k: v for k, v in r.items() if isinstance(v, str)} for r in records]


def sync_crm(store: Store | None = None) -> dict[str, Any]:
    store = store or runtime.system().store
    started = clock.iso()
    run_id = f"run#{started}#{uuid.uuid4().hex[:8]}"
    since = watermark(store, SYNC_CRM)
    _record(store, SYNC_CRM, run_id, started_at=started, status="running", since=since)
    pushed, errors = 0, []
    for contact in contacts.changed(store, since, started):
        try:
            crm.upsert(contact.email, contact.name, contact.properties,
                       idempotency_key=f"sync-crm:{contact.email}:{contact.updated_at}")
            pushed += 1
        except Exception as err:
            errors.append(f"{contact.email}: {type(err).__name__}: {err}"[:300])
    ok = not errors and _advance(store, SYNC_CRM, since, started)
    outcome = {"run_id": run_id, "status": "completed" if not errors else "failed", "pushed": pushed,
               "errors": len(errors), "since": since, "until": started if ok else since}
    _record(store, SYNC_CRM, run_id, started_at=started, finished_at=clock.iso(), status=outcome["status"],
            since=since, pushed=str(pushed), errors=errors[:20])
    logger.info("sync-crm run", extra=outcome)
    return outcome


HOURLY = Cron(0, "*", "*", "*", "?", "*")


@blueprint.schedule(HOURLY, name="sync_crm")
def sync_crm_hourly(event: Any) -> dict[str, Any]:
    return sync_crm()
