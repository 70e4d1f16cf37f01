"""DynamoDB's and SQS's JSON calls straight to moto's handler, around Flask.

moto's server takes every request through Flask: a request context, URL routing, flask-cors's
after-request hook and a response object built for them. For the busy services' JSON calls (a POST with
an ``X-Amz-Target``) none of it decides anything, since one handler serves every such call, and it was
a fifth of the emulator's CPU per call. ``Direct`` calls that handler as moto's Flask view does
(moto.core.utils.convert_to_flask_response.__call__), through the gate, and answers with the same
status, headers (flask-cors's ``Access-Control-Allow-Origin: *`` included) and body. Every other request
(another service, SQS's query protocol, a browser's CORS request) goes to moto's app unchanged.

Two things werkzeug works out anew for each request are settled here, each about 5 % of an emulator
call's CPU (bench.paired): the request's URL, remembered by the parts of the environ it is made of (an
SDK's calls all share one), and a JSON body, read as werkzeug reads a body that is not a form but
without its stream wrappers and form machinery.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from fila.local.gate import GATE, Gate, passing

StartResponse = Callable[..., Any]
Handler = Callable[[Any, str, dict[str, str]], Any]
URL_PARTS = ("wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME", "PATH_INFO",
             "RAW_URI", "QUERY_STRING")  # all that moto's Request.raw_url reads
URLS_REMEMBERED = 256


def moto_handlers() -> dict[str, Handler]:
    """X-Amz-Target's prefix → the moto handler its service's Flask routes all lead to."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    return {"DynamoDB_20120810": DynamoHandler.dispatch, "AmazonSQS": SQSResponse.dispatch}


class Direct:
    def __init__(self, app: Callable[..., Iterable[bytes]], handlers: dict[str, Handler] | None = None,
                 gate: Gate = GATE) -> None:
        from botocore.exceptions import ClientError
        from flask import Response
        from moto.moto_api import recorder
        from moto.moto_server.werkzeug_app import BackendRequest

        self.app, self.gate, self.client_error, self.recorder = app, gate, ClientError, recorder
        self.handlers = moto_handlers() if handlers is None else handlers
        self.request_class, self.response_class = BackendRequest, Response
        self.urls: dict[tuple[Any, ...], str] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        prefix, _, op = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        handler = self.handlers.get(prefix)
        if handler is None or environ.get("REQUEST_METHOD") != "POST" or "HTTP_ORIGIN" in environ:
            return self.app(environ, start_response)
        request = self.request_class(environ)
        _read_json_body(request, environ)
        self.recorder._record_request(request)
        with passing(op or None, "POST", self.gate):
            try:
                result = handler(request, self._url(request, environ), dict(request.headers))
            except self.client_error as exc:  # as moto's view answers it
                result = 400, {}, exc.response["Error"]["Message"]
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        response = self.response_class(response=content, status=status, headers=headers)
        response.headers["Access-Control-Allow-Origin"] = "*"  # flask-cors's, to a request with no Origin
        return response(environ, start_response)

    def _url(self, request: Any, environ: dict[str, Any]) -> str:
        """``request.raw_url``, worked out once per distinct set of the parts it is made of."""
        parts = tuple(environ.get(name) for name in URL_PARTS)
        url = self.urls.get(parts)
        if url is None:
            url = request.raw_url
            if len(self.urls) < URLS_REMEMBERED:
                self.urls[parts] = url
        return str(url)


def _read_json_body(request: Any, environ: dict[str, Any]) -> None:
    """A plain (not compressed) JSON body as ``request.data``, with the empty form and files werkzeug gives
    any body that is not a form; anything else is left to werkzeug."""
    length = environ.get("CONTENT_LENGTH") or "0"
    if not (environ.get("CONTENT_TYPE", "").startswith("application/x-amz-json-") and length.isdecimal()
            and "HTTP_CONTENT_ENCODING" not in environ):
        return
    request._cached_data = environ["wsgi.input"].read(int(length))  # what get_data() keeps
    request.__dict__.update(stream=io.BytesIO(), form=request.parameter_storage_class(),  # the stream: read
                            files=request.parameter_storage_class())
