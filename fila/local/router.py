"""One address for every service: requests for a service served by a sibling process go there.

The embedded emulator runs SQS and DynamoDB in processes of their own (one GIL each, so both cores
work). fila's own processes reach them directly (``AWS_ENDPOINT_URL_SQS``, ``AWS_ENDPOINT_URL_DYNAMODB``);
a user's ``aws --endpoint-url http://127.0.0.1:4566 …`` still works for every service because the main
process forwards what is not its own, as sent (the Host header too, so queue URLs name 4566). The
service is the one the request is signed for (SigV4 credential scope), as moto itself tells them apart.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlparse

import urllib3

StartResponse = Callable[..., Any]
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"X-Amz-Credential=[^&]*?%2F\d{8}%2F[^%&]+%2F([^%&]+)%2Faws4_request", re.I)
_TARGETS = {"DynamoDB_": "dynamodb", "AmazonSQS": "sqs"}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


def service_of(environ: dict[str, Any]) -> str | None:
    """The AWS service a request is meant for, as its signature says."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", "")) or \
        _QUERY_SCOPE.search(environ.get("QUERY_STRING", ""))
    if match:
        return match.group(1)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return next((service for prefix, service in _TARGETS.items() if target.startswith(prefix)), None)


class Router:
    """WSGI: the services in ``routes`` forwarded to their process, everything else to ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], routes: dict[str, str]) -> None:
        self.app, self.routes = app, routes
        self._local = threading.local()

    def _pool(self, base: str) -> urllib3.HTTPConnectionPool:
        pools = self._local.__dict__.setdefault("pools", {})
        if base not in pools:
            parsed = urlparse(base)
            pools[base] = urllib3.HTTPConnectionPool(
                parsed.hostname or "127.0.0.1", parsed.port, maxsize=1, retries=False,
                timeout=urllib3.Timeout(connect=2, read=60))
        return pools[base]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        base = self.routes.get(service_of(environ) or "")
        if base is None:
            return self.app(environ, start_response)
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").title()] = environ[key]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        query = environ.get("QUERY_STRING")
        path = environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
        response = self._pool(base).urlopen(environ["REQUEST_METHOD"], path, body=body, headers=headers,
                                            preload_content=True, assert_same_host=False)
        out = [(k, v) for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP]
        out.append(("Content-Length", str(len(response.data))))
        start_response(f"{response.status} {response.reason or ''}".strip(), out)
        return [response.data]
