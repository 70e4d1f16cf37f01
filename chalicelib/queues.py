"""fila's lanes on SQS: sending, delaying, the DLQ, counts; and SQS's limits, in one place.

``Queues`` is the interface the job system and the operators' calls use (tests use an in-memory one);
``SqsQueues`` is SQS, with queue URLs looked up once per container (never on a warm ack path).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from chalicelib import aws
from chalicelib.logs import logger
from chalicelib.settings import dlq_name, resource_name

MAX_DELAY_SECONDS = 900  # DelaySeconds
MAX_VISIBILITY_SECONDS = 12 * 60 * 60  # a message's visibility, counted from when it was received first
MAX_BATCH = 10  # entries of SendMessageBatch, DeleteMessageBatch, ReceiveMessage
MAX_ATTRIBUTE_TEXT = 1000  # what fila keeps of a reason in a message attribute


@dataclass(frozen=True)
class Counts:
    waiting: int
    in_flight: int
    delayed: int


@dataclass(frozen=True)
class DeadMessage:
    message_id: str
    body: dict[str, Any]
    reason: str


class Queues(Protocol):
    def send(self, lane: str, body: dict[str, Any], delay: int = 0) -> None: ...

    def send_batch(self, lane: str, bodies: Sequence[dict[str, Any]]) -> None: ...

    def change_visibility(self, lane: str, receipt_handle: str, seconds: int) -> None: ...

    def delete(self, lane: str, receipt_handles: Sequence[str]) -> None: ...

    def to_dlq(self, lane: str, body: dict[str, Any], reason: str) -> None: ...

    def counts(self, lane: str) -> Counts: ...

    def dlq_depth(self, lane: str) -> int: ...

    def peek_dlq(self, lane: str, limit: int) -> list[DeadMessage]: ...

    def redrive(self, lane: str, progress: Callable[[int], None] | None = None) -> int: ...


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


class SqsQueues:
    """Queues on SQS."""

    def send(self, lane: str, body: dict[str, Any], delay: int = 0) -> None:
        aws.client("sqs").send_message(QueueUrl=queue_url(lane), MessageBody=_json(body),
                                       DelaySeconds=max(0, min(int(delay), MAX_DELAY_SECONDS)))

    def send_batch(self, lane: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Every body, ten to a call; raises if any entry was not sent (the caller's retry sends it)."""
        for start in range(0, len(bodies), MAX_BATCH):
            chunk = bodies[start:start + MAX_BATCH]
            answer = aws.client("sqs").send_message_batch(QueueUrl=queue_url(lane), Entries=[
                {"Id": str(n), "MessageBody": _json(body)} for n, body in enumerate(chunk)])
            if answer.get("Failed"):
                raise ConnectionError(f"{len(answer['Failed'])} of {len(chunk)} messages not sent to {lane}: "
                                      f"{answer['Failed'][0].get('Code')}")

    def change_visibility(self, lane: str, receipt_handle: str, seconds: int) -> None:
        aws.client("sqs").change_message_visibility(QueueUrl=queue_url(lane), ReceiptHandle=receipt_handle,
                                                    VisibilityTimeout=seconds)

    def delete(self, lane: str, receipt_handles: Sequence[str]) -> None:
        for start in range(0, len(receipt_handles), MAX_BATCH):
            chunk = receipt_handles[start:start + MAX_BATCH]
            aws.client("sqs").delete_message_batch(QueueUrl=queue_url(lane), Entries=[
                {"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(chunk)])

    def to_dlq(self, lane: str, body: dict[str, Any], reason: str) -> None:
        """The consumer's own move to the DLQ, with the reason SQS's redrive would not keep."""
        aws.client("sqs").send_message(QueueUrl=dlq_url(lane), MessageBody=_json(body), MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason[:MAX_ATTRIBUTE_TEXT] or "unknown"}})

    def counts(self, lane: str) -> Counts:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        found = _attributes(queue_url(lane), names)
        return Counts(*(int(found[n]) for n in names))

    def dlq_depth(self, lane: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = _attributes(dlq_url(lane), names)
        return sum(int(found[n]) for n in names)

    def peek_dlq(self, lane: str, limit: int) -> list[DeadMessage]:
        """Up to ``limit`` DLQ messages (peeked: visible again at once)."""
        response = aws.client("sqs").receive_message(
            QueueUrl=dlq_url(lane), MaxNumberOfMessages=max(1, min(limit, MAX_BATCH)), VisibilityTimeout=0,
            WaitTimeSeconds=0, MessageAttributeNames=["All"])
        return [_dead(m) for m in response.get("Messages", [])]

    def redrive(self, lane: str, progress: Callable[[int], None] | None = None) -> int:
        """Move every message of the lane's DLQ back to it, sending before deleting (an interruption can
        leave a message in both queues, never in neither: the job's claim makes the copy a no-op)."""
        sqs, moved = aws.client("sqs"), 0
        while batch := sqs.receive_message(QueueUrl=dlq_url(lane), MaxNumberOfMessages=MAX_BATCH,
                                           WaitTimeSeconds=0, VisibilityTimeout=60,
                                           MessageAttributeNames=["All"]).get("Messages", []):
            sqs.send_message_batch(QueueUrl=queue_url(lane), Entries=[
                {"Id": str(n), "MessageBody": m["Body"],
                 **({"MessageAttributes": m["MessageAttributes"]} if m.get("MessageAttributes") else {})}
                for n, m in enumerate(batch)])
            sqs.delete_message_batch(QueueUrl=dlq_url(lane), Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)])
            moved += len(batch)
            if progress is not None:
                progress(moved)
        return moved


