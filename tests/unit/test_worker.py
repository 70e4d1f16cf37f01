"""The job lifecycle on the in-memory store: claim, run, settle, retries, the DLQ, chaining, delays."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from chalicelib import operations
from chalicelib.backoff import exponential, fixed
from chalicelib.errors import Conflict, NotFound
from chalicelib.jobs import MAX_ATTEMPTS, Job, JobStatus, Permanent, RetryAfter
from chalicelib.store import ConditionFailed
from chalicelib.system import Hook, JobSystem
from tests.unit.conftest import BEHAVIOUR, EFFECTS, deliver, queues_of, run_job


def status(system: JobSystem, job_id: str) -> JobStatus | None:
    job = system.jobs.get(job_id)
    return job.status if job else None


def test_a_job_runs_once_and_records_its_result(system: JobSystem) -> None:
    job = system.enqueue("test-ok", {"n": 1})
    assert queues_of(system).bodies("default") == [{"kind": "job", "job_id": job.job_id}]
    assert run_job(system, job.job_id)
    done = system.jobs.get(job.job_id)
    assert done is not None and done.status == JobStatus.COMPLETED and done.result == {"ok": True}
    assert done.attempts_made == 1 and done.expires_at and EFFECTS[job.job_id] == 1
    assert run_job(system, job.job_id) and EFFECTS[job.job_id] == 1  # a duplicate message is a no-op


def test_exponential_backoff_then_the_dlq_with_every_attempt(system: JobSystem) -> None:
    def boom(job: Job) -> None:
        raise ValueError(f"target said no on attempt {job.attempts_made}")

    BEHAVIOUR["test-flaky"] = boom
    job = system.enqueue("test-flaky", {}, attempts=4, backoff=exponential(1))
    t = time.time()
    for delay in (1, 2, 4):
        assert run_job(system, job.job_id, now=t) is False  # to be seen again after its backoff
        t += delay + 1
    assert run_job(system, job.job_id, now=t) is True
    assert [s for _, _, s in queues_of(system).visibility] == [1, 2, 4]  # base x 1, 2, 4, on SQS's clock
    failed = system.jobs.get(job.job_id)
    assert failed is not None and failed.status == JobStatus.FAILED and failed.attempts_made == 4
    assert [a["n"] for a in failed.attempts] == [1, 2, 3, 4]
    assert all(a["error_type"] == "ValueError" and "Traceback" in a["traceback"] for a in failed.attempts)
    (dead,) = queues_of(system).dead["default"]
    assert dead.body["job_id"] == job.job_id and dead.body["redrive"] is True and len(dead.body["attempts"]) == 4
    assert dead.reason == "ValueError: target said no on attempt 4" and EFFECTS[job.job_id] == 4


def test_a_permanent_error_skips_the_retries(system: JobSystem) -> None:
    def reject(job: Job) -> None:
        raise Permanent("422 from the CRM: invalid email")

    BEHAVIOUR["test-flaky"] = reject
    job = system.enqueue("test-flaky", {}, attempts=5)
    assert run_job(system, job.job_id)
    assert status(system, job.job_id) == JobStatus.FAILED and queues_of(system).visibility == []
    assert queues_of(system).dead["default"][0].reason == "Permanent: 422 from the CRM: invalid email"


def test_retry_after_sets_the_visibility_the_handler_asked_for(system: JobSystem) -> None:
    def throttled(job: Job) -> str:
        if job.attempts_made == 1:
            raise RetryAfter(7, "429 Too Many Requests")
        return "done"

    BEHAVIOUR["test-flaky"] = throttled
    job = system.enqueue("test-flaky", {}, backoff=fixed(300))
    t = time.time()
    assert run_job(system, job.job_id, now=t) is False
    assert queues_of(system).visibility[-1][2] == 7
    assert run_job(system, job.job_id, now=t + 8) and status(system, job.job_id) == JobStatus.COMPLETED


def test_a_duplicate_during_a_backoff_waits_for_it_to_end(system: JobSystem) -> None:
    BEHAVIOUR["test-flaky"] = lambda j: (_ for _ in ()).throw(ConnectionError("flaky")) if j.attempts_made == 1 else 1
    job = system.enqueue("test-flaky", {}, backoff=fixed(60))
    t = time.time()
    assert run_job(system, job.job_id, now=t) is False  # attempt 1 fails: due in 60 s
    assert run_job(system, job.job_id, now=t + 5) is False  # a duplicate message arrives early
    assert queues_of(system).visibility[-1][2] == pytest.approx(56, abs=2)  # it waits out the backoff
    assert EFFECTS[job.job_id] == 1 and status(system, job.job_id) == JobStatus.DELAYED
    assert run_job(system, job.job_id, now=t + 61) and EFFECTS[job.job_id] == 2


def test_a_worker_that_died_holding_a_job_lets_another_claim_it_once_its_lock_lapses(system: JobSystem) -> None:
    job = system.enqueue("test-ok", {})
    t = time.time()
    assert system.jobs.claim(job.job_id, t + 35, t) is not None  # a worker claims it, then dies
    assert run_job(system, job.job_id, now=t + 10) is False  # another delivery: held, look again later
    assert queues_of(system).visibility[-1][2] == pytest.approx(26, abs=2)
    assert run_job(system, job.job_id, now=t + 36) is True
    done = system.jobs.get(job.job_id)
    assert done is not None and done.status == JobStatus.COMPLETED and done.attempts_made == 2


def test_the_last_attempts_worker_dying_fails_the_job(system: JobSystem) -> None:
    job = system.enqueue("test-ok", {}, attempts=1)
    t = time.time()
    system.jobs.claim(job.job_id, t + 1, t)
    assert run_job(system, job.job_id, now=t + 5)
    failed = system.jobs.get(job.job_id)
    assert failed is not None and failed.status == JobStatus.FAILED and EFFECTS[job.job_id] == 0
    assert "worker stopped during the last attempt" in failed.attempts[-1]["message"]


def test_a_delay_beyond_sqs_limits_waits_in_the_message(system: JobSystem) -> None:
    t = time.time()
    job = system.enqueue("test-ok", {}, delay=1200)
    (sent,) = queues_of(system).sent
    assert sent.delay == 900 and sent.body["not_before"] == pytest.approx(t + 1200, abs=5)
    assert status(system, job.job_id) == JobStatus.DELAYED
    assert deliver(system, sent.body, now=t + 905) is False  # due in 295 s: hidden that long, nothing runs
    assert queues_of(system).visibility[-1][2] == pytest.approx(295, abs=5) and EFFECTS[job.job_id] == 0
    assert deliver(system, sent.body, now=t + 1201) is True and EFFECTS[job.job_id] == 1


def test_a_delay_beyond_twelve_hours_hops_to_a_new_message(system: JobSystem) -> None:
    t = time.time()
    job = system.enqueue("test-ok", {}, delay=20 * 3600)
    body = queues_of(system).sent[0].body
    assert deliver(system, body, now=t + 60, sent_at=t) is True  # the old message is done with
    hop = queues_of(system).sent[-1]
    assert hop.delay == 900 and hop.body["not_before"] == body["not_before"] and EFFECTS[job.job_id] == 0


def test_job_id_dedup_before_and_after_completion(system: JobSystem) -> None:
    first = system.enqueue("test-ok", {"v": 1}, job_id="order-42")
    again = system.enqueue("test-ok", {"v": 2}, job_id="order-42")
    assert again.job_id == first.job_id and again.data == {"v": 1}
    run_job(system, "order-42")
    after = system.enqueue("test-ok", {"v": 3}, job_id="order-42")
    assert after.status == JobStatus.COMPLETED and after.data == {"v": 1}
    assert len(queues_of(system).sent) == 1 and EFFECTS["order-42"] == 1


def test_a_chained_job_is_created_with_its_parents_completion_once(system: JobSystem) -> None:
    def parent(job: Job) -> str:
        job.chain("test-child", {"from": job.job_id})
        return "parent done"

    BEHAVIOUR["test-parent"] = parent
    job = system.enqueue("test-parent", {})
    assert run_job(system, job.job_id)
    child_id = f"{job.job_id}>test-child"
    child = system.jobs.get(child_id)
    assert child is not None and child.parent == job.job_id and child.status == JobStatus.WAITING
    assert {"kind": "job", "job_id": child_id} in queues_of(system).bodies("default")
    assert system.jobs.get(job.job_id).children == [child_id]  # type: ignore[union-attr]


def test_a_parent_whose_completion_answer_was_lost_still_wakes_its_child(system: JobSystem,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK retries the completion's write (the parent's record and its child's, at once) after a lost
    answer; the retry meets its own write. Taken for a lost claim, the child was never woken."""
    def parent(job: Job) -> str:
        job.chain("test-child", {"from": job.job_id})
        return "parent done"

    BEHAVIOUR["test-parent"] = parent
    job = system.enqueue("test-parent", {})
    store = system.jobs.store
    write = store.write

    def landed_then_refused(writes: Any) -> None:
        write(writes)
        if len(writes) > 1:  # the completion with its child
            monkeypatch.setattr(store, "write", write)
            raise ConditionFailed("jobs: the retry met the first try's write")

    monkeypatch.setattr(store, "write", landed_then_refused)
    assert run_job(system, job.job_id)
    assert {"kind": "job", "job_id": f"{job.job_id}>test-child"} in queues_of(system).bodies("default")


