"""The DynamoDB codec and expressions, without DynamoDB: typed as boto3 types them, one placeholder each."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.jobs import JobStatus
from chalicelib.store import Change, Expect
from chalicelib.store.expressions import Expression, _to_dynamo, attribute, decode, encode

scalars = st.none() | st.booleans() | st.text() | st.integers(min_value=-10 ** 40, max_value=10 ** 40) | \
    st.floats(allow_nan=False, allow_infinity=False, width=32)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                      st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


def _boto3(value: Any) -> Any:
    try:
        return TypeSerializer().serialize(_to_dynamo(value))
    except Exception as err:  # a number DynamoDB cannot hold: refused either way
        return type(err)


def _ours(value: Any) -> Any:
    try:
        return attribute(value)
    except Exception as err:
        return type(err)


@given(values)
def test_a_value_is_typed_as_boto3_types_it(value: Any) -> None:
    assert _ours(value) == _boto3(value)


@given(st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=6))
def test_a_record_round_trips(record: dict[str, Any]) -> None:
    try:
        item = encode(record)
    except Exception:  # a number of more than 38 digits, which boto3 refuses too
        return
    expected = {k: v for k, v in _plain(record).items() if v is not None}
    assert decode(item) == expected


def _plain(value: Any) -> Any:
    """What DynamoDB gives back: numbers through Decimal, None left out of maps."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        number = Decimal(str(value))
        return int(number) if number == number.to_integral_value() else float(number)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return {k: _plain(v) for k, v in value.items() if v is not None}


def test_a_strenum_is_stored_as_its_value() -> None:
    assert attribute(JobStatus.ACTIVE) == {"S": "active"}
    assert type(attribute(JobStatus.ACTIVE)["S"]) is str


def test_each_attribute_and_each_repeated_value_has_one_placeholder() -> None:
    expression = Expression()
    update = expression.update(Change(put={"status": JobStatus.ACTIVE, "at": 5, "flag": True, "n": 1}))
    condition = expression.condition(Expect(any_of=(Expect(equal={"status": JobStatus.WAITING}),
                                                    Expect(equal={"status": JobStatus.ACTIVE}, below={"at": 5}))),
                                     "job_id")
    assert sorted(expression.names.values()) == ["at", "flag", "n", "status"]
    # ACTIVE and 5 once each; True and 1 stay apart (equal in Python, not in DynamoDB)
    assert sorted(map(str, expression.values.values())) == sorted(map(str, [
        {"S": "active"}, {"N": "5"}, {"BOOL": True}, {"N": "1"}, {"S": "waiting"}]))
    placeholders = set(expression.names) | set(expression.values)
    used = {token.strip("(),") for token in f"{update} {condition}".split()}
    assert placeholders <= used  # DynamoDB refuses a placeholder the expressions do not use
