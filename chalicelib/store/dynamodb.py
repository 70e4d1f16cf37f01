"""The store on DynamoDB: records and expectations as items and expressions (``store.expressions``), and
the write-sharded indexes of resources.json.

A group of writes is one TransactWriteItems (a single write, one plain call: half the write units).
A query of a sharded index asks each shard and merges them by sort key; its cursor remembers where
each shard stands, so pages stay in order across shards.
"""

from __future__ import annotations

import base64
import heapq
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import aws, resources
from chalicelib.settings import resource_name
from chalicelib.store import Change, ConditionFailed, Expect, Query, Record, Write, record_key
from chalicelib.store.expressions import Expression, decode, encode


def _needs_item(expect: Expect) -> bool:
    """Whether only an existing item can meet ``expect`` (a comparison with a missing attribute is false)."""
    return bool(expect.exists or expect.equal or expect.one_of or expect.below or expect.above) or \
        (bool(expect.any_of) and all(_needs_item(e) for e in expect.any_of))


def _old_on_failure(request: dict[str, Any]) -> dict[str, Any]:
    """A conditional single write that fails answers with the item that failed it (who wrote it), at no
    extra cost; asked only where there is a condition to fail."""
    return {**request, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"} if "ConditionExpression" in request \
        else request


def _is(err: ClientError, code: str) -> bool:
    return bool(err.response.get("Error", {}).get("Code") == code)


CONFLICT_PAUSES = (0.01, 0.04, 0.16)  # seconds: a transaction holds its items for milliseconds


def _sent(call: Callable[..., Any], **request: Any) -> Any:
    """A write, tried again while it meets a transaction in flight on one of its items (a batch's claims
    and a worker's settle, say): DynamoDB rejects it whole, and botocore does not retry it."""
    for pause in CONFLICT_PAUSES:
        try:
            return call(**request)
        except ClientError as err:
            if not _in_conflict(err):
                raise
        time.sleep(pause * (0.5 + random.random()))
    return call(**request)


def _in_conflict(err: ClientError) -> bool:
    reasons = {r.get("Code") for r in err.response.get("CancellationReasons", [])}
    return _is(err, "TransactionConflictException") or (
        _is(err, "TransactionCanceledException") and "TransactionConflict" in reasons
        and "ConditionalCheckFailed" not in reasons)


class DynamoStore:
    """fila's tables on DynamoDB, named for the current stage."""

    def _table(self, table: str) -> resources.Table:
        return resources.tables()[table]

    def _key_text(self, table: str, key: Record) -> str:
        return "|".join(str(key[name]) for name, _ in self._table(table).key)

    def _derived(self, table: str, key: Record, values: Record, existing: bool = False) -> Record:
        """The sharded index attributes an item's ``values`` imply. A constant one, from its key alone, is
        set by every write that may create the item (a put, an update without a condition that needs the
        item): a write to an ``existing`` item keeps the one it was created with."""
        out = {}
        for index in self._table(table).indexes.values():
            if index.of is not None and values.get(index.of) is not None:
                out[index.partition] = index.shard(str(values[index.of]), self._key_text(table, key))
            elif index.constant is not None and not existing:
                out[index.partition] = index.shard(index.constant, self._key_text(table, key))
        return out

    def get(self, table: str, key: Record) -> Record | None:
        item = aws.client("dynamodb").get_item(TableName=resource_name(table), Key=encode(key),
                                               ConsistentRead=True).get("Item")
        return self._public(table, decode(item)) if item else None

    def get_many(self, table: str, keys: Sequence[Record]) -> list[Record]:
        found: list[Record] = []
        unique = {json.dumps(k, sort_keys=True, default=str): k for k in keys}  # BatchGetItem refuses repeats
        pending = [encode(k) for k in unique.values()]
        while pending:
            chunk, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {resource_name(table): {"Keys": chunk, "ConsistentRead": True}}
            while request:
                answer = aws.client("dynamodb").batch_get_item(RequestItems=request)
                found += [self._public(table, decode(i))
                          for i in answer.get("Responses", {}).get(resource_name(table), [])]
                request = answer.get("UnprocessedKeys") or {}
        return found

    def _public(self, table: str, record: Record) -> Record:
        """Without the sharded index attributes (the store's own business)."""
        hidden = {i.partition for i in self._table(table).indexes.values() if i.derived}
        return {k: v for k, v in record.items() if k not in hidden}

    def update(self, table: str, key: Record, change: Change, expect: Expect | None = None) -> Record:
        request = _old_on_failure(self._update_request(table, key, change, expect or Expect()))
        try:
            item = _sent(aws.client("dynamodb").update_item, **request, ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if _is(err, "ConditionalCheckFailedException"):
                raise self._failed(err, table, f"{table} {self._key_text(table, key)}") from None
            raise
        return self._public(table, decode(item))

    def _failed(self, err: ClientError, table: str, text: str) -> ConditionFailed:
        """With the record that failed the condition, when DynamoDB returned it (single writes do)."""
        item = err.response.get("Item")
        return ConditionFailed(text, self._public(table, decode(item)) if item else None)

    def _update_request(self, table: str, key: Record, change: Change, expect: Expect) -> dict[str, Any]:
        derived = self._derived(table, key, {**change.put}, existing=_needs_item(expect))
        change = Change({**change.put, **derived}, change.add, change.append, change.remove)
        expression = Expression()
        update = expression.update(change)
        condition = expression.condition(expect, self._table(table).key[0][0])
        return {"TableName": resource_name(table), "Key": encode(key), "UpdateExpression": update,
                **({"ConditionExpression": condition} if condition else {}), **expression.request()}

    def _put_request(self, write: Write) -> dict[str, Any]:
        assert write.record is not None
        record = {**write.record, **self._derived(write.table, write.key, write.record)}
        expression = Expression()
        condition = expression.condition(write.expect, self._table(write.table).key[0][0])
        return {"TableName": resource_name(write.table), "Item": encode(record),
                **({"ConditionExpression": condition} if condition else {}), **expression.request()}

    def write(self, writes: Sequence[Write]) -> None:
        requests = [("Put", self._put_request(w)) if w.record is not None
                    else ("Update", self._update_request(w.table, w.key, w.change or Change(), w.expect))
                    for w in writes]
        client = aws.client("dynamodb")
        try:
            if len(requests) == 1:
                kind, request = requests[0]
                _sent(client.put_item if kind == "Put" else client.update_item, **_old_on_failure(request))
            elif requests:
                _sent(client.transact_write_items,
                      TransactItems=[{kind: request} for kind, request in requests])
        except ClientError as err:
            reasons = [r.get("Code") for r in err.response.get("CancellationReasons", [])]
            if _is(err, "ConditionalCheckFailedException") or "ConditionalCheckFailed" in reasons:
                failed = ", ".join(f"{w.table} {self._key_text(w.table, w.key)}" for w in writes)
                raise self._failed(err, writes[0].table, failed) from None
            raise

    def query(self, query: Query, limit: int, cursor: str | None = None) -> tuple[list[Record], str | None]:
        table = self._table(query.table)
        index = table.indexes[query.index] if query.index else None
        partitions = index.partitions(query.value) if index else [query.value]
        state = _resume_state(cursor, partitions, table, index) if cursor else dict.fromkeys(partitions)
        sort = index.sort if index else table.key[1][0]
        fetched = {p: list(self._fetch(query, index, p, state[p], limit))
                   for p in partitions if state.get(p) != "done"}
        merged = heapq.merge(*([(r[sort], p, n, r, more) for n, (r, more) in enumerate(rows)]
                               for p, rows in fetched.items()), reverse=query.newest_first)
        taken = [entry for _, entry in zip(range(limit), merged, strict=False)]
        for p, rows in fetched.items():
            mine = [(r, more) for _, q, _, r, more in taken if q == p]
            if mine:
                last, more = mine[-1]
                finished = not more and len(mine) == len(rows)
                state[p] = "done" if finished else self._resume_key(table, index, last)
            elif not rows:
                state[p] = "done"
        records = [self._public(query.table, r) for _, _, _, r, _ in taken]
        return records, None if all(v == "done" for v in state.values()) else _encode_cursor(state)

    def count(self, query: Query, by: str) -> dict[str, int]:
        table = self._table(query.table)
        index = table.indexes[query.index] if query.index else None
        counts: dict[str, int] = {}
        for partition in index.partitions(query.value) if index else [query.value]:
            request = self._query_request(query, index, partition)
            request["ProjectionExpression"] = Expression.add_name(request, by)
            while True:
                answer = aws.client("dynamodb").query(**request)
                for item in answer.get("Items", []):
                    if by in item:
                        value = str(decode({by: item[by]})[by])
                        counts[value] = counts.get(value, 0) + 1
                if not answer.get("LastEvaluatedKey"):
                    break
                request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return counts

    def delete(self, table: str, key: Record, expect: Expect | None = None) -> None:
        expression = Expression()
        condition = expression.condition(expect or Expect(), self._table(table).key[0][0])
        try:
            _sent(aws.client("dynamodb").delete_item, TableName=resource_name(table), Key=encode(key),
                  **({"ConditionExpression": condition} if condition else {}), **expression.request())
        except ClientError as err:
            if _is(err, "ConditionalCheckFailedException"):
                raise ConditionFailed(f"{table} {self._key_text(table, key)}") from None
            raise

    def _resume_key(self, table: resources.Table, index: resources.Index | None, record: Record) -> Record:
        names = [n for n, _ in table.key] + ([n for n, _ in index.keys] if index else [])
        return {n: record[n] for n in names}

    def _fetch(self, query: Query, index: resources.Index | None, partition: str, start: Record | None,
               limit: int) -> Iterator[tuple[Record, bool]]:
        """Up to ``limit`` matching records of one partition after ``start``, each with whether more may
        follow the last of them."""
        keys = index.keys if index else self._table(query.table).key
        request = self._query_request(query, index, partition)
        request["Limit"] = limit
        if start:
            request["ExclusiveStartKey"] = encode(start)
        found: list[Record] = []
        while True:
            answer = aws.client("dynamodb").query(**request)
            found += [decode(i) for i in answer.get("Items", [])]
            last = answer.get("LastEvaluatedKey")
            if not last or len(found) >= limit:
                break
            request["ExclusiveStartKey"] = last
        if query.after is not None and query.until is not None:  # BETWEEN took the lower bound in too
            found = [r for r in found if r[keys[1][0]] > query.after]
        found = found[:limit]
        for n, record in enumerate(found):
            yield record, n < len(found) - 1 or bool(last) or len(found) == limit


    def _query_request(self, query: Query, index: resources.Index | None, partition: str) -> dict[str, Any]:
        expression = Expression()
        table = self._table(query.table)
        keys = index.keys if index else table.key
        condition = f"{expression.name(keys[0][0])} = {expression.value(partition)}" + \
            self._sort_condition(query, expression, keys)
        request: dict[str, Any] = {"TableName": resource_name(query.table),
                                   "KeyConditionExpression": condition,
                                   "ScanIndexForward": not query.newest_first}
        if index:
            request["IndexName"] = index.name
        if query.where is not None and (where := expression.condition(query.where, table.key[0][0])):
            request["FilterExpression"] = where
        request.update(expression.request())
        return request

    @staticmethod
    def _sort_condition(query: Query, expression: Expression, keys: tuple[tuple[str, str], ...]) -> str:
        """DynamoDB takes one condition on the sort key: a window (after, until] is a BETWEEN whose lower
        bound ``_fetch`` drops again."""
        bounds = {name: getattr(query, name) for name in ("after", "until", "before", "prefix")
                  if getattr(query, name) is not None}
        if not bounds:
            return ""
        sort = expression.name(keys[1][0])
        if bounds.keys() == {"after", "until"}:
            return f" AND {sort} BETWEEN {expression.value(query.after)} AND {expression.value(query.until)}"
        if len(bounds) > 1:
            raise ValueError(f"one bound on the sort key, or after with until; not {sorted(bounds)}")
        (name, value), = bounds.items()
        if name == "prefix":
            return f" AND begins_with({sort}, {expression.value(value)})"
        return f" AND {sort} {dict(after='>', until='<=', before='<')[name]} {expression.value(value)}"


def _encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _resume_state(cursor: str, partitions: list[str], table: resources.Table,
                  index: resources.Index | None) -> dict[str, Any]:
    """Where a cursor left each partition, checked against this query: a forged or stale cursor is a
    ValueError (the caller's 400), never a request DynamoDB refuses."""
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        state = None
    keys = dict(table.key + (index.keys if index else ()))
    partition = index.partition if index else table.key[0][0]
    kinds: dict[str, tuple[type, ...]] = {"S": (str,), "N": (int, float)}  # a key's JSON types, exactly

    def resumes(value: Any, p: str) -> bool:
        return value is None or value == "done" or (
            isinstance(value, dict) and value.keys() == keys.keys() and value[partition] == p
            and all(type(v) in kinds.get(keys[n], ()) for n, v in value.items()))

    if not isinstance(state, dict) or state.keys() != set(partitions) or \
            not all(resumes(v, p) for p, v in state.items()):
        raise ValueError("not a cursor fila gave")
    return state


__all__ = ["DynamoStore", "decode", "encode", "record_key"]
