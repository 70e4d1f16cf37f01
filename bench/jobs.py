"""Job throughput and AWS calls per job, next to the Bull seed system's worker figures.

    .venv/bin/python bench/jobs.py [--jobs N] [--no-baseline]

fila: a moto server of its own (fila.local.moto_server), a fresh stage provisioned from infra/, and
the app's real `consume_default` handler run by the local event source mapping (the default lane's
configured batch size and concurrency). Scenarios: a backlog of N no-op jobs, and of N jobs whose
handler waits 20 ms (I/O), each timed from the consumers' start to the last completion. AWS calls
are counted per operation with botocore hooks on every client involved. A third run makes each job
fail once, to count the calls of a failed attempt. Cost per million jobs uses AWS list prices
(us-east-1, on-demand; see PRICES). The seed system runs in the same bench run (scenarios noop, io).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from bench.ack import bull_run  # noqa: E402
from bench.record import save  # noqa: E402
from fila.local.emulator import aws_env, free_port, start_moto  # noqa: E402

# US East (N. Virginia) list prices, on-demand, checked 2026-11: SQS standard $0.40 per million
# requests; DynamoDB $0.625 per million write request units, $0.125 per million read request units;
# Lambda $0.20 per million requests and $0.0000166667 per GB-second (x86).
PRICES = {"sqs_request": 0.40e-6, "ddb_wru": 0.625e-6, "ddb_rru": 0.125e-6,
          "lambda_request": 0.20e-6, "lambda_gb_s": 0.0000166667}
DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
CpuReader = Callable[[], dict[str, float]]  # CPU seconds so far, by role ("consumer", "emulator")


def cpu_reader(emulator_pid: int) -> CpuReader:
    """This process's CPU (a drain's consumers run in it) and the emulator's processes' CPU, from /proc:
    on two cores a drain is bound by their sum, and a rate alone cannot say which side grew."""
    from bench.chaos import tree_cpu_seconds

    def read() -> dict[str, float]:
        return {"consumer": time.process_time(), "emulator": tree_cpu_seconds(emulator_pid)}

    return read


def cpu_per_job(before: dict[str, float], after: dict[str, float], jobs: int) -> dict[str, float]:
    """Milliseconds of CPU per job, by role, between two readings."""
    return {role: round(1e3 * (after[role] - before[role]) / jobs, 2) for role in after}


class Calls:
    """AWS calls by service and operation, from botocore's own events."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def watch(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        client.meta.events.register("before-call", lambda model, **_: self._add(f"{service}:{model.name}"))

    def _add(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def take(self) -> Counter[str]:
        with self.lock:
            taken, self.counts = self.counts, Counter()
        return taken


def run_scenario(name: str, jobs_n: int, calls: Any, sleep_s: float = 0.0, fail_once: bool = False,
                 cpu: CpuReader | None = None) -> dict[str, Any]:
    import app as fila
    from chalicelib import queues, runtime
    from chalicelib.backoff import fixed
    from chalicelib.jobs import Job
    from chalicelib.queues import SqsQueues
    from chalicelib.resources import lanes
    from chalicelib.store.dynamodb import DynamoStore
    from chalicelib.system import JobSystem, handler
    from fila.local.event_sources import SqsEventSource

    done = threading.Event()
    completed = Counter[str]()
    lock = threading.Lock()
    job_name = f"bench-{name}"

    @handler(job_name, backoff=fixed(1))
    def work(job: Job) -> None:
        if fail_once and job.attempts_made == 1:
            raise RuntimeError("first attempt fails")
        if sleep_s:
            time.sleep(sleep_s)
        with lock:
            completed[job.job_id] += 1
            if len(completed) == jobs_n:
                done.set()

    system = JobSystem([work], store=DynamoStore(), queues=SqsQueues())
    runtime.use(system)  # the app's consumers run this one
    calls.take()
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: system.enqueue(job_name, {"i": i}), range(jobs_n)))
    enqueue_s = time.perf_counter() - started
    enqueue_calls = calls.take()
    lane = lanes()["default"]
    source = SqsEventSource("consume_default", fila.app.handler_map["consume_default"], queues.queue_url("default"),
                            batch_size=lane.batch_size, batching_window=0, concurrency=lane.concurrency,
                            wait_seconds=1, timeout_seconds=30)
    calls.watch(source.sqs)
    cpu_before, started = cpu() if cpu else {}, time.perf_counter()
    source.start()
    finished = done.wait(600)
    drain_s = time.perf_counter() - started
    cpu_after = cpu() if cpu else {}
    source.stop()
    drain_calls = calls.take()
    assert finished, f"{name}: only {len(completed)} of {jobs_n} completed"
    assert max(completed.values()) == 1, "a job ran twice"
    per_job = {k: round(v / jobs_n, 3) for k, v in sorted((enqueue_calls + drain_calls).items())}
    return {"scenario": name, "jobs": jobs_n, "handler_sleep_ms": sleep_s * 1000, "fail_once": fail_once,
            "enqueue_per_s": round(jobs_n / enqueue_s, 1), "drain_s": round(drain_s, 2),
            "jobs_per_s": round(jobs_n / drain_s, 1), "calls_per_job": per_job,
            "consumer": {"batch_size": lane.batch_size, "concurrency": lane.concurrency},
            **({"cpu_ms_per_job": cpu_per_job(cpu_before, cpu_after, jobs_n)} if cpu else {})}


