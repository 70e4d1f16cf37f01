"""What an operator runs a lane with: rate limits, pause, progress and logs, clean, charts, dead counts."""

from __future__ import annotations

import time
from typing import Any
from unittest.mock import patch

import pytest

from chalicelib import operations, resources, stats, worker
from chalicelib.errors import InvalidPayload
from chalicelib.jobs import MAX_LOG_LINES, Job, JobStatus, Permanent
from chalicelib.resources import RateLimit
from chalicelib.store.lanes import minute_slot
from chalicelib.system import JobSystem
from fila.memory import MemoryQueues, MemoryStore
from tests.unit.conftest import BEHAVIOUR, EFFECTS, TEST_HANDLERS, deliver, queues_of, run_job

# --- rate limits ---------------------------------------------------------------------------------------


def test_a_fixed_window_grants_max_starts_spaced_and_spreads_the_rest_over_the_windows_ahead() -> None:
    lanes, limit, now = JobSystem([], store=MemoryStore(), queues=MemoryQueues()).lanes, RateLimit(3, 3), 1002.0
    turns = [lanes.take("email", limit, now) for _ in range(8)]  # window 1002-1005, one start a second
    assert turns[:3] == [(True, 0.0), (True, 1.0), (True, 2.0)]
    assert turns[3:] == [(False, 3.0), (False, 4.0), (False, 5.0), (False, 6.0), (False, 7.0)]  # next windows
    assert lanes.take("email", limit, 1005.5) == (True, 0.0)  # a new window counts again
    assert lanes.take("default", limit, now) == (True, 0.0)  # each lane has its own


