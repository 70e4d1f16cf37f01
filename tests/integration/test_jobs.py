"""The job system on the emulator, where only SQS and DynamoDB can show it: the app's real consumers
fed by the local event source mapping, backoff as visibility changes, the DLQ, lane priority and
concurrency, a crash between an effect and its delete, and both batch-response semantics.
(The lifecycle itself is tested on the in-memory store: tests/unit/test_worker.py.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

import app as fila
from chalicelib import aws, queues, runtime
from chalicelib.backoff import exponential
from chalicelib.jobs import Job, JobStatus, Permanent
from chalicelib.queues import SqsQueues
from chalicelib.resources import lanes
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.system import JobSystem
from fila.local.event_sources import SqsEventSource, lambda_record
from fila.local.workers import give_way
from tests.unit.conftest import BEHAVIOUR, EFFECTS, TEST_HANDLERS


@pytest.fixture
def system(stage: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobSystem]:
    made = JobSystem(TEST_HANDLERS, store=DynamoStore(), queues=SqsQueues())
    monkeypatch.setattr(runtime, "system", lambda: made)
    EFFECTS.clear()
    BEHAVIOUR.clear()
    yield made


class Consumers:
    """The app's real consumers for some lanes, run by the local event source mapping."""

    def __init__(self) -> None:
        self.sources: dict[str, SqsEventSource] = {}
        self.sqs_calls: list[tuple[str, dict[str, Any]]] = []
        aws.client("sqs").meta.events.register("provide-client-params.sqs", self._record)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.sqs_calls.append((model.name, params))

    def visibility_changes(self) -> list[int]:
        return [p["VisibilityTimeout"] for name, p in self.sqs_calls if name == "ChangeMessageVisibility"]

    def start(self, *names: str, concurrency: int | None = None, partial: bool = True) -> Consumers:
        started = {name: SqsEventSource(
            f"consume_{name}", fila.app.handler_map[f"consume_{name}"], queues.queue_url(name),
            batch_size=lanes()[name].batch_size, batching_window=0,
            concurrency=concurrency or lanes()[name].concurrency, wait_seconds=1, timeout_seconds=30,
            partial_batch_responses=partial) for name in names}
        give_way(started)
        for source in started.values():
            source.start()
        self.sources.update(started)
        return self

    def stop(self) -> None:
        for source in self.sources.values():
            source.stop()


@pytest.fixture
def consumers(system: JobSystem) -> Iterator[Consumers]:
    running = Consumers()
    yield running
    running.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def status(system: JobSystem, job_id: str) -> JobStatus | None:
    job = system.jobs.get(job_id)
    return job.status if job else None


def depth(lane: str, dlq: bool = False) -> int:
    url = queues.dlq_url(lane) if dlq else queues.queue_url(lane)
    found = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(found["ApproximateNumberOfMessages"]) + int(found["ApproximateNumberOfMessagesNotVisible"])


