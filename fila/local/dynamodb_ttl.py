"""DynamoDB TTL inside the emulator's DynamoDB process: moto never deletes expired items, AWS does it on
its side, and so does this.

It used to be a client's Scan + DeleteItem every 30 s (fila.local.ttl, kept for other emulators), but
moto's Scan deep-copies and sizes every item of a table and re-reads the pages before each next one
(about 0.5 ms per job item in a profile of the DynamoDB process), so every pass cost more as the
tables grew. Here a pass reads each item's one attribute in place and deletes the expired ones under
the write lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from fila.local.fast_dynamodb import WRITES
from fila.local.gate import GATE

INTERVAL_SECONDS = 30.0
log = logging.getLogger("fila.local.dynamodb_ttl")


def expire(now: float | None = None) -> int:
    """Delete every item, of every table with TTL enabled, whose TTL attribute (a number, epoch seconds)
    is before ``now``; how many were deleted. The same rule as AWS's, without its delay."""
    now = time.time() if now is None else now
    deleted = 0
    for table in _tables():
        attribute = table.ttl.get("AttributeName")
        if table.ttl.get("TimeToLiveStatus") != "ENABLED" or not attribute:
            continue
        with GATE.shared(), WRITES:  # a snapshot's cut waits for a pass; writes never interleave with it
            expired = [item for item in _items(table) if _before(item.attrs.get(attribute), now)]
            for item in expired:
                table.delete_item(item.hash_key, item.range_key)
            if expired:
                GATE.changed()
        deleted += len(expired)
    return deleted


def start() -> threading.Thread:
    """A pass every ``FILA_TTL_SECONDS`` (30) for as long as the process lives (a daemon: the process's
    exit ends it)."""
    interval = float(os.environ.get("FILA_TTL_SECONDS") or INTERVAL_SECONDS)

    def run() -> None:
        while True:
            time.sleep(interval)
            try:
                expire()
            except Exception:
                log.exception("TTL pass failed")

    thread = threading.Thread(target=run, name="dynamodb-ttl", daemon=True)
    thread.start()
    return thread


def _tables() -> Iterator[Any]:
    from moto.dynamodb.models import dynamodb_backends

    for regions in list(dynamodb_backends.values()):
        for backend in list(regions.values()):
            yield from list(backend.tables.values())


def _items(table: Any) -> Iterator[Any]:
    """In place, unsorted (moto's all_items sorts the whole table)."""
    for entry in table.items.values():
        yield from entry.values() if table.range_key_attr else (entry,)


def _before(value: Any, now: float) -> bool:
    if value is None or value.type != "N":
        return False  # AWS ignores a TTL attribute that is not a number
    try:
        return float(value.value) < now
    except ValueError:
        return False
