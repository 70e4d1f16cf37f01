"""The job system through the real consumer path: the app's SQS handlers fed by the local event
source mapping, against the emulator, with handlers of the tests' own."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

import app as fila
from chalicelib import aws, operations, queues, worker
from chalicelib import jobs as jobs_module
from chalicelib.backoff import exponential, fixed
from chalicelib.jobs import Job, Permanent, RetryAfter, enqueue, handler, jobs
from fila.local.event_sources import SqsEventSource, lambda_record
from fila.local.workers import give_way

EFFECTS: Counter[str] = Counter()
BEHAVIOUR: dict[str, Callable[[Job], Any]] = {}


def effect(job: Job) -> Any:
    """Every test handler: count the side effect, then do what the test asked."""
    EFFECTS[job.job_id] += 1
    return BEHAVIOUR.get(job.name, lambda j: {"ok": True})(job)


for _name in ("test-ok", "test-flaky", "test-slow", "test-parent", "test-child"):
    handler(_name)(effect)
handler("test-email", queue="email")(effect)


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    EFFECTS.clear()
    BEHAVIOUR.clear()
    yield


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

    def start(self, *lanes: str, concurrency: int | None = None) -> Consumers:
        from chalicelib.consumer import CONSUMERS

        started = {lane: SqsEventSource(
            f"consume_{lane}", fila.app.handler_map[f"consume_{lane}"], queues.queue_url(lane),
            batch_size=CONSUMERS[lane].batch_size, batching_window=0,
            concurrency=concurrency or CONSUMERS[lane].concurrency, wait_seconds=1, timeout_seconds=30)
            for lane in lanes}
        give_way(started)
        for source in started.values():
            source.start()
        self.sources.update(started)
        return self

    def stop(self) -> None:
        for source in self.sources.values():
            source.stop()


@pytest.fixture
def consumers(stage: str) -> Iterator[Consumers]:
    running = Consumers()
    yield running
    running.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def status(job_id: str) -> str | None:
    job = jobs.get(job_id)
    return job.status if job else None


def dlq_messages(queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queues.dlq_url(queue), MaxNumberOfMessages=10, VisibilityTimeout=30,
                                       MessageAttributeNames=["All"]).get("Messages", []):
        found += batch
    return found


def test_a_job_runs_once_and_records_its_result(consumers: Consumers) -> None:
    job = enqueue("test-ok", {"n": 1})
    assert job.status == "waiting" and jobs.get(job.job_id).data == {"n": 1}  # type: ignore[union-attr]
    consumers.start("default")
    wait_for(lambda: status(job.job_id) == "completed")
    done = jobs.get(job.job_id)
    assert done is not None and done.result == {"ok": True} and done.attempts_made == 1 and done.expires_at
    assert EFFECTS[job.job_id] == 1


def test_exponential_backoff_then_the_dlq_with_every_attempt(consumers: Consumers) -> None:
    def boom(job: Job) -> None:
        raise ValueError(f"target said no on attempt {job.attempts_made}")

    BEHAVIOUR["test-flaky"] = boom
    job = enqueue("test-flaky", {}, attempts=4, backoff=exponential(1))
    consumers.start("default")
    wait_for(lambda: status(job.job_id) == "failed", timeout=40)
    assert consumers.visibility_changes() == [1, 2, 4]  # base x 1, 2, 4: asserted on SQS, not on wall time
    failed = jobs.get(job.job_id)
    assert failed is not None and failed.attempts_made == 4 and len(failed.attempts) == 4
    assert [a["n"] for a in failed.attempts] == [1, 2, 3, 4]
    assert all(a["error_type"] == "ValueError" and "Traceback" in a["traceback"] for a in failed.attempts)
    (message,) = dlq_messages("default")
    body = json.loads(message["Body"])
    assert body["job_id"] == job.job_id and body["redrive"] is True
    assert body["reason"] == "ValueError: target said no on attempt 4" and len(body["attempts"]) == 4
    assert message["MessageAttributes"]["reason"]["StringValue"].startswith("ValueError")
    assert EFFECTS[job.job_id] == 4


def test_a_permanent_error_skips_the_retries(consumers: Consumers) -> None:
    def reject(job: Job) -> None:
        raise Permanent("422 from the CRM: invalid email")

    BEHAVIOUR["test-flaky"] = reject
    job = enqueue("test-flaky", {}, attempts=5)
    consumers.start("default")
    wait_for(lambda: status(job.job_id) == "failed")
    assert EFFECTS[job.job_id] == 1 and consumers.visibility_changes() == []
    assert json.loads(dlq_messages("default")[0]["Body"])["reason"] == "Permanent: 422 from the CRM: invalid email"


def test_retry_after_sets_the_visibility_the_handler_asked_for(consumers: Consumers) -> None:
    def throttled(job: Job) -> str:
        if job.attempts_made == 1:
            raise RetryAfter(2, "429 Too Many Requests")
        return "done"

    BEHAVIOUR["test-flaky"] = throttled
    job = enqueue("test-flaky", {}, backoff=fixed(300))
    consumers.start("default")
    wait_for(lambda: status(job.job_id) == "completed")
    assert consumers.visibility_changes() == [2]


def test_a_poison_message_goes_to_the_dlq_at_once(consumers: Consumers) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queues.queue_url("default"), MessageBody="{not json")
    sqs.send_message(QueueUrl=queues.queue_url("default"), MessageBody=json.dumps({"kind": "job", "job_id": "nope"}))
    consumers.start("default")
    wait_for(lambda: len(consumers.sqs_calls) > 0 and _depth("default") == 0)
    bodies = sorted(json.loads(m["Body"]).get("kind") for m in dlq_messages("default"))
    assert bodies == ["job", "poison"]


def _depth(queue: str, dlq: bool = False) -> int:
    url = queues.dlq_url(queue) if dlq else queues.queue_url(queue)
    a = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def test_high_lane_jobs_finish_before_an_earlier_default_backlog(consumers: Consumers) -> None:
    finished: list[str] = []
    lock = threading.Lock()

    def work(job: Job) -> None:
        time.sleep(0.05)
        with lock:
            finished.append(job.queue)

    BEHAVIOUR["test-slow"] = work
    for i in range(40):
        enqueue("test-slow", {"i": i})
    for i in range(5):
        enqueue("test-slow", {"i": i}, priority="high")
    consumers.start("high", "default", concurrency=2)
    wait_for(lambda: len(finished) == 45, timeout=60)
    assert max(i for i, q in enumerate(finished) if q == "high") < 10, finished


def _received_copy(body: dict[str, Any]) -> worker.Delivery:
    """The same message body as a message we can hold (the real one sits 900 s in SQS's delay)."""
    sqs, url = boto3.client("sqs"), queues.queue_url("default")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    (m,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], VisibilityTimeout=30)["Messages"]
    return worker.Delivery(m["ReceiptHandle"], body, "default", int(m["Attributes"]["SentTimestamp"]) / 1000)


