"""The DynamoDB requests fila builds, read without sending them."""

from __future__ import annotations

from chalicelib.store import Change, Expect
from chalicelib.store.dynamodb import DynamoStore


def test_each_name_and_value_has_one_placeholder() -> None:
    """A claim names ``status`` four times and compares it with ``active`` twice: one placeholder each,
    and a number and a string with the same text stay apart."""
    runnable = Expect(any_of=(Expect(equal={"status": "waiting"}),
                              Expect(equal={"status": "delayed"}, below={"due_at": 101}),
                              Expect(equal={"status": "active"}, below={"lock_until": 100})))
    request = DynamoStore()._update_request("jobs", {"job_id": "j1"}, Change(
        put={"status": "active", "lock_until": 140, "note": "1", "due_at": None}, add={"attempts_made": 1}),
        runnable)
    names, values = request["ExpressionAttributeNames"], request["ExpressionAttributeValues"]
    assert sorted(names.values()) == sorted(set(names.values()))
    assert len({repr(v) for v in values.values()}) == len(values)
    status, active = ({k for k, v in names.items() if v == "status"}.pop(),
                      {k for k, v in values.items() if v == {"S": "active"}}.pop())
    assert request["UpdateExpression"].startswith(f"SET {status} = {active}, ")
    assert request["ConditionExpression"].count(f"{status} = {active}") == 1
    assert request["ConditionExpression"].count(status) == 3
    assert {"S": "1"} in values.values() and {"N": "1"} in values.values()
