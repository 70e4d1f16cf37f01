"""`fila send`: realistic signed samples for every source, accepted by the running stack."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from fila.local.running import Stack
from tests.e2e.test_ingest_e2e import event_status, wait_status

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]  # one worker: one session stack


@pytest.mark.parametrize("source, event_type, status", [
    ("stripe", "payment_intent.succeeded", "completed"),
    ("standard", "customer.created", "completed"),
    ("github", "issues.opened", "ignored"),
    ("shopify", "orders/create", "ignored"),
])
def test_fila_send_is_accepted_and_taken(stack: Stack, source: str, event_type: str, status: str) -> None:
    out = subprocess.run([sys.executable, "-m", "fila.cli", "send", source, event_type, "--url", stack.base],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    code, _, _, event_id, _ = out.stdout.split(" ", 4)
    assert code == "200" and '"duplicate":false' in out.stdout
    wait_status(stack, source, event_id, status)
    assert event_status(stack, source, event_id) == status


def fila(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fila.cli", *args, "--url", stack.base], capture_output=True,
                          text=True, timeout=60)


def test_cli_jobs_events_and_schedules_through_the_admin_api(on_stack: Stack) -> None:
    from tests.e2e.test_processing import deliver, script, wait_for
    from tests.signing import standard_delivery

    script(on_stack, "crm", then=500)
    email = f"frances+{time.time_ns()}@example.com"
    event_id = deliver(on_stack, "standard", *standard_delivery(
        {"type": "customer.updated", "data": {"email": email, "name": "Frances Allen"}}))
    job_id = f"standard#{event_id}:update-crm"
    wait_for(lambda: event_status(on_stack, "standard", event_id) == "failed")
    shown = fila(on_stack, "events", "show", "standard", event_id)
    assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "failed"
    listed = fila(on_stack, "jobs", "list", "--status", "failed")
    assert listed.returncode == 0 and job_id in listed.stdout and "answered 500" in listed.stdout
    detail = json.loads(fila(on_stack, "jobs", "show", job_id).stdout)
    assert detail["status"] == "failed" and len(detail["history"]) == 3
    dlq = fila(on_stack, "dlq", "list", "default")
    assert dlq.returncode == 0 and job_id in dlq.stdout and "answered 500" in dlq.stdout
    script(on_stack, "crm", then=200)
    retried = fila(on_stack, "jobs", "retry", job_id)
    assert retried.returncode == 0 and retried.stdout.startswith(f"{job_id}: ")
    wait_for(lambda: event_status(on_stack, "standard", event_id) == "completed")
    again = fila(on_stack, "jobs", "retry", job_id)
    assert again.returncode == 1 and "409" in again.stderr
    missing = fila(on_stack, "jobs", "show", "no-such-job")
    assert missing.returncode == 1 and "404" in missing.stderr
    run = fila(on_stack, "schedule", "run", "sync-crm")
    assert run.returncode == 0 and run.stdout.startswith("run#")
    wrong = subprocess.run([sys.executable, "-m", "fila.cli", "jobs", "list", "--url", on_stack.base, "--token", "nope"],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1 and "401" in wrong.stderr


def test_fila_dlq_redrive_moves_messages_back_with_progress(on_stack: Stack) -> None:
    from tests.e2e.test_processing import deliver, script, wait_for
    from tests.signing import standard_delivery

    fila(on_stack, "dlq", "redrive", "default")  # start from an empty DLQ
    script(on_stack, "crm", then=422)  # permanent: straight to the DLQ
    ids = [deliver(on_stack, "standard", *standard_delivery(
        {"type": "customer.updated", "data": {"email": f"n{i}-{time.time_ns()}@example.com", "name": "N"}}))
        for i in range(12)]
    wait_for(lambda: all(event_status(on_stack, "standard", i) == "failed" for i in ids))
    script(on_stack, "crm", then=200)
    out = fila(on_stack, "dlq", "redrive", "default")
    assert out.returncode == 0, out.stderr
    assert "moved 12 message(s) back to default" in out.stdout
    assert "redriving default [" in out.stderr and "12/12" in out.stderr
    wait_for(lambda: all(event_status(on_stack, "standard", i) == "completed" for i in ids))
