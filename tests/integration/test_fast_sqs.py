"""fila.local.fast_sqs keeps moto's observable SQS semantics: every scenario runs side by side against
moto's own server and the patched emulator, and the answers must be the same."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from tests.integration.conftest import error

Scenario = Callable[[Any], Any]
pytestmark = pytest.mark.xdist_group("stock-moto")  # one moto server of its own for the module


def side_by_side(stock: str, patched: str, scenario: Scenario) -> None:
    answers = []
    for url in (stock, patched):
        sqs = boto3.client("sqs", endpoint_url=url)
        answers.append(scenario(sqs))
    assert answers[1] == answers[0]


def queue(sqs: Any, **attributes: str) -> str:
    return str(sqs.create_queue(QueueName="q-" + uuid.uuid4().hex[:10], Attributes=attributes)["QueueUrl"])


def counts(sqs: Any, url: str) -> tuple[int, int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return tuple(int(found[n]) for n in names)  # type: ignore[return-value]


def receive(sqs: Any, url: str, n: int = 10, **options: Any) -> list[dict[str, Any]]:
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, AttributeNames=["All"],
                                    **options).get("Messages", []))


def seen(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in messages]


@pytest.fixture
def twin(stock_moto: str, aws_endpoint: str) -> Callable[[Scenario], None]:
    return lambda scenario: side_by_side(stock_moto, aws_endpoint, scenario)


def test_visibility_order_and_receive_counts(twin: Callable[[Scenario], None]) -> None:
    def scenario(sqs: Any) -> Any:
        url = queue(sqs, VisibilityTimeout="1")
        for body in ("a", "b", "c"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        out: list[Any] = [counts(sqs, url), seen(receive(sqs, url, 2)), counts(sqs, url), seen(receive(sqs, url))]
        out += [seen(receive(sqs, url)), counts(sqs, url)]
        time.sleep(1.3)
        out += [counts(sqs, url), seen(receive(sqs, url, VisibilityTimeout=5)), counts(sqs, url)]
        return out

    twin(scenario)


def test_delays(twin: Callable[[Scenario], None]) -> None:
    def scenario(sqs: Any) -> Any:
        url = queue(sqs)
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
        sqs.send_message(QueueUrl=url, MessageBody="now")
        out: list[Any] = [counts(sqs, url), seen(receive(sqs, url))]
        time.sleep(1.2)
        return [*out, counts(sqs, url), seen(receive(sqs, url))]

    twin(scenario)


def test_redrive_to_the_dlq_after_max_receive_count(twin: Callable[[Scenario], None]) -> None:
    def scenario(sqs: Any) -> Any:
        dlq = queue(sqs)
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = queue(sqs, RedrivePolicy=json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "2"}))
        sqs.send_message(QueueUrl=url, MessageBody="poison")
        sqs.send_message(QueueUrl=url, MessageBody="fine")
        out = [seen(receive(sqs, url, VisibilityTimeout=0)) for _ in range(3)]
        return [*out, counts(sqs, url), counts(sqs, dlq), seen(receive(sqs, dlq))]

    twin(scenario)


def test_receipt_handles_that_go_stale(twin: Callable[[Scenario], None]) -> None:
    def scenario(sqs: Any) -> Any:
        url = queue(sqs)
        sqs.send_message(QueueUrl=url, MessageBody="x")
        first = receive(sqs, url, VisibilityTimeout=0)[0]["ReceiptHandle"]
        second = receive(sqs, url, VisibilityTimeout=30)[0]["ReceiptHandle"]
        out = [error(lambda: sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first, VisibilityTimeout=0)),
               counts(sqs, url),
               error(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=second)),
               error(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=second)),  # again: fine
               error(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=first)),  # an older one of it: fine
               error(lambda: sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second, VisibilityTimeout=5)),
               error(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")),
               counts(sqs, url)]
        return out

    twin(scenario)


def test_batches_visibility_changes_and_purge(twin: Callable[[Scenario], None]) -> None:
    def scenario(sqs: Any) -> Any:
        url = queue(sqs)
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
        got = receive(sqs, url, 10, VisibilityTimeout=30)
        deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": "a", "ReceiptHandle": got[0]["ReceiptHandle"]}, {"Id": "b", "ReceiptHandle": "nope"}])
        changed = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": "c", "ReceiptHandle": got[1]["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "d", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 0}])
        out = [[s["Id"] for s in deleted.get("Successful", [])], [f["Code"] for f in deleted.get("Failed", [])],
               [s["Id"] for s in changed.get("Successful", [])], [f["Code"] for f in changed.get("Failed", [])],
               counts(sqs, url), seen(receive(sqs, url))]
        sqs.purge_queue(QueueUrl=url)
        sqs.send_message(QueueUrl=url, MessageBody="after purge")
        return [*out, counts(sqs, url), seen(receive(sqs, url))]

    twin(scenario)


def test_message_attributes_are_filtered_per_receive(twin: Callable[[Scenario], None]) -> None:
    def scenario(sqs: Any) -> Any:
        url = queue(sqs)
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
            "a": {"DataType": "String", "StringValue": "1"}, "b": {"DataType": "String", "StringValue": "2"}})
        one = receive(sqs, url, MessageAttributeNames=["a"], VisibilityTimeout=0)[0]
        every = receive(sqs, url, MessageAttributeNames=["All"])[0]
        return [sorted(one.get("MessageAttributes", {})), sorted(every.get("MessageAttributes", {}))]

    twin(scenario)


def test_a_long_poll_returns_as_soon_as_a_message_arrives(twin: Callable[[Scenario], None]) -> None:
    def scenario(sqs: Any) -> Any:
        url = queue(sqs)
        later = threading.Timer(0.5, lambda: sqs.send_message(QueueUrl=url, MessageBody="late"))
        started = time.monotonic()
        later.start()
        got = receive(sqs, url, WaitTimeSeconds=5)
        took = time.monotonic() - started
        empty_started = time.monotonic()
        empty = receive(sqs, url, WaitTimeSeconds=1)
        return [seen(got), took < 2.5, seen(empty), time.monotonic() - empty_started >= 0.9]

    twin(scenario)


def test_a_message_whose_visibility_runs_out_ends_a_long_poll(twin: Callable[[Scenario], None]) -> None:
    def scenario(sqs: Any) -> Any:
        url = queue(sqs)
        sqs.send_message(QueueUrl=url, MessageBody="x")
        receive(sqs, url, VisibilityTimeout=1)
        started = time.monotonic()
        got = receive(sqs, url, WaitTimeSeconds=5)
        return [seen(got), time.monotonic() - started < 3]

    twin(scenario)