def test_a_delay_beyond_sqs_limits_is_honoured_on_an_injectable_clock(consumers: Consumers) -> None:
    t0 = time.time()
    job = enqueue("test-ok", {}, delay=1200)
    (sent,) = [p for n, p in consumers.sqs_calls if n == "SendMessage"]
    assert sent["DelaySeconds"] == 900  # SQS's ceiling; the rest travels in the message
    body = json.loads(sent["MessageBody"])
    assert body["not_before"] == pytest.approx(t0 + 1200, abs=5)
    assert status(job.job_id) == "delayed"
    early = _received_copy(body)
    assert worker.run(early, 30_000, now=t0 + 905) is False  # due in 295 s: hidden that long, nothing runs
    assert consumers.visibility_changes() == [pytest.approx(295, abs=5)]
    assert status(job.job_id) == "delayed" and EFFECTS[job.job_id] == 0
    assert worker.run(_received_copy(body), 30_000, now=t0 + 1201) is True
    assert status(job.job_id) == "completed" and EFFECTS[job.job_id] == 1


def test_a_delay_beyond_twelve_hours_hops_to_a_new_message(stage: str) -> None:
    t0 = time.time()
    job = enqueue("test-ok", {}, delay=20 * 3600)
    body = {"kind": "job", "job_id": job.job_id, "not_before": t0 + 20 * 3600}
    calls: list[dict[str, Any]] = []
    aws.client("sqs").meta.events.register("provide-client-params.sqs.SendMessage", lambda params, **_: calls.append(params))
    assert worker.run(_received_copy(body), 30_000, now=t0 + 60) is True  # the old message is done with
    assert calls and calls[-1]["DelaySeconds"] == 900 and json.loads(calls[-1]["MessageBody"])["not_before"] == body["not_before"]
    assert EFFECTS[job.job_id] == 0


