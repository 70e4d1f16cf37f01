"""The fake CRM and Slack the local stack serves (under ``/_fakes/``), like a local mail catcher.

They keep every request they receive for the dashboard and the tests, and answer what a test scripts:

    POST   /_fakes/<target>/_script     {"responses": [{"status": 503}, {"status": 429, "retry_after": 1}],
                                         "then": 200}
    GET    /_fakes/<target>/_received   every request so far (method, path, headers, json, time)
    DELETE /_fakes/<target>/_received   forget them and the script

The CRM answers ``PUT /_fakes/crm/contacts/<email>``; Slack ``POST /_fakes/slack``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

TARGETS = ("crm", "slack")
KEPT_HEADERS = ("content-type", "idempotency-key", "user-agent")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Fake:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = []
        self.then = 200

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], Any]:
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body.decode(errors="replace")
        with self.lock:
            answer = self.script.pop(0) if self.script else {"status": self.then}
            self.received.append({"method": method, "path": path, "json": payload, "at": time.time(),
                                  "status": answer["status"],
                                  "headers": {k: v for k, v in headers.items() if k in KEPT_HEADERS}})
        extra = {"Retry-After": str(answer["retry_after"])} if "retry_after" in answer else {}
        if self.name == "slack":
            return answer["status"], extra, "ok" if answer["status"] == 200 else "error"
        return answer["status"], extra, {"ok": 200 <= answer["status"] < 300, "path": path}


class Fakes:
    """A WSGI app for every fake target (mounted by the local gateway under /_fakes)."""

    def __init__(self) -> None:
        self.targets = {name: Fake(name) for name in TARGETS}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        parts = environ.get("PATH_INFO", "").split("/", 3)  # "", "_fakes", target, rest
        fake = self.targets.get(parts[2] if len(parts) > 2 else "")
        rest = "/" + (parts[3] if len(parts) > 3 else "")
        method = environ["REQUEST_METHOD"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if fake is None:
            return _reply(start_response, 404, {"error": "unknown fake target"})
        if rest == "/_received":
            with fake.lock:
                if method == "DELETE":
                    fake.received.clear()
                    fake.script.clear()
                    fake.then = 200
                return _reply(start_response, 200, list(fake.received))
        if rest == "/_script" and method == "POST":
            plan = json.loads(body)
            with fake.lock:
                fake.script = list(plan.get("responses", []))
                fake.then = int(plan.get("then", 200))
            return _reply(start_response, 200, {"scripted": len(fake.script), "then": fake.then})
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        status, extra, answer = fake.handle(method, rest, headers, body)
        return _reply(start_response, status, answer, extra)


def _reply(start_response: StartResponse, status: int, body: Any, headers: dict[str, str] | None = None
           ) -> Iterable[bytes]:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    kind = "text/plain" if isinstance(body, str) else "application/json"
    start_response(f"{status} FAKE", [("Content-Type", kind), ("Content-Length", str(len(data))),
                                      *(headers or {}).items()])
    return [data]
