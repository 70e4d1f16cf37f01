"""Sending to fila's SQS queues by their key in infra/resources.json."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from chalicelib import aws
from chalicelib.settings import dlq_name, resource_name


@cache
def queue_url(key: str) -> str:
    """Looked up once per container (one GetQueueUrl per queue, never on a warm ack path)."""
    return str(aws.client("sqs").get_queue_url(QueueName=resource_name(key))["QueueUrl"])


@cache
def dlq_url(key: str) -> str:
    return str(aws.client("sqs").get_queue_url(QueueName=dlq_name(key))["QueueUrl"])


def send(key: str, message: dict[str, Any], delay_seconds: int = 0) -> str:
    response = aws.client("sqs").send_message(
        QueueUrl=queue_url(key),
        MessageBody=json.dumps(message, separators=(",", ":")),
        DelaySeconds=delay_seconds,
    )
    return str(response["MessageId"])


def forget() -> None:
    queue_url.cache_clear()
    dlq_url.cache_clear()
