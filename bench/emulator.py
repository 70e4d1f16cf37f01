"""The embedded emulator under depth and load, next to the Bull seed system in the same run.

    .venv/bin/python -m bench.emulator [--quick] [--no-baseline]

Every part starts from an empty state (its own fresh emulator or `fila up`) and prints the depth
it started at:
- sqs: per-call latency (p50, client side) of each SQS operation at queue depth 0, 1,000 and 10,000,
  on fila's emulator and, for reference, on moto's own server (depth 0 and 1,000: deeper takes minutes);
- drain: a backlog of no-op jobs (100, then 10,000) drained by fila's real consumer (default lane);
- ack: webhooks acknowledged at client concurrency 1, 16 and 64 (bench/loadgen.mjs) on `fila up`, its
  consumers processing them meanwhile; then c=16 three times with every lane paused (the ack path alone);
- burst: `fila send standard customer.updated --count N --concurrency 8` (N = 100, then 5,000) until
  every event is completed;
- CPU per process of the stack during ack and burst.
Results: bench/results/emulator-<time>.json and a Markdown summary for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import urllib3

from bench.ack import bull_run, loadgen
from bench.chaos import CpuMeter, cpu_share
from bench.record import rate_limits
from chalicelib.resources import lanes
from fila import ROOT
from fila.admin_client import Admin
from fila.local.emulator import aws_env, endpoints, free_port, start_moto, wait_listening
from fila.local.running import Stack

SIZES = (0, 1000, 10000)  # queue depths, table sizes


def aws_client(service: str, url: str | None = None) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _p50(call: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def latency(row: Callable[[Any, int, int], dict[str, float]], client: Any, sizes: tuple[int, ...], calls: int
            ) -> dict[str, dict[str, float]]:
    """``row(client, size, calls)`` for each size: a fresh queue or table filled to it, each call timed."""
    out: dict[str, dict[str, float]] = {}
    for size in sizes:
        out[str(size)] = found = row(client, size, calls)
        print(f"  {size}: " + ", ".join(f"{k} {v} ms" for k, v in found.items()), flush=True)
    return out


def _sqs_row(sqs: Any, depth: int, calls: int) -> dict[str, float]:
    queue = sqs.create_queue(QueueName=f"depth-{time.time_ns()}")["QueueUrl"]
    for start in range(0, depth, 10):
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": "x" * 200}
                                                        for i in range(min(10, depth - start))])
    handles: list[str] = []

    def receive() -> None:
        handles.extend(m["ReceiptHandle"] for m in sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages", []))

    row = {"SendMessage": _p50(lambda: sqs.send_message(QueueUrl=queue, MessageBody="y" * 200), calls),
           "GetQueueAttributes": _p50(lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"]), calls)}
    for _ in range(calls + 3 * calls // 10 + 1):  # every receive below takes 10 (at depth 0 too: an empty
        # receive costs nothing), and the receipt handles for the calls after it
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": "x" * 200}
                                                        for i in range(10)])
    row["ReceiveMessage (10)"] = _p50(receive, calls)
    it = iter(handles)
    row["ChangeMessageVisibility"] = _p50(
        lambda: sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=next(it), VisibilityTimeout=600), calls)
    row["DeleteMessage"] = _p50(lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=next(it)), calls)
    row["DeleteMessageBatch (10)"] = _p50(lambda: sqs.delete_message_batch(QueueUrl=queue, Entries=[
        {"Id": str(i), "ReceiptHandle": next(it)} for i in range(10)]), max(1, calls // 10))
    return row


def _ddb_row(ddb: Any, size: int, calls: int) -> dict[str, float]:
    table = f"size-{time.time_ns()}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    for start in range(0, size, 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {
            "id": {"S": f"old{n}"}, "status": {"S": "completed"}, "data": {"S": "x" * 300}}}}
            for n in range(start, min(size, start + 25))]})
    ids = (f"new{n}" for n in range(10**9))

    def new(n: int) -> list[dict[str, Any]]:
        return [{"Put": {"TableName": table, "Item": {"id": {"S": next(ids)}, "status": {"S": "waiting"}},
                         "ConditionExpression": "attribute_not_exists(id)"}} for _ in range(n)]

    return {
        "PutItem (conditional)": _p50(lambda: ddb.put_item(**new(1)[0]["Put"]), calls),
        "UpdateItem (conditional)": _p50(lambda: ddb.update_item(
            TableName=table, Key={"id": {"S": "new0"}}, UpdateExpression="SET #s = :s ADD n :one",
            ConditionExpression="attribute_exists(id)", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "active"}, ":one": {"N": "1"}}), calls),
        "TransactWriteItems (5 puts)": _p50(lambda: ddb.transact_write_items(TransactItems=new(5)), calls),
    }


def stock_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening("127.0.0.1", port, timeout=30, proc=proc)
    return proc, f"http://127.0.0.1:{port}"


def drain(backlogs: tuple[int, ...]) -> list[dict[str, Any]]:
    """No-op jobs drained by the real consumer, on a fresh emulator and stage per backlog."""
    from bench.jobs import Calls, run_scenario
    from chalicelib import aws
    from fila.local.provision import provision, use_stage

    out = []
    for n in backlogs:
        url = f"http://127.0.0.1:{free_port()}"
        moto = start_moto(url)
        os.environ.update(aws_env(url))
        use_stage(f"local-drain{n}")
        try:
            provision()
            print(f"  backlog {n}: starting from depth {_depth('default')}", flush=True)
            calls = Calls()
            for service in ("dynamodb", "sqs"):
                calls.watch(aws.client(service))
            result = run_scenario(f"drain{n}", n, calls)
            out.append({"backlog": n, "jobs_per_s": result["jobs_per_s"], "drain_s": result["drain_s"],
                        "enqueue_per_s": result["enqueue_per_s"]})
            print(f"  backlog {n}: {result['jobs_per_s']} jobs/s", flush=True)
        finally:
            use_stage("local")  # forget this backlog's queues and clients
            if moto is not None:
                moto.terminate()
                moto.wait()
    return out


def _depth(lane: str) -> int:
    from chalicelib import queues

    attributes = aws_client("sqs").get_queue_attributes(QueueUrl=queues.queue_url(lane), AttributeNames=["All"])
    found = attributes["Attributes"]
    return int(found["ApproximateNumberOfMessages"]) + int(found["ApproximateNumberOfMessagesNotVisible"])


def stack_depth(stack: Stack) -> int:
    sqs = aws_client("sqs", stack.aws)
    total = 0
    for lane in ("high", "default", "email", "maintenance"):
        url = sqs.get_queue_url(QueueName=f"fila-local-{lane}")["QueueUrl"]
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        total += sum(int(a[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                          "ApproximateNumberOfMessagesDelayed"))
    return total


def _by_status(ddb: Any, table: str) -> dict[str, int]:
    """A table's items by status; for jobs, also their attempts past the first ("retries"): a burst whose
    jobs retried (a target that does not answer) drains slower for a reason that is not the one measured."""
    found: dict[str, int] = {"retries": 0} if table == "jobs" else {}
    for page in ddb.get_paginator("scan").paginate(
            TableName=f"fila-local-{table}", ProjectionExpression="#s, attempts_made",
            ExpressionAttributeNames={"#s": "status"}):
        for item in page["Items"]:
            found[item["status"]["S"]] = found.get(item["status"]["S"], 0) + 1
            if "retries" in found:
                found["retries"] += max(0, int(item.get("attempts_made", {"N": "1"})["N"]) - 1)
    return found


def ack(requests: int) -> dict[str, Any]:
    stack = Stack().start()  # snapshots on, as `make run` has them
    out: dict[str, Any] = {"start_depth": stack_depth(stack), "levels": []}
    print(f"  ack: starting from depth {out['start_depth']}", flush=True)
    try:
        with CpuMeter(stack) as meter:
            before, started = meter.reading(), time.monotonic()
            for concurrency in (1, 16, 64):
                level = loadgen("closed", stack.base + "/webhooks/stripe", concurrency, requests, 60)
                out["levels"].append({"concurrency": concurrency, "rps": round(level["rps"], 1),
                                      "latency_ms": level["latency_ms"], "errors": level.get("errors", 0)})
                print(f"  ack c={concurrency}: {level['rps']:.0f} req/s, p99 {level['latency_ms']['p99']} ms",
                      flush=True)
            out["cpu_percent_of_a_core"] = cpu_share(before, meter.reading(), time.monotonic() - started)
        out["snapshots"] = json.loads(urllib3.request("GET", stack.aws + "/_fila/status").data)["snapshots"]
    finally:
        stack.stop()
    without = Stack(FILA_STATE_DIR="").start()  # the same level with no snapshots, for their cost
    try:
        level = loadgen("closed", without.base + "/webhooks/stripe", 16, requests, 60)
        out["c16_without_snapshots"] = {"rps": round(level["rps"], 1), "latency_ms": level["latency_ms"]}
        out["c16_ack_alone"] = ack_alone(without, requests)
    finally:
        without.stop()
    return out


def ack_alone(stack: Stack, requests: int, runs: int = 3) -> list[dict[str, Any]]:
    """c=16 with every lane paused (the admin API's pause): the ack path's own ceiling on this machine,
    without the consumers' processing sharing its two cores (on AWS the two never share a CPU)."""
    admin = Admin(stack.base)
    for lane in lanes():
        admin.call("POST", f"/queues/{lane}/pause")
    time.sleep(5)  # batches already received finish
    found = []
    with CpuMeter(stack) as meter:
        for _ in range(runs):
            before, started = meter.reading(), time.monotonic()
            level = loadgen("closed", stack.base + "/webhooks/stripe", 16, requests, 60)
            found.append({"rps": round(level["rps"], 1), "latency_ms": level["latency_ms"],
                          "cpu_percent_of_a_core": cpu_share(before, meter.reading(), time.monotonic() - started)})
            print(f"  ack c=16, lanes paused: {level['rps']:.0f} req/s, p99 {level['latency_ms']['p99']} ms",
                  flush=True)
    return found


def burst(events: int, source: str = "standard", event_type: str = "customer.updated") -> dict[str, Any]:
    """``fila send <source> <type> --count N --concurrency 8`` on a fresh stack, until its queues drain."""
    stack = Stack().start()
    out: dict[str, Any] = {"events": events, "type": event_type, "start_depth": stack_depth(stack),
                           "rate_limits": rate_limits()}
    print(f"  burst {events}: starting from depth {out['start_depth']}, rate limits {out['rate_limits']}",
          flush=True)
    ddb = aws_client("dynamodb", stack.aws)
    try:
        with CpuMeter(stack) as meter:
            before, started = meter.reading(), time.monotonic()
            subprocess.run([sys.executable, "-m", "fila.cli", "send", source, event_type, "--count",
                            str(events), "--concurrency", "8", "--url", stack.base], check=True, env=stack.env,
                           stderr=subprocess.DEVNULL, timeout=3600)
            out["sent_s"] = round(time.monotonic() - started, 1)
            while stack_depth(stack) > 0:
                time.sleep(0.5)
            out["drained_s"] = round(time.monotonic() - started, 1)
            out["cpu_percent_of_a_core"] = cpu_share(before, meter.reading(), time.monotonic() - started)
        out["statuses"] = statuses = _by_status(ddb, "events")
        out["jobs"] = _by_status(ddb, "jobs")
        out["events_per_s"] = round(events / out["drained_s"], 1)
        print(f"  burst {events}: {out['events_per_s']} events/s end to end ({statuses}; jobs {out['jobs']})",
              flush=True)
    finally:
        stack.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, to try the bench itself")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    started = datetime.now(UTC)
    calls, backlog, burst_n, requests = (20, 1000, 500, 300) if args.quick else (100, 10000, 5000, 2000)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    result: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "machine": _machine()}
    if not args.no_baseline:
        print("seed (Bull + Redis): ack levels and backlog drain…", flush=True)
        os.environ.update({"BACKLOG": str(backlog), "LEVELS": "1,16,64"})
        result["bull"] = bull_run(requests)
    print("SQS per-call latency by depth (fila's emulator, fresh):", flush=True)
    url = f"http://127.0.0.1:{free_port()}"
    moto = start_moto(url)
    try:  # the SQS and DynamoDB processes directly, as fila's own processes reach them
        sizes = SIZES if not args.quick else (0, 1000)
        result["sqs_fila"] = latency(_sqs_row, aws_client("sqs", endpoints(url)["sqs"]), sizes, calls)
        print("DynamoDB per-call latency by table size (fila's emulator, fresh):", flush=True)
        result["ddb_fila"] = latency(_ddb_row, aws_client("dynamodb", endpoints(url)["dynamodb"]), sizes, calls)
    finally:
        if moto is not None:
            moto.terminate()
    print("SQS per-call latency by depth (moto's own server, fresh):", flush=True)
    proc, stock = stock_moto()
    try:
        result["sqs_moto"] = latency(_sqs_row, aws_client("sqs", stock), (0, 1000), max(5, calls // 10))
        print("DynamoDB per-call latency by table size (moto's own server, fresh):", flush=True)
        result["ddb_moto"] = latency(_ddb_row, aws_client("dynamodb", stock), (0, 1000), max(5, calls // 10))
    finally:
        proc.terminate()
    print("drain of a no-op job backlog:", flush=True)
    result["drain"] = drain((100, backlog))
    print("ack:", flush=True)
    result["ack"] = ack(requests)
    print("bursts:", flush=True)
    result["burst"] = [burst(100), burst(burst_n)]
    out = ROOT / "bench" / "results" / f"emulator-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"raw results: {out}\n")
    print(markdown(result))


def _machine() -> dict[str, Any]:
    import platform

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "platform": platform.platform()}


def markdown(r: dict[str, Any]) -> str:
    lines = ["| SQS operation | " + " | ".join(f"fila @ {d}" for d in r["sqs_fila"]) + " | fila 10k/0 | "
             + " | ".join(f"moto @ {d}" for d in r["sqs_moto"]) + " |",
             "|---|" + "---|" * (len(r["sqs_fila"]) + 1 + len(r["sqs_moto"]))]
    for op in r["sqs_fila"]["0"]:
        fila = [r["sqs_fila"][d][op] for d in r["sqs_fila"]]
        ratio = f"{fila[-1] / fila[0]:.2f}x" if fila[0] else "n/a"
        moto = [r["sqs_moto"][d][op] for d in r["sqs_moto"]]
        lines.append(f"| {op} | " + " | ".join(f"{v} ms" for v in fila) + f" | {ratio} | "
                     + " | ".join(f"{v} ms" for v in moto) + " |")
    lines += ["", "| DynamoDB write | " + " | ".join(f"fila @ {n} items" for n in r["ddb_fila"]) + " | fila 10k/0 | "
              + " | ".join(f"moto @ {n} items" for n in r["ddb_moto"]) + " |",
              "|---|" + "---|" * (len(r["ddb_fila"]) + 1 + len(r["ddb_moto"]))]
    for op in r["ddb_fila"]["0"]:
        fila = [r["ddb_fila"][n][op] for n in r["ddb_fila"]]
        moto = [r["ddb_moto"][n][op] for n in r["ddb_moto"]]
        lines.append(f"| {op} | " + " | ".join(f"{v} ms" for v in fila) + f" | {fila[-1] / fila[0]:.2f}x | "
                     + " | ".join(f"{v} ms" for v in moto) + " |")
    small, big = r["drain"][0], r["drain"][-1]
    lines += ["", f"Drain of no-op jobs: backlog {small['backlog']} at {small['jobs_per_s']} jobs/s, backlog "
              f"{big['backlog']} at {big['jobs_per_s']} jobs/s ({big['jobs_per_s'] / small['jobs_per_s']:.2f} of it)."]
    bull = {lv["concurrency"]: lv for lv in ((r.get("bull") or {}).get("noop") or {}).get("levels", [])}
    lines += ["", "| client conc. | fila req/s | fila p50 / p99 ms | Bull req/s | Bull p99 ms | fila/Bull req/s |",
              "|---|---|---|---|---|---|"]
    for lv in r["ack"]["levels"]:
        b = bull.get(lv["concurrency"])
        lines.append(f"| {lv['concurrency']} | {lv['rps']} | {lv['latency_ms']['p50']} / {lv['latency_ms']['p99']} | "
                     + (f"{b['rps']:.0f} | {b['ackLatencyMs']['p99']} | {lv['rps'] / b['rps']:.3f} |" if b else "n/a | n/a | n/a |"))
    lines.append(f"CPU during ack, % of one core: {r['ack']['cpu_percent_of_a_core']}")
    plain, snaps = r["ack"]["c16_without_snapshots"], r["ack"]["snapshots"]
    lines.append(f"Snapshots: c=16 without them {plain['rps']} req/s, p99 {plain['latency_ms']['p99']} ms; with them "
                 f"{snaps['taken']} taken, pause max {snaps['max_pause_ms']} ms, last writer {snaps['last_seconds']} s "
                 f"({snaps['last_cpu_seconds']} CPU s, {snaps['last_bytes'] / 1e6:.1f} MB)")
    alone = "; ".join(f"{a['rps']} req/s, p50 {a['latency_ms']['p50']} / p99 {a['latency_ms']['p99']} ms"
                      for a in r["ack"].get("c16_ack_alone", []))
    lines.append(f"c=16 with every lane paused (the ack path alone), no snapshots: {alone}")
    b1, b2 = r["burst"]
    lines += ["", f"Bursts (`fila send … --concurrency 8` until drained): {b1['events']} events at {b1['events_per_s']}/s, "
              f"{b2['events']} at {b2['events_per_s']}/s ({b2['events_per_s'] / b1['events_per_s']:.2f} of it); "
              f"CPU during the big one, % of one core: {b2['cpu_percent_of_a_core']}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
