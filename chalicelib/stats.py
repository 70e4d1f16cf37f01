"""The numbers behind each lane's charts: jobs completed, failed and retried per minute, wait and run
time percentiles, and queue depth.

Counted by a hook in the worker's memory and added to the lane's minute record once per batch (one
write per lane and minute per batch, never one per job: a tenth of a write per job at batch size ten);
depth is sampled by the recovery sweep once a minute. Times go into fixed buckets, so a percentile is
the upper bound of the bucket it falls in: good to within a bucket, which is what a chart needs.
A container that dies before its flush loses that batch's counts (the jobs themselves are safe).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter
from typing import Any

from chalicelib import clock
from chalicelib.jobs import Job
from chalicelib.queues import Queues
from chalicelib.resources import lanes
from chalicelib.store import Record
from chalicelib.store.lanes import LaneRecords, minute_slot
from chalicelib.system import Hook

BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)
OUTCOMES = ("completed", "failed", "retried")
MAX_TRACKED = 10_000  # claims awaiting their outcome (a container that lost track forgets them)


def bucket(ms: float) -> int:
    return bisect.bisect_left(BOUNDS_MS, ms)


class LaneStats(Hook):
    def __init__(self, records: LaneRecords) -> None:
        self.records = records
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, str], Counter[str]] = {}
        self.started: dict[str, float] = {}

    def _add(self, job: Job, now: float, **counts: int) -> None:
        with self.lock:
            self.pending.setdefault((job.queue, minute_slot(now)), Counter()).update(counts)

    def claimed(self, job: Job) -> None:
        now = time.time()
        with self.lock:
            if len(self.started) >= MAX_TRACKED:
                self.started.clear()
            self.started[job.job_id] = now
        if job.attempts_made == 1 and not job.attempts:  # its first run ever: a retry waits on purpose
            waited = now - clock.parse_iso(job.created_at) - job.options.delay
            self._add(job, now, **{f"w{bucket(max(0.0, waited) * 1000)}": 1})

    def _settled(self, job: Job, outcome: str) -> None:
        now = time.time()
        with self.lock:
            started = self.started.pop(job.job_id, None)
        ran = {f"r{bucket((now - started) * 1000)}": 1} if started is not None else {}
        self._add(job, now, **{outcome: 1}, **ran)

    def completed(self, job: Job) -> None:
        self._settled(job, "completed")

    def retried(self, job: Job, error: BaseException) -> None:
        self._settled(job, "retried")

    def failed(self, job: Job, error: BaseException) -> None:
        self._settled(job, "failed")

    def flush(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, {}
        for (lane, slot), counts in pending.items():
            self.records.add_minute(lane, slot, counts)


def sample_depths(queues: Queues, records: LaneRecords, now: float | None = None) -> dict[str, int]:
    """Each lane's depth (waiting, in flight and delayed) into this minute's record."""
    now = time.time() if now is None else now
    depths = {}
    for lane in lanes():
        counts = queues.counts(lane)
        depths[lane] = counts.waiting + counts.in_flight + counts.delayed
        records.set_depth(lane, now, depths[lane])
    return depths


def quantile(histogram: list[int], q: float) -> int | None:
    """The upper bound (ms) of the bucket the q-quantile falls in (None: no samples; past the last
    bound: the last bound)."""
    total = sum(histogram)
    if not total:
        return None
    seen = 0
    for n, count in enumerate(histogram):
        seen += count
        if seen >= q * total:
            return BOUNDS_MS[min(n, len(BOUNDS_MS) - 1)]
    return BOUNDS_MS[-1]


def _summary(waits: list[int], runs: list[int]) -> dict[str, int | None]:
    return {"wait_p50_ms": quantile(waits, 0.5), "wait_p99_ms": quantile(waits, 0.99),
            "run_p50_ms": quantile(runs, 0.5), "run_p99_ms": quantile(runs, 0.99)}


def series(records: list[Record], since: float, minutes: int) -> dict[str, Any]:
    """One point per minute from ``since`` (a minute with no record counts zero), and the period's
    totals and percentiles."""
    by_slot = {r["slot"]: r for r in records}
    points, total = [], Counter[str]()
    for n in range(minutes):
        slot = minute_slot(since + 60 * n)
        record = by_slot.get(slot, {})
        counts = {k: int(v) for k, v in record.items() if k[0] in "wr" and k[1:].isdigit()} | \
            {o: int(record.get(o, 0)) for o in OUTCOMES}
        total.update(counts)
        waits, runs = _histograms(counts)
        points.append({"minute": slot[2:], **{o: counts[o] for o in OUTCOMES}, "depth": record.get("depth"),
                       **_summary(waits, runs)})
    waits, runs = _histograms(total)
    return {"minutes": points, "totals": {**{o: total[o] for o in OUTCOMES}, **_summary(waits, runs)}}


def _histograms(counts: dict[str, int] | Counter[str]) -> tuple[list[int], list[int]]:
    size = len(BOUNDS_MS) + 1
    return ([int(counts.get(f"w{n}", 0)) for n in range(size)],
            [int(counts.get(f"r{n}", 0)) for n in range(size)])
