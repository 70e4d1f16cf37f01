"""DynamoStore's writes that meet a transaction in flight on one of their items (AWS rejects them whole;
the emulator never does, so DynamoDB's answers are given here, with no network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from chalicelib import aws
from chalicelib.store import Change, ConditionFailed, Expect, Write, dynamodb
from chalicelib.store.dynamodb import DynamoStore
from tests.helpers import Streamed

CONFLICT = (400, {"__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                  "message": "Transaction is ongoing for the item"})
OK: tuple[int, dict[str, Any]] = (200, {})


def cancelled(*codes: str) -> tuple[int, dict[str, Any]]:
    return 400, {"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                 "message": "Transaction cancelled", "CancellationReasons": [{"Code": c} for c in codes]}


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[tuple[int, dict[str, Any]]], list[str]]]:
    """DynamoDB's answers, in order (the list to fill), and the operations sent."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(dynamodb, "CONFLICT_PAUSES", (0.0, 0.0, 0.0))
    aws.reset()
    queued: list[tuple[int, dict[str, Any]]] = []
    sent: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.headers["X-Amz-Target"].decode().split(".")[-1])
        status, body = queued.pop(0)
        return AWSResponse(request.url, status, {"content-type": "application/x-amz-json-1.0"},
                           Streamed(json.dumps(body).encode()))

    aws.client("dynamodb").meta.events.register("before-send", answer)
    yield queued, sent
    aws.reset()


def test_a_write_that_meets_a_transaction_is_sent_again(answers: Any) -> None:
    queued, sent = answers
    queued += [CONFLICT, CONFLICT, (200, {"Attributes": {"job_id": {"S": "j"}, "status": {"S": "active"}}})]
    record = DynamoStore().update("jobs", {"job_id": "j"}, Change(put={"status": "active"}))
    assert record["status"] == "active" and sent == ["UpdateItem"] * 3
    queued += [cancelled("None", "TransactionConflict"), OK]
    DynamoStore().write([Write("jobs", {"job_id": n}, change=Change(put={"status": "active"})) for n in "ab"])
    assert sent[3:] == ["TransactWriteItems"] * 2


def test_a_failed_condition_is_not_sent_again(answers: Any) -> None:
    queued, sent = answers
    queued += [cancelled("ConditionalCheckFailed", "TransactionConflict")]
    with pytest.raises(ConditionFailed):
        DynamoStore().write([Write("jobs", {"job_id": n}, change=Change(put={"status": "active"}),
                                   expect=Expect(exists=True)) for n in "ab"])
    assert sent == ["TransactWriteItems"]


def test_a_conflict_that_lasts_is_the_caller_s_error(answers: Any) -> None:
    queued, sent = answers
    queued += [CONFLICT] * 4
    with pytest.raises(ClientError, match="TransactionConflict"):
        DynamoStore().delete("jobs", {"job_id": "j"})
    assert sent == ["DeleteItem"] * 4
