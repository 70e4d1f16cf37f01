"""Recovery sweep (every minute): enqueue events that were stored but never queued (and sample each
lane's depth for its chart).

The ack path answers 200 once the event is stored, even if the send after it failed. The sweep sends
each page of such events, ten to a call per lane, then marks them swept, several marks at once: a
sweeper killed between the two (a Lambda timeout, a crash) leaves them to the next sweep, which sends
them again. A second message (that, two overlapping sweeps, or a slow original send) is a no-op:
dispatch's own condition takes an event once. One send and one mark at a time, a sweep behind a
backlog spent most of its budget re-sending events still queued (the chaos soak's events whose send
failed waited up to a minute more for it).

A container whose send failed re-sends what it stranded with its first send that works again
(``Stranded``): one message on the maintenance lane carries the events, whose consumer sends them on at
once. The sweep cannot do as well: it finds an event only once it is old enough (a slow send may still
land), and cannot tell one never sent from one waiting in a backlog (in the chaos soak an outage's
events started their jobs at a median 74 to 80 s with it, 51 to 55 s carried, behind the same backlog).
What one message cannot carry is left to an early sweep that message asks for; the schedule stays the
backstop (a container that gets no further request). A request's message is held a page at a time
(``HOLD_SECONDS``), not for the lane's visibility timeout: a consumer killed mid-sweep left an outage's
events for half a minute more.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalice import Blueprint, Rate

from chalicelib import clock, runtime
from chalicelib.dispatch import event_message
from chalicelib.logs import logger
from chalicelib.queues import Queues
from chalicelib.resources import lanes
from chalicelib.settings import settings
from chalicelib.stats import sample_depths
from chalicelib.system import JobSystem

blueprint = Blueprint(__name__)
PAGE = 100
BUDGET_SECONDS = 40.0  # of the sweep Lambda's 60 s
MARKS_AT_ONCE = 8  # conditional UpdateItems in flight: a page's marks in about a tenth of the time
LANE = "maintenance"  # where stranded events are carried and early sweeps asked for
REQUEST = {"kind": "sweep"}
RESEND = "stranded"  # the kind of the message that carries a container's stranded events
CARRIED_BYTES = 200_000  # of a message's 256 KiB: events beyond it are left to an early sweep
HOLD_SECONDS = 10  # either message stays invisible this long past each page it starts (a page: up to 5 s)


def _nothing() -> None:
    pass


def sweep(system: JobSystem | None = None, now: float | None = None,
          budget_seconds: float = BUDGET_SECONDS, hold: Callable[[], None] = _nothing) -> int:
    """Enqueue every stale ``received`` event once, page after page (an outage can leave thousands)
    until none is left or the run's time budget is spent; the number enqueued. ``hold``: called before
    each page's query, to keep the message that asked for the sweep from coming back while it runs."""
    system = system or runtime.system()
    now = time.time() if now is None else now
    before = clock.iso(now - settings().sweep_after_seconds)
    deadline = time.monotonic() + budget_seconds
    enqueued, at = 0, clock.iso(now)
    with ThreadPoolExecutor(MARKS_AT_ONCE, thread_name_prefix="sweep") as pool:
        while time.monotonic() < deadline:
            hold()
            if not (page := system.events.stale_received(before, PAGE)):
                break
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


def resend(queues: Queues, events: list[Any]) -> int:
    """Send a container's stranded events to their lanes, ten to a call; the number sent."""
    by_lane: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for lane, message in events:
        by_lane[lane].append(message)
    for lane, messages in by_lane.items():
        queues.send_batch(lane, messages)
    logger.info("stranded events sent again", extra={"events": len(events)})
    return len(events)


def carries_events(message: dict[str, Any]) -> bool:
    """Whether a ``RESEND`` message is one: fila's lanes and event messages (anything else is poison)."""
    events, known = message.get("events"), lanes()
    return isinstance(events, list) and all(
        isinstance(e, list) and len(e) == 2 and e[0] in known and isinstance(e[1], dict) for e in events)


class Stranded:
    """What this container failed to enqueue since a send last worked."""

    def __init__(self) -> None:
        self.events: list[list[Any]] = []  # [lane, message]
        self.size = 0
        self.overflow = False  # failed sends not carried: an early sweep finds them
        self.lock = threading.Lock()

    def failed(self, lane: str, message: dict[str, Any]) -> None:
        size = len(json.dumps(message, separators=(",", ":"))) + len(lane) + 6
        with self.lock:
            if self.size + size <= CARRIED_BYTES:
                self.events.append([lane, message])
                self.size += size
            else:
                self.overflow = True

    def sent(self, queues: Queues) -> None:
        """A send worked: send what failed before it (a third call on this one ack; a fourth asks for an
        early sweep for what one message could not carry). What a failed request carried is left to an
        early sweep, asked for with the next send."""
        if not self.events and not self.overflow:  # every other ack: two attribute reads
            return
        with self.lock:  # once per outage, whichever of the container's requests gets here
            events, overflow = self.events, self.overflow
            self.events, self.size, self.overflow = [], 0, False
        try:
            if events:
                queues.send(LANE, {"kind": RESEND, "events": events})
            if overflow:
                queues.send(LANE, REQUEST, delay=settings().sweep_after_seconds + 1)
        except Exception as err:
            self.overflow = True
            logger.warning("could not send stranded events again", extra={"error": repr(err)[:300]})
            return
        logger.info("stranded events handed to the maintenance lane", extra={"events": len(events),
                                                                            "early_sweep": overflow})


EVERY_MINUTE = Rate(1, unit=Rate.MINUTES)


@blueprint.schedule(EVERY_MINUTE, name="recovery_sweep")
def recovery_sweep(event: Any) -> dict[str, Any]:
    """The sweep, and each lane's depth for its chart (it runs every minute anyway)."""
    system = runtime.system()
    enqueued = sweep(system)
    return {"enqueued": enqueued, "depths": sample_depths(system.queues, system.lanes)}
