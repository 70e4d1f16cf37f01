"""DynamoDB TTL, done by a client, for an emulator that does not delete expired items itself (fila's own
does: fila.local.dynamodb_ttl; the workers ask it).

AWS deletes items whose TTL attribute (epoch seconds) is in the past, typically within a few days;
this reaper does it every ``interval`` seconds, with a condition so a refreshed item survives.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import boto3

log = logging.getLogger("fila.local.ttl")


def reap(table: str, attribute: str, now: float | None = None) -> int:
    """Delete every item of ``table`` whose ``attribute`` is before ``now``; how many were deleted."""
    ddb = boto3.client("dynamodb")
    now = time.time() if now is None else now
    key_names = [k["AttributeName"] for k in ddb.describe_table(TableName=table)["Table"]["KeySchema"]]
    deleted = 0
    scan: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#ttl < :now",
        "ExpressionAttributeNames": {"#ttl": attribute},
        "ExpressionAttributeValues": {":now": {"N": str(int(now))}},
    }
    while True:
        page = ddb.scan(**scan)
        for item in page.get("Items", []):
            try:
                ddb.delete_item(TableName=table, Key={k: item[k] for k in key_names},
                                ConditionExpression=scan["FilterExpression"],
                                ExpressionAttributeNames=scan["ExpressionAttributeNames"],
                                ExpressionAttributeValues=scan["ExpressionAttributeValues"])
                deleted += 1
            except ddb.exceptions.ConditionalCheckFailedException:
                pass
        if "LastEvaluatedKey" not in page:
            return deleted
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class Reaper:
    def __init__(self, tables: dict[str, str], interval: float = 30.0) -> None:
        self.tables = tables  # table name -> TTL attribute
        self.interval = interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ttl-reaper", daemon=True)

    def start(self) -> None:
        if self.tables:  # none: the emulator expires items itself
            self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            for table, attribute in self.tables.items():
                try:
                    reap(table, attribute)
                except Exception:
                    log.exception("TTL reap of %s failed", table)

    def stop(self, timeout: float = 2.0) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
