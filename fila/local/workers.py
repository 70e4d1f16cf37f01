"""Everything AWS runs around the app besides HTTP: SQS pollers, schedules and TTL expiry."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from chalice.app import ScheduledEventConfig, SQSEventConfig

from chalicelib import aws, resources
from chalicelib.handlers.invoice import render
from chalicelib.settings import resource_name
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.lanes import LaneRecords
from fila.local import emulator
from fila.local.chalice_app import LoadedApp
from fila.local.event_sources import SqsEventSource, patiently
from fila.local.scheduler import Scheduler
from fila.local.ttl import Reaper

log = logging.getLogger("fila.local.workers")
BACKGROUND_NICE = 10


def yield_cpu() -> None:
    """Run the consumers behind the API and the emulator: on a busy machine an emitter's request is
    answered first and the backlog waits for idle CPU (on AWS the two never share a CPU; locally, at the
    API's priority, the consumers held acks at c=16 to about 100 a second, behind it 180 to 300). Before
    any thread starts, so they all inherit it. Linux shares the CPU between sessions' groups whatever
    their threads' nice, so the group's is lowered too when the session is this process's own (as `fila
    up` starts it), never a terminal's whose other processes would be slowed with it."""
    os.nice(BACKGROUND_NICE)
    if os.getsid(0) == os.getpid():
        with contextlib.suppress(OSError):
            Path("/proc/self/autogroup").write_text(str(BACKGROUND_NICE))


class LaneBusy:
    """Whether a higher lane has work: batches it holds, or visible messages (asked of SQS at most
    every ``every`` seconds).

    Lambda gives the high lane more concurrency; on one machine that is not enough under a backlog,
    so locally a lower lane runs one batch at a time while the high lane has work (SQS has no
    priorities): slowed, never starved.
    """

    def __init__(self, higher: SqsEventSource, every: float = 0.25) -> None:
        self.higher, self.every = higher, every
        self.checked, self.visible = 0.0, False

    def __call__(self) -> bool:
        if self.higher.held or not self.higher.polled.is_set():  # batches received and not yet done
            return True  # (running, or about to), or a first receive whose batch it cannot count yet
        now = time.monotonic()
        if now - self.checked >= self.every:
            attributes = self.higher.sqs.get_queue_attributes(
                QueueUrl=self.higher.queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
            self.visible, self.checked = int(attributes["ApproximateNumberOfMessages"]) > 0, now
        return self.visible


class Paused:
    """Whether an operator paused a lane (``fila queue pause``): the flag in the lanes table, read for
    every lane at once at most every ``every`` seconds. On AWS the lane's event source mapping is
    disabled instead; locally the poller is what stops."""

    def __init__(self, lanes: list[str], every: float = 1.0) -> None:
        self.lanes, self.every = lanes, every
        self.records = LaneRecords(DynamoStore())
        self.checked, self.found = 0.0, set[str]()
        self.lock = threading.Lock()

    def of(self, lane: str) -> Callable[[], bool]:
        return lambda: lane in self.now()

    def now(self) -> set[str]:
        """What is known; one poller at a time refreshes it, the others never wait on the emulator."""
        if time.monotonic() - self.checked >= self.every and self.lock.acquire(blocking=False):
            try:
                self.checked = time.monotonic()
                self.found = self.records.paused(self.lanes)
            except Exception:  # the emulator busy or restarting: keep what was known
                log.warning("could not read which lanes are paused", exc_info=True)
            finally:
                self.lock.release()
        return self.found


def give_way(sources: dict[str, SqsEventSource]) -> None:
    """Make each lower lane run one batch at a time while its higher lane has work."""
    for lower, higher in GIVES_WAY_TO.items():
        if lower in sources and higher in sources:
            sources[lower].yield_to = LaneBusy(sources[higher])


# lower lane -> the lane it gives way to
GIVES_WAY_TO = {"default": "high"}


def tables_to_reap(endpoint: str) -> dict[str, str]:
    """The tables with a TTL attribute whose expired items the workers delete: none on fila's emulator,
    which deletes them itself (fila.local.dynamodb_ttl); all of them on any other, which may not."""
    if emulator.status(endpoint).get("deletes_expired_items", False):
        return {}
    return {resource_name(t.name): t.ttl for t in resources.tables().values() if t.ttl}


def warm() -> None:
    """Make the clients and load the PDF renderer now, as a Lambda container's first jobs would. Here one
    process stands for every container: done by a burst's first jobs, under the GIL with every lane's
    threads, it stalled the high lane about 4 s (a record waits for its event's PDF)."""
    for service in ("sqs", "dynamodb", "s3", "ses"):
        aws.client(service)
    render({"source": "local", "event_id": "warm"})


class Workers:
    def __init__(self, loaded: LoadedApp, wait_seconds: int = 2, stopping: Callable[[], bool] | None = None
                 ) -> None:
        """``wait_seconds``: each long poll, shorter than the time ``stop`` gives the pollers; ``stopping``:
        whether a stop was asked for while the mappings wait for SQS to answer."""
        app = loaded.app
        sqs = boto3.client("sqs")
        timeouts = resources.function_timeouts()
        # as `make deploy` sets the mappings: partial batch responses on (FILA_BATCH_RESPONSE=partial)
        partial = os.environ.get("FILA_BATCH_RESPONSE") == "partial"
        self.sources: dict[str, SqsEventSource] = {}
        self.scheduler = Scheduler()
        for config in app.event_sources:
            handler = app.handler_map[config.name]
            if isinstance(config, SQSEventConfig):
                lookup = functools.partial(sqs.get_queue_url, QueueName=config.queue)
                url: str = patiently(lookup, stopping)["QueueUrl"]
                self.sources[(config.queue or "").removeprefix(resource_name(""))] = SqsEventSource(
                    config.name, handler, url,
                    batch_size=config.batch_size,
                    batching_window=config.maximum_batching_window_in_seconds,
                    concurrency=config.maximum_concurrency,
                    wait_seconds=wait_seconds,
                    timeout_seconds=timeouts.get(config.name, 60),
                    partial_batch_responses=partial,
                    stopping=stopping,
                )
            elif isinstance(config, ScheduledEventConfig):
                expression = config.schedule_expression
                text = expression if isinstance(expression, str) else expression.to_string()
                self.scheduler.add(config.name, text, handler)
        give_way(self.sources)
        paused = Paused(list(self.sources))
        for lane, source in self.sources.items():
            source.paused = paused.of(lane)
        self.reaper = Reaper(tables_to_reap(os.environ.get("AWS_ENDPOINT_URL", "")))

    def start(self) -> None:
        threading.Thread(target=warm, name="warm", daemon=True).start()
        for source in self.sources.values():
            source.start()
        self.scheduler.start()
        self.reaper.start()

    def stop(self, grace: float = 2.5) -> None:
        """Everything stops polling at once; invocations in progress get ``grace`` seconds in all."""
        deadline = time.monotonic() + grace
        for source in self.sources.values():
            source.stopping.set()
        self.scheduler.stopping.set()
        self.reaper.stopping.set()
        for source in self.sources.values():
            source.stop(timeout=max(0.0, deadline - time.monotonic()))
        self.scheduler.stop(timeout=max(0.0, deadline - time.monotonic()))
        self.reaper.stop(timeout=max(0.0, deadline - time.monotonic()))
