"""fila's own copy of each contact (the contacts table), which the hourly CRM sync reconciles from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib import aws
from chalicelib.jobs import now_iso
from chalicelib.settings import resource_name

PARTITION = "contacts"  # the by_change index's one partition: every contact, ordered by change time


@dataclass(frozen=True)
class Contact:
    email: str
    name: str
    properties: dict[str, Any]
    updated_at: str


def save(email: str, name: str, properties: dict[str, Any]) -> None:
    aws.client("dynamodb").update_item(
        TableName=resource_name("contacts"), Key={"email": {"S": email}},
        UpdateExpression="SET #n = :name, properties = :props, updated_at = :at, sync_partition = :p",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":name": {"S": name}, ":props": {"S": json.dumps(properties)},
                                   ":at": {"S": now_iso()}, ":p": {"S": PARTITION}})


def changed(after: str, until: str) -> list[Contact]:
    """Contacts changed in (after, until], oldest first (a GSI query, paginated)."""
    request: dict[str, Any] = {
        "TableName": resource_name("contacts"), "IndexName": "by_change",
        "KeyConditionExpression": "sync_partition = :p AND updated_at BETWEEN :after AND :until",
        "ExpressionAttributeValues": {":p": {"S": PARTITION}, ":after": {"S": after}, ":until": {"S": until}},
    }
    found: list[Contact] = []
    while True:
        page = aws.client("dynamodb").query(**request)
        for i in page.get("Items", []):
            if i["updated_at"]["S"] > after:  # BETWEEN includes its lower bound; the window does not
                found.append(Contact(i["email"]["S"], i["name"]["S"], json.loads(i["properties"]["S"]),
                                     i["updated_at"]["S"]))
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
