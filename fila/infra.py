"""The resources' declaration (chalicelib/resources.json) rendered for AWS, once for every use: the
local provisioning's API calls and the CloudFormation templates take the same shapes."""

from __future__ import annotations

from typing import Any

from chalicelib import resources
from chalicelib.resources import Lane, Table


def key_schema(keys: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"AttributeName": name, "KeyType": ("HASH", "RANGE")[n]} for n, (name, _) in enumerate(keys)]


def table_definition(table: Table, name: str) -> dict[str, Any]:
    """CreateTable's parameters, which are also an ``AWS::DynamoDB::Table``'s core properties."""
    attributes = dict(table.key)
    for index in table.indexes.values():
        attributes.update(dict(index.keys))
    definition: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in attributes.items()],
        "KeySchema": key_schema(table.key),
    }
    if table.indexes:
        definition["GlobalSecondaryIndexes"] = [
            {"IndexName": index.name, "KeySchema": key_schema(index.keys),
             "Projection": {"ProjectionType": "ALL"}} for index in table.indexes.values()]
    return definition


def queue_attributes(lane: Lane, dlq_arn: Any) -> dict[str, Any]:
    """A lane's queue attributes (SetQueueAttributes takes them as strings, CloudFormation as given)."""
    return {"VisibilityTimeout": lane.visibility_timeout, "MessageRetentionPeriod": lane.retention_seconds,
            "RedrivePolicy": {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": lane.max_receive_count}}


def dlq_attributes(lane: Lane) -> dict[str, Any]:
    return {"MessageRetentionPeriod": lane.retention_seconds}


__all__ = ["dlq_attributes", "queue_attributes", "resources", "table_definition"]
