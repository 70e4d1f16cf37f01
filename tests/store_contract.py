"""What every store must do: the contract the in-memory store and DynamoStore are both held to.

Imported by tests/unit/test_store_memory.py and tests/integration/test_store_dynamodb.py, each of
which gives a ``store`` fixture; the tests are the same, so the in-memory store cannot drift.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chalicelib.events import Event, EventStatus
from chalicelib.jobs import Job, JobStatus, Options
from chalicelib.store import Change, ConditionFailed, Expect, Query, Store, Write
from chalicelib.store.events import EventRecords
from chalicelib.store.jobs import JobRecords


def job(job_id: str, created_at: str = "2026-11-30T10:00:00.000Z", **fields: Any) -> Job:
    return Job(job_id=job_id, name=fields.pop("name", "test"), queue=fields.pop("queue", "default"),
               data=fields.pop("data", {"n": 1}), options=Options(attempts=3), created_at=created_at,
               updated_at=created_at, **fields)


class MemoryBodies:
    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    def put(self, key: str, body: bytes) -> None:
        self.saved[key] = body

    def get(self, key: str) -> bytes:
        return self.saved[key]


# --- primitives --------------------------------------------------------------------------------------

def test_a_conditional_write_happens_only_when_its_expectation_holds(store: Store) -> None:
    key = {"job_id": "a"}
    store.write([Write("jobs", key, record={**key, "status": "waiting", "n": 1}, expect=Expect(exists=False))])
    with pytest.raises(ConditionFailed) as failed:
        store.write([Write("jobs", key, record={**key, "status": "other"}, expect=Expect(exists=False))])
    assert store.get("jobs", key) == {**key, "status": "waiting", "n": 1}
    assert failed.value.current == {**key, "status": "waiting", "n": 1}  # the record that failed it
    updated = store.update("jobs", key, Change(put={"status": "active"}, add={"n": 2}, append={"log": ["x"]}),
                           Expect(equal={"status": "waiting"}, one_of={"n": [1, 5]}))
    assert updated == {**key, "status": "active", "n": 3, "log": ["x"]}
    with pytest.raises(ConditionFailed) as failed:
        store.update("jobs", key, Change(put={"status": "again"}), Expect(equal={"status": "waiting"}))
    assert store.get("jobs", key)["status"] == "active"  # type: ignore[index]
    assert failed.value.current == updated


def test_comparisons_missing_attributes_and_any_of(store: Store) -> None:
    key = {"job_id": "b"}
    store.update("jobs", key, Change(put={"lock_until": 100, "status": "active"}))
    lapsed = Expect(any_of=(Expect(equal={"status": "waiting"}),
                            Expect(equal={"status": "active"}, below={"lock_until": 150})))
    assert store.update("jobs", key, Change(remove=("lock_until",)), lapsed)["status"] == "active"
    with pytest.raises(ConditionFailed):
        store.update("jobs", key, Change(put={"x": 1}), Expect(below={"lock_until": 1e12}))  # absent: false
    assert store.update("jobs", key, Change(put={"x": 1}), Expect(missing=("lock_until",)))["x"] == 1
    store.update("jobs", key, Change(put={"x": None}))  # None removes
    assert "x" not in store.get("jobs", key)  # type: ignore[operator]


def test_a_group_of_writes_is_all_or_nothing(store: Store) -> None:
    store.write([Write("jobs", {"job_id": "taken"}, record={"job_id": "taken"})])
    group = [Write("events", {"pk": "s#1"}, record={"pk": "s#1", "status": "received"}, expect=Expect(exists=False)),
             Write("jobs", {"job_id": "new"}, record={"job_id": "new"}, expect=Expect(exists=False)),
             Write("jobs", {"job_id": "taken"}, record={"job_id": "taken", "x": 1}, expect=Expect(exists=False))]
    with pytest.raises(ConditionFailed):
        store.write(group)
    assert store.get("events", {"pk": "s#1"}) is None and store.get("jobs", {"job_id": "new"}) is None
    store.write(group[:2])
    assert store.get("events", {"pk": "s#1"}) is not None and store.get("jobs", {"job_id": "new"}) is not None


def test_get_many_returns_what_exists(store: Store) -> None:
    for n in range(3):
        store.write([Write("jobs", {"job_id": f"m{n}"}, record={"job_id": f"m{n}", "n": n})])
    found = store.get_many("jobs", [{"job_id": "m0"}, {"job_id": "m2"}, {"job_id": "nope"}, {"job_id": "m0"}])
    assert sorted(r["n"] for r in found) == [0, 2]


def test_values_round_trip(store: Store) -> None:
    record = {"job_id": "v", "s": "text", "i": 7, "f": 2.5, "big": 1796078641.1546, "t": True, "l": ["a", 1],
              "m": {"k": "v", "n": [1, 2]}, "e": ""}
    store.write([Write("jobs", {"job_id": "v"}, record=record)])
    assert store.get("jobs", {"job_id": "v"}) == record


def _seed_jobs(store: Store, n: int) -> None:
    for i in range(n):
        status = ["waiting", "failed", "completed"][i % 3]
        store.write([Write("jobs", {"job_id": f"j{i:03d}"}, record={
            "job_id": f"j{i:03d}", "status": status, "queue": ["high", "default"][i % 2],
            "created_at": f"2026-11-30T10:{i // 60:02d}:{i % 60:02d}.000Z", "event_key": f"e#{i % 4}"})])


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_a_sharded_index_pages_newest_first_without_gaps_or_repeats(store: Store, limit: int) -> None:
    _seed_jobs(store, 25)
    for index, value, expected in (
            ("by_status", "failed", [f"j{i:03d}" for i in range(25) if i % 3 == 1]),
            ("by_queue", "high", [f"j{i:03d}" for i in range(25) if i % 2 == 0]),
            ("by_time", "job", [f"j{i:03d}" for i in range(25)])):
        seen, cursor = [], None
        while True:
            page, cursor = store.query(Query("jobs", index, value, newest_first=True), limit, cursor)
            assert len(page) <= limit
            seen += [r["job_id"] for r in page]
            if cursor is None:
                break
        assert seen == sorted(expected, reverse=True), index


def test_queries_bound_the_sort_key_and_filter(store: Store) -> None:
    _seed_jobs(store, 12)
    page, _ = store.query(Query("jobs", "by_event", "e#1"), 100)
    assert [r["job_id"] for r in page] == ["j001", "j005", "j009"]  # oldest first
    page, _ = store.query(Query("jobs", "by_time", "job", after="2026-11-30T10:00:03.000Z",
                                until="2026-11-30T10:00:06.000Z"), 100)
    assert [r["job_id"] for r in page] == ["j004", "j005", "j006"]
    page, _ = store.query(Query("jobs", "by_time", "job", before="2026-11-30T10:00:02.000Z"), 100)
    assert [r["job_id"] for r in page] == ["j000", "j001"]
    page, _ = store.query(Query("jobs", "by_status", "waiting", where=Expect(equal={"queue": "high"})), 100)
    assert [r["job_id"] for r in page] == ["j000", "j006"]
    store.write([Write("schedules", {"name": "s", "run_id": r}, record={"name": "s", "run_id": r})
                 for r in ("run#1", "run#2", "state")])
    page, _ = store.query(Query("schedules", None, "s", prefix="run#", newest_first=True), 10)
    assert [r["run_id"] for r in page] == ["run#2", "run#1"]


def test_an_index_holds_only_items_with_its_keys(store: Store) -> None:
    store.write([Write("jobs", {"job_id": "bare"}, record={"job_id": "bare", "status": "failed"})])  # no created_at
    page, _ = store.query(Query("jobs", "by_status", "failed"), 10)
    assert page == []


def test_concurrent_claims_have_one_winner(store: Store) -> None:
    records = JobRecords(store)
    assert records.create(job("race"))
    winners: list[Job] = []

    def claim() -> None:
        if (won := records.claim("race", time.time() + 30, time.time())) is not None:
            winners.append(won)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and winners[0].attempts_made == 1


# --- job records ---------------------------------------------------------------------------------------

def test_a_job_id_is_created_once(store: Store) -> None:
    records = JobRecords(store)
    assert records.create(job("once", data={"first": True}))
    assert not records.create(job("once", data={"second": True}))
    assert records.get("once").data == {"first": True}  # type: ignore[union-attr]


def test_the_job_state_machine(store: Store) -> None:
    records, now = JobRecords(store), time.time()
    records.create(job("sm"))
    claimed = records.claim("sm", now + 30, now)
    assert claimed is not None and claimed.status == JobStatus.ACTIVE and claimed.attempts_made == 1
    assert records.claim("sm", now + 30, now) is None  # held by a live lock
    assert records.settle(claimed, JobStatus.DELAYED, attempt={"n": 1}, due_at=now + 60, now=now)
    assert records.claim("sm", now + 30, now) is None  # its backoff is not over
    again = records.claim("sm", now + 90, now + 61)
    assert again is not None and again.attempts_made == 2 and again.attempts == [{"n": 1}]
    assert not records.settle(claimed, JobStatus.COMPLETED, now=now)  # a lost claim settles nothing
    child = job("sm>child")
    assert records.settle(again, JobStatus.COMPLETED, result={"ok": 1}, keep=60, children=[child], now=now + 62)
    done = records.get("sm")
    assert done is not None and done.status == JobStatus.COMPLETED and done.result == {"ok": 1}
    assert done.children == ["sm>child"] and done.expires_at == int(now + 62 + 60) and done.lock_until is None
    assert records.get("sm>child") is not None and records.claim("sm", now + 30, now + 63) is None


def test_a_lapsed_lock_lets_another_worker_claim(store: Store) -> None:
    records, now = JobRecords(store), time.time()
    records.create(job("lapse"))
    records.claim("lapse", now + 5, now)
    assert records.claim("lapse", now + 40, now + 1) is None
    second = records.claim("lapse", now + 40, now + 6)
    assert second is not None and second.attempts_made == 2


def test_a_batch_of_claims_is_one_write_all_or_none(store: Store) -> None:
    records, now = JobRecords(store), time.time()
    for name in ("b0", "b1", "b2", "c0", "c1"):
        records.create(job(name))
    claimed = records.claim_all(["b0", "b1", "b2"], now + 30, now)
    assert sorted(claimed) == ["b0", "b1", "b2"]
    assert all(j.status == JobStatus.ACTIVE and j.attempts_made == 1 and j.lock_until == pytest.approx(now + 30)
               for j in claimed.values())
    assert records.claim("b1", now + 30, now) is None  # held, as a single claim's job would be
    assert records.claim_all(["c0", "b2", "c1"], now + 30, now) == {}  # b2 is held: none is claimed
    assert records.claim_all(["c0", "gone"], now + 30, now) == {}  # nor with a job that does not exist
    assert [records.get(i).status for i in ("c0", "c1")] == [JobStatus.WAITING] * 2  # type: ignore[union-attr]
    assert records.settle(claimed["b0"], JobStatus.COMPLETED, now=now)  # its claim is this worker's own
    assert sorted(records.claim_all(["c0", "c1"], now + 30, now)) == ["c0", "c1"]


def test_a_batch_of_more_than_a_hundred_claims_is_a_write_per_hundred(store: Store) -> None:
    records, now = JobRecords(store), time.time()
    ids = [f"h{n:03}" for n in range(120)]
    for start in range(0, len(ids), 25):
        records.create_all([job(i) for i in ids[start:start + 25]])
    records.claim("h110", now + 30, now)  # held: the second hundred's write changes nothing
    assert sorted(records.claim_all(ids, now + 30, now)) == ids[:100]
    assert records.get("h100").status == JobStatus.WAITING  # type: ignore[union-attr]


def test_batch_and_single_claims_race_with_one_winner_per_job(store: Store) -> None:
    records, ids = JobRecords(store), [f"race{n}" for n in range(4)]
    for job_id in ids:
        records.create(job(job_id))
    won: list[str] = []

    def batch() -> None:
        won.extend(records.claim_all(ids, time.time() + 30, time.time()))

    def single(job_id: str) -> None:
        if records.claim(job_id, time.time() + 30, time.time()) is not None:
            won.append(job_id)

    threads = [threading.Thread(target=batch) for _ in range(3)] + \
        [threading.Thread(target=single, args=(job_id,)) for job_id in ids for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == ids  # each job claimed once, by a batch or on its own
    assert all(records.get(i).attempts_made == 1 for i in ids)  # type: ignore[union-attr]


def test_settling_with_a_child_that_exists_changes_nothing(store: Store) -> None:
    records, now = JobRecords(store), time.time()
    records.create(job("p"))
    records.create(job("p>c", data={"mine": True}))
    claimed = records.claim("p", now + 30, now)
    assert claimed is not None and not records.settle(claimed, JobStatus.COMPLETED, children=[job("p>c")], now=now)
    assert records.get("p").status == JobStatus.ACTIVE and records.get("p>c").data == {"mine": True}  # type: ignore[union-attr]


def test_reset_promote_and_pages(store: Store) -> None:
    records, now = JobRecords(store), time.time()
    records.create(job("f", created_at="2026-11-30T10:00:01.000Z"))
    records.create(job("d", created_at="2026-11-30T10:00:02.000Z", status=JobStatus.DELAYED, due_at=now + 3600))
    claimed = records.claim("f", now + 30, now)
    assert claimed is not None
    records.settle(claimed, JobStatus.FAILED, attempt={"n": 1}, keep=3600, now=now)
    assert [j.job_id for j in records.page(status="failed")[0]] == ["f"]
    assert not records.reset("d", now) and records.reset("f", now)
    reset = records.get("f")
    assert reset is not None and reset.status == JobStatus.WAITING and reset.attempts_made == 0 and reset.attempts
    assert not records.promote("f", now) and records.promote("d", now)
    assert [j.job_id for j in records.page()[0]] == ["d", "f"]
    assert [j.job_id for j in records.page(status="waiting", queue="default")[0]] == ["d", "f"]


def test_expired_records_never_show(store: Store) -> None:
    records, now = JobRecords(store), time.time()
    for job_id, keep in (("short", 60), ("long", 7 * 86400)):
        records.create(job(job_id))
        claimed = records.claim(job_id, now + 30, now)
        assert claimed is not None
        records.settle(claimed, JobStatus.COMPLETED, keep=keep, now=now)
    assert {j.job_id for j in records.page(status="completed", now=now)[0]} == {"short", "long"}
    assert {j.job_id for j in records.page(status="completed", now=now + 120)[0]} == {"long"}


# --- event records -------------------------------------------------------------------------------------

def event(event_id: str = "evt_1", received_at: str = "2026-11-30T10:00:00.000Z", body: bytes = b'{"a": 1}'
          ) -> Event:
    return Event("stripe", event_id, "invoice.paid", received_at, body, lane="high", facts={"email": "a@x"})


def test_an_event_is_stored_once_with_its_exact_body(store: Store) -> None:
    events = EventRecords(store, MemoryBodies())
    assert events.add(event()) and not events.add(event(body=b'{"other": 1}'))
    found = events.get("stripe", "evt_1")
    assert found is not None and found.body == b'{"a": 1}' and found.facts == {"email": "a@x"}
    assert found.status == EventStatus.RECEIVED and events.get("stripe", "nope") is None


class AnswerLost:
    """A store whose every write lands and is sent again, as the SDK retries one whose answer was lost."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, writes: Any) -> None:
        self.store.write(writes)
        self.store.write(writes)

    def update(self, *args: Any) -> Any:
        self.store.update(*args)
        return self.store.update(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_an_event_whose_write_is_retried_after_it_landed_is_still_new(store: Store) -> None:
    retried = EventRecords(AnswerLost(store), MemoryBodies())
    assert retried.add(event()) is True  # its own first try, not an earlier delivery
    assert EventRecords(store, MemoryBodies()).add(event()) is False  # another delivery of it
    assert retried.add(event()) is False  # and so is a third, retried or not


def test_a_claim_retried_after_it_landed_is_still_this_workers(store: Store) -> None:
    JobRecords(store).create(job("retried"))
    claimed = JobRecords(AnswerLost(store)).claim("retried", lock_until=200.0, now=100.0)
    assert claimed is not None and claimed.status == JobStatus.ACTIVE and claimed.attempts_made == 1
    assert JobRecords(store).claim("retried", lock_until=300.0, now=150.0) is None  # another worker: held
    assert JobRecords(store).claim("retried", lock_until=400.0, now=250.0) is not None  # its lock lapsed


def test_a_batch_claim_retried_after_it_landed_is_still_this_workers(store: Store) -> None:
    for name in ("r0", "r1"):
        JobRecords(store).create(job(name))
    claimed = JobRecords(AnswerLost(store)).claim_all(["r0", "r1"], lock_until=200.0, now=100.0)
    assert sorted(claimed) == ["r0", "r1"] and all(j.attempts_made == 1 for j in claimed.values())
    assert JobRecords(store).claim_all(["r0", "r1"], lock_until=300.0, now=150.0) == {}  # held


def test_a_settle_retried_after_it_landed_is_still_this_workers(store: Store) -> None:
    JobRecords(store).create(job("settled"))
    claimed = JobRecords(store).claim("settled", lock_until=200.0, now=100.0)
    assert claimed is not None
    assert JobRecords(AnswerLost(store)).settle(claimed, JobStatus.COMPLETED, result={"ok": 1}, now=110.0)
    assert JobRecords(store).get("settled").status == JobStatus.COMPLETED  # type: ignore[union-attr]
    assert not JobRecords(store).settle(claimed, JobStatus.COMPLETED, now=120.0)  # a second writer: lost


def test_a_large_body_goes_to_the_body_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INLINE_PAYLOAD_BYTES", "10")
    from chalicelib.settings import settings
    settings.cache_clear()
    bodies = MemoryBodies()
    events = EventRecords(store, bodies)
    assert events.add(event(body=b'{"long": "' + b"x" * 50 + b'"}'))
    settings.cache_clear()
    assert list(bodies.saved) and events.get("stripe", "evt_1").body.startswith(b'{"long"')  # type: ignore[union-attr]


def test_dispatch_queues_the_event_and_creates_its_jobs_once(store: Store) -> None:
    events, jobs = EventRecords(store, MemoryBodies()), JobRecords(store)
    events.add(event())
    routed = [job("stripe#evt_1:a", event_key="stripe#evt_1"), job("stripe#evt_1:b", event_key="stripe#evt_1")]
    assert events.dispatch("stripe#evt_1", routed)
    assert not events.dispatch("stripe#evt_1", routed)
    assert events.get("stripe", "evt_1").status == EventStatus.QUEUED  # type: ignore[union-attr]
    assert [j.job_id for j in jobs.of_event("stripe#evt_1")] == ["stripe#evt_1:a", "stripe#evt_1:b"]


def test_the_sweep_finds_stale_received_events_until_each_is_marked_swept(store: Store) -> None:
    events = EventRecords(store, MemoryBodies())
    events.add(event("old", "2026-11-30T09:00:00.000Z"))
    events.add(event("new", "2026-11-30T11:00:00.000Z"))
    events.add(event("gone", "2026-11-30T09:00:01.000Z"))
    events.dispatch("stripe#gone", [])
    stale = events.stale_received("2026-11-30T10:00:00.000Z", 10)
    assert [e.event_id for e in stale] == ["old"] and stale[0].facts == {"email": "a@x"}
    assert [e.event_id for e in events.stale_received("2026-11-30T10:00:00.000Z", 10)] == ["old"]  # until marked
    events.mark_swept("stripe#old", "2026-11-30T10:00:00.000Z")
    assert events.stale_received("2026-11-30T10:00:00.000Z", 10) == []
    events.mark_swept("stripe#gone", "2026-11-30T10:00:00.000Z")  # dispatched meanwhile: the send happened
    gone = store.get("events", {"pk": "stripe#gone"})
    assert gone is not None and gone["swept_at"] == "2026-11-30T10:00:00.000Z" and gone["status"] == "queued"
    events.mark_swept("stripe#deleted", "2026-11-30T10:00:00.000Z")  # expired meanwhile: not recreated
    assert store.get("events", {"pk": "stripe#deleted"}) is None


def test_transitions_and_replays(store: Store) -> None:
    events = EventRecords(store, MemoryBodies())
    events.add(event())
    assert events.transition("stripe#evt_1", EventStatus.RECEIVED, EventStatus.IGNORED)
    assert not events.transition("stripe#evt_1", EventStatus.RECEIVED, EventStatus.IGNORED)
    assert events.next_replay("stripe#evt_1") == 1 and events.next_replay("stripe#evt_1") == 2
    with pytest.raises(ConditionFailed):
        events.next_replay("stripe#nope")


def test_an_item_created_by_an_update_is_in_its_indexes(store: Store) -> None:
    store.update("contacts", {"email": "a@example.com"}, Change(put={"updated_at": "2026-11-30T10:00:00.000Z"}))
    page, _ = store.query(Query("contacts", "by_change", "contacts", after="2026-11-30T09:00:00.000Z",
                                until="2026-11-30T11:00:00.000Z"), 10)
    assert [r["email"] for r in page] == ["a@example.com"]


def test_count_groups_what_a_query_finds(store: Store) -> None:
    _seed_jobs(store, 25)
    counts = store.count(Query("jobs", "by_status", "failed"), by="queue")
    assert counts == {"high": 4, "default": 4}
    assert store.count(Query("jobs", "by_status", "failed", where=Expect(equal={"queue": "high"})), "queue") == \
        {"high": 4}
    assert store.count(Query("jobs", "by_status", "nothing"), by="queue") == {}


def test_a_delete_is_conditional(store: Store) -> None:
    key = {"job_id": "d"}
    store.write([Write("jobs", key, record={**key, "status": "completed"})])
    with pytest.raises(ConditionFailed):
        store.delete("jobs", key, Expect(equal={"status": "failed"}))
    assert store.get("jobs", key) is not None
    store.delete("jobs", key, Expect(equal={"status": "completed"}))
    assert store.get("jobs", key) is None
    store.delete("jobs", key)  # already gone: nothing to do


def test_lane_records(store: Store) -> None:
    from chalicelib.resources import RateLimit
    from chalicelib.store.lanes import LaneRecords, minute_slot

    lanes, now = LaneRecords(store), 1_764_556_500.0  # 2025-12-01T02:35:00Z
    assert [lanes.take("email", RateLimit(2, 1), now) for _ in range(3)] == [(True, 0), (True, 0.5), (False, 1.0)]
    lanes.set_paused("email", True, now)
    assert lanes.paused(["email", "high"]) == {"email"}
    for minute in range(5):
        lanes.add_minute("high", minute_slot(now + 60 * minute), {"completed": minute, "r3": 1})
    lanes.add_minute("high", minute_slot(now + 120), {"completed": 10})
    lanes.set_depth("high", now + 120, 7)
    found = lanes.minutes("high", now + 60, now + 180)
    assert [(r["completed"], r.get("depth")) for r in found] == [(1, None), (12, 7), (3, None)]
