"""fila.local.fast_dispatch: DynamoDB's and SQS's JSON calls reach moto's handler without Flask, through
the gate, and answer as moto's Flask app does; everything else still goes to that app."""

from __future__ import annotations

import gzip
import io
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fila.local.emulator import endpoints
from fila.local.fast_dispatch import Direct
from fila.local.gate import Gate

pytestmark = pytest.mark.xdist_group("stock-moto")


def environ(target: str = "DynamoDB_20120810.PutItem", method: str = "POST", **extra: str) -> dict[str, Any]:
    return {"REQUEST_METHOD": method, "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "4566", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b"{}"),
            "CONTENT_LENGTH": "2", "CONTENT_TYPE": "application/x-amz-json-1.0", "HTTP_HOST": "127.0.0.1:4566",
            "HTTP_X_AMZ_TARGET": target, **extra}


class Recorder:
    """The app behind Direct, and a handler: what each was called with."""

    def __init__(self, result: Any = (200, {"Content-Type": "application/x-amz-json-1.0"}, "{}")) -> None:
        self.result, self.fallback_calls = result, 0
        self.handled: list[tuple[bytes, str, str | None]] = []

    def app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.fallback_calls += 1
        start_response("200 OK", [])
        return [b"moto's app"]

    def handler(self, request: Any, url: str, headers: dict[str, str]) -> Any:
        self.handled.append((request.get_data(), url, headers.get("X-Amz-Target")))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def call(direct: Direct, env: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}
    body = b"".join(direct(env, lambda status, headers: seen.update(status=status, headers=dict(headers))))
    return seen["status"], seen["headers"], body


def test_a_json_call_goes_to_its_handler_and_answers_as_moto_s_view() -> None:
    recorder = Recorder()
    direct = Direct(recorder.app, {"DynamoDB_20120810": recorder.handler}, Gate())
    status, headers, body = call(direct, environ())
    assert (status, body, recorder.fallback_calls) == ("200 OK", b"{}", 0)
    assert recorder.handled == [(b"{}", "http://127.0.0.1:4566/", "DynamoDB_20120810.PutItem")]
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_a_client_error_raised_by_the_handler_is_a_400_with_its_message() -> None:
    failure = ClientError({"Error": {"Code": "X", "Message": "no such thing"}}, "PutItem")
    recorder = Recorder(failure)
    status, _, body = call(Direct(recorder.app, {"DynamoDB_20120810": recorder.handler}, Gate()), environ())
    assert (status, body) == ("400 BAD REQUEST", b"no such thing")


@pytest.mark.parametrize("env", [
    environ(target="DynamoDBStreams_20120810.GetRecords"),  # a service it does not take
    environ(target=""),  # the query protocol
    environ(method="GET"),
    environ(HTTP_ORIGIN="http://localhost:3000"),  # a browser's: flask-cors answers it
], ids=["other service", "no target", "GET", "Origin"])
def test_everything_else_goes_to_moto_s_app(env: dict[str, Any]) -> None:
    recorder = Recorder()
    _, _, body = call(Direct(recorder.app, {"DynamoDB_20120810": recorder.handler}, Gate()), env)
    assert (body, recorder.fallback_calls, recorder.handled) == (b"moto's app", 1, [])


def test_calls_pass_the_gate_and_writes_count_as_changes() -> None:
    gate, recorder = Gate(), Recorder()
    direct = Direct(recorder.app, {"DynamoDB_20120810": recorder.handler, "AmazonSQS": recorder.handler}, gate)
    call(direct, environ("DynamoDB_20120810.GetItem"))
    call(direct, environ("AmazonSQS.ReceiveMessage"))
    assert gate.changes == 0
    call(direct, environ("DynamoDB_20120810.PutItem"))
    assert gate.changes == 1
    assert gate.freeze(timeout=1)
    done = threading.Event()

    def write() -> None:
        call(direct, environ())
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert not done.wait(0.3)  # held while a snapshot forks
    gate.thaw()
    assert done.wait(5) and gate.changes == 2