def test_a_granted_start_waits_for_its_turn_less_the_takes_own_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """The turn is a point in time: a take answered 0.2 s late (a busy table) leaves 0.1 s of a 0.3 s wait.
    Sleeping the whole wait after it started the email lane's jobs late all through a burst."""
    system = JobSystem(TEST_HANDLERS, store=MemoryStore(), queues=MemoryQueues(),
                       limits={"email": RateLimit(2, 1)})
    job = system.enqueue("test-email", {})
    clock, slept = [100.0], list[float]()

    def slow_take(lane: str, limit: RateLimit, now: float) -> tuple[bool, float]:
        clock[0] += 0.2
        return True, 0.3

    monkeypatch.setattr(system.lanes, "take", slow_take)
    monkeypatch.setattr(worker.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(worker.time, "sleep", slept.append)
    assert run_job(system, job.job_id, lane="email") and EFFECTS[job.job_id] == 1
    assert slept == [pytest.approx(0.1)]


@pytest.fixture
def fresh_lanes() -> Any:
    resources.lanes.cache_clear()
    yield resources.lanes
    resources.lanes.cache_clear()


def test_a_lanes_declared_limit_gives_way_to_the_stages_quota_from_the_environment(
        fresh_lanes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fresh_lanes()["email"].rate_limit == RateLimit(14, 1)  # SES's default sending rate
    monkeypatch.setenv("RATE_LIMIT_EMAIL", "50")
    fresh_lanes.cache_clear()
    assert fresh_lanes()["email"].rate_limit == RateLimit(50, 1)  # the account's quota was raised
    monkeypatch.setenv("RATE_LIMIT_DEFAULT", "600/60")
    fresh_lanes.cache_clear()
    assert fresh_lanes()["default"].rate_limit == RateLimit(600, 60)  # a lane that declares none gets one
    assert fresh_lanes()["high"].rate_limit is None


@pytest.mark.parametrize("value", ["fast", "0", "10/0", "5/s", "-3"])
def test_a_malformed_rate_limit_setting_names_itself_and_is_not_guessed(
        fresh_lanes: Any, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RATE_LIMIT_EMAIL", value)
    with pytest.raises(ValueError, match=f"RATE_LIMIT_EMAIL={value!r}"):
        fresh_lanes()


def test_a_job_over_its_lanes_limit_waits_without_spending_an_attempt() -> None:
    """A turn more than a second away: a new message, due when its window opens (10 s windows here)."""
    system = JobSystem(TEST_HANDLERS, store=MemoryStore(), queues=MemoryQueues(),
                       limits={"email": RateLimit(2, 10)})
    jobs = [system.enqueue("test-email", {"n": n}) for n in range(3)]
    sent = len(queues_of(system).sent)
    now = float(int(time.time()) // 10 * 10) + 0.25
    assert all(run_job(system, j.job_id, now=now, lane="email") for j in jobs)
    late = system.jobs.get(jobs[2].job_id)
    assert late is not None and late.status == JobStatus.WAITING and late.attempts_made == 0
    assert EFFECTS[jobs[2].job_id] == 0 and EFFECTS[jobs[0].job_id] == 1 and EFFECTS[jobs[1].job_id] == 1
    (again,) = queues_of(system).sent[sent:]
    assert again.lane == "email" and again.body["job_id"] == jobs[2].job_id and again.delay == 10
    assert queues_of(system).visibility == []  # not a changed visibility: that would count a receive
    assert run_job(system, jobs[2].job_id, now=now + 10, lane="email")
    assert EFFECTS[jobs[2].job_id] == 1


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The worker's sleeps, recorded instead of slept; its takes answer at once."""
    slept = list[float]()
    monkeypatch.setattr(worker.time, "monotonic", lambda: 0.0)
    monkeypatch.setattr(worker.time, "sleep", slept.append)
    return slept


def test_a_start_past_the_limit_whose_turn_is_within_a_second_waits_for_it_in_place(paced: list[float]) -> None:
    system = JobSystem(TEST_HANDLERS, store=MemoryStore(), queues=MemoryQueues(),
                       limits={"email": RateLimit(2, 1)})
    jobs = [system.enqueue("test-email", {"n": n}) for n in range(3)]
    sent = len(queues_of(system).sent)
    assert all(run_job(system, j.job_id, now=1000.25, lane="email") for j in jobs)
    # its window's two turns at 1000.0 and 1000.5; the third is told 1001.0, waits, takes the new window's first
    assert paced == [0.0, 0.25, 0.75, 0.0]
    assert all(EFFECTS[j.job_id] == 1 for j in jobs) and queues_of(system).sent[sent:] == []


def test_an_invocation_near_its_end_waits_for_no_turn_and_its_claim_ends_with_it(
        paced: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting past the invocation's end would lose the whole batch to a timeout: the refused start gets
    a new message at once. A start that did wait holds its claim only until the invocation's end."""
    system = JobSystem(TEST_HANDLERS, store=MemoryStore(), queues=MemoryQueues(),
                       limits={"email": RateLimit(2, 1)})
    jobs = [system.enqueue("test-email", {"n": n}) for n in range(3)]
    sent = len(queues_of(system).sent)
    locks, claim = list[float](), system.jobs.claim

    def claiming(job_id: str, until: float, now: float) -> Any:
        locks.append(until)
        return claim(job_id, until, now)

    monkeypatch.setattr(system.jobs, "claim", claiming)
    for job in jobs[:2]:
        deliver(system, {"kind": "job", "job_id": job.job_id}, "email", now=1000.25, remaining_ms=30_000)
    assert paced == [0.0, 0.25]  # the second waited for its turn at 1000.5, its invocation's end 0.25 s closer
    assert locks == [1000.25 + 30 + worker.LOCK_MARGIN_SECONDS] * 2
    deliver(system, {"kind": "job", "job_id": jobs[2].job_id}, "email", now=1000.25,
            remaining_ms=(worker.LOCK_MARGIN_SECONDS + 0.5) * 1000)  # half a second left, its turn 0.75 away
    assert paced == [0.0, 0.25] and EFFECTS[jobs[2].job_id] == 0
    (again,) = queues_of(system).sent[sent:]
    assert again.body["job_id"] == jobs[2].job_id and again.delay == 1


def test_a_start_refused_again_and_again_gets_a_new_message_after_its_last_try(
        paced: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    system = JobSystem(TEST_HANDLERS, store=MemoryStore(), queues=MemoryQueues(),
                       limits={"email": RateLimit(2, 1)})
    job = system.enqueue("test-email", {})
    sent = len(queues_of(system).sent)
    monkeypatch.setattr(system.lanes, "take", lambda lane, limit, now: (False, 0.5))
    assert run_job(system, job.job_id, lane="email") and EFFECTS[job.job_id] == 0
    assert paced == [0.5] * (worker.TAKES_AT_MOST - 1)
    (again,) = queues_of(system).sent[sent:]
    assert again.body["job_id"] == job.job_id and again.delay == 1


def test_lanes_without_a_limit_never_ask() -> None:
    store = MemoryStore()
    system = JobSystem(TEST_HANDLERS, store=store, queues=MemoryQueues(), limits={})
    job = system.enqueue("test-email", {})
    assert run_job(system, job.job_id, lane="email")
    assert store.tables["lanes"] == {}


# --- pause ---------------------------------------------------------------------------------------------


class Mappings:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def set_enabled(self, lane: str, enabled: bool) -> int:
        self.calls.append((lane, enabled))
        return 1


def test_pause_disables_the_mapping_then_records_the_flag_and_resume_undoes_both() -> None:
    mappings = Mappings()
    system = JobSystem([], store=MemoryStore(), queues=MemoryQueues(), mappings=mappings)
    assert operations.set_paused(system, "email", True) == {"name": "email", "paused": True}
    assert system.lanes.paused(["email", "default"]) == {"email"}
    operations.set_paused(system, "email", False)
    assert system.lanes.paused(["email", "default"]) == set()
    assert mappings.calls == [("email", False), ("email", True)]


def test_a_failing_mapping_change_leaves_the_flag_as_it_was() -> None:
    class Broken(Mappings):
        def set_enabled(self, lane: str, enabled: bool) -> int:
            raise ConnectionError("lambda unreachable")

    system = JobSystem([], store=MemoryStore(), queues=MemoryQueues(), mappings=Broken())
    with pytest.raises(ConnectionError):
        operations.set_paused(system, "email", True)
    assert system.lanes.paused(["email"]) == set()


# --- progress and logs ---------------------------------------------------------------------------------


def test_progress_and_log_lines_are_stored_with_the_settle_and_kept_over_attempts(system: JobSystem) -> None:
    def reporting(job: Job) -> str:
        job.progress(40)
        job.log(f"attempt {job.attempts_made}: calling the CRM")
        if job.attempts_made == 1:
            raise ConnectionError("reset")
        job.progress(100.7)
        return "ok"

    BEHAVIOUR["test-flaky"] = reporting
    job = system.enqueue("test-flaky", {})
    writes = system.store.calls.copy()  # type: ignore[attr-defined]
    assert run_job(system, job.job_id) is False
    assert run_job(system, job.job_id, now=time.time() + 10)
    done = system.jobs.get(job.job_id)
    assert done is not None and done.percent == 100
    assert done.logs == ["attempt 1: calling the CRM", "attempt 2: calling the CRM"]
    calls = system.store.calls  # type: ignore[attr-defined]
    assert calls.get("update", 0) - writes.get("update", 0) == 2  # the two claims: reports rode the settles


def test_a_long_handler_reports_while_it_runs(system: JobSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "REPORT_EVERY", 0.0)
    seen: list[Any] = []

    def long(job: Job) -> None:
        job.progress(50)
        job.log("half way")
        stored = system.jobs.get(job.job_id)
        seen.append((stored.percent, stored.logs) if stored else None)

    BEHAVIOUR["test-slow"] = long
    job = system.enqueue("test-slow", {})
    assert run_job(system, job.job_id)
    assert seen == [(50, ["half way"])]
    done = system.jobs.get(job.job_id)
    assert done is not None and done.logs == ["half way"]  # stored once, not again with the settle


def test_logs_are_bounded(system: JobSystem) -> None:
    def chatty(job: Job) -> None:
        for n in range(MAX_LOG_LINES + 50):
            job.log("x" * 2000 if n == 0 else f"line {n}")

    BEHAVIOUR["test-ok"] = chatty
    job = system.enqueue("test-ok", {})
    assert run_job(system, job.job_id)
    done = system.jobs.get(job.job_id)
    assert done is not None and len(done.logs) == MAX_LOG_LINES and len(done.logs[0]) == 500
    assert done.logs[-1].startswith("... more lines were dropped")


# --- clean and the dead count --------------------------------------------------------------------------


def _finish(system: JobSystem, name: str, n: int, at: float, **options: Any) -> list[str]:
    """``n`` jobs run to their end at ``at`` (the worker's clock set to it)."""
    ids = []
    with patch.object(worker.time, "time", return_value=at):
        for _ in range(n):
            job = system.enqueue(name, {}, now=at, **options)
            run_job(system, job.job_id, now=at)
            ids.append(job.job_id)
    return ids


def test_clean_removes_only_old_jobs_of_that_status_and_lane(system: JobSystem) -> None:
    old, new = time.time() - 3 * 86400, time.time()
    gone = _finish(system, "test-ok", 3, old)
    kept = _finish(system, "test-ok", 2, new) + _finish(system, "test-ok", 1, old, queue="high")
    BEHAVIOUR["test-flaky"] = lambda job: (_ for _ in ()).throw(Permanent("no"))
    failed = _finish(system, "test-flaky", 1, old)
    answer = operations.clean(system, "default", "completed", str(86400))
    assert answer == {"removed": 3, "more": False}
    assert all(system.jobs.get(i) is None for i in gone)
    assert all(system.jobs.get(i) is not None for i in kept + failed)


def test_a_large_clean_goes_in_bounded_calls(system: JobSystem) -> None:
    _finish(system, "test-ok", 7, time.time() - 100)
    assert operations.clean(system, "default", "completed", "10", limit=5) == {"removed": 5, "more": True}
    assert operations.clean(system, "default", "completed", "10", limit=5) == {"removed": 2, "more": False}


@pytest.mark.parametrize(("status", "age"), [("active", "10"), ("waiting", "10"), ("completed", "-1"),
                                             ("completed", "7d"), ("failed", "")])
def test_clean_refuses_what_it_cannot_do(system: JobSystem, status: str, age: str) -> None:
    _finish(system, "test-ok", 1, time.time() - 100)
    with pytest.raises(InvalidPayload):
        operations.clean(system, "default", status, age)
    assert len(system.jobs.page()[0]) == 1


def test_the_dead_count_is_failed_jobs_not_what_the_dlq_holds(system: JobSystem) -> None:
    BEHAVIOUR["test-flaky"] = lambda job: (_ for _ in ()).throw(Permanent("no"))
    ids = _finish(system, "test-flaky", 3, time.time())
    assert system.jobs.failed_by_lane() == {"default": 3} and len(queues_of(system).dead["default"]) == 3
    BEHAVIOUR["test-flaky"] = lambda job: "fixed"
    operations.retry(system, ids[0])
    run_job(system, ids[0])
    assert system.jobs.failed_by_lane() == {"default": 2}  # its DLQ message is still there, and stale
    assert len(queues_of(system).dead["default"]) == 3


# --- charts --------------------------------------------------------------------------------------------


def test_counts_are_written_once_per_batch_and_read_back_per_minute() -> None:
    from chalicelib.stats import LaneStats
    from chalicelib.store.lanes import LaneRecords

    store = MemoryStore()
    system = JobSystem(TEST_HANDLERS, store=store, queues=MemoryQueues(), hooks=[LaneStats(LaneRecords(store))])
    BEHAVIOUR["test-flaky"] = lambda job: (_ for _ in ()).throw(Permanent("no"))
    for _ in range(4):
        run_job(system, system.enqueue("test-ok", {}).job_id)
    run_job(system, system.enqueue("test-flaky", {}).job_id)
    updates = store.calls.get("update", 0)
    system.flush()
    assert store.calls["update"] - updates == 1  # one lane, one minute: one write
    now = time.time()
    chart = stats.series(system.lanes.minutes("default", now - 120, now), now - 120, 3)
    assert chart["totals"]["completed"] == 4 and chart["totals"]["failed"] == 1
    assert chart["totals"]["run_p50_ms"] == 10 and chart["totals"]["wait_p99_ms"] is not None
    assert [p["completed"] for p in chart["minutes"]][-1] == 4 and chart["minutes"][0]["completed"] == 0
    assert chart["minutes"][-1]["minute"] == minute_slot(now)[2:]


def test_quantiles_come_from_the_buckets() -> None:
    histogram = [0] * (len(stats.BOUNDS_MS) + 1)
    histogram[stats.bucket(40)] = 98  # 25 < t <= 50 ms
    histogram[stats.bucket(4000)] = 2
    assert stats.quantile(histogram, 0.5) == 50 and stats.quantile(histogram, 0.99) == 5000
    assert stats.quantile([0] * len(histogram), 0.5) is None


def test_depths_are_sampled_into_the_minute(system: JobSystem) -> None:
    depths = stats.sample_depths(system.queues, system.lanes, now=time.time())
    assert set(depths) == {"high", "default", "email", "maintenance"}
    now = time.time()
    chart = stats.series(system.lanes.minutes("email", now, now), now, 1)
    assert chart["minutes"][0]["depth"] == depths["email"]


def test_a_failing_hook_flush_is_isolated(system: JobSystem, caplog: pytest.LogCaptureFixture) -> None:
    from chalicelib.system import Hook

    class Broken(Hook):
        def flush(self) -> None:
            raise RuntimeError("store down")

    system.hooks.append(Broken())
    system.flush()
    assert "hook flush failed" in caplog.text
    assert EFFECTS == {}


def test_an_ses_throttle_is_a_retry_after_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    from chalicelib import aws, targets
    from chalicelib.jobs import RetryAfter

    class Throttled:
        def send_email(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}},
                              "SendEmail")

    monkeypatch.setattr(aws, "client", lambda service: Throttled())
    with pytest.raises(RetryAfter) as raised:
        targets.mailer.send("ada@example.com", "Hi {name}", "Hello {name}", "<p>{name}</p>", name="Ada")
    assert raised.value.seconds == 1
