"""Two emulators, one from an earlier commit and one from this checkout, fed the same calls in lockstep:
the CPU each spends per job, and their ratio round by round.

    .venv/bin/python -m bench.paired [--base HEAD~1] [--jobs 300] [--rounds 4]

On this shared machine a rate moves by a third within minutes, and so does CPU per call measured one
run after the other. Fed together, both emulators meet the same moments: an A/A run (one commit on both
sides) gives ratios of 0.975-1.015, so an emulator change shows to a few percent. Each call goes to both
emulators, in alternating order. A job is fila's own writes as its store makes them (the PutItem that
creates it, the claim and the completion, recorded from this checkout's store and replayed with a new
job id), then the floor's two writes (bench.throughput), and, for every ten jobs, an SQS round of the
mapping's kind (a send of ten, a receive, a batch delete). CPU from /proc, every process of each emulator.
Both start empty. Prints JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.chaos import tree_cpu_seconds
from bench.throughput import floor_writes
from fila import ROOT
from fila.local.emulator import endpoints, free_port, wait_listening

FLOOR = "paired-floor"


def _emulator(tree: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fila.local.moto_server", "127.0.0.1", str(port)],
                            cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_listening("127.0.0.1", port, timeout=60, proc=proc)
    return proc, f"http://127.0.0.1:{port}"


def _clients(url: str) -> tuple[Any, Any, str]:
    """This stage provisioned on the emulator at ``url``: its DynamoDB and SQS clients, and a queue."""
    from chalicelib import aws
    from fila.local.provision import provision, use_stage

    os.environ["AWS_ENDPOINT_URL"] = url
    os.environ.update({f"AWS_ENDPOINT_URL_{k.upper()}": v for k, v in endpoints(url).items()})
    aws.reset()
    use_stage("paired")
    provision()
    ddb, sqs = aws.client("dynamodb"), aws.client("sqs")
    ddb.create_table(TableName=FLOOR, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    queue = sqs.create_queue(QueueName="paired-queue", Attributes={"VisibilityTimeout": "180"})["QueueUrl"]
    aws.reset()  # the next emulator's store gets clients of its own; these stay with this one
    return ddb, sqs, queue


def _fila_writes() -> list[tuple[str, dict[str, Any]]]:
    """A job's writes as this checkout's store makes them: (operation, parameters)."""
    from chalicelib import aws
    from chalicelib.jobs import JobStatus
    from chalicelib.store.dynamodb import DynamoStore
    from chalicelib.store.jobs import JobRecords
    from chalicelib.system import JobSystem
    from fila.memory import MemoryQueues

    made: list[tuple[str, dict[str, Any]]] = []
    aws.client("dynamodb").meta.events.register("provide-client-params.dynamodb.*", lambda params, model, **_:
                                                made.append((model.name, copy.deepcopy(params))))
    system = JobSystem([], store=DynamoStore(), queues=MemoryQueues())
    jobs = JobRecords(system.store)
    job = system.new_job("noop", {"i": 1})
    jobs.create(job)
    now = time.time()
    claimed = jobs.claim(job.job_id, now + 60, now)
    assert claimed is not None and jobs.settle(claimed, JobStatus.COMPLETED, result={"ok": True}, keep=3600,
                                               now=time.time())
    assert [op for op, _ in made] == ["PutItem", "UpdateItem", "UpdateItem"], made
    return made


def _fila_job(ddb: Any, writes: list[tuple[str, dict[str, Any]]], job_id: str) -> None:
    for operation, params in writes:
        params = copy.deepcopy(params)
        if operation == "PutItem":
            params["Item"]["job_id"] = {"S": job_id}
            ddb.put_item(**params)
        else:
            params["Key"] = {"job_id": {"S": job_id}}
            ddb.update_item(**params)


def _sqs_round(sqs: Any, queue: str) -> None:
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": json.dumps({"i": i})}
                                                    for i in range(10)])
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
    if got:
        sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                          for i, m in enumerate(got)])


def run(base: Path, jobs: int, rounds: int) -> dict[str, Any]:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1")
    trees = {"base": base, "this": ROOT}
    started = {side: _emulator(tree) for side, tree in trees.items()}
    try:
        sides = {side: _clients(url) for side, (_, url) in started.items()}
        writes = _fila_writes()  # against the last emulator provisioned; its items are replayed on both
        pids = {side: proc.pid for side, (proc, _) in started.items()}
        kinds = {"fila": lambda s, n: _fila_job(sides[s][0], writes, f"paired-{n}"),
                 "floor": lambda s, n: floor_writes(sides[s][0], FLOOR, f"f{n}"),
                 "sqs": lambda s, n: _sqs_round(sides[s][1], sides[s][2]) if n % 10 == 0 else None}
        spent: dict[str, dict[str, list[float]]] = {side: {kind: [] for kind in kinds} for side in trees}
        n = 0
        for _ in range(rounds):
            for kind, call in kinds.items():
                before = {side: tree_cpu_seconds(pids[side]) for side in trees}
                for _ in range(jobs):
                    n += 1
                    for side in (trees if n % 2 else reversed(list(trees))):
                        call(side, n)
                for side in trees:
                    after = tree_cpu_seconds(pids[side])
                    spent[side][kind].append(1000 * (after - before[side]) / jobs)
        return {"jobs_per_round": jobs, "rounds": rounds,
                "emulator_cpu_ms_per_job": {side: {k: round(statistics.median(v), 3) for k, v in by.items()}
                                            for side, by in spent.items()},
                "this_over_base_by_round": {k: [round(t / b, 3) if b else None
                                                for b, t in zip(spent["base"][k], spent["this"][k], strict=True)]
                                            for k in kinds}}
    finally:
        for proc, _ in started.values():
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD~1", help="the commit to compare this checkout with")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fila-paired-") as folder:
        archive = subprocess.run(["git", "archive", args.base], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        print(f"base {args.base} against this checkout; both emulators start empty", flush=True)
        print(json.dumps(run(Path(folder), args.jobs, args.rounds), indent=1))


if __name__ == "__main__":
    main()