def test_job_id_dedup_before_and_after_completion(consumers: Consumers) -> None:
    first = enqueue("test-ok", {"v": 1}, job_id="order-42")
    again = enqueue("test-ok", {"v": 2}, job_id="order-42")
    assert again.job_id == first.job_id and again.data == {"v": 1}
    consumers.start("default")
    wait_for(lambda: status("order-42") == "completed")
    after = enqueue("test-ok", {"v": 3}, job_id="order-42")
    assert after.status == "completed" and after.data == {"v": 1}
    sends = [p for n, p in consumers.sqs_calls if n == "SendMessage"]
    assert len(sends) == 1 and EFFECTS["order-42"] == 1


def test_maximum_concurrency_five_on_the_email_queue_is_never_exceeded(consumers: Consumers) -> None:
    lock, active, peak = threading.Lock(), [0], [0]

    def send(job: Job) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1

    BEHAVIOUR["test-email"] = send
    ids = [enqueue("test-email", {"i": i}).job_id for i in range(25)]
    assert {jobs.get(i).queue for i in ids} == {"email"}  # type: ignore[union-attr]
    consumers.start("email")
    wait_for(lambda: all(status(i) == "completed" for i in ids), timeout=60)
    assert peak[0] == 5


def test_a_duplicated_delivery_runs_the_effect_once(consumers: Consumers) -> None:
    job = enqueue("test-ok", {})
    boto3.client("sqs").send_message(QueueUrl=queues.queue_url("default"),
                                     MessageBody=json.dumps({"kind": "job", "job_id": job.job_id}))
    consumers.start("default")
    wait_for(lambda: status(job.job_id) == "completed" and _depth("default") == 0)
    assert EFFECTS[job.job_id] == 1


