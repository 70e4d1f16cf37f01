"""API Gateway, done locally: a threaded WSGI server (waitress) in front of Chalice's LocalGateway.

`chalice local` serves one request per thread with no keep-alive limits or body cap; waitress gives
a bounded thread pool, HTTP/1.1 keep-alive and API Gateway's 10 MB payload limit.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from chalice import Chalice
from chalice.config import Config
from chalice.local import LocalGateway, LocalGatewayException

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class ChaliceWSGI:
    def __init__(self, app: Chalice, stage: str, lambda_timeout: int = 10) -> None:
        config = Config.create(chalice_stage=stage, lambda_timeout=lambda_timeout, lambda_memory_size=512)
        self.gateway = LocalGateway(app, config)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = {key[5:].replace("_", "-").lower(): value
                   for key, value in environ.items() if key.startswith("HTTP_")}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        body = environ["wsgi.input"].read() or None
        # As sent (API Gateway routes on the raw path; a decoded '#' or '?' would cut it short).
        path = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        if "?" not in path and environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        try:
            response = self.gateway.handle_request(environ["REQUEST_METHOD"], path, headers, body)
            status, out_headers = response["statusCode"], dict(response["headers"])
            payload = response.get("body") or b""
            if response.get("isBase64Encoded"):
                payload = base64.b64decode(payload)
        except LocalGatewayException as err:
            status, out_headers, payload = err.CODE, dict(err.headers), err.body or b""
        if isinstance(payload, str):
            payload = payload.encode()
        out_headers.setdefault("Content-Type", "application/json")
        out_headers["Content-Length"] = str(len(payload))
        start_response(f"{status} {_reason(status)}", [(k, str(v)) for k, v in out_headers.items()])
        return [payload]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class WithFakes:
    """``/_fakes/…`` to the local fake targets and ``/admin/local`` (what they and SES received, for the
    dashboard) to them too; everything else to the app. Neither is ever deployed."""

    def __init__(self, app: ChaliceWSGI, fakes: Any) -> None:
        self.app, self.fakes = app, fakes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_fakes/"):
            return list(self.fakes(environ, start_response))
        if path == "/admin/local":
            return self.fakes.received_everywhere(start_response)
        return self.app(environ, start_response)


def server(app: Chalice, stage: str, host: str, port: int, threads: int = 16) -> Any:
    """A waitress server for the app and the fakes; ``.run()`` serves until the process exits."""
    from waitress import create_server

    from fila.local.fakes import Fakes
    from fila.local.ports import OPEN_DOORS

    return create_server(WithFakes(ChaliceWSGI(app, stage), Fakes()), host=host, port=port, threads=threads,
                         max_request_body_size=API_GATEWAY_MAX_BODY, ident="fila", **OPEN_DOORS)
