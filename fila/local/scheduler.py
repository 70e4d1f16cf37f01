"""EventBridge rules, done locally: every ``@app.schedule`` handler fires on its real cadence.

``rate()`` schedules count from start-up, ``cron()`` ones fire on their UTC boundaries. A boundary
fires once even if the clock jumps past several (EventBridge does not catch up either). Handlers get
an EventBridge-shaped "Scheduled Event"; ``run_now`` fires one on demand.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalice.local import LambdaContext

from fila.local.schedule_expressions import Cron, Rate, parse

log = logging.getLogger("fila.local.schedules")
Handler = Callable[[dict[str, Any], Any], Any]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Schedule:
    name: str
    expression: str
    handler: Handler
    rule: Rate | Cron
    next_fire: datetime
    last_fire: datetime | None = None


def scheduled_event(name: str, at: datetime, region: str = "us-east-1") -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{name}"],
        "detail": {},
    }


class Scheduler:
    def __init__(self, clock: Clock = utcnow) -> None:
        self.clock = clock
        self.schedules: dict[str, Schedule] = {}
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def add(self, name: str, expression: str, handler: Handler) -> None:
        """Parse now, so a bad expression is an error at start-up, not at the first tick."""
        rule = parse(expression)
        self.schedules[name] = Schedule(name, expression, handler, rule, rule.next_after(self.clock()))

    def tick(self) -> list[str]:
        """Fire every schedule that is due; the names fired."""
        now = self.clock()
        fired = []
        for schedule in self.schedules.values():
            if now >= schedule.next_fire:
                boundary = schedule.next_fire
                while schedule.next_fire <= now:  # a clock that jumped fires once, not per boundary
                    schedule.next_fire = schedule.rule.next_after(schedule.next_fire)
                schedule.last_fire = boundary
                self._fire(schedule, boundary)
                fired.append(schedule.name)
        return fired

    def run_now(self, name: str) -> Any:
        return self._fire(self.schedules[name], self.clock())

    def _fire(self, schedule: Schedule, at: datetime) -> Any:
        context = LambdaContext(schedule.name, 512, max_runtime_ms=900_000)
        try:
            return schedule.handler(scheduled_event(schedule.name, at), context)
        except Exception:
            log.exception("schedule %s failed", schedule.name)
            return None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.tick()
            due = min((s.next_fire for s in self.schedules.values()), default=None)
            wait = 30.0 if due is None else (due - self.clock()).total_seconds()
            self.stopping.wait(min(max(wait, 0.05), 30.0))

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
