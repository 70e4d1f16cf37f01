"""A lane's consumer on the in-memory store: records at once, each with its own result, exact partial
batch responses, and a correct answer when partial batch responses are off."""

from __future__ import annotations

import json
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib import pools
from chalicelib.consumer import RecordsLeft, handle_batch
from chalicelib.jobs import Job, JobStatus
from chalicelib.resources import lanes
from chalicelib.system import JobSystem
from tests.unit.conftest import BEHAVIOUR, EFFECTS, queues_of


def record(body: Any, n: int, receive_count: int = 1) -> dict[str, Any]:
    return {"messageId": f"m{n}", "receiptHandle": f"rh{n}", "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": str(int(time.time() * 1000))}}


def job_records(system: JobSystem, count: int, name: str = "test-ok") -> list[dict[str, Any]]:
    return [record({"kind": "job", "job_id": system.enqueue(name, {"i": i}).job_id}, i) for i in range(count)]


def test_records_of_a_batch_run_at_once(system: JobSystem) -> None:
    together = threading.Barrier(5, timeout=10)
    BEHAVIOUR["test-slow"] = lambda job: together.wait()  # returns only once five are waiting at once
    batch = job_records(system, 5, "test-slow")
    assert handle_batch(system, lanes()["default"], batch) == {"batchItemFailures": []}
    assert all(system.jobs.get(json.loads(r["body"])["job_id"]).status == JobStatus.COMPLETED  # type: ignore[union-attr]
               for r in batch)


def test_two_invocations_of_a_lane_at_once_each_run_their_batch_at_once(system: JobSystem) -> None:
    """As two Lambda containers would: a pool per invocation, not one for the lane (ten threads shared by
    the local stack's invokers would leave the second batch waiting for the first)."""
    parallel = lanes()["default"].parallel
    together = threading.Barrier(2 * parallel, timeout=10)
    BEHAVIOUR["test-slow"] = lambda job: together.wait()
    batches = [job_records(system, parallel, "test-slow") for _ in range(2)]
    answers: list[Any] = []
    invokers = [threading.Thread(target=lambda b=b: answers.append(handle_batch(system, lanes()["default"], b)))
                for b in batches]
    for invoker in invokers:
        invoker.start()
    for invoker in invokers:
        invoker.join()
    assert answers == [{"batchItemFailures": []}] * 2 and not together.broken