@pytest.mark.parametrize("partial", [True, False], ids=["partial-batch-responses", "whole-batch"])
def test_backoff_is_sqs_visibility_and_the_last_attempt_goes_to_the_dlq(
        system: JobSystem, consumers: Consumers, partial: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both semantics of a mapping lose no retry: with partial responses the failed record is reported;
    without them the consumer deletes what it finished itself and fails the invocation."""
    if not partial:
        monkeypatch.delenv("FILA_BATCH_RESPONSE")

    def boom(job: Job) -> None:
        raise ValueError(f"target said no on attempt {job.attempts_made}")

    BEHAVIOUR["test-flaky"] = boom
    ok = [system.enqueue("test-ok", {"i": i}).job_id for i in range(3)]
    job = system.enqueue("test-flaky", {}, attempts=3, backoff=exponential(1))
    consumers.start("default", partial=partial)
    wait_for(lambda: status(system, job.job_id) == JobStatus.FAILED, timeout=40)
    assert consumers.visibility_changes() == [1, 2]
    assert all(status(system, i) == JobStatus.COMPLETED and EFFECTS[i] == 1 for i in ok)
    (message,) = boto3.client("sqs").receive_message(QueueUrl=queues.dlq_url("default"),
                                                       MessageAttributeNames=["All"])["Messages"]
    assert json.loads(message["Body"])["job_id"] == job.job_id and EFFECTS[job.job_id] == 3
    assert message["MessageAttributes"]["reason"]["StringValue"] == "ValueError: target said no on attempt 3"
    wait_for(lambda: depth("default") == 0)


def test_a_poison_message_goes_to_the_dlq_at_once(system: JobSystem, consumers: Consumers) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queues.queue_url("default"), MessageBody="{not json")
    sqs.send_message(QueueUrl=queues.queue_url("default"), MessageBody=json.dumps({"kind": "job", "job_id": "nope"}))
    consumers.start("default")
    wait_for(lambda: depth("default") == 0 and depth("default", dlq=True) == 2)


def test_high_lane_jobs_finish_before_an_earlier_default_backlog(system: JobSystem, consumers: Consumers) -> None:
    finished: list[str] = []
    lock = threading.Lock()

    def work(job: Job) -> None:
        time.sleep(0.05)
        with lock:
            finished.append(job.queue)

    BEHAVIOUR["test-slow"] = work
    for i in range(30):
        system.enqueue("test-slow", {"i": i})
    for i in range(5):
        system.enqueue("test-slow", {"i": i}, priority="high")
    consumers.start("high", "default", concurrency=2)
    wait_for(lambda: len(finished) == 35, timeout=60)
    assert max(i for i, q in enumerate(finished) if q == "high") < 15, finished


def test_a_lower_lane_runs_one_batch_at_a_time_behind_a_busy_higher_lane(system: JobSystem,
                                                                         consumers: Consumers) -> None:
    """Slowed, never starved: the default lane keeps going while the high lane has a backlog, one batch
    (one invocation) at a time instead of its concurrency's worth."""
    lock, finished, peak, high_left = threading.Lock(), [], [0], [40]

    def work(job: Job) -> None:
        with lock:
            if high_left[0] > 0:
                peak[0] = max(peak[0], consumers.sources["default"].active)
        time.sleep(0.2)
        with lock:
            high_left[0] -= job.queue == "high"
            finished.append(job.queue)

    BEHAVIOUR["test-slow"] = work
    for i in range(40):
        system.enqueue("test-slow", {"i": i}, priority="high")
    for i in range(30):
        system.enqueue("test-slow", {"i": i})
    consumers.start("high", "default", concurrency=2)
    wait_for(lambda: len(finished) == 70, timeout=60)
    last_high = max(i for i, q in enumerate(finished) if q == "high")
    assert finished.index("default") < last_high, "the default lane waited for the whole high backlog"
    assert peak[0] == 1, f"{peak[0]} default invocations at once while the high lane had work"


def test_maximum_concurrency_five_on_the_email_lane_is_never_exceeded(system: JobSystem,
                                                                      consumers: Consumers) -> None:
    lock, active, peak = threading.Lock(), [0], [0]

    def send(job: Job) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.5)  # five at once send 10 a second: under the lane's 14/s, so only concurrency binds
        with lock:
            active[0] -= 1

    BEHAVIOUR["test-email"] = send
    ids = [system.enqueue("test-email", {"i": i}).job_id for i in range(25)]
    consumers.start("email")
    wait_for(lambda: all(status(system, i) == JobStatus.COMPLETED for i in ids), timeout=60)
    assert peak[0] == 5


def test_a_crash_between_effect_and_delete_does_not_repeat_the_effect(system: JobSystem) -> None:
    job = system.enqueue("test-ok", {})
    sqs, url = boto3.client("sqs"), queues.queue_url("default")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    (message,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, AttributeNames=["All"])["Messages"]
    # The invocation runs the effect and returns; the container dies before the mapping deletes the message.
    assert fila.app.handler_map["consume_default"]({"Records": [lambda_record(message, arn, "us-east-1")]},
                                                   None) == {"batchItemFailures": []}
    time.sleep(1.2)
    (again,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30, AttributeNames=["All"])["Messages"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    fila.app.handler_map["consume_default"]({"Records": [lambda_record(again, arn, "us-east-1")]}, None)
    assert EFFECTS[job.job_id] == 1 and status(system, job.job_id) == JobStatus.COMPLETED


def test_redrive_moves_every_dlq_message_back_and_completes_the_jobs(system: JobSystem,
                                                                     consumers: Consumers) -> None:
    from chalicelib import operations

    healthy = threading.Event()

    def until_fixed(job: Job) -> str:
        if not healthy.is_set():
            raise Permanent("target down")
        return "ok"

    BEHAVIOUR["test-flaky"] = until_fixed
    ids = [system.enqueue("test-flaky", {"i": i}, attempts=1).job_id for i in range(12)]
    consumers.start("default")
    wait_for(lambda: all(status(system, i) == JobStatus.FAILED for i in ids))
    wait_for(lambda: depth("default", dlq=True) == 12)
    healthy.set()
    progress: list[int] = []
    assert operations.redrive(system, "default", progress.append) == 12
    assert progress[-1] == 12 and depth("default", dlq=True) == 0
    wait_for(lambda: all(status(system, i) == JobStatus.COMPLETED for i in ids))
    assert all(EFFECTS[i] == 2 for i in ids)
