"""A lane's rate limit: the rate achieved against the limit, fila next to Bull's own limiter in one run.

    .venv/bin/python -m bench.rate_limit [--jobs 420] [--no-baseline]

fila: a moto server of its own, a fresh stage provisioned from infra/ (it prints the depth it starts
from), N no-op jobs pinned to the ``email`` lane (declared limit: 14 per second) and the app's real
``consume_email`` handler run by the local event source mapping with the lane's batch size, window
and concurrency. Each job's start is timed in the handler. Bull: the same N no-op jobs on a queue
with ``limiter: {max: 14, duration: 1000}`` at concurrency 5 (bench/peers/bull_limiter.js, run in a
temporary copy of the seed system, ``FILA_SEED_DIR``, with a private Redis).

Reported for both: the achieved rate (starts after the first, over the time from the first to the
last), the most starts in one limit window (epoch-aligned, as both limiters count) and in any
sliding second, and for fila the jobs sent back to wait and the AWS calls per job.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from bench.jobs import Calls  # noqa: E402
from bench.record import save  # noqa: E402
from fila.local.emulator import aws_env, free_port, start_moto  # noqa: E402

LANE = "email"


def pace(starts: list[float], limit: int, per_seconds: float) -> dict[str, Any]:
    """How the start times (epoch seconds) sit against ``limit`` per ``per_seconds``."""
    starts = sorted(starts)
    span = starts[-1] - starts[0]
    windows: dict[int, int] = {}
    for t in starts:
        windows[int(t // per_seconds)] = windows.get(int(t // per_seconds), 0) + 1
    sliding, left = 0, 0
    for right, t in enumerate(starts):
        while t - starts[left] >= per_seconds:
            left += 1
        sliding = max(sliding, right - left + 1)
    achieved = (len(starts) - 1) / span if span else float("inf")
    return {"jobs": len(starts), "seconds": round(span, 2), "achieved_per_s": round(achieved, 2),
            "limit_per_s": round(limit / per_seconds, 2), "achieved_over_limit": round(achieved * per_seconds / limit, 3),
            "max_in_one_window": max(windows.values()), "max_in_any_sliding_window": sliding}


def run_fila(jobs_n: int) -> dict[str, Any]:
    import app as fila
    from chalicelib import aws, queues, runtime
    from chalicelib.jobs import Job
    from chalicelib.queues import SqsQueues
    from chalicelib.resources import lanes
    from chalicelib.store.dynamodb import DynamoStore
    from chalicelib.system import JobSystem, handler
    from fila.local.event_sources import SqsEventSource

    lane = lanes()[LANE]
    assert lane.rate_limit is not None, "the email lane declares no rate limit"
    starts: dict[str, float] = {}
    lock, done = threading.Lock(), threading.Event()

    @handler("bench-mail", lane=LANE)
    def mail(job: Job) -> None:
        with lock:
            starts.setdefault(job.job_id, time.time())
            if len(starts) == jobs_n:
                done.set()

    system = JobSystem([mail], store=DynamoStore(), queues=SqsQueues())
    runtime.use(system)
    depth = system.queues.counts(LANE)
    print(f"fila: fresh stage, {LANE} lane depth at start {depth.waiting + depth.in_flight + depth.delayed}",
          flush=True)
    for n in range(jobs_n):
        system.enqueue("bench-mail", {"n": n})
    calls = Calls()
    for service in ("dynamodb", "sqs"):
        calls.watch(aws.client(service))
    source = SqsEventSource(lane.function, fila.app.handler_map[lane.function], queues.queue_url(LANE),
                            batch_size=lane.batch_size, batching_window=lane.batching_window,
                            concurrency=lane.concurrency, wait_seconds=1, timeout_seconds=lane.timeout)
    calls.watch(source.sqs)
    source.start()
    finished = done.wait(jobs_n / lane.rate_limit.max * lane.rate_limit.per_seconds * 4 + 60)
    source.stop()
    runtime.use(None)
    assert finished, f"only {len(starts)} of {jobs_n} jobs started"
    counted = calls.take()
    out = pace(list(starts.values()), lane.rate_limit.max, lane.rate_limit.per_seconds)
    out["sent_back_to_wait"] = counted["sqs:SendMessage"]
    out["calls_per_job"] = {k: round(v / jobs_n, 2) for k, v in sorted(counted.items())}
    out["consumer"] = {"batch_size": lane.batch_size, "batching_window": lane.batching_window,
                       "concurrency": lane.concurrency}
    return out


def run_bull(jobs_n: int, limit: int, per_seconds: int) -> dict[str, Any] | None:
    seed = os.environ.get("FILA_SEED_DIR")
    if not seed or not Path(seed).exists():
        print("no seed system to compare with: set FILA_SEED_DIR to a checkout of it", file=sys.stderr)
        return None
    work = Path(tempfile.mkdtemp(prefix="bull-limit-")) / "bull"
    shutil.copytree(seed, work, ignore=shutil.ignore_patterns("results", "node_modules"))
    shutil.copy(ROOT / "bench" / "peers" / "bull_limiter.js", work)
    subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=work, check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    if shutil.which("redis-server") is None:  # as the seed's run.sh does: Debian's, when we may install
        if os.geteuid() != 0:
            print("redis-server not found: install it (apt-get install -y redis-server)", file=sys.stderr)
            return None
        subprocess.run("apt-get update -qq && apt-get install -y -qq redis-server", shell=True, check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        env = {**os.environ, "JOBS": str(jobs_n), "MAX": str(limit), "DURATION_MS": str(per_seconds * 1000),
               "CONCURRENCY": "5", "REDIS_PORT": str(port)}
        answer = subprocess.run(["node", "bull_limiter.js"], cwd=work, env=env, check=True, timeout=600,
                                capture_output=True, text=True)
    finally:
        redis.terminate()
        redis.wait(10)
    starts = [ms / 1000 for ms in json.loads(answer.stdout)["starts"]]
    return pace(starts, limit, per_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=420, help="jobs per system (default 420: 30 s at 14/s)")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    started = datetime.now(UTC)
    result: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "jobs": args.jobs}
    url = f"http://127.0.0.1:{free_port()}"
    moto = start_moto(url)
    os.environ.update(aws_env(url))
    try:
        from fila.local.provision import provision, use_stage

        use_stage(f"local-bench-rate-{os.getpid()}")
        provision()
        result["fila"] = run_fila(args.jobs)
    finally:
        if moto is not None:
            moto.terminate()
    from chalicelib.resources import lanes

    limit = lanes()[LANE].rate_limit
    assert limit is not None
    if not args.no_baseline:
        print(f"Bull with limiter max {limit.max} per {limit.per_seconds * 1000} ms…", flush=True)
        result["bull"] = run_bull(args.jobs, limit.max, limit.per_seconds)
    save("rate-limit", started, result)


if __name__ == "__main__":
    main()
