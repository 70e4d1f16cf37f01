"""fila.local.fast_results: a single-item answer written directly is the one moto's serializer writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fila.local import fast_results

ITEM = {"s": {"S": "text"}, "n": {"N": "1.5"}, "t": {"BOOL": True}, "z": {"NULL": True}, "ss": {"SS": ["a"]},
        "ns": {"NS": ["1"]}, "l": {"L": [{"S": "x"}, {"M": {"k": {"N": "2"}}}]}, "m": {"M": {"e": {"S": ""}}}}
CAPACITY = {"TableName": "t", "CapacityUnits": 0.5}


def _answers(operation: str, result: dict[str, Any]) -> tuple[Any, Any]:
    """(stock, patched): the status, headers and parsed body each gives ``result``."""
    from moto.core.responses import ActionContext
    from moto.core.serialize import get_serializer_class
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    model = get_service_model("dynamodb")
    context = ActionContext(model, model.operation_model(operation), get_serializer_class("dynamodb", "json"),
                            DynamoHandler())
    stock = DynamoResult.execute_result
    fast_results.apply()
    try:
        patched = DynamoResult.execute_result
        out = []
        for execute in (stock, patched):
            status, headers, body = execute(DynamoResult(result), context)
            out.append((status, headers, json.loads(body)))
        return out[0], out[1]
    finally:
        DynamoResult.execute_result = stock


@pytest.mark.parametrize(("operation", "result"), [
    ("UpdateItem", {"Attributes": ITEM, "ConsumedCapacity": CAPACITY}),
    ("UpdateItem", {"ConsumedCapacity": CAPACITY}),
    ("PutItem", {}),
    ("GetItem", {"Item": ITEM, "ConsumedCapacity": CAPACITY}),
    ("DeleteItem", {"Attributes": ITEM}),
    ("GetItem", {"Item": {"b": {"B": "AAE="}}}),  # binary: to the serializer
    ("UpdateItem", {"Attributes": ITEM, "ItemCollectionMetrics": {"ItemCollectionKey": {"k": {"S": "v"}}}}),
    ("Query", {"Items": [ITEM], "Count": 1, "ScannedCount": 1}),  # not a single-item answer
])
def test_an_answer_is_the_one_moto_s_serializer_writes(operation: str, result: dict[str, Any]) -> None:
    stock, patched = _answers(operation, result)
    assert patched == stock


def test_only_a_plain_single_item_answer_skips_the_serializer() -> None:
    assert fast_results._as_they_are({"Attributes": ITEM, "ConsumedCapacity": CAPACITY})
    assert not fast_results._as_they_are({"Item": {"b": {"B": "AAE="}}})
    assert not fast_results._as_they_are({"Attributes": ITEM, "ItemCollectionMetrics": {}})
    assert not fast_results._as_they_are({"ConsumedCapacity": {**CAPACITY, "Table": {"CapacityUnits": 0.5}}})
    assert not fast_results._as_they_are({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": "0.5"}})
