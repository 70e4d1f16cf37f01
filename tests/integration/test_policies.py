"""Each function's IAM policy against the AWS actions its code really calls.

Every function's handler is run through its real paths against the emulator (the API through every
route, the consumers through a payment, a new customer, a retry and a permanent failure, the
schedules as EventBridge would), with every AWS call recorded; a call its policy lacks fails the test.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import boto3
import pytest
from chalice.test import Client

import app as fila
from chalicelib import aws, ingest, queues
from chalicelib.resources import lanes
from chalicelib.settings import settings
from chalicelib.sweep import Stranded
from fila.deploy import POLICIES
from fila.local.event_sources import failed_ids, lambda_record
from fila.local.fakes import Fakes
from fila.local.scheduler import scheduled_event
from tests.signing import stripe_delivery, stripe_event

BATCH_ACTIONS = {"DeleteMessageBatch": "DeleteMessage", "SendMessageBatch": "SendMessage",
                 "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
SERVICES = ("dynamodb", "sqs", "s3", "ses", "ssm", "lambda")  # service names are IAM prefixes for all of these


class Recorder:
    def __init__(self) -> None:
        self.function = "none"
        self.calls: dict[str, set[str]] = defaultdict(set)
        for service in SERVICES:
            aws.client(service).meta.events.register("provide-client-params", self._record)

    def _record(self, model: Any, params: Any = None, **_: Any) -> None:
        service = model.service_model.service_name
        if model.name == "TransactWriteItems":  # IAM authorises each item's own action
            self.calls[self.function] |= {f"dynamodb:{kind}Item" for item in params["TransactItems"] for kind in item}
            return
        self.calls[self.function].add(f"{service}:{BATCH_ACTIONS.get(model.name, model.name)}")

    def as_function(self, name: str) -> Recorder:
        self.function = name
        return self


class Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    fakes = Fakes()
    server = make_server("127.0.0.1", 0, fakes, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/_fakes"
    monkeypatch.setenv("CRM_API_URL", f"{base}/crm")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{base}/slack")
    yield fakes
    server.shutdown()


def granted(function: str) -> set[str]:
    return {action for actions, _ in POLICIES[function] for action in actions}


def drain(recorder: Recorder, timeout: float = 20) -> None:
    """Run every lane's consumer on what its queue holds, as the event source mapping would (deleting
    what the batch response says is done), until every lane is empty."""
    sqs, deadline = boto3.client("sqs"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for lane in lanes():
            url = queues.queue_url(lane)
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            busy |= int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) > 0
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
            if not messages:
                continue
            recorder.as_function(f"consume_{lane}")
            records = {"Records": [lambda_record(m, attrs["QueueArn"], "us-east-1") for m in messages]}
            response = fila.app.handler_map[f"consume_{lane}"](records, None)
            failed = failed_ids(response, {m["MessageId"] for m in messages}) or set()
            for m in messages:
                if m["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            # the event source mapping's own calls are made with the function's role
            recorder.calls[f"consume_{lane}"] |= {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
        if not busy:
            return
        time.sleep(0.3)
    left = {lane: sqs.get_queue_attributes(QueueUrl=queues.queue_url(lane), AttributeNames=["All"])["Attributes"]
            for lane in lanes()}
    raise AssertionError(f"the lanes did not drain: {left}")


def strand_one_then_ask_for_a_sweep(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ack whose send fails (stored, left for the sweep), then one whose send works and asks for an
    early sweep, due a second later (``SWEEP_AFTER_SECONDS`` 0 here)."""
    monkeypatch.setattr(ingest, "STRANDED", Stranded())
    monkeypatch.setattr("chalicelib.sweep.settings", lambda: replace(settings(), sweep_after_seconds=0))
    send, refused = queues.SqsQueues.send, list[str]()

    def first_refused(self: queues.SqsQueues, lane: str, body: dict[str, Any], delay: int = 0) -> None:
        if not refused:
            refused.append(lane)
            raise ConnectionError("SQS unreachable")
        send(self, lane, body, delay)

    monkeypatch.setattr(queues.SqsQueues, "send", first_refused)
    for _ in range(2):
        headers, body = stripe_delivery(stripe_event("customer.updated"))
        assert client.http.post("/webhooks/stripe", headers=headers, body=body).status_code == 200
    time.sleep(1.5)  # the request's delay: a delayed message is not counted as work by ``drain``


