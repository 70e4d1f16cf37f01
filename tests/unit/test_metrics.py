"""CloudWatch metrics in EMF: the lines Lambda's log pipeline turns into metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.jobs import Job, Permanent
from chalicelib.metrics import JobMetrics
from chalicelib.system import JobSystem, handler
from fila.memory import MemoryQueues, MemoryStore
from tests.signing import stripe_delivery, stripe_event
from tests.unit.conftest import run_job


@handler("metrics-test")
def metrics_test(job: Job) -> None:
    if job.data.get("fail"):
        raise Permanent("no")


def emf(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    return [{**line, "metrics": [m["Name"] for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]],
             "namespace": line["_aws"]["CloudWatchMetrics"][0]["Namespace"]} for line in lines]


def test_acks_duplicates_and_rejects_by_code(app_client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    client = app_client
    headers, body = stripe_delivery(stripe_event())
    client.http.post("/webhooks/stripe", headers=headers, body=body)
    client.http.post("/webhooks/stripe", headers=headers, body=body)
    client.http.post("/webhooks/stripe", headers={"Content-Type": "application/json"}, body=body)
    lines = emf(capsys.readouterr().out)
    assert [(m["source"], m["outcome"]) for m in lines] == [
        ("stripe", "accepted"), ("stripe", "duplicate"), ("stripe", "invalid_signature")]
    assert all(m["namespace"] == "fila" and m["stage"].startswith("local") for m in lines)
    assert lines[0]["metrics"] == ["Webhooks", "AckLatency"] and lines[0]["AckLatency"][0] > 0
    assert lines[2]["metrics"] == ["Webhooks"]


def test_job_successes_retries_and_failures(capsys: pytest.CaptureFixture[str]) -> None:
    system = JobSystem([metrics_test], store=MemoryStore(), queues=MemoryQueues(), hooks=[JobMetrics()])
    for data in ({}, {"fail": True}):
        run_job(system, system.enqueue("metrics-test", data).job_id)
    lines = emf(capsys.readouterr().out)
    assert [(m["job"], m["outcome"], m["Jobs"]) for m in lines] == [
        ("metrics-test", "completed", [1.0]), ("metrics-test", "failed", [1.0])]
