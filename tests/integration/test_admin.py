"""The admin API through the real app on the emulator: every call, auth, pagination, 404/409."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import runtime
from chalicelib.dispatch import take_event
from chalicelib.handlers import HANDLERS
from chalicelib.jobs import Job, Permanent
from chalicelib.queues import SqsQueues
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.system import JobSystem, handler
from tests.signing import stripe_delivery, stripe_event
from tests.unit.conftest import run_job


@handler("admin-test")
def admin_test(job: Job) -> Any:
    if job.data.get("fail"):
        raise Permanent("target said 422")
    return {"ok": True}


@pytest.fixture
def system(client: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobSystem]:
    """The app's job system, with one more handler of this test's."""
    made = JobSystem([*HANDLERS, admin_test], store=DynamoStore(), queues=SqsQueues())
    monkeypatch.setattr(runtime, "system", lambda: made)
    yield made


AUTH = {"Authorization": "Bearer fila-local-admin"}


def call(client: Client, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    response = getattr(client.http, method.lower())(path, headers=AUTH if headers is None else headers)
    return response.status_code, json.loads(response.body) if response.body else None


def work(system: JobSystem, job: Job) -> None:
    run_job(system, job.job_id, lane=job.queue)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "fila-local-admin"},
                                     {"Authorization": "Basic fila-local-admin"}, {"Authorization": "Bearer "}])
def test_the_api_needs_the_bearer_token(client: Client, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/admin/api/queues"), ("GET", "/admin/api/jobs"), ("POST", "/admin/api/jobs/x/retry"),
                         ("POST", "/admin/api/queues/default/redrive"), ("POST", "/admin/api/schedules/sync-crm/run"),
                         ("POST", "/admin/api/queues/email/pause"), ("POST", "/admin/api/queues/email/resume"),
                         ("POST", "/admin/api/queues/default/clean?status=completed&older_than=0"),
                         ("GET", "/admin/api/queues/default/stats")):
        status, body = call(client, method, path, headers)
        assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_the_dashboard_page_carries_no_data(client: Client) -> None:
    response = client.http.get("/admin")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert b"Admin token" in response.body and b"fila-local-admin" not in response.body


def test_queue_counts_come_from_sqs(client: Client, system: JobSystem) -> None:
    system.enqueue("admin-test", {})
    system.enqueue("admin-test", {}, delay=60)
    status, body = call(client, "GET", "/admin/api/queues")
    assert status == 200
    default = next(q for q in body["queues"] if q["name"] == "default")
    assert default == {"name": "default", "waiting": 1, "in_flight": 0, "delayed": 1, "dead": 0,
                       "dlq_messages": 0, "paused": False, "rate_limit": None}
    email = next(q for q in body["queues"] if q["name"] == "email")
    assert email["rate_limit"] == {"max": 14, "per_seconds": 1}
    assert {q["name"] for q in body["queues"]} == {"high", "default", "email", "maintenance"}


def test_jobs_page_newest_first_with_cursors(client: Client, system: JobSystem) -> None:
    made = [system.enqueue("admin-test", {"i": i}).job_id for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        status, body = call(client, "GET", "/admin/api/jobs?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(body["jobs"]) <= 3
        seen += [j["job_id"] for j in body["jobs"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == made[::-1] and pages >= 3
    status, body = call(client, "GET", "/admin/api/jobs?status=waiting&queue=default&limit=50")
    assert status == 200 and len(body["jobs"]) == 7
    assert call(client, "GET", "/admin/api/jobs?queue=nope")[0] == 404
    assert call(client, "GET", "/admin/api/jobs?limit=x")[0] == 400
    assert call(client, "GET", "/admin/api/jobs?cursor=%25%25")[0] == 400
    assert call(client, "GET", "/admin/api/jobs?status=sleeping")[0] == 400


def _cursor(state: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def test_a_forged_cursor_is_refused_with_400_before_any_query(client: Client, system: JobSystem) -> None:
    """A cursor is the client's to send back: one fila did not give is a 400, never DynamoDB's refusal (500)."""
    for i in range(24):
        system.enqueue("admin-test", {"i": i})
    cursor, state = "", dict[str, Any]()
    while not any(isinstance(v, dict) for v in state.values()):  # until a page stops inside a shard
        cursor = call(client, "GET", f"/admin/api/jobs?limit=2&cursor={cursor}")[1]["next_cursor"]
        state = json.loads(base64.urlsafe_b64decode(cursor))
    at = next(p for p, v in state.items() if isinstance(v, dict))
    other = next(p for p in state if p != at)
    forged: list[Any] = [
        {p: {"job_id": 5} for p in state}, {p: 7 for p in state}, {p: [1] for p in state},  # not a key
        {**state, at: {**state[at], "created_at": {"a": 1}}}, {**state, at: {**state[at], "job_id": 5}},  # types
        {**state, at: {**state[at], "time_shard": other}},  # another shard's key
        {**state, at: {**state[at], "extra": "x"}},  # more than the key
        {**state, "job#99": None}, {p: v for p, v in state.items() if p != other},  # not this query's shards
        [state], "done"]
    for wrong in forged:
        answer = call(client, "GET", f"/admin/api/jobs?cursor={_cursor(wrong)}")
        assert (answer[0], answer[1]["error"]["code"]) == (400, "invalid_payload"), wrong
    assert call(client, "GET", f"/admin/api/jobs?limit=2&cursor={_cursor(state)}")[0] == 200  # the real one


def test_one_job_retry_and_its_409_and_404(client: Client, system: JobSystem) -> None:
    job = system.enqueue("admin-test", {"fail": True})
    work(system, job)
    status, body = call(client, "GET", f"/admin/api/jobs/{job.job_id}")
    assert status == 200 and body["status"] == "failed" and body["attempts"] == 1
    assert body["history"][0]["error_type"] == "Permanent" and "Traceback" in body["history"][0]["traceback"]
    assert body["last_error"] == "Permanent: target said 422" and body["options"]["attempts"] == 3
    status, body = call(client, "POST", f"/admin/api/jobs/{job.job_id}/retry")
    assert status == 200 and body["status"] == "waiting" and body["attempts"] == 0
    assert call(client, "POST", f"/admin/api/jobs/{job.job_id}/retry")[0] == 409
    assert call(client, "POST", "/admin/api/jobs/nope/retry")[0] == 404
    assert call(client, "GET", "/admin/api/jobs/nope")[0] == 404


def test_an_event_with_its_jobs_replay_and_404(client: Client, system: JobSystem) -> None:
    headers, body = stripe_delivery(stripe_event("customer.created"))
    event_id = json.loads(client.http.post("/webhooks/stripe", headers=headers, body=body).body)["event_id"]
    take_event(system, {"source": "stripe", "event_id": event_id})
    status, event = call(client, "GET", f"/admin/api/events/stripe/{event_id}")
    assert status == 200 and event["type"] == "customer.created" and event["status"] == "queued"
    assert event["received_at"] and {j["name"] for j in event["jobs"]} == {"update-crm", "send-welcome-email"}
    assert set(event["jobs"][0]) >= {"job_id", "name", "status", "attempts", "last_error", "result"}
    status, replayed = call(client, "POST", f"/admin/api/events/stripe/{event_id}/replay")
    assert status == 200 and len(replayed["jobs"]) == 2
    assert len(call(client, "GET", f"/admin/api/events/stripe/{event_id}")[1]["jobs"]) == 4
    assert call(client, "GET", "/admin/api/events/stripe/evt_nope")[0] == 404
    assert call(client, "POST", "/admin/api/events/stripe/evt_nope/replay")[0] == 404


def test_redrive_a_dlq_and_peek_its_reasons(client: Client, system: JobSystem) -> None:
    failed = [system.enqueue("admin-test", {"fail": True}) for _ in range(3)]
    for job in failed:
        work(system, job)
    status, dlq = call(client, "GET", "/admin/api/queues/default/dlq")
    assert status == 200 and {m["job_id"] for m in dlq["messages"]} == {j.job_id for j in failed}
    assert all(m["reason"] == "Permanent: target said 422" for m in dlq["messages"])
    status, body = call(client, "POST", "/admin/api/queues/default/redrive")
    assert (status, body) == (200, {"moved": 3})
    assert call(client, "POST", "/admin/api/queues/nope/redrive")[0] == 404


def test_retry_all_failed_in_a_queue_and_promote(client: Client, system: JobSystem) -> None:
    failed = [system.enqueue("admin-test", {"fail": True}) for _ in range(2)]
    for job in failed:
        work(system, job)
    status, body = call(client, "POST", "/admin/api/queues/default/retry-failed")
    assert status == 200 and sorted(body["retried"]) == sorted(j.job_id for j in failed)
    delayed = system.enqueue("admin-test", {}, delay=300)
    status, body = call(client, "POST", f"/admin/api/jobs/{delayed.job_id}/promote")
    assert status == 200 and body["status"] == "waiting"
    assert call(client, "POST", f"/admin/api/jobs/{delayed.job_id}/promote")[0] == 409


def test_run_a_schedule_now(client: Client, system: JobSystem) -> None:
    status, body = call(client, "POST", "/admin/api/schedules/sync-crm/run")
    assert status == 200 and body["run_id"].startswith("run#")
    status, schedules = call(client, "GET", "/admin/api/schedules")
    sync = next(s for s in schedules["schedules"] if s["name"] == "sync-crm")
    assert sync["expression"] == "cron(0 * * * ? *)" and sync["runs"][0]["run_id"] == body["run_id"]
    assert call(client, "POST", "/admin/api/schedules/recovery-sweep/run")[0] == 200
    assert call(client, "POST", "/admin/api/schedules/nope/run")[0] == 404


def test_a_retried_jobs_dlq_message_is_stale_not_dead(client: Client, system: JobSystem) -> None:
    failed = [system.enqueue("admin-test", {"fail": True}) for _ in range(2)]
    for job in failed:
        work(system, job)
    default = next(q for q in call(client, "GET", "/admin/api/queues")[1]["queues"] if q["name"] == "default")
    assert (default["dead"], default["dlq_messages"]) == (2, 2)
    assert call(client, "POST", f"/admin/api/jobs/{failed[0].job_id}/retry")[0] == 200
    default = next(q for q in call(client, "GET", "/admin/api/queues")[1]["queues"] if q["name"] == "default")
    assert (default["dead"], default["dlq_messages"]) == (1, 2)  # the retried one is not dead any more
    messages = {m["job_id"]: m for m in call(client, "GET", "/admin/api/queues/default/dlq")[1]["messages"]}
    assert messages[failed[0].job_id]["stale"] and messages[failed[0].job_id]["job_status"] == "waiting"
    assert not messages[failed[1].job_id]["stale"] and messages[failed[1].job_id]["job_status"] == "failed"


def test_pause_and_resume_a_lane(client: Client, system: JobSystem) -> None:
    assert call(client, "POST", "/admin/api/queues/email/pause") == (200, {"name": "email", "paused": True})
    paused = {q["name"]: q["paused"] for q in call(client, "GET", "/admin/api/queues")[1]["queues"]}
    assert paused == {"high": False, "default": False, "email": True, "maintenance": False}
    assert call(client, "POST", "/admin/api/queues/email/resume") == (200, {"name": "email", "paused": False})
    assert not any(q["paused"] for q in call(client, "GET", "/admin/api/queues")[1]["queues"])
    assert call(client, "POST", "/admin/api/queues/nope/pause")[0] == 404
    assert call(client, "GET", "/admin/api/queues/email/pause")[0] in (403, 405)  # POST only


def test_clean_a_lane_and_its_wrong_input(client: Client, system: JobSystem) -> None:
    done = [system.enqueue("admin-test", {}) for _ in range(3)]
    for job in done:
        work(system, job)
    for query in ("status=active&older_than=0", "status=completed&older_than=-5", "status=completed&older_than=7d",
                  "status=completed", "older_than=0", "status=completed&older_than=0&limit=0"):
        status, body = call(client, "POST", f"/admin/api/queues/default/clean?{query}")
        assert (status, body["error"]["code"]) == (400, "invalid_payload"), query
    assert call(client, "POST", "/admin/api/queues/nope/clean?status=completed&older_than=0")[0] == 404
    assert call(client, "POST", "/admin/api/queues/default/clean?status=completed&older_than=3600") == \
        (200, {"removed": 0, "more": False})
    assert call(client, "POST", "/admin/api/queues/default/clean?status=completed&older_than=0") == \
        (200, {"removed": 3, "more": False})
    assert call(client, "GET", f"/admin/api/jobs/{done[0].job_id}")[0] == 404


def test_a_lanes_chart_numbers(client: Client, system: JobSystem) -> None:
    from chalicelib.stats import LaneStats

    system.hooks.append(LaneStats(system.lanes))
    for job in [system.enqueue("admin-test", {}) for _ in range(3)] + [system.enqueue("admin-test", {"fail": 1})]:
        work(system, job)
    system.flush()
    status, body = call(client, "GET", "/admin/api/queues/default/stats?minutes=5")
    assert status == 200 and len(body["minutes"]) == 5
    assert (body["totals"]["completed"], body["totals"]["failed"]) == (3, 1)
    assert body["totals"]["run_p99_ms"] is not None and body["minutes"][-1]["completed"] in (0, 3)
    for bad in ("minutes=0", "minutes=x", "minutes=100000"):
        assert call(client, "GET", f"/admin/api/queues/default/stats?{bad}")[0] == 400
    assert call(client, "GET", "/admin/api/queues/nope/stats")[0] == 404


def test_a_jobs_page_shows_its_progress_and_logs(client: Client, system: JobSystem) -> None:
    @handler("admin-report")
    def report(job: Job) -> None:
        job.progress(30)
        job.log("rendering page 1")

    system.handlers["admin-report"] = report
    job = system.enqueue("admin-report", {})
    work(system, job)
    status, body = call(client, "GET", f"/admin/api/jobs/{job.job_id}")
    assert status == 200 and body["progress"] == 30 and body["logs"] == ["rendering page 1"]
