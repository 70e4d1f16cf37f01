"""Lane records: what an operator or a limit decides about a lane, and what its charts are drawn from.

One partition per lane in the ``lanes`` table, one record per slot:
- ``state``: whether the lane is paused;
- ``rate#<window>``: how many jobs started in one window of its rate limit (Bull's limiter is such a
  fixed window too); one unconditional ADD per job, so concurrent invocations never retry a write;
- ``m#<minute>``: that minute's counts (completed, failed, retried), wait and run time histograms
  and queue depth, written once per batch and per sweep, never once per job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from chalicelib import clock
from chalicelib.resources import RateLimit
from chalicelib.store import Change, Query, Record, Store

TABLE = "lanes"
STATE = "state"
MINUTE_KEPT_SECONDS = 2 * 3600  # the charts show the last hour
MINUTE_FORMAT_LENGTH = len("2026-12-01T02:35")


def minute_slot(at: float) -> str:
    return "m#" + clock.iso(at)[:MINUTE_FORMAT_LENGTH]


class LaneRecords:
    def __init__(self, store: Store) -> None:
        self.store = store

    def paused(self, lanes: Iterable[str]) -> set[str]:
        """Those of ``lanes`` an operator paused (one read for all of them)."""
        records = self.store.get_many(TABLE, [{"lane": lane, "slot": STATE} for lane in lanes])
        return {r["lane"] for r in records if r.get("paused")}

    def set_paused(self, lane: str, paused: bool, now: float) -> None:
        self.store.update(TABLE, {"lane": lane, "slot": STATE},
                          Change(put={"paused": paused, "updated_at": clock.iso(now)}))

    def take(self, lane: str, limit: RateLimit, now: float) -> tuple[bool, float]:
        """A start under the lane's rate limit: (granted, seconds until its turn).

        Granted starts are spaced evenly over their window (the n-th at n-1 spacings in), so a window's
        starts do not all land at its beginning. The count goes up whether or not the start is granted,
        so the n-th start past the limit knows its place in line and is told the turn it would have in
        the windows ahead: a backlog is spread over them, not woken all at once at the next one."""
        window = math.floor(now / limit.per_seconds)
        begins = window * limit.per_seconds
        record = self.store.update(TABLE, {"lane": lane, "slot": f"rate#{window}"},
                                   Change(put={"expires_at": int(begins + limit.per_seconds) + 60},
                                          add={"taken": 1}))
        place = int(record["taken"]) - 1  # 0-based, in this window
        spacing = limit.per_seconds / limit.max
        turn = begins + (place // limit.max) * limit.per_seconds + (place % limit.max) * spacing
        return place < limit.max, max(0.0, turn - now)

    def add_minute(self, lane: str, slot: str, counts: Mapping[str, int]) -> None:
        """Add to one minute's counts (and keep the record as long as the charts need it)."""
        at = clock.parse_iso(slot[2:] + ":00Z")
        self.store.update(TABLE, {"lane": lane, "slot": slot},
                          Change(put={"expires_at": int(at + MINUTE_KEPT_SECONDS)}, add=dict(counts)))

    def set_depth(self, lane: str, now: float, depth: int) -> None:
        self.store.update(TABLE, {"lane": lane, "slot": minute_slot(now)},
                          Change(put={"depth": depth, "expires_at": int(now + MINUTE_KEPT_SECONDS)}))

    def minutes(self, lane: str, since: float, until: float) -> list[Record]:
        """The lane's minute records from ``since`` to ``until``, oldest first."""
        found, _ = self.store.query(Query(TABLE, None, lane, after=minute_slot(since - 60),
                                          until=minute_slot(until)), 24 * 60)
        return found
