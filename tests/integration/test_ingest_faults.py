"""Ingest under faults, races and hostile headers: durable before the ack, never processed twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app as fila
from chalicelib import aws, ingest, queues, runtime
from chalicelib.dispatch import take_event
from chalicelib.handlers import HANDLERS
from chalicelib.ingest import accept
from chalicelib.queues import SqsQueues
from chalicelib.settings import resource_name
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.sweep import Stranded, sweep
from chalicelib.system import JobSystem
from fila.local.event_sources import lambda_record
from tests.integration.conftest import Emulated
from tests.signing import stripe_delivery, stripe_event

DEAD = "http://127.0.0.1:9"


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Make one AWS service unreachable (its own endpoint variable), then bring it back."""
    monkeypatch.setattr(ingest, "STRANDED", Stranded())  # what the outage strands, this test's alone

    def down(service_env: str) -> None:
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service_env}", DEAD)
        aws.reset()
        queues.forget()
        runtime.forget()

    yield down
    monkeypatch.undo()
    aws.reset()
    queues.forget()
    runtime.forget()


def post(client: Client, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    response = client.http.post("/webhooks/stripe", headers=headers, body=body)
    return response.status_code, json.loads(response.body)


@contextmanager
def first_answer_lost(operation: str, token_kept: bool = True) -> Iterator[list[int]]:
    """The SDK retries a DynamoDB call whose answer it did not get (a timeout, a reset connection, a 500
    after the write): its first successful answer is dropped and the call sent again at once.
    ``token_kept`` False: the retry goes without its ClientRequestToken, as to an endpoint that ignores it."""
    lost: list[int] = []

    def lose_the_first_answer(response: Any, attempts: int, request_dict: dict[str, Any], **_: Any
                              ) -> int | None:
        if not lost and response is not None and response[0].status_code == 200:
            lost.append(attempts)
            if not token_kept:  # the retry is built (and signed) from this
                request_dict["body"] = json.dumps({k: v for k, v in json.loads(request_dict["body"]).items()
                                                   if k != "ClientRequestToken"}).encode()
            return 0  # retry at once, as after a read timeout
        return None

    events = aws.client("dynamodb").meta.events
    events.register(f"needs-retry.dynamodb.{operation}", lose_the_first_answer)
    try:
        yield lost
    finally:
        events.unregister(f"needs-retry.dynamodb.{operation}", lose_the_first_answer)


def test_table_unavailable_is_503_nothing_queued_and_a_later_retry_succeeds(
        client: Client, emulated: Emulated, outage: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    headers, body = stripe_delivery(stripe_event())
    outage("DYNAMODB")
    status, error = post(client, headers, body)
    assert status == 503 and error["error"]["code"] == "unavailable"
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    aws.reset()
    assert emulated.events() == [] and emulated.depth() == 0
    status, ack = post(client, headers, body)  # the emitter's retry
    assert status == 200 and ack["duplicate"] is False and emulated.depth() == 1


def test_queue_unavailable_after_the_store_still_acks_and_the_sweep_enqueues_once(
        client: Client, emulated: Emulated, outage: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    headers, body = stripe_delivery(stripe_event())
    outage("SQS")
    status, ack = post(client, headers, body)
    assert status == 200 and ack["duplicate"] is False
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")
    aws.reset()
    assert emulated.depth() == 0 and emulated.events()[0]["status"]["S"] == "received"
    assert sweep(now=time.time()) == 0  # not stale yet: a slow send may still land
    later = time.time() + 120
    assert sweep(now=later) == 1
    assert sweep(now=later) == 0 and sweep(now=later + 60) == 0  # a second run, or the next minute
    (message,) = emulated.all_messages()
    assert json.loads(message["Body"])["event_id"] == ack["event_id"]


def test_an_event_whose_stored_answer_was_lost_is_acked_new_and_queued(client: Client, emulated: Emulated
                                                                     ) -> None:
    """The SDK retries a PutItem whose answer it did not get (a timeout, a reset connection, a 500 after
    the write). The first try landed, so the retry fails its condition on this delivery's own record:
    still a new event, queued now, not a duplicate ack and an event left for the sweep."""
    payload = stripe_event()
    with first_answer_lost("PutItem") as lost:
        status, ack = post(client, *stripe_delivery(payload))
    assert lost == [1] and status == 200 and ack["duplicate"] is False
    (message,) = emulated.all_messages()
    assert json.loads(message["Body"])["event_id"] == ack["event_id"]
    status, again = post(client, *stripe_delivery(payload))
    assert status == 200 and again["duplicate"] is True and emulated.all_messages() == []  # a real re-delivery


@pytest.mark.parametrize("token_kept", [True, False], ids=["token-kept", "token-ignored"])
def test_a_dispatch_whose_answer_was_lost_still_wakes_its_jobs(
        client: Client, emulated: Emulated, token_kept: bool) -> None:
    """The SDK retries a TransactWriteItems whose answer it did not get, with the same token: AWS (and the
    emulator since) answers success. Stock moto applied it again and the retry failed its condition on
    the dispatch's own write: taken for a second message, the jobs it created were left to no one (the
    chaos soak lost six events so). Without the token, the dispatch's read-back tells its own write."""
    _, ack = post(client, *stripe_delivery(stripe_event("customer.created")))
    (message,) = [json.loads(m["Body"]) for m in emulated.messages("default")]
    system = JobSystem(HANDLERS, store=DynamoStore(), queues=SqsQueues())
    with first_answer_lost("TransactWriteItems", token_kept) as lost:
        take_event(system, message)
    jobs = system.jobs.of_event(f"stripe#{ack['event_id']}")
    woken = [json.loads(m["Body"])["job_id"] for lane in ("default", "email") for m in emulated.messages(lane)]
    assert lost == [1] and len(jobs) == 2 and sorted(woken) == sorted(j.job_id for j in jobs)


def test_one_sweep_enqueues_every_page_an_outage_left(
        client: Client, emulated: Emulated, outage: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chalicelib.sweep.PAGE", 2)
    outage("SQS")
    acked = {post(client, *stripe_delivery(stripe_event()))[1]["event_id"] for _ in range(5)}
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")
    aws.reset()
    assert sweep(now=time.time() + 120) == 5
    assert {json.loads(m["Body"])["event_id"] for m in emulated.all_messages()} == acked


def test_after_an_outage_the_next_ack_sends_what_it_stranded_through_the_maintenance_lane(
        client: Client, emulated: Emulated, outage: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the minute's schedule, nor an early sweep: the events ride one message, sent again at once."""
    outage("SQS")
    _, stranded = post(client, *stripe_delivery(stripe_event("customer.updated")))
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")
    aws.reset()
    _, back = post(client, *stripe_delivery(stripe_event("customer.updated")))
    url = emulated.sqs.get_queue_url(QueueName=resource_name("maintenance"))["QueueUrl"]
    received = emulated.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, AttributeNames=["All"])["Messages"]
    assert [[m["event_id"] for _, m in json.loads(m["Body"])["events"]] for m in received] == [
        [stranded["event_id"]]]
    records = {"Records": [lambda_record(m, "arn:aws:sqs:us-east-1:000000000000:maintenance", "us-east-1")
                           for m in received]}
    assert fila.app.handler_map["consume_maintenance"](records, None) == {"batchItemFailures": []}
    queued = [json.loads(m["Body"])["event_id"] for m in emulated.messages("default")]
    assert sorted(queued) == sorted([back["event_id"], stranded["event_id"]])
    assert emulated.messages("maintenance") == []  # asked for once


def test_sweep_racing_a_slow_enqueue_dispatches_the_event_once(client: Client, emulated: Emulated) -> None:
    headers, body = stripe_delivery(stripe_event())
    _, ack = post(client, headers, body)             # the original send lands...
    assert sweep(now=time.time() + 120) == 1         # ...and the sweep sends a second copy
    messages = emulated.messages("high")
    assert len(messages) == 2
    records = {"Records": [lambda_record(m, "arn:aws:sqs:us-east-1:000000000000:high", "us-east-1") for m in messages]}
    assert fila.app.handler_map["consume_high"](records, None) == {"batchItemFailures": []}
    stored = runtime.system().events.get("stripe", ack["event_id"])
    assert stored is not None and stored.status == "queued"
    jobs = runtime.system().jobs.of_event(stored.key)  # run where they were dispatched, by one copy only
    assert sorted((j.name, j.attempts_made) for j in jobs if j.parent is None) == [
        ("generate-invoice-pdf", 1), ("notify-slack", 1), ("update-crm", 1)]
    assert [json.loads(m["Body"]) for m in emulated.messages("high")] == []


def test_eight_concurrent_deliveries_of_one_event_store_and_queue_it_once(emulated: Emulated) -> None:
    headers, body = stripe_delivery(stripe_event())
    barrier, acks = threading.Barrier(8), []

    def deliver() -> None:
        barrier.wait()
        system = runtime.system()
        acks.append(accept("stripe", headers, body, events=system.events, queues=system.queues))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.duplicate for a in acks) == [False] + [True] * 7
    assert len(emulated.events()) == 1 and len(emulated.all_messages()) == 1


def test_the_ack_path_makes_two_aws_calls_for_a_new_event_and_one_for_a_duplicate(client: Client) -> None:
    post(client, *stripe_delivery(stripe_event()))  # warm: queue URL looked up once per container
    calls: list[str] = []
    for service in ("dynamodb", "sqs", "s3"):
        aws.client(service).meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    headers, body = stripe_delivery(stripe_event())
    assert post(client, headers, body)[0] == 200
    assert calls == ["PutItem", "SendMessage"]
    calls.clear()
    assert post(client, headers, body)[1]["duplicate"] is True
    assert calls == ["PutItem"]


any_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.sampled_from(["stripe", "github", "shopify", "standard"]),
       headers=st.dictionaries(st.sampled_from([
           "Stripe-Signature", "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256", "X-GitHub-Event",
           "X-GitHub-Delivery", "X-Shopify-Topic", "X-Shopify-Webhook-Id", "webhook-id",
           "webhook-timestamp", "webhook-signature", "Content-Type"]), any_text),
       body=st.binary(max_size=300))
def test_no_header_value_makes_the_api_answer_5xx(client: Client, emulated: Emulated, source: str,
                                                   headers: dict[str, str], body: bytes) -> None:
    response = client.http.post(f"/webhooks/{source}", headers={"Content-Type": "application/json", **headers},
                                body=body)
    assert response.status_code in (401, 415), response.body
    assert json.loads(response.body)["error"]["code"] in ("invalid_signature", "timestamp_out_of_tolerance",
                                                          "unsupported_media_type")
    assert emulated.events() == []
