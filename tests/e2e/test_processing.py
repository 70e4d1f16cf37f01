"""Processing end to end on the local stack: real HTTP to the fake CRM and Slack this test scripts,
SES and S3 on the emulator, the real consumers and schedules of `fila up`."""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import requests

from chalicelib import operations, runtime
from fila.local.running import Stack
from tests.e2e.test_ingest_e2e import event_status
from tests.signing import standard_delivery, stripe_delivery, stripe_event

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]  # one worker: one session stack
PAYMENT_JOBS = ("update-crm", "notify-slack", "generate-invoice-pdf", "generate-invoice-pdf>send-receipt-email")


def received(stack: Stack, target: str) -> list[dict[str, Any]]:
    return list(requests.get(f"{stack.base}/_fakes/{target}/_received", timeout=5).json())


def crm_calls(stack: Stack, email: str) -> list[dict[str, Any]]:
    """The CRM requests jobs made for ``email``: not the hourly sync-crm's, whose run at the top of the
    hour may land inside a test and push that test's contact too."""
    return [r for r in received(stack, "crm") if r["json"]["email"] == email
            and not r["headers"].get("idempotency-key", "").startswith("sync-crm:")]


def script(stack: Stack, target: str, *statuses: int, then: int = 200) -> None:
    requests.post(f"{stack.base}/_fakes/{target}/_script", timeout=5,
                  json={"responses": [{"status": s} for s in statuses], "then": then})


def emails(stack: Stack, to: str) -> list[dict[str, Any]]:
    data = requests.get(f"{stack.aws}/moto-api/data.json", timeout=10).json()
    return [m for m in data["ses"]["Message"] if to in m["destinations"]["ToAddresses"]]


