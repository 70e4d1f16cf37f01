"""One SQS consumer per queue, with partial batch responses.

The settings below become each queue's Lambda event source mapping (and the local runtime's poller):
more concurrency for the high lane, five at once for email (the seed's rate limit).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice import Blueprint
from chalice.app import SQSEvent

import chalicelib.handlers  # noqa: F401 - registers the job handlers
from chalicelib import worker
from chalicelib.dispatch import take_event
from chalicelib.logs import logger
from chalicelib.settings import resource_key, resource_name

blueprint = Blueprint(__name__)


@dataclass(frozen=True)
class Consumer:
    """A queue's Lambda event source mapping settings."""

    batch_size: int
    batching_window: int
    concurrency: int


# queue key (infra/resources.json) -> its consumer
CONSUMERS: dict[str, Consumer] = {
    "high": Consumer(batch_size=10, batching_window=0, concurrency=8),
    "default": Consumer(batch_size=10, batching_window=1, concurrency=4),
    "email": Consumer(batch_size=5, batching_window=1, concurrency=5),
    "maintenance": Consumer(batch_size=10, batching_window=1, concurrency=2),
}


def process(record: dict[str, Any], remaining_ms: float) -> bool:
    """One record; True when it is done (deleted), False to see it again after its visibility timeout."""
    queue = resource_key(record["eventSourceARN"].rsplit(":", 1)[-1])
    try:
        message = json.loads(record["body"])
        kind = message["kind"] if isinstance(message, dict) else None
    except (ValueError, KeyError):
        kind = None
    attributes = record.get("attributes", {})
    if kind == "event":
        take_event(message, redelivered=int(attributes.get("ApproximateReceiveCount", "1")) > 1)
        return True
    if kind == "job" and isinstance(message.get("job_id"), str):
        return worker.run(worker.Delivery(
            receipt_handle=record["receiptHandle"], body=message, queue=queue,
            sent_at=int(attributes.get("SentTimestamp", "0")) / 1000), remaining_ms)
    worker.to_dlq(queue, {"kind": "poison", "body": record["body"][:200_000]},
                  "the message is not a fila event or job message")
    logger.warning("poison message moved to the DLQ",
                   extra={"message_id": record["messageId"], "queue": queue})
    return True


def handle_batch(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    context = getattr(event, "context", None)
    failures = []
    for record in event:
        raw = record.to_dict()
        remaining = context.get_remaining_time_in_millis() if context is not None else 30_000
        try:
            done = process(raw, remaining)
        except Exception:
            logger.exception("record failed; SQS delivers it again",
                             extra={"message_id": raw.get("messageId")})
            done = False
        if not done:
            failures.append({"itemIdentifier": raw["messageId"]})
    return {"batchItemFailures": failures}


def _mapping(key: str) -> Callable[[Callable[[SQSEvent], Any]], Any]:
    consumer = CONSUMERS[key]
    return blueprint.on_sqs_message(
        queue=resource_name(key),
        name=f"consume_{key}",
        batch_size=consumer.batch_size,
        maximum_batching_window_in_seconds=consumer.batching_window,
        maximum_concurrency=consumer.concurrency,
    )


# One module-level function per queue: Lambda's handler string must name each one.
@_mapping("high")
def consume_high(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    return handle_batch(event)


@_mapping("default")
def consume_default(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    return handle_batch(event)


@_mapping("email")
def consume_email(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    return handle_batch(event)


@_mapping("maintenance")
def consume_maintenance(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    return handle_batch(event)
