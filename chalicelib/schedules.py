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

from botocore.exceptions import ClientError
from chalice import Blueprint, Cron

from chalicelib import aws, contacts
from chalicelib.jobs import now_iso
from chalicelib.logs import logger
from chalicelib.settings import resource_name
from chalicelib.targets import crm

blueprint = Blueprint(__name__)
SYNC_CRM = "sync-crm"
EPOCH = "1970-01-01T00:00:00.000Z"
BATCH = 25
KEEP_RUNS_SECONDS = 30 * 86400


def _table() -> str:
    return resource_name("schedules")


def watermark(name: str) -> str:
    key = {"name": {"S": name}, "run_id": {"S": "state"}}
    item = aws.client("dynamodb").get_item(TableName=_table(), Key=key, ConsistentRead=True).get("Item")
    return str(item["watermark"]["S"]) if item else EPOCH


def _advance(name: str, old: str, new: str) -> bool:
    try:
        aws.client("dynamodb").put_item(
            TableName=_table(), Item={"name": {"S": name}, "run_id": {"S": "state"}, "watermark": {"S": new}},
            ConditionExpression="attribute_not_exists(watermark) OR watermark = :old",
            ExpressionAttributeValues={":old": {"S": old}})
    except ClientError as err:
        if aws.is_conditional_failure(err):
            return False
        raise
    return True


def _record(name: str, run_id: str, **fields: Any) -> None:
    item = {"name": {"S": name}, "run_id": {"S": run_id},
            "expires_at": {"N": str(int(time.time()) + KEEP_RUNS_SECONDS)}}
    item.update({k: {"S": v if isinstance(v, str) else json.dumps(v)} for k, v in fields.items()})
    aws.client("dynamodb").put_item(TableName=_table(), Item=item)


def runs(name: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs of a schedule, newest first."""
    items = aws.client("dynamodb").query(
        TableName=_table(), KeyConditionExpression="#n = :n AND begins_with(run_id, :run)",
        ExpressionAttributeNames={"#n": "name"}, ScanIndexForward=False, Limit=limit,
        ExpressionAttributeValues={":n": {"S": name}, ":run": {"S": "run#"}}).get("Items", [])
    return [{k: v["S"] for k, v in item.items() if "S" in v} for item in items]


def sync_crm() -> dict[str, Any]:
    started = now_iso()
    run_id = f"run#{started}#{uuid.uuid4().hex[:8]}"
    since = watermark(SYNC_CRM)
    _record(SYNC_CRM, run_id, started_at=started, status="running", since=since)
    changed = contacts.changed(since, started)
    pushed, errors = 0, []
    for start in range(0, len(changed), BATCH):
        for contact in changed[start:start + BATCH]:
            try:
                crm.upsert(contact.email, contact.name, contact.properties,
                           idempotency_key=f"sync-crm:{contact.email}:{contact.updated_at}")
                pushed += 1
            except Exception as err:
                errors.append(f"{contact.email}: {type(err).__name__}: {err}"[:300])
    ok = not errors and _advance(SYNC_CRM, since, started)
    outcome = {"run_id": run_id, "status": "completed" if not errors else "failed", "pushed": pushed,
               "errors": len(errors), "since": since, "until": started if ok else since}
    _record(SYNC_CRM, run_id, started_at=started, finished_at=now_iso(), status=outcome["status"],
            since=since, pushed=str(pushed), errors=errors[:20])
    logger.info("sync-crm run", extra=outcome)
    return outcome


HOURLY = Cron(0, "*", "*", "*", "?", "*")


@blueprint.schedule(HOURLY, name="sync_crm")
def sync_crm_hourly(event: Any) -> dict[str, Any]:
    return sync_crm()