def test_every_function_calls_only_what_its_policy_allows(client: Client, targets: Fakes,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder().as_function("api_handler")
    auth = {"Authorization": "Bearer fila-local-admin"}
    payment = stripe_event("payment_intent.succeeded")
    payment["data"]["object"]["notes"] = "x" * 300_000  # the S3 claim check too
    headers, body = stripe_delivery(payment)
    assert client.http.post("/webhooks/stripe", headers=headers, body=body).status_code == 200
    client.http.post("/webhooks/stripe", headers=headers, body=body)
    customer = stripe_event("customer.created")
    client.http.post("/webhooks/stripe", headers=stripe_delivery(customer)[0], body=stripe_delivery(customer)[1])
    targets.targets["crm"].script = [{"status": 503}]  # one retry with backoff
    drain(recorder)
    recorder.as_function("api_handler")
    assert client.http.get("/health").status_code == 200
    for path in ("/admin/api/queues", "/admin/api/jobs", "/admin/api/jobs?status=completed",
                 f"/admin/api/events/stripe/{payment['id']}", "/admin/api/schedules", "/admin/api/queues/high/dlq"):
        assert client.http.get(path, headers=auth).status_code == 200, path
    targets.targets["crm"].then = 422  # permanent: the consumer moves the job to the DLQ
    client.http.post(f"/admin/api/events/stripe/{payment['id']}/replay", headers=auth)
    drain(recorder)
    recorder.as_function("api_handler")
    failed = json.loads(client.http.get("/admin/api/jobs?status=failed", headers=auth).body)["jobs"]
    assert failed, "the permanent failure should have left a failed job"
    for call in (f"/admin/api/jobs/{failed[0]['job_id'].replace('#', '%23')}/retry", "/admin/api/queues/high/redrive",
                 "/admin/api/queues/high/retry-failed", "/admin/api/schedules/sync-crm/run",
                 "/admin/api/schedules/recovery-sweep/run", "/admin/api/queues/email/pause",
                 "/admin/api/queues/email/resume", "/admin/api/queues/high/clean?status=completed&older_than=0"):
        assert client.http.post(call, headers=auth).status_code == 200, call
    assert client.http.get("/admin/api/queues/high/stats", headers=auth).status_code == 200
    recorder.calls["api_handler"].add("lambda:UpdateEventSourceMapping")  # no mapping exists on this stage
    recorder.as_function("api_handler")
    strand_one_then_ask_for_a_sweep(client, monkeypatch)
    drain(recorder)  # the maintenance lane's consumer runs the early sweep
    recorder.as_function("recovery_sweep")
    fila.app.handler_map["recovery_sweep"](scheduled_event("recovery_sweep", __import__("datetime").datetime.now()), None)
    recorder.as_function("sync_crm")
    fila.app.handler_map["sync_crm"](scheduled_event("sync_crm", __import__("datetime").datetime.now()), None)

    assert set(recorder.calls) >= {"api_handler", "consume_high", "consume_default", "consume_email",
                                   "consume_maintenance", "recovery_sweep", "sync_crm"}
    assert "sqs:SendMessage" in recorder.calls["consume_maintenance"]  # the early sweep sent what was stranded
    for function, calls in recorder.calls.items():
        missing = calls - granted(function)
        assert not missing, f"{function} calls {sorted(missing)}, which its policy (fila/deploy.py) lacks"


def test_policies_name_no_wildcard_action_and_no_bare_wildcard_resource() -> None:
    from fila.deploy import policy_document

    for function in POLICIES:
        for statement in policy_document(function)["Statement"]:
            assert all("*" not in action for action in statement["Action"]), function
            if statement["Resource"] == ["*"]:  # only what IAM grants on nothing narrower
                assert statement["Action"] == ["lambda:ListEventSourceMappings"], function
                continue
            assert all(r != "*" and r.get("Fn::Sub", "") != "*" for r in statement["Resource"]), function
