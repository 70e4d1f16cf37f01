"""`fila send`: realistic signed samples for every source, accepted by the running stack."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

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


def test_fila_queue_pause_holds_a_lane_without_losing_anything_and_resume_drains_it(on_stack: Stack) -> None:
    from tests.e2e.test_processing import deliver, emails, wait_for
    from tests.signing import standard_delivery

    paused = fila(on_stack, "queue", "pause", "email")
    assert paused.returncode == 0 and paused.stdout.strip() == "email: paused"
    try:
        time.sleep(3.5)  # the flag is read at most a second old, and a long poll begun before it lasts 2 s
        email = f"grace+{time.time_ns()}@example.com"
        event_id = deliver(on_stack, "standard", *standard_delivery(
            {"type": "customer.created", "data": {"email": email, "name": "Grace Hopper"}}))
        crm = f"standard#{event_id}:update-crm"
        wait_for(lambda: (job := _job(on_stack, crm)) is not None and job["status"] == "completed")
        time.sleep(3)  # the default lane went on; the email lane holds its message
        assert emails(on_stack, email) == []
        lanes = {q["name"]: q for q in _queues(on_stack)}
        assert lanes["email"]["paused"] and lanes["email"]["waiting"] + lanes["email"]["in_flight"] >= 1
    finally:
        resumed = fila(on_stack, "queue", "resume", "email")
    assert resumed.returncode == 0 and resumed.stdout.strip() == "email: consuming"
    wait_for(lambda: len(emails(on_stack, email)) == 1)
    assert not any(q["paused"] for q in _queues(on_stack))


def test_fila_queue_clean_with_progress_and_its_wrong_input(on_stack: Stack) -> None:
    from tests.e2e.test_processing import deliver, wait_for
    from tests.signing import standard_delivery

    ids = [deliver(on_stack, "standard", *standard_delivery(
        {"type": "customer.updated", "data": {"email": f"c{i}-{time.time_ns()}@example.com", "name": "C"}}))
        for i in range(3)]
    wait_for(lambda: all(event_status(on_stack, "standard", i) == "completed" for i in ids))
    kept = fila(on_stack, "queue", "clean", "default", "--status", "completed", "--older-than", "1h")
    assert kept.returncode == 0 and json.loads(kept.stdout) == {"removed": 0}
    cleaned = fila(on_stack, "queue", "clean", "default", "--status", "completed", "--older-than", "0")
    assert cleaned.returncode == 0 and json.loads(cleaned.stdout)["removed"] >= 3
    assert "cleaning default:" in cleaned.stderr
    assert all(_job(on_stack, f"standard#{i}:update-crm") is None for i in ids)
    unknown = fila(on_stack, "queue", "pause", "nope")
    assert unknown.returncode == 1 and "404" in unknown.stderr
    bad_age = fila(on_stack, "queue", "clean", "default", "--status", "completed", "--older-than", "soon")
    assert bad_age.returncode == 2 and "not a duration" in bad_age.stderr
    bad_status = fila(on_stack, "queue", "clean", "default", "--status", "active", "--older-than", "1d")
    assert bad_status.returncode == 2
    wrong = subprocess.run([sys.executable, "-m", "fila.cli", "queue", "resume", "email", "--url", on_stack.base,
                            "--token", "nope"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1 and "401" in wrong.stderr


def _queues(stack: Stack) -> list[dict[str, Any]]:
    import requests

    answer = requests.get(f"{stack.base}/admin/api/queues", timeout=10,
                          headers={"Authorization": "Bearer fila-local-admin"})
    return list(answer.json()["queues"])


def _job(stack: Stack, job_id: str) -> dict[str, Any] | None:
    from urllib.parse import quote

    import requests

    answer = requests.get(f"{stack.base}/admin/api/jobs/{quote(job_id, safe='')}", timeout=10,
                          headers={"Authorization": "Bearer fila-local-admin"})
    return dict(answer.json()) if answer.status_code == 200 else None
