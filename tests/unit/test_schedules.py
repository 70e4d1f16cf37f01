"""EventBridge schedule expressions and the local scheduler, on an injectable clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fila.local.schedule_expressions import ScheduleError, parse
from fila.local.scheduler import Scheduler


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def run(expression: str, start: str, minutes: int, step_seconds: int = 20) -> list[datetime]:
    """Tick a scheduler every ``step_seconds`` for ``minutes``; the event times it fired with."""
    clock = Clock(at(start))
    fired: list[datetime] = []
    scheduler = Scheduler(clock)
    scheduler.add("s", expression, lambda event, ctx: fired.append(at(event["time"][:-1])))
    for _ in range(minutes * 60 // step_seconds):
        clock.advance(seconds=step_seconds)
        scheduler.tick()
    return fired


def test_hourly_cron_fires_once_per_hour_boundary() -> None:
    fired = run("cron(0 * * * ? *)", "2026-11-28T10:17:00", minutes=180)
    assert fired == [at("2026-11-28T11:00:00"), at("2026-11-28T12:00:00"), at("2026-11-28T13:00:00")]


def test_rate_fires_every_five_minutes() -> None:
    fired = run("rate(5 minutes)", "2026-11-28T10:00:30", minutes=30)
    assert len(fired) == 6
    assert all(b - a == timedelta(minutes=5) for a, b in itertools.pairwise(fired))


def test_nothing_fires_twice_for_one_boundary() -> None:
    clock = Clock(at("2026-11-28T10:59:59"))
    calls: list[Any] = []
    scheduler = Scheduler(clock)
    scheduler.add("hourly", "cron(0 * * * ? *)", lambda e, c: calls.append(e))
    clock.advance(seconds=1)
    for _ in range(50):  # many ticks within the same minute
        scheduler.tick()
        clock.advance(seconds=1)
    assert len(calls) == 1


def test_a_clock_jump_over_several_boundaries_fires_once() -> None:
    clock = Clock(at("2026-11-28T10:30:00"))
    calls: list[Any] = []
    scheduler = Scheduler(clock)
    scheduler.add("hourly", "cron(0 * * * ? *)", lambda e, c: calls.append(e))
    clock.advance(hours=5)
    scheduler.tick()
    scheduler.tick()
    assert len(calls) == 1
    assert scheduler.schedules["hourly"].next_fire == at("2026-11-28T16:00:00")


def test_the_event_is_eventbridge_shaped_and_run_now_fires_on_demand() -> None:
    clock = Clock(at("2026-11-28T10:30:00"))
    events: list[dict[str, Any]] = []
    scheduler = Scheduler(clock)

    def handler(event: dict[str, Any], context: Any) -> str:
        events.append(event)
        return "done"

    scheduler.add("sync_crm", "cron(0 * * * ? *)", handler)
    assert scheduler.run_now("sync_crm") == "done"
    (event,) = events
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["time"] == "2026-11-28T10:30:00Z" and event["resources"][0].endswith("rule/sync_crm")


@pytest.mark.parametrize(("expression", "after", "expected"), [
    ("cron(15 10 ? * 6L 2026-2027)", "2026-11-01T00:00", "2026-11-27T10:15"),  # last Friday
    ("cron(0 9 ? * MON-FRI *)", "2026-11-28T12:00", "2026-11-30T09:00"),      # Sat -> Monday
    ("cron(0/15 * * * ? *)", "2026-11-28T12:16", "2026-11-28T12:30"),
    ("cron(0 8 1 JAN,JUL ? *)", "2026-02-01T00:00", "2026-07-01T08:00"),
    ("cron(0 12 L * ? *)", "2026-02-03T00:00", "2026-02-28T12:00"),
    ("cron(0 12 ? * 2#1 *)", "2026-11-28T00:00", "2026-12-07T12:00"),          # first Monday
    ("cron(0 12 15W * ? *)", "2026-11-01T00:00", "2026-11-16T12:00"),          # 15th is a Sunday
    ("cron(5,35 1-2 * * ? *)", "2026-11-28T01:40", "2026-11-28T02:05"),
])
def test_cron_next_fire(expression: str, after: str, expected: str) -> None:
    assert parse(expression).next_after(at(after)) == at(expected)


@pytest.mark.parametrize("expression", [
    "cron(0 * * * *)",            # 5 fields: Unix cron is not EventBridge cron
    "cron(0 * * * * *)",          # neither day field is '?'
    "cron(0 * ? * ? *)",          # both are
    "cron(61 * * * ? *)",
    "cron(0 25 * * ? *)",
    "cron(0 * * FOO ? *)",
    "cron(10-5 * * * ? *)",
    "rate(5 minute)",
    "rate(1 minutes)",
    "rate(0 minutes)",
    "rate(5 weeks)",
    "every 5 minutes",
])
def test_a_bad_expression_is_a_clear_error_at_start_up(expression: str) -> None:
    with pytest.raises(ScheduleError):
        Scheduler().add("bad", expression, lambda e, c: None)


def test_a_rate_keeps_its_phase_across_a_scheduler_restart() -> None:
    """Like an EventBridge rule: restarting the local runtime does not push the next run back."""
    first = run("rate(1 minute)", "2026-11-28T10:00:50", minutes=1)
    restarted = run("rate(1 minute)", "2026-11-28T10:00:55", minutes=1)
    assert first == restarted == [at("2026-11-28T10:01:00")]
