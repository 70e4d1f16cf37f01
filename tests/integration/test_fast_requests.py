"""fila.local.fast_requests: a request's parameters are the ones moto's parser gives, however often its
shape has been seen."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from fila.local import fast_requests

CLAIM: dict[str, Any] = {"TableName": "t", "Key": {"job_id": {"S": "j1"}}, "UpdateExpression": "SET #n0 = :v0 ADD #n1 :v1",
         "ConditionExpression": "#n0 = :v2", "ExpressionAttributeNames": {"#n0": "status", "#n1": "n"},
         "ExpressionAttributeValues": {":v0": {"S": "active"}, ":v1": {"N": "1"}, ":v2": {"S": "waiting"}},
         "ReturnValues": "ALL_NEW"}


def _params(service: str, target: str, body: Any, content_type: str = "application/x-amz-json-1.0") -> Any:
    """The parameters a handler of ``service`` gets for ``body``."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_server.werkzeug_app import BackendRequest
    from moto.sqs.responses import SQSResponse

    data = json.dumps(body).encode()
    request = BackendRequest({"REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "",
                              "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "4566", "wsgi.url_scheme": "http",
                              "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data)),
                              "CONTENT_TYPE": content_type, "HTTP_HOST": "127.0.0.1:4566",
                              "HTTP_X_AMZ_TARGET": target, "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 "
                              "Credential=testing/20261203/us-east-1/x/aws4_request, Signature=x"})
    handler = DynamoHandler() if service == "dynamodb" else SQSResponse()
    handler.setup_class(request, "http://127.0.0.1:4566/", request.headers)
    return handler.params


@pytest.fixture
def patched() -> Any:
    from moto.core.responses import BaseResponse

    stock = BaseResponse.parse_parameters
    fast_requests.apply()
    yield stock
    BaseResponse.parse_parameters = stock


@pytest.mark.parametrize(("service", "target", "body"), [
    ("dynamodb", "DynamoDB_20120810.UpdateItem", CLAIM),
    ("dynamodb", "DynamoDB_20120810.PutItem", {"TableName": "t", "Item": {"k": {"S": "a"}, "b": {"B": "AAE="}}}),
    ("dynamodb", "DynamoDB_20120810.PutItem", {"TableName": "t", "Item": {"k": {"S": "a"}}, "Expected": None}),
    ("dynamodb", "DynamoDB_20120810.PutItem", {"TableName": "t", "Item": {"k": {"S": "a"}}, "Unknown": "x"}),
    ("dynamodb", "DynamoDB_20120810.Query", {"TableName": "t", "Limit": 5.0, "KeyConditionExpression": "k = :k",
                                             "ExpressionAttributeValues": {":k": {"S": "a"}}}),
    ("sqs", "AmazonSQS.SendMessageBatch", {"QueueUrl": "http://q", "Entries": [
        {"Id": "1", "MessageBody": "x"}, {"Id": "2", "MessageBody": "y", "DelaySeconds": 3}]}),
    ("sqs", "AmazonSQS.ReceiveMessage", {"QueueUrl": "http://q", "MaxNumberOfMessages": 10,
                                         "AttributeNames": ["All"], "WaitTimeSeconds": 1}),
])
def test_parameters_are_the_parser_s_each_time(patched: Any, service: str, target: str, body: Any) -> None:
    from moto.core.responses import BaseResponse

    fast = BaseResponse.parse_parameters
    BaseResponse.parse_parameters = patched
    expected = _params(service, target, body)
    BaseResponse.parse_parameters = fast
    for _ in range(3):  # parsed and judged, then taken as they are when they are the same
        got = _params(service, target, body)
        assert fast_requests.identical(got, expected), (got, expected)


def test_only_a_shape_the_parser_leaves_as_it_is_skips_it(patched: Any) -> None:
    from moto.core.parse import JSONParser

    walks: list[int] = []
    parse = JSONParser.parse
    JSONParser.parse = lambda self, request: walks.append(1) or parse(self, request)  # type: ignore
    try:
        for _ in range(3):
            _params("dynamodb", "DynamoDB_20120810.UpdateItem", CLAIM)
        assert len(walks) == 1  # the first request's shape is judged, the others take the JSON
        blob = {"TableName": "t", "Item": {"k": {"S": "a"}, "b": {"B": "AAE="}}}
        for _ in range(2):
            _params("dynamodb", "DynamoDB_20120810.PutItem", blob)
        assert len(walks) == 3  # a blob becomes bytes: parsed every time
        other = {**CLAIM, "ExpressionAttributeValues": {**CLAIM["ExpressionAttributeValues"], ":v1": {"N": 1}}}
        _params("dynamodb", "DynamoDB_20120810.UpdateItem", other)
        assert len(walks) == 4  # another shape (a number where a string was): judged anew
    finally:
        JSONParser.parse = parse


def test_shapes_and_identity() -> None:
    assert fast_requests.shape({"a": [{"S": "x"}, {"S": "y"}]}) == fast_requests.shape({"a": [{"S": "z"}]})
    assert fast_requests.shape({"a": 1}) != fast_requests.shape({"a": 1.0})
    assert fast_requests.shape({"a": "1"}) != fast_requests.shape({"b": "1"})
    assert fast_requests.identical({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not fast_requests.identical({"a": 1}, {"a": 1.0})
    assert not fast_requests.identical({"a": b"x"}, {"a": "x"})
    assert not fast_requests.identical({"a": [1]}, {"a": [1, 2]})


@pytest.mark.parametrize(("target", "first", "then"), [
    ("AmazonSQS.ReceiveMessage", {"QueueUrl": "http://q", "MaxNumberOfMessages": 10},
     {"QueueUrl": "http://q", "MaxNumberOfMessages": 10.0}),  # a float where an integer goes: made an int
    ("AmazonSQS.SendMessageBatch", {"QueueUrl": "http://q", "Entries": [{"Id": "1", "MessageBody": "x"}]},
     {"QueueUrl": "http://q", "Entries": [{"Id": "1", "MessageBody": "x"}, {"Id": "2", "MessageBody": "y",
      "MessageAttributes": {"b": {"DataType": "Binary", "BinaryValue": "AAE="}}}]}),  # a blob: made bytes
])
def test_a_shape_judged_once_does_not_stand_for_another(patched: Any, target: str, first: Any, then: Any) -> None:
    from moto.core.responses import BaseResponse

    fast = BaseResponse.parse_parameters
    BaseResponse.parse_parameters = patched
    expected = _params("sqs", target, then)
    BaseResponse.parse_parameters = fast
    _params("sqs", target, first)
    _params("sqs", target, first)
    assert fast_requests.identical(_params("sqs", target, then), expected)
