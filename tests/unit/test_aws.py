"""fila's AWS clients: one per service and container; DynamoDB's requests go out as the store built them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ParamValidationError

from chalicelib import aws
from tests.helpers import Streamed


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Clients whose requests are answered here with an empty 200 (no network); the targets sent."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    aws.reset()
    sent: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.headers.get("X-Amz-Target", b"").decode() or request.body.decode()[:40])
        return AWSResponse(request.url, 200, {"content-type": "application/x-amz-json-1.0"}, Streamed(b"{}"))

    for service in ("dynamodb", "sqs"):
        aws.client(service).meta.events.register("before-send", answer)
    yield sent
    aws.reset()


def test_a_client_is_made_once_per_service(answered: list[str]) -> None:
    assert aws.client("dynamodb") is aws.client("dynamodb") and aws.client("sqs") is not aws.client("dynamodb")


def test_dynamodb_requests_skip_botocore_validation_and_the_others_keep_it(answered: list[str]) -> None:
    # a number where a string belongs: botocore's validation would refuse it before sending
    aws.client("dynamodb").get_item(TableName="jobs", Key={"job_id": {"S": 5}})
    assert answered == ["DynamoDB_20120810.GetItem"]  # sent: the service (here, the emulator) validates it
    with pytest.raises(ParamValidationError):
        aws.client("sqs").send_message(QueueUrl="http://127.0.0.1:9/q", MessageBody=5)
    assert len(answered) == 1


def test_the_local_workers_make_at_start_what_a_burst_s_first_jobs_would(answered: list[str]) -> None:
    import sys

    from fila.local.workers import warm

    sys.modules.pop("fpdf", None)
    warm()
    assert {"sqs", "dynamodb", "s3", "ses"} <= set(aws._clients) and "fpdf" in sys.modules
    assert answered == []  # made, not called: nothing reaches AWS
