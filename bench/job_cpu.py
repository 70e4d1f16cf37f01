"""CPU per job, the emulator's and the client's: a job's claim and its completion, as fila's store writes
them, next to the exactly-once floor's two writes on the same emulator.

    .venv/bin/python -m bench.job_cpu [--jobs 600] [--runs 3]

CPU seconds (from /proc, every emulator process) rather than wall time, so a shared, noisy machine
moves the figure less than it moves throughput: what the emulator spends on fila's requests (their
expressions, their items), and what this process spends making them (botocore, HTTP, fila's store).
On two cores the drain benches are bound by the sum of the two. Each run starts a fresh
emulator, provisions a stage, creates the jobs (not counted) and then claims and completes each one
from a single client. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from typing import Any

from bench.jobs import CpuReader, cpu_per_job, cpu_reader
from bench.throughput import floor_writes


def run(jobs: int) -> dict[str, Any]:
    from fila.local import emulator

    url = f"http://127.0.0.1:{emulator.free_port()}"
    proc = emulator.start_moto(url)
    assert proc is not None, "something already listens there"
    try:
        os.environ.update({**emulator.aws_env(url), "FILA_STAGE": "jobcpu"})
        import boto3

        from chalicelib import aws
        from chalicelib.jobs import JobStatus
        from chalicelib.settings import resource_name
        from chalicelib.store.dynamodb import DynamoStore
        from chalicelib.system import JobSystem
        from fila.local.provision import provision
        from fila.memory import MemoryQueues

        aws.reset()  # this run's emulator, not the last one's
        provision()
        system = JobSystem([], store=DynamoStore(), queues=MemoryQueues())
        start_items = boto3.client("dynamodb").scan(TableName=resource_name("jobs"), Select="COUNT")["Count"]
        made = [system.new_job("noop", {"i": i}, job_id=f"cpu-{uuid.uuid4().hex}") for i in range(jobs)]
        for start in range(0, jobs, 25):
            system.jobs.create_all(made[start:start + 25])
        cpu = cpu_reader(proc.pid)
        before, started = cpu(), time.perf_counter()
        for job in made:
            now = time.time()
            claimed = system.jobs.claim(job.job_id, now + 40, now)
            assert claimed is not None
            assert system.jobs.settle(claimed, JobStatus.COMPLETED, result={"ok": True}, keep=3600, now=time.time())
        wall, fila = time.perf_counter() - started, cpu_per_job(before, cpu(), jobs)
        floor = _floor(boto3.client("dynamodb", config=aws.config("dynamodb")), resource_name("floor-jobs"), jobs, cpu)
        return {"start_items": start_items, "jobs": jobs, "emulator_cpu_ms_per_job": fila["emulator"],
                "client_cpu_ms_per_job": fila["consumer"],
                "wall_ms_per_job": round(1000 * wall / jobs, 2), "floor_cpu_ms_per_job": floor["emulator"],
                "floor_client_cpu_ms_per_job": floor["consumer"]}
    finally:
        proc.terminate()
        proc.wait(10)


def _floor(ddb: Any, table: str, jobs: int, cpu: CpuReader) -> dict[str, float]:
    """The exactly-once floor's two writes per job (bench.throughput's): claim and complete, each one
    conditional UpdateItem on a one-attribute item; emulator and client CPU ms per job, same emulator."""
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    before = cpu()
    for n in range(jobs):
        floor_writes(ddb, table, f"f{n}")
    return cpu_per_job(before, cpu(), jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for n in range(args.runs):
        runs.append(run(args.jobs))
        print(f"run {n + 1}: started from {runs[-1]['start_items']} job items; "
              f"{runs[-1]['emulator_cpu_ms_per_job']} ms of emulator CPU per job "
              f"(the floor's two writes: {runs[-1]['floor_cpu_ms_per_job']} ms); client "
              f"{runs[-1]['client_cpu_ms_per_job']} ms (the floor's: {runs[-1]['floor_client_cpu_ms_per_job']} ms)",
              flush=True)
    cpu = [r["emulator_cpu_ms_per_job"] for r in runs]
    ratio = [r["floor_cpu_ms_per_job"] / r["emulator_cpu_ms_per_job"] for r in runs]
    both = [(r["floor_cpu_ms_per_job"] + r["floor_client_cpu_ms_per_job"])
            / (r["emulator_cpu_ms_per_job"] + r["client_cpu_ms_per_job"]) for r in runs]
    print(json.dumps({"runs": runs, "mean_cpu_ms_per_job": round(statistics.mean(cpu), 2),
                      "floor_over_fila_same_run": round(statistics.mean(ratio), 2),
                      "floor_over_fila_both_sides_same_run": round(statistics.median(both), 2)}, indent=1))


if __name__ == "__main__":
    main()
