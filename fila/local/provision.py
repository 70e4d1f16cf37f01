"""Create every resource of infra/resources.json on the emulator (idempotent: safe on every start)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from chalicelib.settings import resource_name
from chalicelib.targets import sender
from fila.resources import resources


def provision(spec: dict[str, Any] | None = None, prefix: Any = resource_name) -> dict[str, str]:
    """Create queues (each with its DLQ), tables (with GSIs and TTL) and buckets; {queue key: url}."""
    spec = spec or resources()
    urls = {key: _queue(key, cfg, prefix) for key, cfg in spec["queues"].items()}
    for key, cfg in spec["tables"].items():
        _table(prefix(key), cfg)
    s3 = boto3.client("s3")
    for key in spec["buckets"]:
        s3.create_bucket(Bucket=prefix(key))
    boto3.client("ses").verify_email_identity(EmailAddress=sender())  # SES sends only from verified
    return urls


def _queue(key: str, cfg: dict[str, Any], prefix: Any) -> str:
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(
        QueueName=prefix(f"{key}-dlq"),
        Attributes={"MessageRetentionPeriod": str(cfg["retention_seconds"])},
    )["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    dlq_arn = dlq["Attributes"]["QueueArn"]
    attributes = {
        "VisibilityTimeout": str(cfg["visibility_timeout"]),
        "MessageRetentionPeriod": str(cfg["retention_seconds"]),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": str(cfg["max_receive_count"])}),
    }
    url = str(sqs.create_queue(QueueName=prefix(key))["QueueUrl"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def _key_schema(keys: list[list[str]]) -> list[dict[str, str]]:
    return [{"AttributeName": n, "KeyType": ("HASH", "RANGE")[i]} for i, (n, _) in enumerate(keys)]


def _table(name: str, cfg: dict[str, Any]) -> None:
    ddb = boto3.client("dynamodb")
    attributes = dict(cfg["key"])
    for keys in cfg["indexes"].values():
        attributes.update(dict(keys))
    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in attributes.items()],
        "KeySchema": _key_schema(cfg["key"]),
    }
    if cfg["indexes"]:
        request["GlobalSecondaryIndexes"] = [
            {"IndexName": index, "KeySchema": _key_schema(keys), "Projection": {"ProjectionType": "ALL"}}
            for index, keys in cfg["indexes"].items()
        ]
    try:
        ddb.create_table(**request)
    except ddb.exceptions.ResourceInUseException:
        return  # provisioned by an earlier start
    ddb.get_waiter("table_exists").wait(TableName=name)
    if cfg.get("ttl"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": cfg["ttl"]}
        )
