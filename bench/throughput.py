"""Jobs per second and AWS calls per job: fila, the Powertools peer and the exactly-once floor on the
same emulator, next to the seed system, in one run.

    .venv/bin/python -m bench.throughput [--jobs 2000] [--no-baseline] [--only NAMES] [--rounds N]

Each scenario starts from an empty stage on one fresh emulator and drains a backlog of N jobs with the
default lane's settings (batches of 10, 4 at once) through the local event source mapping:
- fila: its real consumer, a no-op handler, then a 20 ms one (I/O: a batch's records run at once); the
  20 ms one against the floor is that handler against what the emulator serves;
- peer: bench/peers/powertools_app.py (BatchProcessor + idempotent_function on DynamoDB), same work;
- floor: the least exactly-once processing can do: one receive per 10 messages, two conditional
  UpdateItems per job (claim, complete), one batch delete; nothing else;
- payment burst: 300 signed `payment_intent.succeeded` events (4 jobs each) sent at concurrency 8 to a
  fresh `fila up`, until its queues drain (bench.emulator.burst).
``--rounds N`` runs the job scenarios N times, interleaved, and reports each round's ratios and their
median: on this shared machine a rate moves by tens of percent within minutes, a same-round ratio less.
Each drain also reports its CPU per job: this process's (the consumers run in it) and the emulator's.
Prints JSON; results also go to bench/results/throughput-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench.calls import Calls, JobCalls
from bench.jobs import CpuReader, bull_jobs, cpu_per_job, cpu_reader, run_scenario
from fila import ROOT

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
BATCH, CONCURRENCY = 10, 4


def _use(stage: str) -> None:
    from fila.local.provision import provision, use_stage

    use_stage(stage)
    provision()


def _drain(name: str, handler: Any, url: str, n: int, finished: threading.Event, calls: Calls, cpu: CpuReader
           ) -> dict[str, Any]:
    from fila.local.event_sources import SqsEventSource

    source = SqsEventSource(name, handler, url, batch_size=BATCH, batching_window=0, concurrency=CONCURRENCY,
                            wait_seconds=1)
    calls.watch(source.sqs)
    cpu_before, started = cpu(), time.perf_counter()
    source.start()
    assert finished.wait(900), f"{name} did not finish"
    seconds = time.perf_counter() - started
    cpu_after = cpu()
    source.stop()
    time.sleep(1)
    counts = calls.take()[0]
    return {"jobs": n, "drain_s": round(seconds, 2), "jobs_per_s": round(n / seconds, 1),
            "calls_per_job": {k: round(v / n, 3) for k, v in sorted(counts.items())},
            "cpu_ms_per_job": cpu_per_job(cpu_before, cpu_after, n)}


def _table_and_queue(table: str, queue: str) -> tuple[Any, str]:
    """A table keyed by ``id`` and a queue (messages held 180 s): the SQS client and the queue's URL."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    sqs = boto3.client("sqs")
    return sqs, sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "180"})["QueueUrl"]


def peer(n: int, work_seconds: float, calls: Calls, cpu: CpuReader) -> dict[str, Any]:

    from chalicelib.settings import resource_name

    table, queue = resource_name("peer-idempotency"), resource_name("peer-jobs")
    sqs, url = _table_and_queue(table, queue)
    os.environ.update(PEER_TABLE=table, PEER_QUEUE=queue, PEER_WORK_SECONDS=str(work_seconds))
    import importlib

    import bench.peers.powertools_app as peer_app

    peer_app = importlib.reload(peer_app)  # its table, queue and work from the environment above
    calls.watch(peer_app.persistence.client)
    for start in range(0, n, BATCH):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": json.dumps({"job_id": f"p{i}"})}
                                                      for i in range(start, min(n, start + BATCH))])
    calls.take()
    finished = threading.Event()

    def watch() -> None:
        while len(set(peer_app.done)) < n:
            time.sleep(0.05)
        finished.set()

    threading.Thread(target=watch, daemon=True).start()
    result = _drain("peer", peer_app.app.handler_map["consume"], url, n, finished, calls, cpu)
    result["ran_twice"] = n - len(set(peer_app.done)) + len(peer_app.done) - n
    return result


def floor_writes(ddb: Any, table: str, item_id: str) -> None:
    """The floor's two writes for one job: a conditional claim, then a conditional completion."""
    key = {"id": {"S": item_id}}
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET s = :a",
                    ConditionExpression="attribute_not_exists(s)", ExpressionAttributeValues={":a": {"S": "a"}})
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET s = :c", ConditionExpression="s = :a",
                    ExpressionAttributeValues={":a": {"S": "a"}, ":c": {"S": "c"}})


