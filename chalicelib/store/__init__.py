"""The storage seam: a few primitives over tables of plain records, with fila's policy above them.

As in Powertools' idempotency persistence layer, a store only gets, writes, updates, deletes and queries; what
a claim, a settle or a dispatch means lives above, in ``store.events`` and ``store.jobs``, once for
every store. ``DynamoStore`` (``store.dynamodb``) is the one that ships; an in-memory store with the same
semantics (``fila.memory``) runs the unit tests, and one contract suite (tests/store_contract.py)
holds both to them.

Records are dicts of plain values (str, int, float, bool, list, dict, None: an absent attribute).
Writes say what they ``Expect`` of the record, and happen only if it holds: that is how two workers
never both win.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Record = dict[str, Any]


@dataclass(frozen=True)
class Expect:
    """What a record must be for a write to happen: every field that is given holds (and ``any_of``:
    at least one of those)."""

    exists: bool | None = None  # True: the record exists; False: it does not
    equal: Mapping[str, Any] = field(default_factory=dict)
    one_of: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    below: Mapping[str, float | str] = field(default_factory=dict)  # attribute < value
    above: Mapping[str, float | str] = field(default_factory=dict)  # attribute > value
    missing: Sequence[str] = ()  # attributes that must not be set
    any_of: Sequence[Expect] = ()


@dataclass(frozen=True)
class Change:
    """An update: ``put`` values, ``add`` to numbers (from 0), ``append`` to lists (from []), ``remove``."""

    put: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, int] = field(default_factory=dict)
    append: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    remove: Sequence[str] = ()


@dataclass(frozen=True)
class Write:
    """One write of an all-or-nothing group: a new record (``record``) or a ``change`` to ``key``."""

    table: str
    key: Record
    record: Record | None = None
    change: Change | None = None
    expect: Expect = field(default_factory=Expect)


@dataclass(frozen=True)
class Query:
    """Records of one partition of an index (``index=None``: of the table), in sort-key order."""

    table: str
    index: str | None
    value: str  # the partition's value (a sharded index's shards are the store's business)
    after: str | None = None  # sort key > after
    until: str | None = None  # sort key <= until
    before: str | None = None  # sort key < before
    prefix: str | None = None  # sort key begins with
    newest_first: bool = False
    where: Expect | None = None  # kept only if it holds (a filter: it does not bound the work)


class ConditionFailed(Exception):
    """A write's expectation did not hold (nothing was written). ``current``: for a single write, the
    record that failed it, when the store could tell."""

    def __init__(self, message: str, current: Record | None = None) -> None:
        super().__init__(message)
        self.current = current


class Store(Protocol):
    def get(self, table: str, key: Record) -> Record | None:
        """The record, read consistently."""

    def get_many(self, table: str, keys: Sequence[Record]) -> list[Record]:
        """The records that exist, in no particular order."""

    def update(self, table: str, key: Record, change: Change, expect: Expect | None = None) -> Record:
        """Apply ``change`` (creating the record if it is absent and nothing forbids it); the record as it
        is now. ConditionFailed if ``expect`` does not hold (with the record that failed it)."""

    def write(self, writes: Sequence[Write]) -> None:
        """All of them or none (ConditionFailed: one expectation did not hold, and for a single write
        the record as it was; up to 100 writes)."""

    def query(self, query: Query, limit: int, cursor: str | None = None) -> tuple[list[Record], str | None]:
        """Up to ``limit`` records and an opaque cursor for the next page (None: no more)."""

    def count(self, query: Query, by: str) -> dict[str, int]:
        """How many records the query finds, by their value of ``by`` (reading only that attribute)."""

    def delete(self, table: str, key: Record, expect: Expect | None = None) -> None:
        """Remove the record; ConditionFailed (nothing removed) if ``expect`` does not hold."""


def absent_or_above(attribute: str, value: float) -> Expect:
    """Records whose ``attribute`` is unset or above ``value`` (TTL: not yet expired)."""
    return Expect(any_of=(Expect(missing=(attribute,)), Expect(above={attribute: value})))


def record_key(table_key: Sequence[tuple[str, str]], record: Mapping[str, Any]) -> Record:
    return {name: record[name] for name, _ in table_key}


__all__ = ["Change", "ConditionFailed", "Expect", "Query", "Record", "Store", "Write", "absent_or_above",
           "record_key"]