def test_an_invoker_s_pool_ends_with_it(system: JobSystem) -> None:
    BEHAVIOUR["test-slow"] = lambda job: time.sleep(0.01)
    lane = lanes()["default"]
    made: list[weakref.ref[ThreadPoolExecutor]] = []
    threads: list[threading.Thread] = []

    def invoke() -> None:
        handle_batch(system, lane, job_records(system, 3, "test-slow"))
        pool = pools.pool(f"consume-{lane.name}", lane.parallel)  # the one this invocation ran on
        made.append(weakref.ref(pool))
        threads.extend(pool._threads)

    invoker = threading.Thread(target=invoke)
    invoker.start()
    invoker.join()
    pool = made[0]
    assert threads  # the batch ran on the pool
    deadline = time.monotonic() + 5
    while (pool() is not None or any(t.is_alive() for t in threads)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool() is None and not any(t.is_alive() for t in threads)


def test_a_records_jobs_run_on_its_own_invokers_pool_which_ends_with_it() -> None:
    seen: dict[str, list[ThreadPoolExecutor]] = {}
    refs: list[weakref.ref[ThreadPoolExecutor]] = []
    threads: list[threading.Thread] = []

    def invoke(name: str) -> None:
        records = pools.pool("consume-x", 2)
        inner = list(records.map(lambda _: pools.pool("jobs-x", 3), range(4)))  # from the record threads
        seen[name] = [records, pools.pool("jobs-x", 3), *inner]
        refs.extend(weakref.ref(p) for p in seen[name][:2])
        threads.extend([*records._threads, *seen[name][1]._threads])

    for name in ("a", "b"):  # two local invocations, as two containers (the first's pools still held)
        invoker = threading.Thread(target=invoke, args=(name,))
        invoker.start()
        invoker.join()
    for name in ("a", "b"):
        records, jobs, *inner = seen[name]
        assert all(p is jobs for p in inner) and jobs is not records  # one job pool per invoker
    assert seen["a"][1] is not seen["b"][1]
    inner[0].submit(time.sleep, 0).result()  # a pool's threads start lazily: give this one a thread
    threads.extend(inner[0]._threads)
    seen.clear()
    del records, jobs, inner
    deadline = time.monotonic() + 5
    while (any(r() is not None for r in refs) or any(t.is_alive() for t in threads)) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(r() is None for r in refs) and not any(t.is_alive() for t in threads)


def test_a_batch_claims_its_jobs_together_and_each_record_keeps_its_result(system: JobSystem) -> None:
    BEHAVIOUR["test-flaky"] = lambda job: (_ for _ in ()).throw(ConnectionError("later"))
    ok = job_records(system, 8)
    flaky = record({"kind": "job", "job_id": system.enqueue("test-flaky", {}).job_id}, 8)
    twice = [record({"kind": "job", "job_id": json.loads(ok[0]["body"])["job_id"]}, 9)]  # same job: after it
    store = system.store
    store.calls.clear()  # type: ignore[attr-defined]
    response = handle_batch(system, lanes()["default"], [*ok, flaky, *twice])
    assert response == {"batchItemFailures": [{"itemIdentifier": "m8"}]}
    # nine claims in one write and one read, a settle each; the repeat of ok[0] runs after it, claims on
    # its own (an update) and finds it completed (a get)
    assert store.calls == {"write": 1 + 9, "get_many": 1, "update": 1, "get": 1}  # type: ignore[attr-defined]
    assert [EFFECTS[json.loads(r["body"])["job_id"]] for r in ok] == [1] * 8
    retried = system.jobs.get(json.loads(flaky["body"])["job_id"])
    assert retried is not None and retried.status == JobStatus.DELAYED and retried.attempts_made == 1


def test_a_batch_with_a_job_that_cannot_be_claimed_claims_one_by_one(system: JobSystem) -> None:
    batch = job_records(system, 4)
    handle_batch(system, lanes()["default"], batch[:1])  # completed before the batch comes
    system.store.calls.clear()  # type: ignore[attr-defined]
    assert handle_batch(system, lanes()["default"], batch) == {"batchItemFailures": []}
    # the batch's write changed nothing; then four claims of their own, three settles, the done one read
    assert system.store.calls == {"write": 1 + 3, "get_many": 1, "update": 4, "get": 1}  # type: ignore[attr-defined]
    assert [EFFECTS[json.loads(r["body"])["job_id"]] for r in batch] == [1] * 4  # the done one not again
    assert all(system.jobs.get(json.loads(r["body"])["job_id"]).status == JobStatus.COMPLETED  # type: ignore[union-attr]
               for r in batch)


def test_records_of_the_same_job_never_race(system: JobSystem) -> None:
    inside, overlaps = threading.Lock(), []

    def exclusive(job: Job) -> None:
        if not inside.acquire(blocking=False):
            overlaps.append(job.job_id)
            return
        time.sleep(0.05)
        inside.release()

    BEHAVIOUR["test-slow"] = exclusive
    job = system.enqueue("test-slow", {})
    duplicates = [record({"kind": "job", "job_id": job.job_id}, n) for n in range(3)]
    handle_batch(system, lanes()["default"], duplicates)
    assert overlaps == [] and EFFECTS[job.job_id] == 1


def test_the_partial_batch_response_names_exactly_the_records_to_see_again(system: JobSystem) -> None:
    BEHAVIOUR["test-flaky"] = lambda job: (_ for _ in ()).throw(ConnectionError("later"))
    ok = job_records(system, 3)
    flaky = [record({"kind": "job", "job_id": system.enqueue("test-flaky", {}).job_id}, 10 + n) for n in range(2)]
    crashing = record({"kind": "job", "job_id": "x"}, 20)
    system.handlers.pop("test-ok")
    response = handle_batch(system, lanes()["default"], [*ok, *flaky, crashing])
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["m10", "m11"]


def test_without_partial_responses_finished_records_are_deleted_and_the_invocation_fails(
        system: JobSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FILA_BATCH_RESPONSE")
    BEHAVIOUR["test-flaky"] = lambda job: (_ for _ in ()).throw(ConnectionError("later"))
    ok = job_records(system, 2)
    flaky = record({"kind": "job", "job_id": system.enqueue("test-flaky", {}).job_id}, 9)
    with pytest.raises(RecordsLeft):
        handle_batch(system, lanes()["default"], [*ok, flaky])
    assert sorted(h for _, h in queues_of(system).deleted) == ["rh0", "rh1"]  # never the one to retry
    assert handle_batch(system, lanes()["default"], job_records(system, 2)) == {"batchItemFailures": []}


def test_a_message_that_is_not_fila_s_goes_to_the_dlq(system: JobSystem) -> None:
    response = handle_batch(system, lanes()["default"], [record("{not json", 1), record({"kind": "other"}, 2)])
    assert response == {"batchItemFailures": []}
    assert [m.body["kind"] for m in queues_of(system).dead["default"]] == ["poison", "poison"]


def test_an_event_message_is_dispatched(system: JobSystem) -> None:
    from chalicelib.events import Event

    event = Event("stripe", "evt_c", "customer.updated", "2026-11-30T10:00:00.000Z", b"{}", lane="default",
                  facts={"email": "a@example.com", "name": "A", "amount": None, "currency": None, "reference": None})
    system.events.add(event)
    message = {"kind": "event", "source": "stripe", "event_id": "evt_c", "type": "customer.updated", "facts": event.facts}
    assert handle_batch(system, lanes()["default"], [record(message, 1)]) == {"batchItemFailures": []}
    assert [j.name for j in system.jobs.of_event("stripe#evt_c")] == ["update-crm"]


def _payment_events(system: JobSystem, count: int) -> list[dict[str, Any]]:
    """Payment event records on ``high``, whose invoice job chains an email (lane ``email``)."""
    from chalicelib.events import Event
    from chalicelib.system import handler
    from tests.unit.conftest import effect

    def invoice(job: Job) -> None:
        effect(job)
        job.chain("test-email", {"to": "a@example.com"})

    system.handlers.update({name: handler(name)(effect) for name in ("update-crm", "notify-slack")})
    system.handlers["generate-invoice-pdf"] = handler("generate-invoice-pdf")(invoice)
    records = []
    for n in range(count):
        event = Event("stripe", f"evt_{n}", "payment_intent.succeeded", "2026-11-30T10:00:00.000Z", b"{}",
                      lane="high", facts={"email": "a@example.com", "name": "A"})
        system.events.add(event)
        records.append(record({"kind": "event", "source": "stripe", "event_id": f"evt_{n}",
                               "type": event.type, "facts": event.facts}, n))
    return records


def test_a_batch_sends_the_wakes_of_its_records_together(system: JobSystem,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    send_batch = queues_of(system).send_batch

    def counted(lane: str, bodies: Any) -> None:
        calls.append((lane, len(bodies)))
        send_batch(lane, bodies)

    monkeypatch.setattr(queues_of(system), "send_batch", counted)
    assert handle_batch(system, lanes()["high"], _payment_events(system, 10)) == {"batchItemFailures": []}
    assert calls == [("email", 10)]  # ten receipts, one call (not one per invoice)
    woken = sorted(s.body["job_id"] for s in queues_of(system).sent)
    assert woken == sorted(f"stripe#evt_{n}:generate-invoice-pdf>test-email" for n in range(10))


def test_records_whose_wakes_were_not_sent_are_seen_again_and_wake_them(system: JobSystem) -> None:
    batch = _payment_events(system, 12)  # two calls: ten wakes, then two
    queues_of(system).fail_sends = 1
    response = handle_batch(system, lanes()["high"], batch)
    again = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert len(again) == 10 and len(queues_of(system).sent) == 2
    retry = [record(json.loads(r["body"]), int(r["messageId"][1:]), receive_count=2)
             for r in batch if r["messageId"] in again]
    assert handle_batch(system, lanes()["high"], retry) == {"batchItemFailures": []}
    woken = {s.body["job_id"] for s in queues_of(system).sent}
    assert woken == {f"stripe#evt_{n}:generate-invoice-pdf>test-email" for n in range(12)}
    assert all(count == 1 for count in EFFECTS.values()) and len(EFFECTS) == 36  # three jobs each, once