def floor(n: int, calls: Calls, cpu: CpuReader) -> dict[str, Any]:
    """Claim and complete with one conditional UpdateItem each, the mapping's batch receive and delete."""
    import boto3

    from chalicelib import aws
    from chalicelib.settings import resource_name

    table, queue = resource_name("floor-jobs"), resource_name("floor-queue")
    sqs, url = _table_and_queue(table, queue)
    for start in range(0, n, BATCH):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"f{i}"}
                                                      for i in range(start, min(n, start + BATCH))])
    writer = boto3.client("dynamodb", config=aws.config("dynamodb"))  # configured as fila's
    calls.watch(writer)
    calls.take()
    done: Counter[str] = Counter()
    finished = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for record in event["Records"]:
            floor_writes(writer, table, record["body"])
            done[record["body"]] += 1
        if len(done) >= n:
            finished.set()
        return {"batchItemFailures": []}

    return _drain("floor", handler, url, n, finished, calls, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated scenario names, e.g. 'floor,fila no-op'")
    parser.add_argument("--rounds", type=int, default=1,
                        help="the job scenarios N times, interleaved: each round's ratios and their median")
    args = parser.parse_args()
    from fila.local.defaults import stage_env
    from fila.local.emulator import aws_env, free_port, start_moto

    started = datetime.now(UTC)
    result: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "jobs": args.jobs,
                              "consumer": {"batch_size": BATCH, "concurrency": CONCURRENCY}}
    if not args.no_baseline:
        print("seed (Bull + Redis): noop and 20 ms scenarios…", flush=True)
        result["bull"] = bull_jobs(args.jobs)
    url = f"http://127.0.0.1:{free_port()}"
    moto = start_moto(url)
    assert moto is not None, "something already listens there"
    cpu = cpu_reader(moto.pid)
    os.environ.update({**aws_env(url), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "FILA_STAGE": "local-throughput"})
    os.environ.update(stage_env())
    calls, rounds = Calls(), []
    try:
        for _ in range(args.rounds):  # interleaved, so that each round's ratios share the machine's mood
            for name, run in (("floor", lambda: floor(args.jobs, calls, cpu)),
                              ("fila no-op", lambda: run_scenario("noop", args.jobs, _fila_calls(calls), cpu=cpu)),
                              ("peer no-op", lambda: peer(args.jobs, 0.0, calls, cpu)),
                              ("fila 20 ms", lambda: run_scenario("io20", args.jobs, _fila_calls(calls),
                                                                  sleep_s=0.02, cpu=cpu)),
                              ("peer 20 ms", lambda: peer(args.jobs, 0.02, calls, cpu))):
                if args.only and name not in args.only.split(","):
                    continue
                _use(f"local-{name.replace(' ', '').replace('-', '')}{int(time.time())}")
                print(f"{name}: starting from an empty stage (depth 0)…", flush=True)
                result[name] = run()
                print(f"{name}: {result[name]['jobs_per_s']} jobs/s, CPU per job (ms) "
                      f"{result[name]['cpu_ms_per_job']}", flush=True)
            rates = {name: result[name]["jobs_per_s"] for name in SCENARIOS if name in result}
            rounds.append({"jobs_per_s": rates, "ratios": _ratio_of(rates),
                           "cpu_ms_per_job": {name: result[name]["cpu_ms_per_job"]
                                              for name in SCENARIOS if name in result}})
    finally:
        moto.terminate()
    if not args.only or "payment burst" in args.only.split(","):
        from bench.emulator import burst

        print("payment burst: 300 signed payment events on a fresh local stack…", flush=True)
        result["payment burst"] = burst(300, "stripe", "payment_intent.succeeded")
    _ratios(result)
    if args.rounds > 1:
        result["rounds"] = rounds
        result["median ratios"] = {k: round(statistics.median(r["ratios"][k] for r in rounds if k in r["ratios"]), 3)
                                   for k in rounds[0]["ratios"]}
        print(f"median same-round ratios over {args.rounds} rounds: {result['median ratios']}", flush=True)
    out = ROOT / "bench" / "results" / f"throughput-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


def _fila_calls(calls: Calls) -> JobCalls:
    """The counter over fila's own clients (fresh for each scenario: ``_use`` forgets the old ones)."""
    from chalicelib import aws

    for service in ("dynamodb", "sqs"):
        calls.watch(aws.client(service))
    return JobCalls(calls)


SCENARIOS = ("floor", "fila no-op", "peer no-op", "fila 20 ms", "peer 20 ms")


def _ratios(result: dict[str, Any]) -> None:
    """Same-run ratios (this machine is shared: absolute rates move, ratios much less)."""
    bull = result.get("bull") or {}
    rate = {name: (result.get(name) or {}).get("jobs_per_s") for name in SCENARIOS}
    rate["bull 20 ms"] = (bull.get("io20") or {}).get("jobs_per_s")
    result.update(_ratio_of(rate))


def _ratio_of(rate: dict[str, Any]) -> dict[str, float]:
    out = {}
    for over, under in (("fila no-op", "floor"), ("fila 20 ms", "floor"), ("fila no-op", "peer no-op"),
                        ("fila 20 ms", "peer 20 ms"), ("fila 20 ms", "bull 20 ms")):
        a, b = rate.get(over), rate.get(under)
        if a and b:
            out[f"{over} / {under}"] = round(a / b, 2)
    return out

if __name__ == "__main__":
    main()