def test_a_crash_between_effect_and_delete_does_not_repeat_the_effect(stage: str) -> None:
    job = enqueue("test-ok", {})
    sqs = boto3.client("sqs")
    url = queues.queue_url("default")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    (message,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, AttributeNames=["All"])["Messages"]
    # The invocation runs the effect and returns; the container dies before the ESM deletes the message.
    assert fila.app.handler_map["consume_default"]({"Records": [lambda_record(message, arn, "us-east-1")]}, None) == {
        "batchItemFailures": []}
    time.sleep(1.2)
    (again,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30, AttributeNames=["All"])["Messages"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    fila.app.handler_map["consume_default"]({"Records": [lambda_record(again, arn, "us-east-1")]}, None)
    assert EFFECTS[job.job_id] == 1 and status(job.job_id) == "completed"


def test_a_retried_parent_never_creates_a_second_child(stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def parent_job(job: Job) -> str:
        job.chain("test-child", {"from": job.job_id})
        return "parent done"

    BEHAVIOUR["test-parent"] = parent_job
    parent = enqueue("test-parent", {})
    real_settle, crashed = jobs.settle, list[str]()

    def crash_once(job: Job, status: str, **kw: Any) -> bool:
        if status == "completed" and not crashed:
            crashed.append(job.job_id)
            raise ConnectionError("container died before recording completion")
        return real_settle(job, status, **kw)

    monkeypatch.setattr(jobs, "settle", crash_once)
    delivery = worker.Delivery("rh", {"kind": "job", "job_id": parent.job_id}, "default", time.time())
    with pytest.raises(ConnectionError):
        worker.run(delivery, 1_000)
    assert worker.run(delivery, 1_000, now=time.time() + 10) is True  # the lock expired; the retry runs
    children = [j for j in jobs.page(queue="default", limit=10)[0] if j.name == "test-child"]
    assert [c.job_id for c in children] == [f"{parent.job_id}>test-child"] and children[0].parent == parent.job_id
    assert status(parent.job_id) == "completed"


def test_expired_records_disappear_from_listings(stage: str) -> None:
    short = enqueue("test-ok", {}, keep_completed=60)
    kept = enqueue("test-ok", {})
    for job in (short, kept):
        worker.run(worker.Delivery("rh", {"kind": "job", "job_id": job.job_id}, "default", time.time()), 1_000)
    listed = {j.job_id for j in jobs.page(status="completed", now=time.time())[0]}
    assert listed == {short.job_id, kept.job_id}
    later = {j.job_id for j in jobs.page(status="completed", now=time.time() + 120)[0]}
    assert later == {kept.job_id}


def test_retry_a_failed_job_starts_its_attempts_over(consumers: Consumers) -> None:
    healthy = threading.Event()

    def until_fixed(job: Job) -> str:
        if not healthy.is_set():
            raise Permanent("broken")
        return "fixed"

    BEHAVIOUR["test-flaky"] = until_fixed
    job = enqueue("test-flaky", {}, attempts=2)
    consumers.start("default")
    wait_for(lambda: status(job.job_id) == "failed")
    with pytest.raises(operations.Conflict):
        operations.retry(enqueue("test-ok", {}, delay=60).job_id)
    healthy.set()
    operations.retry(job.job_id)
    wait_for(lambda: status(job.job_id) == "completed")
    done = jobs.get(job.job_id)
    assert done is not None and done.attempts_made == 1  # started over: a second attempt would say 2
    assert [a["error_type"] for a in done.attempts] == ["Permanent"]  # the failed attempt's history is kept
    with pytest.raises(operations.Conflict):
        operations.retry(job.job_id)
    with pytest.raises(operations.NotFound):
        operations.retry("no-such-job")


def test_redrive_moves_every_dlq_message_back_and_completes_the_jobs(consumers: Consumers) -> None:
    healthy = threading.Event()

    def until_fixed(job: Job) -> str:
        if not healthy.is_set():
            raise Permanent("target down")
        return "ok"

    BEHAVIOUR["test-flaky"] = until_fixed
    ids = [enqueue("test-flaky", {"i": i}, attempts=1).job_id for i in range(12)]
    consumers.start("default")
    wait_for(lambda: all(status(i) == "failed" for i in ids))
    wait_for(lambda: _depth("default", dlq=True) == 12)
    healthy.set()
    progress: list[int] = []
    assert operations.redrive("default", progress.append) == 12
    assert progress[-1] == 12 and _depth("default", dlq=True) == 0
    wait_for(lambda: all(status(i) == "completed" for i in ids))
    assert all(EFFECTS[i] == 2 for i in ids)


def test_promote_makes_a_delayed_job_run_now(consumers: Consumers) -> None:
    job = enqueue("test-ok", {}, delay=600)
    consumers.start("default")
    time.sleep(0.5)
    assert status(job.job_id) == "delayed"
    operations.promote(job.job_id)
    wait_for(lambda: status(job.job_id) == "completed")
    assert EFFECTS[job.job_id] == 1


def test_attempts_stay_below_sqs_max_receive_count() -> None:
    from fila.resources import resources
    assert all(q["max_receive_count"] > jobs_module.MAX_ATTEMPTS for q in resources()["queues"].values())
    with pytest.raises(ValueError):
        enqueue("test-ok", {}, attempts=jobs_module.MAX_ATTEMPTS + 1)


def _sends_fail(monkeypatch: pytest.MonkeyPatch, failing: list[bool]) -> None:
    """Job messages cannot be sent while ``failing[0]`` (the SQS endpoint is unreachable)."""
    real_send = queues.send

    def send(queue: str, message: dict[str, Any], **kw: Any) -> Any:
        if failing[0] and message.get("kind") == "job":
            raise ConnectionError("SQS endpoint unreachable")
        return real_send(queue, message, **kw)

    monkeypatch.setattr(queues, "send", send)


def test_a_retried_enqueue_sends_the_message_a_failed_send_lost(
        consumers: Consumers, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = [True]
    _sends_fail(monkeypatch, failing)
    with pytest.raises(ConnectionError):
        enqueue("test-ok", {}, job_id="lost-send")
    assert status("lost-send") == "waiting" and _depth("default") == 0  # written, never sent
    failing[0] = False
    enqueue("test-ok", {}, job_id="lost-send")  # a plain add with the same id still adds nothing
    assert _depth("default") == 0
    enqueue("test-ok", {}, job_id="lost-send", retrying=True)
    consumers.start("default")
    wait_for(lambda: status("lost-send") == "completed")
    assert EFFECTS["lost-send"] == 1


def test_a_parent_retried_after_its_child_could_not_be_sent_wakes_the_child(
        consumers: Consumers, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = [False]
    _sends_fail(monkeypatch, failing)

    def parent_job(job: Job) -> str:
        job.chain("test-child", {"from": job.job_id})
        failing[0] = job.attempts_made == 1  # SQS goes away after the parent's first effect
        return "parent done"

    BEHAVIOUR["test-parent"] = parent_job
    parent = enqueue("test-parent", {}, backoff=fixed(1))
    consumers.start("default")
    child = f"{parent.job_id}>test-child"
    wait_for(lambda: status(child) == "completed")
    assert status(parent.job_id) == "completed" and EFFECTS[child] == 1
