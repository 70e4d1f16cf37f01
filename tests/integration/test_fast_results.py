"""fila.local.fast_results: an answer written directly is the one moto's serializer writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fila.local import fast_results

ITEM = {"s": {"S": "text"}, "n": {"N": "1.5"}, "t": {"BOOL": True}, "z": {"NULL": True}, "ss": {"SS": ["a"]},
        "ns": {"NS": ["1"]}, "l": {"L": [{"S": "x"}, {"M": {"k": {"N": "2"}}}]}, "m": {"M": {"e": {"S": ""}}}}
CAPACITY = {"TableName": "t", "CapacityUnits": 0.5}


def _answers(operation: str, result: dict[str, Any], service: str = "dynamodb", protocol: str = "json"
             ) -> tuple[Any, Any, bool]:
    """(stock, patched, whether the patched one used moto's serializer): the status, headers and body (parsed,
    if JSON) each gives ``result``."""
    from moto.core.responses import ActionContext, ActionResult
    from moto.core.serialize import get_serializer_class
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler, DynamoResult
    from moto.sqs.responses import SQSResponse

    model = get_service_model(service)
    handler = DynamoHandler() if service == "dynamodb" else SQSResponse()
    context = ActionContext(model, model.operation_model(operation), get_serializer_class(service, protocol),
                            handler)
    kind = DynamoResult if service == "dynamodb" else ActionResult
    stock = DynamoResult.execute_result, ActionResult.execute_result
    fast_results.apply()
    serializer, used = context.serializer_class, []
    serialize = serializer.serialize
    try:
        patched = kind.execute_result
        out = []
        for execute in (stock[0] if kind is DynamoResult else stock[1], patched):
            status, headers, body = execute(kind(result), context)
            out.append((status, headers, json.loads(body) if protocol == "json" else body))
            serializer.serialize = lambda self, value: used.append(1) or serialize(self, value)  # type: ignore
        return out[0], out[1], bool(used)
    finally:
        DynamoResult.execute_result, ActionResult.execute_result = stock
        serializer.serialize = serialize


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
    stock, patched, serialized = _answers(operation, result)
    assert patched == stock
    assert serialized == (not fast_results._as_they_are(result) or operation not in fast_results.SINGLE_ITEM)


def test_only_a_plain_single_item_answer_skips_the_serializer() -> None:
    assert fast_results._as_they_are({"Attributes": ITEM, "ConsumedCapacity": CAPACITY})
    assert not fast_results._as_they_are({"Item": {"b": {"B": "AAE="}}})
    assert not fast_results._as_they_are({"Attributes": ITEM, "ItemCollectionMetrics": {}})
    assert not fast_results._as_they_are({"ConsumedCapacity": {**CAPACITY, "Table": {"CapacityUnits": 0.5}}})
    assert not fast_results._as_they_are({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": "0.5"}})


MESSAGE = {"MessageId": "m1", "ReceiptHandle": "r" * 100, "MD5OfBody": "d" * 32, "Body": '{"kind": "job"}',
           "Attributes": {"SenderId": "AIDA", "SentTimestamp": "1", "ApproximateReceiveCount": "2"}}
FAILED = [{"Id": "2", "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": "no"}]


@pytest.mark.parametrize(("operation", "result"), [
    ("ReceiveMessage", {"Messages": [MESSAGE, {**MESSAGE, "MessageId": "m2"}]}),
    ("ReceiveMessage", {}),
    ("SendMessage", {"MessageId": "m1", "MD5OfMessageBody": "d" * 32}),
    ("SendMessageBatch", {"Successful": [{"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "d"}], "Failed": FAILED}),
    ("DeleteMessageBatch", {"Successful": [{"Id": "1"}], "Failed": []}),
    ("ChangeMessageVisibilityBatch", {"Successful": [], "Failed": FAILED}),
    ("ReceiveMessage", {"Messages": [{**MESSAGE, "MD5OfMessageAttributes": "a", "MessageAttributes": {
        "k": {"DataType": "String", "StringValue": "v"}}}]}),  # message attributes: to the serializer
    ("GetQueueUrl", {"QueueUrl": "http://q"}),  # not a message answer
])
@pytest.mark.parametrize("protocol", ["json", "query"])
def test_an_sqs_answer_is_the_one_moto_s_serializer_writes(operation: str, result: dict[str, Any],
                                                           protocol: str) -> None:
    stock, patched, serialized = _answers(operation, result, "sqs", protocol)
    assert patched == stock
    answer = fast_results.SQS_ANSWERS.get(operation)
    assert serialized == (protocol != "json" or answer is None or not fast_results.fits(result, answer))


def test_only_answers_made_as_moto_writes_them_skip_the_serializer() -> None:
    receive = fast_results.SQS_ANSWERS["ReceiveMessage"]
    assert fast_results.fits({"Messages": [MESSAGE]}, receive)
    assert not fast_results.fits({"Messages": [{**MESSAGE, "MessageAttributes": {}}]}, receive)
    assert not fast_results.fits({"Messages": [{**MESSAGE, "Attributes": {"SentTimestamp": 1}}]}, receive)
    assert not fast_results.fits({"Messages": MESSAGE}, receive)
    failed = fast_results.SQS_ANSWERS["DeleteMessageBatch"]
    assert not fast_results.fits({"Successful": [], "Failed": [{**FAILED[0], "SenderFault": "true"}]}, failed)
