"""A job system of the tests' own: their handlers, an in-memory store and queues (no emulator)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib import worker
from chalicelib.jobs import Job
from chalicelib.system import Handler, JobSystem, handler
from fila.memory import MemoryQueues, MemoryStore

EFFECTS: Counter[str] = Counter()
BEHAVIOUR: dict[str, Callable[[Job], Any]] = {}


def effect(job: Job) -> Any:
    """Every test handler: count the side effect, then do what the test asked."""
    EFFECTS[job.job_id] += 1
    return BEHAVIOUR.get(job.name, lambda j: {"ok": True})(job)


TEST_HANDLERS: list[Handler] = [handler(name)(effect) for name in
                                ("test-ok", "test-flaky", "test-slow", "test-parent", "test-child")]
TEST_HANDLERS.append(handler("test-email", lane="email")(effect))


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    EFFECTS.clear()
    BEHAVIOUR.clear()
    yield


@pytest.fixture
def system() -> JobSystem:
    return JobSystem(TEST_HANDLERS, store=MemoryStore(), queues=MemoryQueues())


def queues_of(system: JobSystem) -> MemoryQueues:
    assert isinstance(system.queues, MemoryQueues)
    return system.queues


def deliver(system: JobSystem, body: dict[str, Any], lane: str = "default", now: float | None = None,
            sent_at: float | None = None, remaining_ms: float = 30_000) -> bool:
    """One message to the worker, as the consumer hands it over; True when it is done with."""
    now = time.time() if now is None else now
    return worker.run(system, worker.Delivery("rh", body, lane, now if sent_at is None else sent_at),
                      remaining_ms, now=now)


def run_job(system: JobSystem, job_id: str, now: float | None = None, lane: str = "default") -> bool:
    return deliver(system, {"kind": "job", "job_id": job_id}, lane, now)


@pytest.fixture
def app_client(system: JobSystem, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Any]:
    """The real Chalice app, its job system this test's in-memory one (no emulator)."""
    from chalice.test import Client

    import app as fila
    from chalicelib import runtime

    monkeypatch.setattr(runtime, "system", lambda: system)
    with Client(fila.app, project_dir=str(tmp_path)) as client:
        yield client
