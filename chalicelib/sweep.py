"""Recovery sweep (every minute): enqueue events that were stored but never queued (and sample each
lane's depth for its chart).

The ack path answers 200 once the event is stored, even if the send after it failed. The sweep sends
each page of such events, ten to a call per lane, then marks them swept, several marks at once: a
sweeper killed between the two (a Lambda timeout, a crash) leaves them to the next sweep, which sends
them again. A second message (that, two overlapping sweeps, or a slow original send) is a no-op:
dispatch's own condition takes an event once. One send and one mark at a time, a sweep behind a
backlog spent most of its budget re-sending events still queued (the chaos soak's events whose send
failed waited up to a minute more for it).

A container whose send failed asks for an early sweep with its first send that works again
(``Stranded``): a message on the maintenance lane, delayed until what it stranded is old enough to be
swept. Without it an outage's events waited for the next minute's sweep on top of that (the chaos
soak's drain moved by up to a minute with the phase of the clock). The schedule stays the backstop (a
container that gets no further request).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalice import Blueprint, Rate

from chalicelib import clock, runtime
from chalicelib.dispatch import event_message
from chalicelib.logs import logger
from chalicelib.queues import Queues
from chalicelib.settings import settings
from chalicelib.stats import sample_depths
from chalicelib.system import JobSystem

blueprint = Blueprint(__name__)
PAGE = 100
BUDGET_SECONDS = 40.0  # of the sweep Lambda's 60 s
MARKS_AT_ONCE = 8  # conditional UpdateItems in flight: a page's marks in about a tenth of the time
LANE = "maintenance"  # where an early sweep is asked for
REQUEST = {"kind": "sweep"}


def sweep(system: JobSystem | None = None, now: float | None = None,
          budget_seconds: float = BUDGET_SECONDS) -> int:
    """Enqueue every stale ``received`` event once, page after page (an outage can leave thousands)
    until none is left or the run's time budget is spent; the number enqueued."""
    system = system or runtime.system()
    now = time.time() if now is None else now
    before = clock.iso(now - settings().sweep_after_seconds)
    deadline = time.monotonic() + budget_seconds
    enqueued, at = 0, clock.iso(now)
    with ThreadPoolExecutor(MARKS_AT_ONCE, thread_name_prefix="sweep") as pool:
        while time.monotonic() < deadline and (page := system.events.stale_received(before, PAGE)):
            by_lane: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for event in page:
                by_lane[event.lane or "default"].append(event_message(event))
            for lane, messages in by_lane.items():
                system.queues.send_batch(lane, messages)
            # marked events leave the query's results: the next page is new ones
            list(pool.map(lambda event: system.events.mark_swept(event.key, at), page))
            enqueued += len(page)
    logger.info("recovery sweep", extra={"enqueued": enqueued})
    return enqueued


class Stranded:
    """Whether this container failed to enqueue an event since it last asked for a sweep."""

    def __init__(self) -> None:
        self.pending = False
        self.lock = threading.Lock()

    def failed(self) -> None:
        self.pending = True

    def sent(self, queues: Queues) -> None:
        """A send worked: ask once for a sweep when the events stranded before it are old enough (a
        third call on this one ack; a request that fails is asked for again with the next send)."""
        if not self.pending:  # every other ack: one attribute read
            return
        with self.lock:  # one request per outage, whichever of the container's requests gets here
            if not self.pending:
                return
            self.pending = False
        try:
            queues.send(LANE, REQUEST, delay=settings().sweep_after_seconds + 1)
        except Exception as err:
            self.pending = True
            logger.warning("could not ask for an early sweep", extra={"error": repr(err)[:300]})
            return
        logger.info("early sweep asked for after a failed enqueue", extra={"lane": LANE})


EVERY_MINUTE = Rate(1, unit=Rate.MINUTES)


@blueprint.schedule(EVERY_MINUTE, name="recovery_sweep")
def recovery_sweep(event: Any) -> dict[str, Any]:
    """The sweep, and each lane's depth for its chart (it runs every minute anyway)."""
    system = runtime.system()
    enqueued = sweep(system)
    return {"enqueued": enqueued, "depths": sample_depths(system.queues, system.lanes)}
