"""The fake CRM and Slack the local stack serves (under ``/_fakes/``), like a local mail catcher.

They keep every request they receive for the dashboard and the tests, and answer what a test scripts:

    POST   /_fakes/<target>/_script     {"responses": [{"status": 503}, {"status": 429, "retry_after": 1}],
                                         "then": 200}
    POST   /_fakes/<target>/_faults     {"transient_rate": 0.05, "reject": ["a@example.com"], "seed": 7,
                                         "timeout_seconds": 6}
    GET    /_fakes/<target>/_received   every request so far (method, path, headers, json, time, status,
                                        applied, replayed)
    DELETE /_fakes/<target>/_received   forget them, the script and the faults

The CRM answers ``PUT /_fakes/crm/contacts/<email>``; Slack ``POST /_fakes/slack``.

Like a real API that takes an ``Idempotency-Key`` (Stripe's, a CRM's), a request whose key was
already applied changes nothing again: it is answered 200 and kept with ``replayed: true``. Faults
(the chaos soak's): a share of requests fails transiently, as 503, 429 or a timeout (applied, then
answered after the client gave up: the case the key exists for), never twice in a row for one key;
a rejected contact's email gets 422 on every call until the faults are lifted.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

TARGETS = ("crm", "slack")
KEPT_HEADERS = ("content-type", "idempotency-key", "user-agent")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Faults:
    """Which requests fail, and how (see the module's docstring)."""

    def __init__(self, transient_rate: float = 0.0, reject: list[str] | None = None, seed: int = 0,
                 timeout_seconds: float = 6.0) -> None:
        self.transient_rate, self.reject = transient_rate, set(reject or ())
        self.timeout_seconds = timeout_seconds
        self.random = random.Random(seed)
        self.failed_last: set[str] = set()  # keys whose last request failed transiently

    def answer(self, key: str | None, payload: Any) -> dict[str, Any] | None:
        email = payload.get("email") if isinstance(payload, dict) else None
        if email in self.reject:
            return {"status": 422, "fault": "rejected"}
        if key in self.failed_last:
            self.failed_last.discard(key)
            return None
        if self.random.random() >= self.transient_rate:
            return None
        if key:
            self.failed_last.add(key)
        kind = self.random.choice(("503", "429", "timeout"))
        if kind == "timeout":
            return {"status": 200, "fault": "timeout", "delay": self.timeout_seconds}
        return {"status": int(kind), "fault": kind, **({"retry_after": 1} if kind == "429" else {})}


class Fake:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.script: list[dict[str, Any]] = []
        self.then = 200
        self.faults = Faults()
        self.applied: set[str] = set()  # idempotency keys whose effect happened

    def reset(self) -> None:
        self.received.clear()
        self.script.clear()
        self.then = 200
        self.faults = Faults()
        self.applied.clear()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], Any]:
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body.decode(errors="replace")
        key = headers.get("idempotency-key")
        with self.lock:
            answer = (self.script.pop(0) if self.script else self.faults.answer(key, payload)
                      or {"status": self.then})
            applied = 200 <= answer["status"] < 300 and not (key and key in self.applied)
            if applied and key:
                self.applied.add(key)
            self.received.append({"method": method, "path": path, "json": payload, "at": time.time(),
                                  "status": answer["status"], "fault": answer.get("fault"),
                                  "applied": applied, "replayed": bool(key) and not applied
                                  and 200 <= answer["status"] < 300,
                                  "headers": {k: v for k, v in headers.items() if k in KEPT_HEADERS}})
        if "delay" in answer:  # the effect happened; the answer comes after the client gave up
            time.sleep(answer["delay"])
        extra = {"Retry-After": str(answer["retry_after"])} if "retry_after" in answer else {}
        if self.name == "slack":
            return answer["status"], extra, "ok" if answer["status"] == 200 else "error"
        return answer["status"], extra, {"ok": 200 <= answer["status"] < 300, "path": path}


class Fakes:
    """A WSGI app for every fake target (mounted by the local gateway under /_fakes)."""

    def __init__(self) -> None:
        self.targets = {name: Fake(name) for name in TARGETS}

    def received_everywhere(self, start_response: StartResponse) -> Iterable[bytes]:
        """``GET /admin/local``: what the fake CRM and Slack, and SES on the emulator, received."""
        with self.targets["crm"].lock, self.targets["slack"].lock:
            seen = {name: list(fake.received) for name, fake in self.targets.items()}
        return _reply(start_response, 200, {**seen, "email": outbox()})

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        parts = environ.get("PATH_INFO", "").split("/", 3)  # "", "_fakes", target, rest
        if parts[2:3] == ["ses"]:
            return _reply(start_response, 200, outbox())
        fake = self.targets.get(parts[2] if len(parts) > 2 else "")
        rest = "/" + (parts[3] if len(parts) > 3 else "")
        method = environ["REQUEST_METHOD"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if fake is None:
            return _reply(start_response, 404, {"error": "unknown fake target"})
        if rest == "/_received":
            with fake.lock:
                if method == "DELETE":
                    fake.reset()
                return _reply(start_response, 200, list(fake.received))
        if rest == "/_faults" and method == "POST":
            plan = json.loads(body)
            with fake.lock:
                fake.faults = Faults(float(plan.get("transient_rate", 0)), list(plan.get("reject", [])),
                                     int(plan.get("seed", 0)), float(plan.get("timeout_seconds", 6)))
            return _reply(start_response, 200, {"transient_rate": fake.faults.transient_rate,
                                                "reject": len(fake.faults.reject)})
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


def outbox(last: int = 50) -> list[dict[str, Any]]:
    """``GET /_fakes/ses/_received``: the emails SES on the emulator would have sent, in order."""
    import urllib3

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    try:
        data = json.loads(urllib3.request("GET", f"{endpoint}/moto-api/data.json", timeout=5).data)
    except (urllib3.exceptions.HTTPError, ValueError):
        return []  # not an embedded emulator (LocalStack keeps its own mail)
    messages = data.get("ses", {}).get("Message", [])
    return [{"to": m["destinations"].get("ToAddresses", []), "subject": m.get("subject"),
             "html": m.get("body"), "id": m.get("id")} for m in messages[-last:]]


def _reply(start_response: StartResponse, status: int, body: Any, headers: dict[str, str] | None = None
           ) -> Iterable[bytes]:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    kind = "text/plain" if isinstance(body, str) else "application/json"
    start_response(f"{status} FAKE", [("Content-Type", kind), ("Content-Length", str(len(data))),
                                      *(headers or {}).items()])
    return [data]
