"""The events table: durable, de-duplicated storage of every accepted delivery.

Keyed by ``<source>#<event id>`` with a conditional put, so a re-delivery is detected by the write
itself. Bodies too large for a DynamoDB item go to S3 first (claim check) and the item points at them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.errors import Unavailable
from chalicelib.settings import resource_name, settings

# received -> queued -> processing -> completed | failed ; or ignored (no route)
RECEIVED, QUEUED, PROCESSING, COMPLETED, FAILED, IGNORED = (
    "received", "queued", "processing", "completed", "failed", "ignored",
)


@dataclass
class Event:
    source: str
    event_id: str
    type: str
    received_at: str
    body: bytes
    status: str = RECEIVED
    lane: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return event_key(self.source, self.event_id)

    def payload(self) -> Any:
        return json.loads(self.body)


def event_key(source: str, event_id: str) -> str:
    return f"{source}#{event_id}"


class EventStore:
    @property
    def table(self) -> str:
        return resource_name("events")

    @property
    def bucket(self) -> str:
        return resource_name("documents")

    def add(self, event: Event) -> bool:
        """Store a new event durably; False if (source, id) was stored before. Unavailable if unsure."""
        item: dict[str, Any] = {
            "pk": {"S": event.key},
            "source": {"S": event.source},
            "event_id": {"S": event.event_id},
            "type": {"S": event.type},
            "status": {"S": event.status},
            "received_at": {"S": event.received_at},
            "headers": {"M": {k: {"S": v} for k, v in event.headers.items()}},
        }
        if event.lane:
            item["lane"] = {"S": event.lane}
        try:
            if len(event.body) > settings().inline_payload_bytes:
                item["body_ref"] = {"S": self._put_body(event)}
            else:
                item["body"] = {"S": event.body.decode()}
            aws.client("dynamodb").put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as err:
            if aws.is_conditional_failure(err):
                return False
            raise Unavailable("the event could not be stored; retry later") from err
        except BotoCoreError as err:
            raise Unavailable("the event could not be stored; retry later") from err
        return True

    def _put_body(self, event: Event) -> str:
        digest = hashlib.sha256(event.body).hexdigest()[:16]
        key = f"payloads/{event.source}/{event.event_id}/{digest}.json"
        aws.client("s3").put_object(
            Bucket=self.bucket, Key=key, Body=event.body, ContentType="application/json"
        )
        return key

    def get(self, source: str, event_id: str) -> Event | None:
        item = aws.client("dynamodb").get_item(
            TableName=self.table, Key={"pk": {"S": event_key(source, event_id)}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        if "body_ref" in item:
            obj = aws.client("s3").get_object(Bucket=self.bucket, Key=item["body_ref"]["S"])
            body = obj["Body"].read()
        else:
            body = item["body"]["S"].encode()
        return Event(
            source=item["source"]["S"],
            event_id=item["event_id"]["S"],
            type=item["type"]["S"],
            received_at=item["received_at"]["S"],
            body=body,
            status=item["status"]["S"],
            lane=item.get("lane", {}).get("S"),
            headers={k: v["S"] for k, v in item.get("headers", {}).get("M", {}).items()},
        )

    def transition(self, key: str, from_status: str, to_status: str) -> bool:
        """Move an event from one status to another; False if it was not in ``from_status``."""
        return self._update(key, "SET #s = :to", "#s = :from",
                            {":to": {"S": to_status}, ":from": {"S": from_status}})

    def start_jobs(self, key: str, total: int) -> bool:
        """A received event dispatched into ``total`` jobs: ``queued``; False if it was dispatched before."""
        return self._update(
            key, "SET #s = :queued, jobs_total = :n", "#s = :received",
            {":queued": {"S": QUEUED}, ":n": {"N": str(total)}, ":received": {"S": RECEIVED}})

    def job_started(self, key: str) -> None:
        self._update(key, "SET #s = :processing", "#s = :queued",
                     {":processing": {"S": PROCESSING}, ":queued": {"S": QUEUED}})

    def job_outcome(self, key: str, job_id: str, *, completed: bool = False, failed: bool = False,
                    children: list[str] | None = None) -> None:
        """Record where one job of the event stands (completed, failed, or neither: restarted), then
        the event's status: ``failed`` while a job is failed, ``completed`` once all are (the routed
        jobs plus the ones they chained), else ``processing``. Set operations: a repeat is a no-op."""
        values: dict[str, Any] = {":job": {"SS": [job_id]}}
        if failed:
            update = "ADD jobs_failed :job"
        else:  # completed or restarted: no longer failed
            adds = ["jobs_done :job"] if completed else []
            if children:
                adds.append("jobs_children :children")
                values[":children"] = {"SS": children}
            update = ("ADD " + ", ".join(adds) + " " if adds else "") + "DELETE jobs_failed :job"
        item = aws.client("dynamodb").update_item(
            TableName=self.table, Key={"pk": {"S": key}}, UpdateExpression=update,
            ExpressionAttributeValues=values, ReturnValues="ALL_NEW")["Attributes"]
        done, failing, chained = (len(item.get(name, {}).get("SS", []))
                                  for name in ("jobs_done", "jobs_failed", "jobs_children"))
        total = int(item.get("jobs_total", {"N": "0"})["N"]) + chained
        status = FAILED if failing else COMPLETED if done >= total else PROCESSING
        if status != item["status"]["S"]:
            self._update(key, "SET #s = :new", "#s = :old", {":new": {"S": status}, ":old": item["status"]})

    def replay(self, key: str, jobs: int) -> int:
        """Count one more replay of a stored event into ``jobs`` new jobs; the replay's number."""
        item = aws.client("dynamodb").update_item(
            TableName=self.table, Key={"pk": {"S": key}}, ConditionExpression="attribute_exists(pk)",
            UpdateExpression="SET #s = :processing ADD replays :one, jobs_total :n",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":processing": {"S": PROCESSING}, ":one": {"N": "1"},
                                       ":n": {"N": str(jobs)}},
            ReturnValues="ALL_NEW")["Attributes"]
        return int(item["replays"]["N"])

    def _update(self, key: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            aws.client("dynamodb").update_item(
                TableName=self.table, Key={"pk": {"S": key}}, UpdateExpression=expression,
                ConditionExpression=condition, ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values)
        except ClientError as err:
            if aws.is_conditional_failure(err):
                return False
            raise
        return True

    def stale_received(self, before: str, limit: int) -> list[dict[str, str]]:
        """Up to ``limit`` events still ``received``, not yet swept, that arrived before ``before``."""
        found: list[dict[str, str]] = []
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "by_status",
            "KeyConditionExpression": "#s = :s AND received_at < :before",
            "FilterExpression": "attribute_not_exists(swept_at)",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": RECEIVED}, ":before": {"S": before}},
        }
        while len(found) < limit:
            response = aws.client("dynamodb").query(**query)
            found += [
                {"pk": i["pk"]["S"], "source": i["source"]["S"], "event_id": i["event_id"]["S"],
                 "lane": i.get("lane", {}).get("S", "default")}
                for i in response.get("Items", [])
            ]
            if "LastEvaluatedKey" not in response:
                break
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found[:limit]

    def claim_sweep(self, key: str, now: str) -> bool:
        """Mark an event as re-enqueued by the sweep, at most once, whoever else is sweeping."""
        return self._update(key, "SET swept_at = :now", "#s = :received AND attribute_not_exists(swept_at)",
                            {":now": {"S": now}, ":received": {"S": RECEIVED}})

    def release_sweep(self, key: str) -> None:
        """The sweep's send failed: let the next sweep try again."""
        aws.client("dynamodb").update_item(
            TableName=self.table, Key={"pk": {"S": key}}, UpdateExpression="REMOVE swept_at"
        )


events = EventStore()