def cost_per_million(per_job: dict[str, float], invocations_per_job: float, ms_per_invocation: float,
                     memory_gb: float = 0.5) -> dict[str, float]:
    sqs = sum(v for k, v in per_job.items() if k.startswith("sqs:"))
    wru = sum(v for k, v in per_job.items() if k.split(":")[1] in DDB_WRITES)
    rru = sum(v for k, v in per_job.items() if k.startswith("dynamodb:") and k.split(":")[1] not in DDB_WRITES)
    million = 1_000_000
    out = {"sqs": sqs * PRICES["sqs_request"] * million,
           "dynamodb_base_table": (wru * PRICES["ddb_wru"] + rru * PRICES["ddb_rru"]) * million,
           "lambda": invocations_per_job * (PRICES["lambda_request"]
                                            + PRICES["lambda_gb_s"] * memory_gb * ms_per_invocation / 1000) * million}
    out["total"] = sum(out.values())
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    started = datetime.now(UTC)
    result: dict[str, Any] = {"started": started.isoformat(timespec="seconds")}
    if not args.no_baseline:
        print("running the Bull baseline (noop, io)…", flush=True)
        result["bull"] = bull_jobs(args.jobs)
    url = f"http://127.0.0.1:{free_port()}"
    moto = start_moto(url)
    os.environ.update(aws_env(url))
    os.environ["FILA_STAGE"] = "local-bench"
    try:
        from chalicelib import aws
        from fila.local.provision import provision

        provision()
        calls = Calls()
        for service in ("dynamodb", "sqs"):
            calls.watch(aws.client(service))
        result["fila"] = [run_scenario("noop", args.jobs, calls),
                          run_scenario("io20", args.jobs, calls, sleep_s=0.02),
                          run_scenario("fail-once", max(200, args.jobs // 10), calls, fail_once=True)]
    finally:
        if moto is not None:
            moto.terminate()
    noop = result["fila"][0]
    invocations = noop["calls_per_job"].get("sqs:DeleteMessageBatch", 0.1)
    result["cost_per_million_jobs_usd"] = cost_per_million(noop["calls_per_job"], invocations, ms_per_invocation=100)
    save("jobs", started, result)


def bull_jobs(jobs_n: int) -> dict[str, Any] | None:
    """The seed's noop scenario (its worker-only backlog drain) and io scenario (20 ms handler)."""
    os.environ.update({"BACKLOG": str(jobs_n), "LEVELS": "16"})
    try:
        raw = bull_run(jobs_n, scenarios="noop io")
    finally:
        for key in ("BACKLOG", "LEVELS"):
            os.environ.pop(key, None)
    if not raw:
        return None
    io = raw["io20"]["levels"][0]
    return {"backlog_drain": raw["noop"].get("backlog"),
            "io20": {"jobs": io["accepted"], "e2e_s": io["e2eS"], "jobs_per_s": io["processedPerS"],
                     "concurrency": io["concurrency"]}}


if __name__ == "__main__":
    main()
