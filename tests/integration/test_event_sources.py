"""The local SQS event source mapping behaves like Lambda's, through a real Chalice handler."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from chalice import Chalice

from bench.chaos import Outage
from fila.local import event_sources
from fila.local.event_sources import SqsEventSource

Behaviour = Callable[[list[dict[str, Any]]], Any]


class Harness:
    """A queue with a DLQ, a Chalice app whose SQS handler records every batch, and its poller."""

    def __init__(self, visibility: int = 2, max_receive: int = 5) -> None:
        self.sqs = boto3.client("sqs")
        name = "es-" + uuid.uuid4().hex[:12]
        self.dlq_url = self.sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.url = self.sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}),
        })["QueueUrl"]
        self.name = name
        self.batches: list[list[dict[str, Any]]] = []
        self.behaviour: Behaviour = lambda records: None
        self.source: SqsEventSource | None = None

    def start(self, **options: Any) -> SqsEventSource:
        app = Chalice("harness")

        @app.on_sqs_message(queue=self.name, batch_size=options.get("batch_size", 10))
        def handler(event: Any) -> Any:
            records = [r.to_dict() for r in event]
            self.batches.append(records)
            return self.behaviour(records)

        options = {"batch_size": 10, "batching_window": 1, "concurrency": 1, "wait_seconds": 1} | options
        self.source = SqsEventSource("handler", app.handler_map["handler"], self.url, **options)
        self.source.start()
        return self.source

    def send(self, n: int) -> list[str]:
        ids = []
        for start in range(0, n, 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps({"n": i})} for i in range(start, min(n, start + 10))]
            ids += [r["MessageId"] for r in self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)["Successful"]]
        return ids

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out; batches so far: {[len(b) for b in self.batches]}"
            time.sleep(0.05)

    def depth(self, url: str | None = None) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def harness(aws_endpoint: str) -> Iterator[Harness]:
    h = Harness()
    yield h
    if h.source is not None:
        h.source.stop()


def counts(batch: list[dict[str, Any]]) -> set[str]:
    return {r["attributes"]["ApproximateReceiveCount"] for r in batch}


def test_partial_batch_failure_deletes_the_rest_and_redelivers_the_failed(harness: Harness) -> None:
    harness.send(10)
    failed: set[str] = set()

    def fail_three_first_time(records: list[dict[str, Any]]) -> dict[str, Any]:
        if counts(records) == {"1"}:
            failed.update(r["messageId"] for r in records[:3])
            return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records[:3]]}
        return {"batchItemFailures": []}

    harness.behaviour = fail_three_first_time
    harness.start()
    harness.wait_for(lambda: len(harness.batches) >= 2)
    first, second = harness.batches[0], harness.batches[1]
    assert len(first) == 10 and counts(first) == {"1"}
    assert {r["messageId"] for r in second} == failed and len(second) == 3
    assert counts(second) == {"2"}
    harness.wait_for(lambda: harness.depth() == 0)
    time.sleep(1.5)  # nothing else comes back
    assert len(harness.batches) == 2


def test_an_exception_returns_the_whole_batch(harness: Harness) -> None:
    ids = set(harness.send(10))

    def raise_first_time(records: list[dict[str, Any]]) -> None:
        if counts(records) == {"1"}:
            raise RuntimeError("boom")

    harness.behaviour = raise_first_time
    harness.start()
    harness.wait_for(lambda: sum(len(b) for b in harness.batches) >= 20)
    assert len(harness.batches[0]) == 10
    redelivered = [r for b in harness.batches[1:] for r in b]
    assert {r["messageId"] for r in redelivered} == ids
    assert counts(redelivered) == {"2"}
    harness.wait_for(lambda: harness.depth() == 0)


@pytest.mark.parametrize("response", [
    "not a batch response",
    {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": None}]},
    {"batchItemFailures": [{"wrongKey": "x"}]},
    {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
    {"batchItemFailures": "nope"},
])
def test_a_malformed_response_returns_the_whole_batch(harness: Harness, response: Any) -> None:
    ids = set(harness.send(10))
    harness.behaviour = lambda records: response if counts(records) == {"1"} else None
    harness.start()
    harness.wait_for(lambda: sum(len(b) for b in harness.batches) >= 20)
    assert {r["messageId"] for b in harness.batches[1:] for r in b} == ids


def test_maximum_concurrency_is_never_exceeded(harness: Harness) -> None:
    harness.send(12)
    lock, active, peak = threading.Lock(), [0], [0]

    def slow(records: list[dict[str, Any]]) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1

    harness.behaviour = slow
    harness.start(batch_size=1, batching_window=0, concurrency=2)
    harness.wait_for(lambda: len(harness.batches) >= 12)
    assert peak[0] == 2


def test_the_batching_window_collects_a_batch(harness: Harness) -> None:
    harness.start(batch_size=5, batching_window=3)
    for i in range(5):
        harness.sqs.send_message(QueueUrl=harness.url, MessageBody=str(i))
        time.sleep(0.2)
    harness.wait_for(lambda: sum(len(b) for b in harness.batches) >= 5)
    assert [len(b) for b in harness.batches] == [5]


def test_records_are_lambda_shaped(harness: Harness) -> None:
    harness.sqs.send_message(QueueUrl=harness.url, MessageBody="hello", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "greeting"}})
    harness.start(batching_window=0)
    harness.wait_for(lambda: len(harness.batches) == 1)
    record = harness.batches[0][0]
    arn = harness.sqs.get_queue_attributes(QueueUrl=harness.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert record["body"] == "hello" and record["receiptHandle"] and record["messageId"]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "greeting"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"


def test_after_max_receive_count_sqs_moves_the_message_to_the_dlq(aws_endpoint: str) -> None:
    harness = Harness(visibility=1, max_receive=2)
    harness.send(1)

    def always_fail(records: list[dict[str, Any]]) -> None:
        raise RuntimeError("poison")

    harness.behaviour = always_fail
    harness.start(batching_window=0)
    try:
        harness.wait_for(lambda: harness.depth(harness.dlq_url) == 1)
    finally:
        assert harness.source is not None
        harness.source.stop()
    assert len(harness.batches) == 2
    assert harness.depth() == 0


def test_messages_received_as_it_stops_are_given_back_at_once(aws_endpoint: str) -> None:
    h = Harness(visibility=120)
    h.send(1)
    source = h.start(batching_window=5)  # holds the message while it waits for a fuller batch
    visible = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    def attrs() -> dict[str, str]:
        return dict(h.sqs.get_queue_attributes(QueueUrl=h.url, AttributeNames=visible)["Attributes"])

    h.wait_for(lambda: attrs()["ApproximateNumberOfMessagesNotVisible"] == "1")
    source.stop()
    assert h.batches == []
    assert attrs() == {"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "0"}


def unreachable_sqs(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Outage:
    """SQS for clients created from now on: a proxy to the emulator, cut (connections refused)."""
    endpoint = urlsplit(harness.sqs.meta.endpoint_url)
    outage = Outage(endpoint.hostname or "127.0.0.1", endpoint.port or 80)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", outage.url)
    return outage


def test_a_mapping_started_while_sqs_is_unreachable_waits_for_it(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    harness.send(3)
    outage = unreachable_sqs(harness, monkeypatch)
    threading.Timer(1.5, outage.restore).start()
    try:
        source = harness.start(batching_window=0)  # returns once SQS answers
        harness.wait_for(lambda: sum(len(b) for b in harness.batches) == 3)
        source.stop()
    finally:
        outage.cut(count=False)
    assert source.queue_arn.endswith(":" + harness.name)


def test_a_mapping_gives_up_when_sqs_stays_unreachable(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable_sqs(harness, monkeypatch)
    monkeypatch.setattr(event_sources, "PATIENCE_SECONDS", 1.0)
    with pytest.raises(EndpointConnectionError):
        harness.start()
    assert harness.source is None and harness.batches == []


def test_a_stop_ends_the_wait_for_sqs_at_once(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the minute's patience, nor the connection error it would end with: the stop itself."""
    unreachable_sqs(harness, monkeypatch)
    asked = threading.Event()
    threading.Timer(0.5, asked.set).start()
    with pytest.raises(event_sources.StartAbandoned):
        harness.start(stopping=asked.is_set)
    assert harness.source is None