def test_the_http_answers_are_moto_s_own(stock_moto: str, aws_endpoint: str) -> None:
    """Status, body and headers as moto's own server gives them, for answers and errors of both services
    (but the headers that differ per request or per HTTP server: werkzeug's names itself in Server)."""
    def scenario(url_of: Callable[[str], str]) -> list[Any]:
        ddb = boto3.client("dynamodb", endpoint_url=url_of("dynamodb"))
        sqs = boto3.client("sqs", endpoint_url=url_of("sqs"))
        table = f"t-{time.monotonic_ns()}"
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        item = {"pk": {"S": "a"}, "n": {"N": "1"}}
        calls: list[Callable[[], Any]] = [
            lambda: ddb.put_item(TableName=table, Item=item),
            lambda: ddb.get_item(TableName=table, Key={"pk": {"S": "a"}}),
            lambda: ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)"),
            lambda: ddb.describe_table(TableName="missing"),
            lambda: sqs.get_queue_url(QueueName="missing"),
            lambda: sqs.list_queues(QueueNamePrefix="none-such"),
        ]
        answers = []
        for make in calls:
            try:
                response = make()
            except ClientError as err:
                response = err.response
            meta = response.pop("ResponseMetadata")
            headers = {k: v for k, v in meta["HTTPHeaders"].items()
                       if k not in ("date", "x-amzn-requestid", "content-length", "connection", "via", "server")}
            answers.append((meta["HTTPStatusCode"], headers, response))
        return answers

    direct = endpoints(aws_endpoint)
    assert scenario(lambda service: direct[service]) == scenario(lambda service: stock_moto)


NO_HOST: dict[str, str | None] = {"HTTP_HOST": None}  # a request without one: the server's name and port


@pytest.mark.parametrize(("base", "extra"), [  # each pair differs in one part of the URL
    ({}, {"HTTP_HOST": "localhost.localstack.cloud:4566"}),
    ({}, {"HTTP_HOST": "127.0.0.1:80"}),  # the scheme's default port, which werkzeug drops
    (NO_HOST, {**NO_HOST, "SERVER_NAME": "localhost"}),
    (NO_HOST, {**NO_HOST, "SERVER_PORT": "4567"}),
    ({}, {"RAW_URI": "/a%2Fb"}),
    ({}, {"PATH_INFO": "/\xc3\xbc"}),  # as a WSGI server gives a UTF-8 path: decoded to an IRI
    ({}, {"QUERY_STRING": "x=1"}),
    ({}, {"SCRIPT_NAME": "/root"}),
    ({}, {"wsgi.url_scheme": "https"}),
])
def test_the_url_each_call_is_given_is_moto_s_own_however_often_it_is_remembered(
        base: dict[str, str | None], extra: dict[str, str | None]) -> None:
    from moto.moto_server.werkzeug_app import BackendRequest

    def env(changes: dict[str, str | None]) -> dict[str, Any]:
        return {k: v for k, v in environ(**changes).items() if v is not None}  # type: ignore[arg-type]

    recorder = Recorder()
    direct = Direct(recorder.app, {"DynamoDB_20120810": recorder.handler}, Gate())
    expected, plain = BackendRequest(env(extra)).raw_url, BackendRequest(env(base)).raw_url
    assert expected != plain
    for _ in range(2):  # worked out, then remembered
        call(direct, env(extra))
    call(direct, env(base))  # another URL between: each keeps its own
    call(direct, env(extra))
    assert [url for _, url, _ in recorder.handled] == [expected, expected, plain, expected]


@pytest.mark.parametrize("extra", [
    {},  # the SDKs' JSON: read here
    {"CONTENT_TYPE": "application/x-amz-json-1.1"},
    {"HTTP_CONTENT_ENCODING": "gzip"},  # moto decompresses it from the stream: left to werkzeug
    {"CONTENT_TYPE": "application/x-www-form-urlencoded"},  # a form: left to werkzeug
    {"CONTENT_LENGTH": ""},
])
def test_a_handler_sees_the_body_and_form_werkzeug_would_give_it(extra: dict[str, str]) -> None:
    from moto.core.responses import BaseResponse
    from moto.moto_server.werkzeug_app import BackendRequest

    body = b'{"TableName": "t", "a": "b=c"}' if extra.get("CONTENT_LENGTH") != "" else b""
    body = gzip.compress(body) if "HTTP_CONTENT_ENCODING" in extra else body

    def env() -> dict[str, Any]:
        return environ(**{"CONTENT_LENGTH": str(len(body)), **extra}) | {"wsgi.input": io.BytesIO(body + b"extra")}

    def view(request: Any) -> tuple[Any, ...]:  # as moto's handler reads it
        BaseResponse().decompress_request_body(request)
        return request.data, request.get_data(), dict(request.form), dict(request.files), request.stream.read()

    seen: list[tuple[Any, ...]] = []

    def handler(request: Any, url: str, headers: dict[str, str]) -> Any:
        seen.append(view(request))
        return 200, {}, "{}"

    call(Direct(Recorder().app, {"DynamoDB_20120810": handler}, Gate()), env())
    assert seen == [view(BackendRequest(env()))]
