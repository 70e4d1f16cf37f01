"""An in-memory store and queues with the semantics of the DynamoDB and SQS ones, for the unit tests
(and anything else that wants fila without AWS). Never shipped to Lambda.

The store keeps the conditional writes, all-or-nothing groups, the indexes of resources.json (sparse:
an item without an index's keys is not in it), sort order and cursors; tests/store_contract.py holds
it and ``DynamoStore`` to the same behaviour.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib import resources
from chalicelib.queues import Counts, DeadMessage
from chalicelib.store import Change, ConditionFailed, Expect, Query, Record, Write, record_key

Key = tuple[Any, ...]


def holds(expect: Expect, record: Record | None) -> bool:
    """Whether ``record`` (None: absent) is what ``expect`` says, as DynamoDB would judge it."""
    found = record or {}
    checks = [
        expect.exists is None or expect.exists == (record is not None),
        all(a in found and found[a] == v for a, v in expect.equal.items()),
        all(a in found and found[a] in vs for a, vs in expect.one_of.items()),
        all(_comparable(found.get(a), v) and found[a] < v for a, v in expect.below.items()),
        all(_comparable(found.get(a), v) and found[a] > v for a, v in expect.above.items()),
        all(a not in found for a in expect.missing),
        not expect.any_of or any(holds(e, record) for e in expect.any_of),
    ]
    return all(checks)


def _comparable(value: Any, other: Any) -> bool:
    numbers = (int, float)
    return value is not None and ((isinstance(value, numbers) and isinstance(other, numbers))
                                  or type(value) is type(other))


def apply(change: Change, record: Record) -> Record:
    out = copy.deepcopy(record)
    for attribute, value in change.put.items():
        if value is None:
            out.pop(attribute, None)
        else:
            out[attribute] = copy.deepcopy(value)
    for attribute, amount in change.add.items():
        out[attribute] = out.get(attribute, 0) + amount
    for attribute, values in change.append.items():
        out[attribute] = [*out.get(attribute, []), *copy.deepcopy(list(values))]
    for attribute in change.remove:
        out.pop(attribute, None)
    return out


class MemoryStore:
    def __init__(self) -> None:
        self.tables: dict[str, dict[Key, Record]] = {name: {} for name in resources.tables()}
        self.lock = threading.RLock()
        self.calls: dict[str, int] = {}  # primitive -> times called (tests count writes)

    def _key(self, table: str, key: Record) -> Key:
        return tuple(key[name] for name, _ in resources.tables()[table].key)

    def _count(self, primitive: str) -> None:
        self.calls[primitive] = self.calls.get(primitive, 0) + 1

    def get(self, table: str, key: Record) -> Record | None:
        with self.lock:
            self._count("get")
            found = self.tables[table].get(self._key(table, key))
            return copy.deepcopy(found) if found is not None else None

    def get_many(self, table: str, keys: Sequence[Record]) -> list[Record]:
        with self.lock:
            self._count("get_many")
            rows = self.tables[table]
            wanted = dict.fromkeys(self._key(table, key) for key in keys)
            return [copy.deepcopy(rows[k]) for k in wanted if k in rows]

    def update(self, table: str, key: Record, change: Change, expect: Expect | None = None) -> Record:
        with self.lock:
            self._count("update")
            current = self.tables[table].get(self._key(table, key))
            if expect is not None and not holds(expect, current):
                raise ConditionFailed(f"{table} {key}", copy.deepcopy(current))
            updated = apply(change, current if current is not None else dict(key))
            self.tables[table][self._key(table, key)] = updated
            return copy.deepcopy(updated)

    def write(self, writes: Sequence[Write]) -> None:
        with self.lock:
            self._count("write")
            for w in writes:
                current = self.tables[w.table].get(self._key(w.table, w.key))
                if not holds(w.expect, current):
                    raise ConditionFailed(f"{w.table} {w.key}",
                                          copy.deepcopy(current) if len(writes) == 1 else None)
            for w in writes:
                current = self.tables[w.table].get(self._key(w.table, w.key))
                new = copy.deepcopy(w.record) if w.record is not None else apply(
                    w.change or Change(), current if current is not None else dict(w.key))
                kept = {k: v for k, v in new.items() if v is not None}
                self.tables[w.table][self._key(w.table, w.key)] = kept

    def query(self, query: Query, limit: int, cursor: str | None = None) -> tuple[list[Record], str | None]:
        with self.lock:
            self._count("query")
            table = resources.tables()[query.table]
            index = table.indexes[query.index] if query.index else None
            partition_of: Callable[[Record], Any]
            if index is None:
                partition_of, sort = (lambda r: r.get(table.key[0][0])), table.key[1][0]
            else:
                partition_of, sort = _partition_of(index), index.sort
            rows = [r for r in self.tables[query.table].values()
                    if partition_of(r) == query.value and sort in r and _in_range(query, r[sort])
                    and (query.where is None or holds(query.where, r))]
            order = [(r[sort], json.dumps(record_key(table.key, r), sort_keys=True), r) for r in rows]
            order.sort(key=lambda t: (t[0], t[1]), reverse=query.newest_first)
            if cursor:
                after = tuple(json.loads(base64.urlsafe_b64decode(cursor.encode())))
                order = [t for t in order
                         if ((t[0], t[1]) < after if query.newest_first else (t[0], t[1]) > after)]
            page = order[:limit]
            more = len(order) > limit
            next_cursor = base64.urlsafe_b64encode(json.dumps([page[-1][0], page[-1][1]]).encode()).decode() \
                if more and page else None
            return [copy.deepcopy(t[2]) for t in page], next_cursor


    def count(self, query: Query, by: str) -> dict[str, int]:
        with self.lock:
            records, _ = self.query(query, len(self.tables[query.table]) + 1)
            counts: dict[str, int] = {}
            for record in records:
                if by in record:
                    counts[str(record[by])] = counts.get(str(record[by]), 0) + 1
            return counts

    def delete(self, table: str, key: Record, expect: Expect | None = None) -> None:
        with self.lock:
            self._count("delete")
            current = self.tables[table].get(self._key(table, key))
            if expect is not None and not holds(expect, current):
                raise ConditionFailed(f"{table} {key}")
            self.tables[table].pop(self._key(table, key), None)


def _partition_of(index: resources.Index) -> Callable[[Record], Any]:
    """The value a record files under in ``index`` (unsharded: the store shards, not the semantics)."""
    if index.of is not None:
        source = index.of
        return lambda r: r.get(source)
    if index.constant is not None:
        constant = index.constant
        return lambda r: constant
    return lambda r: r.get(index.partition)


def _in_range(query: Query, value: Any) -> bool:
    return ((query.after is None or value > query.after) and (query.until is None or value <= query.until)
            and (query.before is None or value < query.before)
            and (query.prefix is None or str(value).startswith(query.prefix)))


@dataclass
class Sent:
    lane: str
    body: dict[str, Any]
    delay: int = 0


@dataclass
class MemoryQueues:
    """What was sent, changed and moved, for the tests to look at (no delivery: tests deliver)."""

    sent: list[Sent] = field(default_factory=list)
    visibility: list[tuple[str, str, int]] = field(default_factory=list)  # (lane, receipt, seconds)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    dead: dict[str, list[DeadMessage]] = field(default_factory=dict)
    fail_sends: int = 0  # the next this many sends raise (SQS unreachable)

    def _sending(self) -> None:
        if self.fail_sends:
            self.fail_sends -= 1
            raise ConnectionError("SQS is unreachable (memory queues told to fail)")

    def send(self, lane: str, body: dict[str, Any], delay: int = 0) -> None:
        self._sending()
        self.sent.append(Sent(lane, copy.deepcopy(body), delay))

    def send_batch(self, lane: str, bodies: Sequence[dict[str, Any]]) -> None:
        self._sending()
        self.sent += [Sent(lane, copy.deepcopy(b)) for b in bodies]

    def change_visibility(self, lane: str, receipt_handle: str, seconds: int) -> None:
        self.visibility.append((lane, receipt_handle, seconds))

    def delete(self, lane: str, receipt_handles: Sequence[str]) -> None:
        self.deleted += [(lane, h) for h in receipt_handles]

    def to_dlq(self, lane: str, body: dict[str, Any], reason: str) -> None:
        dead = self.dead.setdefault(lane, [])
        dead.append(DeadMessage(f"dead-{len(dead)}", copy.deepcopy(body), reason))

    def counts(self, lane: str) -> Counts:
        return Counts(len([s for s in self.sent if s.lane == lane and not s.delay]), 0,
                      len([s for s in self.sent if s.lane == lane and s.delay]))

    def dlq_depth(self, lane: str) -> int:
        return len(self.dead.get(lane, []))

    def peek_dlq(self, lane: str, limit: int) -> list[DeadMessage]:
        return list(self.dead.get(lane, []))[:limit]

    def redrive(self, lane: str, progress: Callable[[int], None] | None = None) -> int:
        moved = self.dead.pop(lane, [])
        self.sent += [Sent(lane, m.body) for m in moved]
        if progress is not None:
            progress(len(moved))
        return len(moved)

    def bodies(self, lane: str | None = None) -> list[dict[str, Any]]:
        return [s.body for s in self.sent if lane is None or s.lane == lane]