def test_a_retried_parent_never_creates_a_second_child(system: JobSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    def parent(job: Job) -> str:
        job.chain("test-child", {"from": job.job_id})
        return "parent done"

    BEHAVIOUR["test-parent"] = parent
    job = system.enqueue("test-parent", {})
    real, crashed = system.jobs.settle, list[str]()

    def crash_once(j: Job, status: JobStatus, **kw: Any) -> bool:
        if status == JobStatus.COMPLETED and not crashed:
            crashed.append(j.job_id)
            raise ConnectionError("the container died before recording completion")
        return real(j, status, **kw)

    monkeypatch.setattr(system.jobs, "settle", crash_once)
    with pytest.raises(ConnectionError):
        run_job(system, job.job_id)
    assert run_job(system, job.job_id, now=time.time() + 40)  # its lock lapsed: the message runs again
    children = [j for j in system.jobs.page(limit=10)[0] if j.name == "test-child"]
    assert [c.job_id for c in children] == [f"{job.job_id}>test-child"] and EFFECTS[job.job_id] == 2


def test_a_child_whose_wake_was_lost_is_woken_when_the_parents_message_comes_back(system: JobSystem) -> None:
    BEHAVIOUR["test-parent"] = lambda j: j.chain("test-child", {})
    job = system.enqueue("test-parent", {})
    queues_of(system).fail_sends = 1  # SQS goes away just after the parent's completion write
    with pytest.raises(ConnectionError):
        run_job(system, job.job_id)
    child_id = f"{job.job_id}>test-child"
    assert status(system, job.job_id) == JobStatus.COMPLETED and status(system, child_id) == JobStatus.WAITING
    assert {"kind": "job", "job_id": child_id} not in queues_of(system).bodies()
    assert run_job(system, job.job_id)  # the parent's message, back after its visibility timeout
    assert {"kind": "job", "job_id": child_id} in queues_of(system).bodies() and EFFECTS[job.job_id] == 1


def test_unknown_jobs_and_handlers_go_to_the_dlq(system: JobSystem) -> None:
    assert run_job(system, "no-such-job")
    job = system.new_job("no-handler", {})
    system.jobs.create(job)
    assert run_job(system, job.job_id)
    reasons = [m.reason for m in queues_of(system).dead["default"]]
    assert "no job 'no-such-job' exists" in reasons[0] and "no handler is registered" in reasons[1]


def test_a_failing_hook_is_logged_and_neither_the_job_nor_other_hooks_suffer(
        system: JobSystem, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    class Broken(Hook):
        def completed(self, job: Job) -> None:
            raise RuntimeError("metrics backend down")

    class Recorder(Hook):
        def claimed(self, job: Job) -> None:
            seen.append("claimed")

        def completed(self, job: Job) -> None:
            seen.append("completed")

    system.hooks += [Broken(), Recorder()]
    job = system.enqueue("test-ok", {})
    with caplog.at_level(logging.ERROR):
        assert run_job(system, job.job_id)
    assert seen == ["claimed", "completed"] and status(system, job.job_id) == JobStatus.COMPLETED


def test_retry_starts_a_failed_jobs_attempts_over_and_keeps_its_history(system: JobSystem) -> None:
    BEHAVIOUR["test-flaky"] = lambda j: (_ for _ in ()).throw(Permanent("broken"))
    job = system.enqueue("test-flaky", {}, attempts=2)
    run_job(system, job.job_id)
    with pytest.raises(Conflict):
        operations.retry(system, system.enqueue("test-ok", {}, delay=60).job_id)
    BEHAVIOUR["test-flaky"] = lambda j: "fixed"
    assert operations.retry(system, job.job_id).status == JobStatus.WAITING
    assert run_job(system, job.job_id)
    done = system.jobs.get(job.job_id)
    assert done is not None and done.status == JobStatus.COMPLETED and done.attempts_made == 1
    assert [a["error_type"] for a in done.attempts] == ["Permanent"]
    with pytest.raises(Conflict):
        operations.retry(system, job.job_id)
    with pytest.raises(NotFound):
        operations.retry(system, "no-such-job")


def test_redrive_brings_dead_jobs_back_with_their_attempts_starting_over(system: JobSystem) -> None:
    BEHAVIOUR["test-flaky"] = lambda j: (_ for _ in ()).throw(Permanent("target down"))
    ids = [system.enqueue("test-flaky", {"i": i}, attempts=1).job_id for i in range(3)]
    for job_id in ids:
        run_job(system, job_id)
    BEHAVIOUR["test-flaky"] = lambda j: "ok"
    progress: list[int] = []
    assert operations.redrive(system, "default", progress.append) == 3 and progress == [3]
    for body in [b for b in queues_of(system).bodies("default") if b.get("redrive")]:
        assert deliver(system, body)
    assert all(status(system, i) == JobStatus.COMPLETED for i in ids) and all(EFFECTS[i] == 2 for i in ids)


def test_promote_makes_a_delayed_job_due_now(system: JobSystem) -> None:
    job = system.enqueue("test-ok", {}, delay=600)
    assert run_job(system, job.job_id) is False and EFFECTS[job.job_id] == 0  # not due
    assert operations.promote(system, job.job_id).status == JobStatus.WAITING
    assert run_job(system, job.job_id) and EFFECTS[job.job_id] == 1
    with pytest.raises(Conflict):
        operations.promote(system, job.job_id)


def test_attempts_stay_below_sqs_max_receive_count(system: JobSystem) -> None:
    from chalicelib.resources import lanes

    assert all(lane.max_receive_count > MAX_ATTEMPTS for lane in lanes().values())
    with pytest.raises(ValueError):
        system.enqueue("test-ok", {}, attempts=MAX_ATTEMPTS + 1)


def test_a_lane_is_the_callers_then_the_handlers_then_the_priority(system: JobSystem) -> None:
    assert system.new_job("test-email", {}).queue == "email"
    assert system.new_job("test-ok", {}, priority="high").queue == "high"
    assert system.new_job("test-ok", {}).queue == "default"
    assert system.new_job("test-email", {}, queue="maintenance").queue == "maintenance"


def test_only_a_job_message_run_would_claim_at_once_is_claimed_with_its_batch(system: JobSystem) -> None:
    from chalicelib.worker import goes_to_claim

    now = time.time()
    limited = next(iter(system.limits))  # a lane with a rate limit: its jobs take their turn first
    assert goes_to_claim(system, {"kind": "job", "job_id": "j"}, "default", now)
    assert not goes_to_claim(system, {"kind": "job", "job_id": "j"}, limited, now)
    assert not goes_to_claim(system, {"kind": "job", "job_id": "j", "not_before": now + 60}, "default", now)
    assert not goes_to_claim(system, {"kind": "job", "job_id": "j", "redrive": True}, "default", now)
    assert not goes_to_claim(system, {"kind": "event", "source": "stripe", "event_id": "e"}, "default", now)
    assert not goes_to_claim(system, {"kind": "job", "job_id": "j", "not_before": "soon"}, "default", now)
    assert not goes_to_claim(system, "not a dict", "default", now)