def wait_for(check: Callable[[], bool], timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def deliver(stack: Stack, source: str, headers: dict[str, str], body: bytes) -> str:
    response = requests.post(f"{stack.base}/webhooks/{source}", headers=headers, data=body, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


def payment(email: str, amount: int = 4200) -> dict[str, Any]:
    event = stripe_event("payment_intent.succeeded")
    event["data"]["object"].update({"receipt_email": email, "amount": amount, "metadata": {"customer_name": "Ada Lovelace"}})
    return event


def pdf_text(pdf: bytes) -> str:
    """Every text-drawing stream of the PDF, inflated (fpdf2 compresses page content)."""
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:  # the end-of-line before "endstream" may or may not belong to the data: a decompressobj
            chunks.append(zlib.decompressobj().decompress(stream).decode("latin-1"))  # ignores the rest
        except zlib.error:
            chunks.append(stream.decode("latin-1"))
    return "\n".join(chunks)


def test_a_payment_is_upserted_announced_invoiced_and_receipted_once(on_stack: Stack) -> None:
    email = f"ada+{time.time_ns()}@example.com"
    event_id = deliver(on_stack, "stripe", *stripe_delivery(payment(email)))
    wait_for(lambda: event_status(on_stack, "stripe", event_id) == "completed")
    crm = crm_calls(on_stack, email)
    assert len(crm) == 1 and crm[0]["method"] == "PUT" and crm[0]["path"] == f"/contacts/{email}"
    assert crm[0]["headers"]["idempotency-key"] == f"stripe#{event_id}:update-crm"
    assert crm[0]["json"]["name"] == "Ada Lovelace" and crm[0]["json"]["properties"]["amount"] == 4200
    slack = [r for r in received(on_stack, "slack") if event_id in r["json"]["text"]]
    assert len(slack) == 1 and "42.00 EUR" in slack[0]["json"]["text"] and "Ada Lovelace" in slack[0]["json"]["text"]
    key = f"invoices/stripe/{event_id}/invoice.pdf"
    pdf = boto3.client("s3").get_object(Bucket="fila-local-documents", Key=key)["Body"].read()
    assert pdf.startswith(b"%PDF-") and "42.00 EUR" in pdf_text(pdf)
    (mail,) = emails(on_stack, email)
    assert key in mail["body"] and "42.00 EUR" in mail["subject"]
    statuses = {name: runtime.system().jobs.get(f"stripe#{event_id}:{name}").status for name in PAYMENT_JOBS}  # type: ignore[union-attr]
    assert set(statuses.values()) == {"completed"}


def test_a_crm_failing_twice_succeeds_on_attempt_three_and_nothing_else_repeats(on_stack: Stack) -> None:
    script(on_stack, "crm", 503, 503)
    email = f"grace+{time.time_ns()}@example.com"
    event_id = deliver(on_stack, "stripe", *stripe_delivery(payment(email)))
    wait_for(lambda: event_status(on_stack, "stripe", event_id) == "completed")
    calls = crm_calls(on_stack, email)
    assert [c["status"] for c in calls] == [503, 503, 200]
    assert len({c["headers"]["idempotency-key"] for c in calls}) == 1
    first_gap, second_gap = calls[1]["at"] - calls[0]["at"], calls[2]["at"] - calls[1]["at"]
    assert 1.5 <= first_gap < second_gap  # 2 s, then 4 s
    crm_job = runtime.system().jobs.get(f"stripe#{event_id}:update-crm")
    assert crm_job is not None and crm_job.attempts_made == 3 and len(crm_job.attempts) == 2
    assert len([r for r in received(on_stack, "slack") if event_id in r["json"]["text"]]) == 1
    assert len(emails(on_stack, email)) == 1


def test_a_crm_that_stays_down_fails_the_event_and_a_redrive_completes_it(on_stack: Stack) -> None:
    script(on_stack, "crm", then=500)
    email = f"alan+{time.time_ns()}@example.com"
    event_id = deliver(on_stack, "stripe", *stripe_delivery(payment(email)))
    wait_for(lambda: event_status(on_stack, "stripe", event_id) == "failed")
    crm_job = runtime.system().jobs.get(f"stripe#{event_id}:update-crm")
    assert crm_job is not None and crm_job.status == "failed" and len(crm_job.attempts) == 3
    assert "answered 500" in crm_job.attempts[-1]["message"]
    wait_for(lambda: len(emails(on_stack, email)) == 1)  # the rest went on without the CRM
    script(on_stack, "crm", then=200)  # the CRM recovers
    assert operations.redrive(runtime.system(), "high") >= 1
    wait_for(lambda: event_status(on_stack, "stripe", event_id) == "completed")
    assert len([r for r in received(on_stack, "slack") if event_id in r["json"]["text"]]) == 1
    assert len(emails(on_stack, email)) == 1
    assert [r["status"] for r in crm_calls(on_stack, email)] == [500, 500, 500, 200]


def test_a_new_customer_reaches_the_crm_and_gets_a_welcome_email(on_stack: Stack) -> None:
    email = f"katherine+{time.time_ns()}@example.com"
    event_id = deliver(on_stack, "standard", *standard_delivery(
        {"type": "customer.created", "data": {"email": email, "name": "Katherine Johnson"}}))
    wait_for(lambda: event_status(on_stack, "standard", event_id) == "completed")
    assert [r["json"]["name"] for r in crm_calls(on_stack, email)] == ["Katherine Johnson"]
    (mail,) = emails(on_stack, email)
    assert mail["subject"] == "Welcome!" and "Katherine Johnson" in mail["body"]


def test_sync_crm_pushes_only_changed_contacts_and_a_second_run_pushes_nothing(on_stack: Stack) -> None:
    from chalicelib.schedules import sync_crm

    sync_crm()  # catch up with everything earlier tests changed
    requests.delete(f"{on_stack.base}/_fakes/crm/_received", timeout=5)
    assert sync_crm()["pushed"] == 0
    email = f"margaret+{time.time_ns()}@example.com"
    event_id = deliver(on_stack, "standard", *standard_delivery(
        {"type": "customer.updated", "data": {"email": email, "name": "Margaret Hamilton"}}))
    wait_for(lambda: event_status(on_stack, "standard", event_id) == "completed")
    requests.delete(f"{on_stack.base}/_fakes/crm/_received", timeout=5)
    run = sync_crm()
    assert run["status"] == "completed" and run["pushed"] == 1
    (pushed,) = received(on_stack, "crm")
    assert pushed["json"]["email"] == email and pushed["headers"]["idempotency-key"].startswith(f"sync-crm:{email}:")
    second = sync_crm()  # a second run in the same hour
    assert second["pushed"] == 0 and len(received(on_stack, "crm")) == 1
    from chalicelib.schedules import runs
    latest = runs(runtime.system().store, "sync-crm")[:2]
    assert [r["run_id"] for r in latest] == [second["run_id"], run["run_id"]]
    assert [(r["status"], r["pushed"]) for r in latest] == [("completed", "0"), ("completed", "1")]
    assert all(r["started_at"] <= r["finished_at"] for r in latest)


def test_replay_dispatches_a_stored_event_again_as_new_jobs(on_stack: Stack) -> None:
    from chalicelib.dispatch import replay

    email = f"edsger+{time.time_ns()}@example.com"
    event_id = deliver(on_stack, "standard", *standard_delivery(
        {"type": "customer.created", "data": {"email": email, "name": "Edsger Dijkstra"}}))
    wait_for(lambda: event_status(on_stack, "standard", event_id) == "completed")
    again = replay(runtime.system(), "standard", event_id)
    assert [j.job_id for j in again] == [f"standard#{event_id}:replay-1:{n}" for n in ("update-crm", "send-welcome-email")]
    wait_for(lambda: all(runtime.system().jobs.get(j.job_id).status == "completed" for j in again))  # type: ignore[union-attr]
    wait_for(lambda: event_status(on_stack, "standard", event_id) == "completed")
    assert len(emails(on_stack, email)) == 2
    assert len(crm_calls(on_stack, email)) == 2
