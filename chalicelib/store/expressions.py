"""Records as DynamoDB items, and expectations and changes as its expressions: one codec (boto3's
TypeSerializer, with the common types typed directly) and one place that writes the expressions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.store import Change, Expect, Record

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()
_DIGITS = 10 ** 38  # DynamoDB's numbers hold 38 significant digits; a longer integer takes boto3's checks


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)  # a StrEnum's value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__}")


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def attribute(value: Any) -> dict[str, Any]:
    """A value as DynamoDB types it. Strings and integers, most of what fila writes, are typed here:
    boto3's TypeSerializer tries every type on each (tests/unit/test_store_expressions.py holds the two
    equal)."""
    if isinstance(value, str):
        return {"S": str(value)}  # str(): a StrEnum's value
    if type(value) is int and -_DIGITS < value < _DIGITS:
        return {"N": str(value)}
    return _serializer.serialize(_to_dynamo(value))


def encode(record: Record) -> dict[str, Any]:
    return {k: attribute(v) for k, v in record.items() if v is not None}


def decode(item: dict[str, Any]) -> Record:
    return {k: v["S"] if "S" in v else _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


class Expression:
    """Placeholders for the names and values of one request, one per attribute and per repeated scalar
    value: every placeholder is parsed and checked by both SDK and service (a claim names ``status``
    four times)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._named: dict[str, str] = {}
        self._valued: dict[tuple[type, Any], str] = {}

    @property
    def names(self) -> dict[str, str]:
        return {placeholder: attribute for attribute, placeholder in self._named.items()}

    def name(self, attribute: str) -> str:
        placeholder = self._named.get(attribute)
        if placeholder is None:
            placeholder = self._named[attribute] = f"#n{len(self._named)}"
        return placeholder

    def value(self, value: Any) -> str:
        key = (type(value), value) if isinstance(value, str | int | float) else None
        placeholder = self._valued.get(key) if key else None
        if placeholder is None:
            placeholder = f":v{len(self.values)}"
            self.values[placeholder] = attribute(value)
            if key:
                self._valued[key] = placeholder
        return placeholder

    def condition(self, expect: Expect, key: str) -> str:
        parts = []
        if expect.exists is not None:
            function = "attribute_exists" if expect.exists else "attribute_not_exists"
            parts.append(f"{function}({self.name(key)})")
        parts += [f"{self.name(a)} = {self.value(v)}" for a, v in expect.equal.items()]
        parts += [f"{self.name(a)} IN ({', '.join(self.value(v) for v in vs)})"
                  for a, vs in expect.one_of.items()]
        parts += [f"{self.name(a)} < {self.value(v)}" for a, v in expect.below.items()]
        parts += [f"{self.name(a)} > {self.value(v)}" for a, v in expect.above.items()]
        parts += [f"attribute_not_exists({self.name(a)})" for a in expect.missing]
        if expect.any_of:
            parts.append("(" + " OR ".join(f"({self.condition(e, key)})" for e in expect.any_of) + ")")
        return " AND ".join(parts)

    def update(self, change: Change) -> str:
        sets = [f"{self.name(a)} = {self.value(v)}" for a, v in change.put.items() if v is not None]
        sets += [f"{(n := self.name(a))} = if_not_exists({n}, {self.value(0)}) + {self.value(v)}"
                 for a, v in change.add.items()]
        sets += [f"{(n := self.name(a))} = list_append(if_not_exists({n}, {self.value([])}), "
                 f"{self.value(list(v))})" for a, v in change.append.items()]
        removes = [self.name(a) for a in (*change.remove, *(a for a, v in change.put.items() if v is None))]
        return " ".join(part for part in (("SET " + ", ".join(sets)) if sets else "",
                                          ("REMOVE " + ", ".join(removes)) if removes else "") if part)

    @staticmethod
    def add_name(request: dict[str, Any], attribute: str) -> str:
        """A placeholder for ``attribute`` added to a request that is already built."""
        names = request.setdefault("ExpressionAttributeNames", {})
        placeholder = f"#p{len(names)}"
        names[placeholder] = attribute
        return placeholder

    def request(self) -> dict[str, Any]:
        return {**({"ExpressionAttributeNames": self.names} if self._named else {}),
                **({"ExpressionAttributeValues": self.values} if self.values else {})}
