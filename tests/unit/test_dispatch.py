"""The routing table, what each provider's payload tells the handlers, dispatch, replay, event status
and the recovery sweep, on the in-memory store."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import ingest, routing
from chalicelib.clock import iso
from chalicelib.consumer import handle_batch
from chalicelib.dispatch import event_message, replay, take_event
from chalicelib.events import Event, EventStatus, status_of
from chalicelib.jobs import JobStatus
from chalicelib.resources import RateLimit, lanes
from chalicelib.routing import Route, route_for
from chalicelib.schemes import schemes
from chalicelib.settings import settings
from chalicelib.store import ConditionFailed
from chalicelib.sweep import HOLD_SECONDS, Stranded, sweep
from chalicelib.system import Handler, JobSystem, handler
from fila.memory import MemoryQueues
from tests.signing import stripe_delivery, stripe_event
from tests.unit.conftest import BEHAVIOUR, EFFECTS, effect, queues_of, run_job


@pytest.mark.parametrize(("event_type", "jobs", "lane"), [
    ("payment_intent.succeeded", ("update-crm", "notify-slack", "generate-invoice-pdf"), "high"),
    ("invoice.paid", ("update-crm", "notify-slack", "generate-invoice-pdf"), "high"),
    ("payment.success", ("update-crm", "notify-slack", "generate-invoice-pdf"), "high"),
    ("customer.created", ("update-crm", "send-welcome-email"), "default"),
    ("customer.updated", ("update-crm",), "default"),
])
def test_the_contract_routes(event_type: str, jobs: tuple[str, ...], lane: str) -> None:
    route = route_for(event_type)
    assert route is not None and route.jobs == jobs and route.lane == lane


def test_unknown_types_have_no_route() -> None:
    assert route_for("issues.opened") is None and route_for("orders/create") is None


def test_wildcards_match_and_the_first_row_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "ROUTES", (*routing.ROUTES, Route(("invoice.*",), ("notify-slack",))))
    assert route_for("invoice.finalized") == Route(("invoice.*",), ("notify-slack",))
    assert route_for("invoice.paid") is not None and route_for("invoice.paid").lane == "high"  # type: ignore[union-attr]


def test_facts_from_a_stripe_payment_intent_and_invoice() -> None:
    stripe = schemes()["stripe"]
    payload = {"data": {"object": {"amount": 4200, "currency": "eur", "receipt_email": "ada@example.com",
                                   "metadata": {"customer_name": "Ada Lovelace"}, "id": "pi_1"}}}
    assert stripe.facts(payload) == {"email": "ada@example.com", "name": "Ada Lovelace", "amount": 4200,
                                     "currency": "EUR", "reference": "pi_1"}
    invoice = {"data": {"object": {"amount_paid": 990, "currency": "usd", "customer_email": "g@example.com",
                                   "customer_name": "Grace", "number": "INV-7"}}}
    assert stripe.facts(invoice)["amount"] == 990 and stripe.facts(invoice)["reference"] == "INV-7"


def test_facts_from_a_standard_webhook_and_a_shopify_order() -> None:
    standard = {"type": "payment.success", "data": {"email": "k@example.com", "name": "K", "amount": 5, "currency": "gbp"}}
    assert schemes()["standard"].facts(standard) == {"email": "k@example.com", "name": "K", "amount": 5,
                                                     "currency": "GBP", "reference": None}
    order = {"id": 820982911946154508, "name": "#1001", "email": "ada@example.com", "total_price": "42.50",
             "currency": "EUR", "customer": {"first_name": "Ada", "last_name": "Lovelace"}}
    assert schemes()["shopify"].facts(order) == {"email": "ada@example.com", "name": "Ada Lovelace", "amount": 4250,
                                                 "currency": "EUR", "reference": "#1001"}


def test_facts_never_fail_on_odd_shapes() -> None:
    odd: list[dict[str, object]] = [{}, {"data": []}, {"data": {"object": "x"}}, {"total_price": "n/a"},
                                    {"data": {"amount": "12", "customer": "cus_1"}}, {"data": {"amount": True}}]
    for payload in odd:
        for scheme in schemes().values():
            found = scheme.facts(payload)
            assert found["email"] == "" and found["amount"] is None


def stored(system: JobSystem, event_type: str = "payment_intent.succeeded", event_id: str = "evt_d",
           received_at: str = "2026-11-30T10:00:00.000Z") -> Event:
    route = route_for(event_type)
    event = Event("stripe", event_id, event_type, received_at, b"{}",
                  lane=route.lane if route else None, facts={"email": "a@example.com", "name": "A"})
    assert system.events.add(event)
    return event


def test_dispatch_creates_the_jobs_once_and_wakes_them_in_one_batch_per_lane(system: JobSystem) -> None:
    event = stored(system)
    take_event(system, event_message(event))
    names = [j.name for j in system.jobs.of_event(event.key)]
    assert sorted(names) == ["generate-invoice-pdf", "notify-slack", "update-crm"]
    assert system.events.get("stripe", "evt_d").status == EventStatus.QUEUED  # type: ignore[union-attr]
    assert len(queues_of(system).sent) == 3 and {s.lane for s in queues_of(system).sent} == {"high"}
    take_event(system, event_message(event))  # the sweep's copy: nothing more
    assert len(system.jobs.of_event(event.key)) == 3 and len(queues_of(system).sent) == 3


def test_a_redelivered_event_message_wakes_the_jobs_its_first_try_could_not(system: JobSystem) -> None:
    event = stored(system)
    queues_of(system).fail_sends = 1
    with pytest.raises(ConnectionError):
        take_event(system, event_message(event))
    assert len(system.jobs.of_event(event.key)) == 3 and queues_of(system).sent == []
    take_event(system, event_message(event), redelivered=True)
    assert len(queues_of(system).sent) == 3


def test_an_event_whose_type_lost_its_route_is_ignored(system: JobSystem) -> None:
    event = stored(system, "issues.opened", "evt_i")
    take_event(system, event_message(event))
    assert system.events.get("stripe", "evt_i").status == EventStatus.IGNORED  # type: ignore[union-attr]


def test_an_old_event_message_without_facts_reads_the_event(system: JobSystem) -> None:
    event = stored(system, "customer.updated", "evt_o")
    take_event(system, {"kind": "event", "source": "stripe", "event_id": "evt_o"})
    assert [j.data["email"] for j in system.jobs.of_event(event.key)] == ["a@example.com"]


def test_the_event_status_follows_its_jobs(system: JobSystem) -> None:
    event = stored(system, "customer.created", "evt_s")
    take_event(system, event_message(event))
    jobs = system.jobs.of_event(event.key)
    assert status_of(EventStatus.QUEUED, jobs) == EventStatus.QUEUED
    assert status_of(EventStatus.RECEIVED, jobs) == EventStatus.RECEIVED
    system.handlers.update({name: _ok(name) for name in ("update-crm", "send-welcome-email")})
    run_job(system, jobs[0].job_id)
    assert status_of(EventStatus.QUEUED, system.jobs.of_event(event.key)) == EventStatus.PROCESSING
    run_job(system, jobs[1].job_id)
    assert status_of(EventStatus.QUEUED, system.jobs.of_event(event.key)) == EventStatus.COMPLETED
    failed = system.jobs.of_event(event.key)
    failed[0].status = JobStatus.FAILED
    assert status_of(EventStatus.QUEUED, failed) == EventStatus.FAILED


def _ok(name: str) -> Handler:
    return handler(name)(lambda job: "ok")


@pytest.mark.parametrize("killed_in", ["send", "mark"])
def test_a_sweeper_killed_mid_event_loses_nothing(system: JobSystem, monkeypatch: pytest.MonkeyPatch,
                                                  killed_in: str) -> None:
    """The chaos soak once killed the consumers while the sweep ran: the event had been claimed for the
    sweep and was never sent, and no later sweep looked at it again. The mark now follows the send."""
    now = time.time()
    event = stored(system, "customer.updated", "evt_k", received_at=iso(now))

    def killed(*args: object) -> None:
        raise SystemExit("SIGKILL")

    with monkeypatch.context() as m:
        target: object = system.queues if killed_in == "send" else system.events
        m.setattr(target, "send_batch" if killed_in == "send" else "mark_swept", killed)
        with pytest.raises(SystemExit):
            sweep(system, now=now + 120)
    assert sweep(system, now=now + 180) == 1 and sweep(system, now=now + 240) == 0
    sent = queues_of(system).bodies("default")  # twice if the kill came after the send: the second is a no-op
    assert len(sent) == (2 if killed_in == "mark" else 1)
    for body in sent:
        assert body == event_message(event) | {"facts": event.facts}
        take_event(system, body)
    assert [j.job_id for j in system.jobs.of_event(event.key)] == ["stripe#evt_k:update-crm"]


def test_the_sweep_sends_a_page_in_batches_per_lane_then_marks_it(system: JobSystem,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    events = [stored(system, kind, f"evt_{kind[:3]}{n}", received_at=iso(now))
              for n in range(12) for kind in ("customer.updated", "payment_intent.succeeded")]
    calls: list[tuple[str, int]] = []
    send_batch = system.queues.send_batch
    monkeypatch.setattr(system.queues, "send", lambda *a, **k: pytest.fail("one send per event"))

    def counted(lane: str, bodies: list[dict[str, object]]) -> None:
        calls.append((lane, len(bodies)))
        send_batch(lane, bodies)

    monkeypatch.setattr(system.queues, "send_batch", counted)
    assert sweep(system, now=now + 120) == 24 and sweep(system, now=now + 180) == 0
    assert sorted(calls) == [("default", 12), ("high", 12)]  # one page: one batch call per lane
    sent = queues_of(system).bodies("default") + queues_of(system).bodies("high")
    assert sorted(b["event_id"] for b in sent) == sorted(e.event_id for e in events)


def test_replay_dispatches_a_stored_event_again_as_new_jobs(system: JobSystem) -> None:
    event = stored(system, "customer.created", "evt_r")
    take_event(system, event_message(event))
    again = replay(system, "stripe", "evt_r")
    assert [j.job_id for j in again] == [f"stripe#evt_r:replay-1:{n}" for n in ("update-crm", "send-welcome-email")]
    assert len(system.jobs.of_event(event.key)) == 4 and replay(system, "stripe", "evt_r")[0].job_id.count("replay-2")


def test_the_sweep_enqueues_each_stale_received_event_once(system: JobSystem) -> None:
    now = time.time()
    event = stored(system, "customer.updated", "evt_w", received_at=iso(now))
    assert sweep(system, now=now) == 0  # not stale yet: a slow send may still land
    queues_of(system).fail_sends = 1
    with pytest.raises(ConnectionError):
        sweep(system, now=now + 120)
    assert sweep(system, now=now + 120) == 1 and sweep(system, now=now + 180) == 0
    (message,) = queues_of(system).bodies("default")
    assert message == event_message(event) | {"facts": event.facts}


def _counted(system: JobSystem, *names: str) -> None:
    system.handlers.update({name: handler(name)(effect) for name in names})


PAYMENT_JOBS = ("update-crm", "notify-slack", "generate-invoice-pdf")


def test_the_jobs_of_the_messages_lane_run_where_they_are_dispatched(system: JobSystem) -> None:
    """A payment event's message arrives on ``high``, its jobs' lane: they are created claimed and run
    there, each once, with no message, receive or claim of their own."""
    _counted(system, *PAYMENT_JOBS)
    event = stored(system)
    take_event(system, event_message(event), lane="high", remaining_ms=30_000)
    jobs = system.jobs.of_event(event.key)
    assert {j.name: (j.status, j.attempts_made) for j in jobs} == {
        name: (JobStatus.COMPLETED, 1) for name in PAYMENT_JOBS}
    assert queues_of(system).sent == [] and sorted(EFFECTS.values()) == [1, 1, 1]
    take_event(system, event_message(event), lane="high", remaining_ms=30_000)  # the sweep's copy
    assert sorted(EFFECTS.values()) == [1, 1, 1] and queues_of(system).sent == []


def _retried_after_its_answer_was_lost(system: JobSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatch's write lands, its answer is lost, and the SDK's retry fails its condition on it."""
    store = system.events.store
    write = store.write

    def landed_then_refused(writes: Any) -> None:
        write(writes)
        monkeypatch.setattr(store, "write", write)
        raise ConditionFailed("events: the retry met the first try's write")

    monkeypatch.setattr(store, "write", landed_then_refused)


