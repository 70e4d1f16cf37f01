"""Recovery sweep (every minute): enqueue events that were stored but never queued (and sample each
lane's depth for its chart).

The ack path answers 200 once the event is stored, even if the send after it failed. The sweep sends
each such event, then marks it swept: a sweeper killed between the two (a Lambda timeout, a crash)
leaves it to the next sweep, which sends it again. A second message (that, two overlapping sweeps,
or a slow original send) is a no-op: dispatch's own condition takes an event once.
"""

from __future__ import annotations

import time
from typing import Any

from chalice import Blueprint, Rate

from chalicelib import clock, runtime
from chalicelib.dispatch import event_message
from chalicelib.logs import logger
from chalicelib.settings import settings
from chalicelib.stats import sample_depths
from chalicelib.system import JobSystem

blueprint = Blueprint(__name__)
PAGE = 100
BUDGET_SECONDS = 40.0  # of the sweep Lambda's 60 s


def sweep(system: JobSystem | None = None, now: float | None = None,
          budget_seconds: float = BUDGET_SECONDS) -> int:
    """Enqueue every stale ``received`` event once, page after page (an outage can leave thousands)
    until none is left or the run's time budget is spent; the number enqueued."""
    system = system or runtime.system()
    now = time.time() if now is None else now
    before = clock.iso(now - settings().sweep_after_seconds)
    deadline = time.monotonic() + budget_seconds
    enqueued = 0
    while time.monotonic() < deadline and (page := system.events.stale_received(before, PAGE)):
        for event in page:  # a marked event leaves the query's results: the next page is new ones
            system.queues.send(event.lane or "default", event_message(event))
            system.events.mark_swept(event.key, clock.iso(now))
            enqueued += 1
    logger.info("recovery sweep", extra={"enqueued": enqueued})
    return enqueued


EVERY_MINUTE = Rate(1, unit=Rate.MINUTES)


@blueprint.schedule(EVERY_MINUTE, name="recovery_sweep")
def recovery_sweep(event: Any) -> dict[str, Any]:
    """The sweep, and each lane's depth for its chart (it runs every minute anyway)."""
    system = runtime.system()
    enqueued = sweep(system)
    return {"enqueued": enqueued, "depths": sample_depths(system.queues, system.lanes)}
