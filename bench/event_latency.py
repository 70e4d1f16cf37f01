"""How long a payment event takes from its ack to its last job when its targets answer slowly.

    .venv/bin/python -m bench.event_latency [--events 30] [--target-ms 200]

A fresh `fila up` (empty state: it prints the depth it starts at). The fake CRM and Slack answer every
request after ``--target-ms``, as real APIs do (their script). Payment events are posted one at a
time, each once the previous one's jobs have finished, so each has the stack to itself. An event's
latency: its ``received_at`` (the ack) to the ``finished_at`` of the last of the jobs its message
runs (CRM, Slack, invoice; the receipt, on the rate-limited email lane, is left out), from the stored
records. Results: bench/results/event-latency-<time>.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import requests

from bench.emulator import aws_client, stack_depth
from bench.record import save
from chalicelib.routing import route_for
from chalicelib.store.dynamodb import decode
from fila.local.running import Stack
from fila.samples import signed_sample

TYPE = "payment_intent.succeeded"


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _finished(ddb: Any, key: str, names: tuple[str, ...]) -> list[float] | None:
    """When each of the event's jobs finished; None while any has not."""
    items = [ddb.get_item(TableName="fila-local-jobs", Key={"job_id": {"S": f"{key}:{name}"}}).get("Item")
             for name in names]
    jobs = [decode(item) for item in items if item]
    if len(jobs) < len(names) or any(not job.get("finished_at") for job in jobs):
        return None
    return [_at(job["finished_at"]) for job in jobs]


def measure(events: int, target_ms: int) -> dict[str, Any]:
    stack = Stack().start()
    out: dict[str, Any] = {"events": events, "target_ms": target_ms, "start_depth": stack_depth(stack)}
    print(f"event latency: starting from depth {out['start_depth']}", flush=True)
    ddb = aws_client("dynamodb", stack.aws)
    route = route_for(TYPE)
    assert route is not None
    slow = {"responses": [{"status": 200, "delay": target_ms / 1000}] * (events * 2), "then": 200}
    try:
        for target in ("crm", "slack"):
            requests.post(f"{stack.base}/_fakes/{target}/_script", json=slow, timeout=10).raise_for_status()
        latencies = []
        for _ in range(events):
            event_id, headers, body = signed_sample("stripe", TYPE)
            answer = requests.post(f"{stack.base}/webhooks/stripe", data=body, headers=headers, timeout=30)
            answer.raise_for_status()
            key = f"stripe#{event_id}"
            deadline = time.monotonic() + 60
            while (done := _finished(ddb, key, route.jobs)) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{key}: jobs not finished after 60 s")
                time.sleep(0.02)
            event = decode(ddb.get_item(TableName="fila-local-events", Key={"pk": {"S": key}})["Item"])
            latencies.append(round((max(done) - _at(event["received_at"])) * 1000))
        out["latency_ms"] = latencies
        out["p50_ms"] = statistics.median(latencies)
        out["p90_ms"] = sorted(latencies)[int(len(latencies) * 0.9) - 1]
        out["max_ms"] = max(latencies)
    finally:
        stack.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--target-ms", type=int, default=200)
    args = parser.parse_args()
    started = datetime.now(UTC)
    save("event-latency", started, {"date": started.isoformat(), **measure(args.events, args.target_ms)})


if __name__ == "__main__":
    main()
