from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

import app as fila
from chalicelib.resources import lanes
from chalicelib.settings import resource_name
from fila.local.emulator import free_port, wait_listening
from tests.helpers import stop


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


@pytest.fixture(scope="session")
def stock_moto() -> Iterator[str]:
    """moto's own server, unpatched, one per worker (modules using it share the xdist group "stock-moto",
    and may run interleaved with others: a module scope would start it again each time)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening("127.0.0.1", port, timeout=30, proc=proc)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


def error(call: Callable[[], Any]) -> str | None:
    """The AWS error code ``call`` raised, or None."""
    try:
        call()
    except ClientError as err:
        return str(err.response["Error"]["Code"])
    return None
