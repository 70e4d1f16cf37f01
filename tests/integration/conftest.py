from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

import app as fila
from chalicelib.resources import lanes
from chalicelib.settings import resource_name


@pytest.fixture
def client(stage: str, tmp_path: Path) -> Iterator[Client]:
    """The real app in-process against the emulator (no config dir: the test's stage stays in force)."""
    with Client(fila.app, project_dir=str(tmp_path)) as c:
        yield c


class Emulated:
    """What a test can see of the stage's resources."""

    def __init__(self) -> None:
        self.sqs = boto3.client("sqs")
        self.ddb = boto3.client("dynamodb")

    def events(self) -> list[dict[str, Any]]:
        return list(self.ddb.scan(TableName=resource_name("events"), ConsistentRead=True)["Items"])

    def messages(self, queue: str) -> list[dict[str, Any]]:
        url = self.sqs.get_queue_url(QueueName=resource_name(queue))["QueueUrl"]
        found: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                VisibilityTimeout=30).get("Messages", []):
            found += batch
        return found

    def all_messages(self) -> list[dict[str, Any]]:
        return [m for q in lanes() for m in self.messages(q)]

    def depth(self) -> int:
        total = 0
        for queue in lanes():
            url = self.sqs.get_queue_url(QueueName=resource_name(queue))["QueueUrl"]
            attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            total += int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        return total


@pytest.fixture
def emulated(stage: str) -> Emulated:
    return Emulated()
