"""CloudWatch metrics in EMF: the lines Lambda's log pipeline turns into metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.jobs import Job, Permanent, enqueue, handler
from chalicelib.worker import Delivery, run
from tests.signing import stripe_delivery, stripe_event


@handler("metrics-test")
def metrics_test(job: Job) -> None:
    if job.data.get("fail"):
        raise Permanent("no")


def emf(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    return [{**line, "metrics": [m["Name"] for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]],
             "namespace": line["_aws"]["CloudWatchMetrics"][0]["Namespace"]} for line in lines]


def test_acks_duplicates_and_rejects_by_code(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_job_successes_retries_and_failures(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    for data in ({}, {"fail": True}):
        job = enqueue("metrics-test", data)
        run(Delivery("rh", {"kind": "job", "job_id": job.job_id}, job.queue, 0), 1_000)
    lines = emf(capsys.readouterr().out)
    assert [(m["job"], m["outcome"], m["Jobs"]) for m in lines] == [
        ("metrics-test", "completed", [1.0]), ("metrics-test", "failed", [1.0])]
