"""A payment burst lane by lane: which lane holds the others up, second by second.

    .venv/bin/python -m bench.lanes_timeline [--events 300]

A fresh local stack (it prints the depth it starts from and the lanes' rate limits); N signed
``payment_intent.succeeded`` events sent as `fila send` does (concurrency 8). Every half second, from
outside the stack: each lane's queue (visible / in flight / delayed) and how long the emulator takes to
answer a DynamoDB UpdateItem and an SQS call, so a slow lane can be told from a slow emulator. At the
end, from the jobs table: each job kind's jobs created and finished in each second, and its latency
(created to finished). Bursts of the throughput bench (bench/throughput.py) give one number; this says
where it comes from.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from bench.emulator import aws_client, stack_depth
from bench.record import rate_limits, save
from chalicelib.clock import parse_iso
from chalicelib.resources import lanes
from fila.local.running import Stack

PROBE_KEY = {"lane": {"S": "bench-probe"}, "slot": {"S": "probe"}}


def _timed(call: Any) -> float:
    started = time.monotonic()
    call()
    return round((time.monotonic() - started) * 1000, 1)


class Sampler(threading.Thread):
    """The lanes' queues and the emulator's answer times, every ``every`` seconds, until stopped."""

    def __init__(self, stack: Stack, t0: float, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.sqs, self.ddb = aws_client("sqs", stack.aws), aws_client("dynamodb", stack.aws)
        self.urls = {lane: self.sqs.get_queue_url(QueueName=f"fila-local-{lane}")["QueueUrl"] for lane in lanes()}
        self.t0, self.every, self.rows = t0, every, list[dict[str, Any]]()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            row: dict[str, Any] = {"s": round(time.monotonic() - self.t0, 1)}
            for lane, url in self.urls.items():
                a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                row[lane] = "/".join(a[f"ApproximateNumberOfMessages{k}"] for k in ("", "NotVisible", "Delayed"))
            row["dynamodb_update_ms"] = _timed(lambda: self.ddb.update_item(
                TableName="fila-local-lanes", Key=PROBE_KEY, UpdateExpression="ADD probes :one",
                ExpressionAttributeValues={":one": {"N": "1"}}))
            row["sqs_ms"] = _timed(lambda: self.sqs.get_queue_attributes(
                QueueUrl=self.urls["high"], AttributeNames=["QueueArn"]))
            self.rows.append(row)
            self.stopping.wait(self.every)


def by_kind(ddb: Any, wall_t0: float) -> dict[str, dict[str, Any]]:
    """Each job kind (lane/name): created and finished per second after the first send, and latency."""
    seen: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
    for page in ddb.get_paginator("scan").paginate(TableName="fila-local-jobs"):
        for item in page["Items"]:
            finished = item.get("finished_at", {}).get("S")
            seen[f"{item['queue']['S']}/{item['name']['S']}"].append(
                (parse_iso(item["created_at"]["S"]) - wall_t0, parse_iso(finished) - wall_t0 if finished else None))
    out = {}
    for kind, jobs in sorted(seen.items()):
        done = [(c, f) for c, f in jobs if f is not None]
        latency = sorted(f - c for c, f in done)
        out[kind] = {
            "jobs": len(jobs), "unfinished": len(jobs) - len(done),
            "created_per_s": _per_second(c for c, _ in jobs), "finished_per_s": _per_second(f for _, f in done),
            "latency_p50_s": round(statistics.median(latency), 2) if latency else None,
            "latency_max_s": round(latency[-1], 2) if latency else None,
        }
    return out


def _per_second(times: Any) -> list[int]:
    counts = Counter(max(0, int(t)) for t in times)
    return [counts[s] for s in range(max(counts, default=-1) + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()
    started = datetime.now(UTC)
    stack = Stack().start()
    result: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "events": args.events,
                              "start_depth": stack_depth(stack), "rate_limits": rate_limits()}
    print(f"lanes timeline: {args.events} payment events, starting from depth {result['start_depth']}, "
          f"rate limits {result['rate_limits']}", flush=True)
    try:
        t0, wall_t0 = time.monotonic(), time.time()
        sampler = Sampler(stack, t0)
        sampler.start()
        subprocess.run([sys.executable, "-m", "fila.cli", "send", "stripe", "payment_intent.succeeded",
                        "--count", str(args.events), "--concurrency", "8", "--url", stack.base],
                       check=True, env=stack.env, stderr=subprocess.DEVNULL, timeout=3600)
        result["sent_s"] = round(time.monotonic() - t0, 1)
        while stack_depth(stack) > 0:
            time.sleep(0.5)
        result["drained_s"] = round(time.monotonic() - t0, 1)
        result["events_per_s"] = round(args.events / result["drained_s"], 1)
        sampler.stopping.set()
        sampler.join()
        result["samples"] = sampler.rows
        result["kinds"] = by_kind(aws_client("dynamodb", stack.aws), wall_t0)
    finally:
        stack.stop()
    save("lanes-timeline", started, result)
    print(f"{result['events_per_s']} events/s end to end (drained at {result['drained_s']} s); finished per second:")
    for kind, seen in result["kinds"].items():
        print(f"  {kind:28} {' '.join(map(str, seen['finished_per_s']))}  (latency p50 {seen['latency_p50_s']} s)")


if __name__ == "__main__":
    main()