def _attributes(url: str, names: list[str]) -> dict[str, str]:
    answer = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)
    return dict(answer["Attributes"])


def _dead(message: dict[str, Any]) -> DeadMessage:
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = {"raw": message["Body"][:500]}
    if not isinstance(body, dict):
        body = {"raw": str(body)[:500]}
    reason = message.get("MessageAttributes", {}).get("reason", {}).get("StringValue") \
        or body.get("reason") or "moved by SQS after maxReceiveCount"
    return DeadMessage(message["MessageId"], body, reason)


@cache
def queue_url(lane: str) -> str:
    return str(aws.client("sqs").get_queue_url(QueueName=resource_name(lane))["QueueUrl"])


@cache
def dlq_url(lane: str) -> str:
    return str(aws.client("sqs").get_queue_url(QueueName=dlq_name(lane))["QueueUrl"])


def forget() -> None:
    queue_url.cache_clear()
    dlq_url.cache_clear()


class HeldWakes:
    """One consumed record's wakes (``send_batch``), held so that its batch sends them together, ten to a
    call per lane (a batch of payment events wakes its receipts in one call, not one each); every other
    call goes straight through."""

    def __init__(self, queues: Queues) -> None:
        self.queues, self.held = queues, list[tuple[str, dict[str, Any]]]()

    def send_batch(self, lane: str, bodies: Sequence[dict[str, Any]]) -> None:
        self.held += [(lane, body) for body in bodies]

    def send(self, lane: str, body: dict[str, Any], delay: int = 0) -> None:
        self.queues.send(lane, body, delay)

    def change_visibility(self, lane: str, receipt_handle: str, seconds: int) -> None:
        self.queues.change_visibility(lane, receipt_handle, seconds)

    def delete(self, lane: str, receipt_handles: Sequence[str]) -> None:
        self.queues.delete(lane, receipt_handles)

    def to_dlq(self, lane: str, body: dict[str, Any], reason: str) -> None:
        self.queues.to_dlq(lane, body, reason)

    def counts(self, lane: str) -> Counts:
        return self.queues.counts(lane)

    def dlq_depth(self, lane: str) -> int:
        return self.queues.dlq_depth(lane)

    def peek_dlq(self, lane: str, limit: int) -> list[DeadMessage]:
        return self.queues.peek_dlq(lane, limit)

    def redrive(self, lane: str, progress: Callable[[int], None] | None = None) -> int:
        return self.queues.redrive(lane, progress)


def unheld(queues: Queues) -> Queues:
    """What sends at once: for work whose order of sends and writes matters (the sweep's)."""
    return queues.queues if isinstance(queues, HeldWakes) else queues


def send_held(queues: Queues, held: Mapping[int, HeldWakes]) -> set[int]:
    """Every record's held wakes, ten to a call per lane; the keys of those whose wakes were not sent."""
    by_lane: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for key, wakes in held.items():
        for lane, body in wakes.held:
            by_lane[lane].append((key, body))
    failed: set[int] = set()
    for lane, entries in by_lane.items():
        for start in range(0, len(entries), MAX_BATCH):
            chunk = entries[start:start + MAX_BATCH]
            try:
                queues.send_batch(lane, [body for _, body in chunk])
            except Exception:
                logger.exception("wakes not sent; their records are seen again", extra={"lane": lane})
                failed.update(key for key, _ in chunk)
    return failed