def test_a_dispatch_whose_answer_was_lost_still_runs_its_jobs(system: JobSystem,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The chaos soak lost six events so: taken for a second message, their jobs, created claimed, were
    left active with no message and no worker."""
    _counted(system, *PAYMENT_JOBS)
    event = stored(system)
    _retried_after_its_answer_was_lost(system, monkeypatch)
    take_event(system, event_message(event), lane="high", remaining_ms=30_000)
    assert {j.name: j.status for j in system.jobs.of_event(event.key)} == dict.fromkeys(PAYMENT_JOBS,
                                                                                       JobStatus.COMPLETED)
    take_event(system, event_message(event), lane="high", remaining_ms=30_000)  # a real second message
    assert sorted(EFFECTS.values()) == [1, 1, 1]


def test_a_dispatch_whose_answer_was_lost_wakes_its_other_lanes_jobs(system: JobSystem,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    event = stored(system)
    _retried_after_its_answer_was_lost(system, monkeypatch)
    take_event(system, event_message(event))
    assert sorted(s.body["job_id"] for s in queues_of(system).sent) == sorted(
        j.job_id for j in system.jobs.of_event(event.key))


def test_jobs_of_another_lane_or_a_rate_limited_one_get_a_message(system: JobSystem) -> None:
    _counted(system, "update-crm")
    system.handlers["send-welcome-email"] = handler("send-welcome-email", lane="email")(effect)
    event = stored(system, "customer.created", "evt_c")
    take_event(system, event_message(event), lane="default", remaining_ms=30_000)
    by_name = {j.name: j for j in system.jobs.of_event(event.key)}
    crm, email = by_name["update-crm"], by_name["send-welcome-email"]
    assert (crm.status, email.status) == (JobStatus.COMPLETED, JobStatus.WAITING)
    assert [(s.lane, s.body["job_id"]) for s in queues_of(system).sent] == [("email", email.job_id)]
    system.limits["default"] = RateLimit(max=5, per_seconds=1)
    other = stored(system, "customer.updated", "evt_u")
    take_event(system, event_message(other), lane="default", remaining_ms=30_000)
    (job,) = system.jobs.of_event(other.key)
    assert job.status == JobStatus.WAITING and queues_of(system).sent[-1].body["job_id"] == job.job_id


def test_a_job_run_where_it_was_dispatched_retries_with_a_message_of_its_own(system: JobSystem) -> None:
    _counted(system, *PAYMENT_JOBS)
    failures = iter([ConnectionError("CRM down")])

    def flaky(job: object) -> object:
        for err in failures:
            raise err
        return {"ok": True}

    BEHAVIOUR["update-crm"] = flaky
    event = stored(system)
    now = time.time()
    take_event(system, event_message(event), lane="high", remaining_ms=30_000)
    crm = system.jobs.get(f"{event.key}:update-crm")
    assert crm is not None and crm.status == JobStatus.DELAYED and crm.due_at is not None
    (sent,) = queues_of(system).sent
    assert sent.lane == "high" and sent.body == {"kind": "job", "job_id": crm.job_id}
    assert 1 <= sent.delay <= round(crm.due_at - now) + 1
    assert run_job(system, crm.job_id, now=crm.due_at + 1, lane="high")
    assert system.jobs.get(crm.job_id).status == JobStatus.COMPLETED  # type: ignore[union-attr]
    assert EFFECTS[crm.job_id] == 2 and sorted(EFFECTS.values()) == [1, 1, 2]


@pytest.mark.parametrize("stopped_at", ["handler", "retry send"])
def test_an_invocation_stopped_mid_event_leaves_its_jobs_to_the_redelivery(
        system: JobSystem, stopped_at: str) -> None:
    """Killed while running one job (or unable to send its retry's message): the jobs beside it finish,
    it stays claimed with no message, and the error reaches the record. The event's message, not
    deleted, comes back: it wakes every job not finished, which runs once its claim has lapsed."""
    _counted(system, *PAYMENT_JOBS)

    def stop(job: object) -> object:
        if stopped_at == "handler":
            raise SystemExit("SIGKILL")
        queues_of(system).fail_sends = 1
        raise ConnectionError("Slack down")

    BEHAVIOUR["notify-slack"] = stop
    event = stored(system)
    now = time.time()
    with pytest.raises((SystemExit, ConnectionError)):
        take_event(system, event_message(event), lane="high", remaining_ms=30_000)
    status = {j.name: j.status for j in system.jobs.of_event(event.key)}
    assert status == {"update-crm": JobStatus.COMPLETED, "generate-invoice-pdf": JobStatus.COMPLETED,
                      "notify-slack": JobStatus.ACTIVE if stopped_at == "handler" else JobStatus.DELAYED}
    assert queues_of(system).sent == []
    del BEHAVIOUR["notify-slack"]
    take_event(system, event_message(event), redelivered=True, lane="high", remaining_ms=30_000)
    (woken,) = [s.body["job_id"] for s in queues_of(system).sent]
    assert woken == f"{event.key}:notify-slack"
    assert run_job(system, woken, now=now + 40, lane="high")  # past the stopped invocation's claim
    assert all(j.status == JobStatus.COMPLETED for j in system.jobs.of_event(event.key))
    assert EFFECTS[f"{event.key}:update-crm"] == 1 and EFFECTS[f"{event.key}:generate-invoice-pdf"] == 1


def test_an_events_jobs_on_its_lane_run_at_once(system: JobSystem) -> None:
    """Three jobs that each wait for the other two: run one after another, every one would time out."""
    _counted(system, *PAYMENT_JOBS)
    together = threading.Barrier(len(PAYMENT_JOBS), timeout=5)

    def meet(job: object) -> object:
        together.wait()
        return {"ok": True}

    for name in PAYMENT_JOBS:
        BEHAVIOUR[name] = meet
    event = stored(system)
    take_event(system, event_message(event), lane="high", remaining_ms=30_000)
    assert {j.name: (j.status, j.attempts_made) for j in system.jobs.of_event(event.key)} == {
        name: (JobStatus.COMPLETED, 1) for name in PAYMENT_JOBS}


def _post(client: Any, event_id: str) -> str:
    headers, body = stripe_delivery(stripe_event("customer.updated", event_id))
    answer = client.http.post("/webhooks/stripe", headers=headers, body=body)
    assert answer.status_code == 200
    return str(answer.json_body["event_id"])


@pytest.fixture
def outage(app_client: Any, system: JobSystem, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], MemoryQueues]:
    """Acks whose sends fail: ``outage(n)`` posts n events while SQS is unreachable (a container of its own)."""
    monkeypatch.setattr(ingest, "STRANDED", Stranded())

    def strand(count: int) -> MemoryQueues:
        queues = queues_of(system)
        queues.fail_sends = count
        for n in range(count):
            _post(app_client, f"evt_out{n}")
        return queues

    return strand


def _deliver(system: JobSystem, body: dict[str, Any]) -> dict[str, Any]:
    record = {"messageId": "m-1", "receiptHandle": "r-1", "body": json.dumps(body),
              "attributes": {"ApproximateReceiveCount": "1"}}
    return handle_batch(system, lanes()["maintenance"], [record])


def test_a_container_whose_send_failed_sends_what_it_stranded_with_its_first_send_that_works(
        app_client: Any, system: JobSystem, outage: Callable[[int], MemoryQueues]) -> None:
    """The sweep finds an outage's events only once they are old enough, and sends again every event
    still waiting in a backlog with them: the chaos soak's waited 22 to 56 s for it."""
    queues = outage(2)
    assert queues.bodies() == []  # nothing sent, and nothing to send with
    _post(app_client, "evt_back")
    _post(app_client, "evt_after")
    (carrier,) = [s for s in queues.sent if s.lane == "maintenance"]
    assert carrier.delay == 0 and carrier.body["kind"] == "stranded"
    assert [(lane, m["event_id"]) for lane, m in carrier.body["events"]] == [("default", "evt_out0"),
                                                                            ("default", "evt_out1")]
    assert _deliver(system, carrier.body) == {"batchItemFailures": []}
    assert [b["event_id"] for b in queues.bodies("default")] == ["evt_back", "evt_after", "evt_out0",
                                                                 "evt_out1"]
    assert queues.visibility == [("maintenance", "r-1", HOLD_SECONDS)]  # a kill gives it back in seconds
    for body in queues.bodies("default"):
        take_event(system, body)  # the stranded ones dispatched like any other, the others once
    for event_id in ("evt_out0", "evt_out1", "evt_back", "evt_after"):
        event = system.events.get("stripe", event_id)
        assert event is not None and event.status == EventStatus.QUEUED and system.jobs.of_event(event.key)


def test_a_stranded_message_that_names_no_lane_of_fila_is_poison(system: JobSystem) -> None:
    body = {"kind": "stranded", "events": [["nowhere", {"kind": "event"}]]}
    assert _deliver(system, body) == {"batchItemFailures": []}
    (dead,) = queues_of(system).dead["maintenance"]
    assert dead.reason == "the message is not a fila event or job message" and queues_of(system).bodies() == []


def test_what_one_message_cannot_carry_is_left_to_an_early_sweep(
        app_client: Any, outage: Callable[[int], MemoryQueues], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chalicelib.sweep.CARRIED_BYTES", 400)  # one event message, not two
    queues = outage(2)
    _post(app_client, "evt_back")
    _post(app_client, "evt_after")
    carried, asked = [s for s in queues.sent if s.lane == "maintenance"]
    assert [m["event_id"] for _, m in carried.body["events"]] == ["evt_out0"]
    assert (asked.body, asked.delay) == ({"kind": "sweep"}, settings().sweep_after_seconds + 1)


def test_stranded_events_whose_message_fails_are_left_to_an_early_sweep_asked_for_with_the_next_send(
        app_client: Any, outage: Callable[[int], MemoryQueues], monkeypatch: pytest.MonkeyPatch) -> None:
    """Not carried again: a message that failed with a timeout may have landed after all."""
    queues = outage(1)
    send = queues.send
    refused: list[str] = []

    def maintenance_down(lane: str, body: dict[str, Any], delay: int = 0) -> None:
        if lane == "maintenance" and not refused:
            refused.append(lane)
            raise ConnectionError("down")
        send(lane, body, delay)

    monkeypatch.setattr(queues, "send", maintenance_down)
    _post(app_client, "evt_1")
    assert refused and queues.bodies("maintenance") == []
    _post(app_client, "evt_2")
    _post(app_client, "evt_3")
    assert queues.bodies("maintenance") == [{"kind": "sweep"}]


def test_a_sweep_message_sweeps_sending_before_its_batch_ends(system: JobSystem,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Its sends are not a record's wakes: held to the batch's end, they would follow the marks, and a
    consumer killed between the two would leave marked events that no sweep sends again."""
    now = time.time()
    event = stored(system, "customer.updated", "evt_stranded", received_at=iso(now - 3600))
    mark_swept = system.events.mark_swept

    def marked_after_the_send(key: str, at: str) -> None:
        assert [b["event_id"] for b in queues_of(system).bodies("default")] == ["evt_stranded"]
        mark_swept(key, at)

    monkeypatch.setattr(system.events, "mark_swept", marked_after_the_send)
    record = {"messageId": "m-1", "receiptHandle": "r-1", "body": json.dumps({"kind": "sweep"}),
              "attributes": {"ApproximateReceiveCount": "1"}}
    assert handle_batch(system, lanes()["maintenance"], [record]) == {"batchItemFailures": []}
    assert sweep(system, now=now + 120) == 0  # swept and marked: the schedule finds nothing left
    assert queues_of(system).dead == {}  # not taken for a poison message
    assert [b["event_id"] for b in queues_of(system).bodies("default")] == [event.event_id]


def test_a_sweep_message_is_held_a_page_at_a_time(system: JobSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    """Held for the lane's visibility timeout, a consumer killed mid-sweep left the outage's events for
    half a minute more; held a page at a time, its request comes back in ``HOLD_SECONDS``."""
    monkeypatch.setattr("chalicelib.sweep.PAGE", 2)
    now = time.time()
    for n in range(5):
        stored(system, "customer.updated", f"evt_stranded{n}", received_at=iso(now - 3600))
    queues = queues_of(system)
    send_batch = queues.send_batch

    def sent_while_held(lane: str, bodies: Any) -> None:
        assert len(queues.visibility) == 1 + len(queues.bodies("default")) // 2  # this page's hold came first
        send_batch(lane, bodies)

    monkeypatch.setattr(queues, "send_batch", sent_while_held)
    record = {"messageId": "m-1", "receiptHandle": "r-1", "body": json.dumps({"kind": "sweep"}),
              "attributes": {"ApproximateReceiveCount": "1"}}
    assert handle_batch(system, lanes()["maintenance"], [record]) == {"batchItemFailures": []}
    assert queues.visibility == [("maintenance", "r-1", HOLD_SECONDS)] * 4  # the last: the empty query's
    assert len(queues.bodies("default")) == 5


def test_a_sweep_message_is_held_before_its_first_query(system: JobSystem,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill cut the soak's early sweep before its first page was done: held only from there on, its
    request came back after the lane's visibility timeout."""
    queues = queues_of(system)
    stale_received = system.events.stale_received

    def queried_while_held(before: str, limit: int) -> Any:
        assert queues.visibility == [("maintenance", "r-1", HOLD_SECONDS)]
        return stale_received(before, limit)

    monkeypatch.setattr(system.events, "stale_received", queried_while_held)
    record = {"messageId": "m-1", "receiptHandle": "r-1", "body": json.dumps({"kind": "sweep"}),
              "attributes": {"ApproximateReceiveCount": "1"}}
    assert handle_batch(system, lanes()["maintenance"], [record]) == {"batchItemFailures": []}
    assert queues.visibility == [("maintenance", "r-1", HOLD_SECONDS)] and queues.bodies() == []
