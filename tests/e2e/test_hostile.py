# mypy: disable-error-code="misc"
"""Hostile input over real HTTP: every case gets its contract code, no 5xx, nothing stored, and the
API stays healthy. Raw http.client, so duplicate, oversized and odd headers go out as written."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chalicelib.schemes import schemes
from fila.local.running import Stack
from fila.samples import signed_sample
from tests.signing import stripe_delivery, stripe_event

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]  # one worker: one session stack
SOURCES = ("stripe", "github", "shopify", "standard")
SIGNATURE_HEADER = {"stripe": "Stripe-Signature", "github": "X-Hub-Signature-256",
                    "shopify": "X-Shopify-Hmac-Sha256", "standard": "webhook-signature"}
Request = tuple[str, list[tuple[str, str]], bytes]  # source, headers (repeatable), body
OTHER_SECRET = {"stripe": "fila-local-github", "github": "fila-local-shopify", "shopify": "fila-local-github",
                "standard": "whsec_b3RoZXItc291cmNlLWtleQ=="}


def send(stack: Stack, source: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=15)
    conn.putrequest("POST", f"/webhooks/{source}", skip_accept_encoding=True)
    names = {k.lower() for k, _ in headers}
    if "content-length" not in names:
        conn.putheader("Content-Length", str(len(body)))
    for name, value in headers:
        conn.putheader(name, value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value)
    conn.endheaders(body)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, {"raw": raw[:200].decode(errors="replace")}


def signed(source: str, event_type: str = "customer.updated", body: bytes | None = None,
           secret: str | None = None, now: float | None = None) -> tuple[list[tuple[str, str]], bytes]:
    """A sample delivery, optionally with another body signed in its place."""
    event_id, headers, sample = signed_sample(source, event_type, secret=secret)
    if body is not None:
        headers = schemes()[source].sign(body, secret or _secret(source), now or time.time(), event_id, event_type)
        headers["Content-Type"] = "application/json"
    return list(headers.items()), body if body is not None else sample


def _secret(source: str) -> str:
    from fila.local.defaults import SECRETS as LOCAL_DEFAULTS
    return LOCAL_DEFAULTS[schemes()[source].secret_env]


def without(headers: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() != name.lower()]


def replace(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [*without(headers, name), (name, value)]


def nested(depth: int) -> bytes:
    return b'{"id":"evt_deep","type":"x","a":' + b"[" * depth + b"]" * depth + b"}"


def cases() -> dict[str, tuple[Callable[[], Request], set[int], str | None]]:
    out: dict[str, tuple[Callable[[], Request], set[int], str | None]] = {}

    def add(name: str, make: Callable[[], Request], codes: set[int], code: str | None) -> None:
        out[name] = (make, codes, code)

    for s in SOURCES:
        sig = SIGNATURE_HEADER[s]
        add(f"{s}: no signature", lambda s=s, sig=sig: (s, without(signed(s)[0], sig), signed(s)[1]), {401}, "invalid_signature")
        add(f"{s}: garbage signature", lambda s=s, sig=sig: (s, replace(signed(s)[0], sig, "%%garbage%%"), signed(s)[1]), {401}, "invalid_signature")
        add(f"{s}: 8 KiB signature header", lambda s=s, sig=sig: (s, replace(signed(s)[0], sig, "v1=" + "a" * 8192), signed(s)[1]), {401}, "invalid_signature")
        add(f"{s}: signature with CR/LF-free injection", lambda s=s, sig=sig: (s, replace(signed(s)[0], sig, "x; X-Admin: true"), signed(s)[1]), {401}, "invalid_signature")
        add(f"{s}: unicode in the signature", lambda s=s, sig=sig: (s, replace(signed(s)[0], sig, "v1,ü€𝄞"), signed(s)[1]), {401}, "invalid_signature")
        add(f"{s}: another source's secret", lambda s=s: (s, *signed(s, secret=OTHER_SECRET[s])), {401}, "invalid_signature")
        add(f"{s}: body changed after signing", lambda s=s: (s, signed(s)[0], signed(s)[1] + b" "), {401}, "invalid_signature")
        add(f"{s}: invalid UTF-8 body, signed", lambda s=s: (s, *signed(s, body=b'{"id":"evt_x","type":"\xff\xfe"}')), {400}, "invalid_payload")
        add(f"{s}: 10,000-deep JSON, signed", lambda s=s: (s, *signed(s, body=nested(10_000))), {400}, "invalid_payload")
        add(f"{s}: JSON array, signed", lambda s=s: (s, *signed(s, body=b"[1,2,3]")), {400}, "invalid_payload")
        add(f"{s}: JSON null, signed", lambda s=s: (s, *signed(s, body=b"null")), {400}, "invalid_payload")
        add(f"{s}: empty body, signed", lambda s=s: (s, *signed(s, body=b"")), {400}, "invalid_payload")
        add(f"{s}: text/plain", lambda s=s: (s, replace(signed(s)[0], "Content-Type", "text/plain"), signed(s)[1]), {415}, "unsupported_media_type")
        add(f"{s}: no content type", lambda s=s: (s, without(signed(s)[0], "Content-Type"), signed(s)[1]), {415}, "unsupported_media_type")
        add(f"{s}: 1 MiB + 1", lambda s=s: (s, signed(s)[0], b" " * (1024 * 1024 + 1)), {413}, "payload_too_large")
    for s in ("stripe", "standard"):
        add(f"{s}: replayed signature, 10 minutes old", lambda s=s: (s, *signed(s, body=json.dumps(
            {"id": "evt_old", "type": "customer.updated"}).encode(), now=time.time() - 600)), {401}, "timestamp_out_of_tolerance")
        add(f"{s}: signature from the future", lambda s=s: (s, *signed(s, body=json.dumps(
            {"id": "evt_future", "type": "customer.updated"}).encode(), now=time.time() + 600)), {401}, "timestamp_out_of_tolerance")
    for name, payload in (("id is a number", {"id": 12, "type": "x"}), ("type is a list", {"id": "e", "type": ["x"]}),
                          ("id is empty", {"id": "", "type": "x"}), ("id is 300 characters", {"id": "e" * 300, "type": "x"}),
                          ("type has a newline", {"id": "e", "type": "a\nb"}), ("id has a NUL", {"id": "e\u0000", "type": "x"})):
        add(f"stripe: {name}", lambda payload=payload: ("stripe", *signed("stripe", body=json.dumps(payload).encode())), {400}, "invalid_payload")
    add("standard: webhook-id too long", lambda: ("standard", replace(signed("standard")[0], "webhook-id", "m" * 5000), signed("standard")[1]), {401}, "invalid_signature")
    add("github: delivery id missing", lambda: ("github", without(signed("github", "issues.opened")[0], "X-GitHub-Delivery"), signed("github", "issues.opened")[1]), {401, 400}, None)
    add("stripe: duplicate Stripe-Signature headers (one forged)", lambda: ("stripe", [*signed("stripe")[0], ("Stripe-Signature", "t=1,v1=00")], signed("stripe")[1]), {401}, "invalid_signature")
    add("unknown source", lambda: ("paypal", *signed("stripe")), {404}, "unknown_source")
    add("source with path traversal", lambda: ("..%2f..%2fadmin", *signed("stripe")), {403, 404}, None)
    add("unicode source", lambda: ("str%C3%AFpe", *signed("stripe")), {404}, "unknown_source")
    return out


CASES = cases()


def stored_events(stack: Stack) -> int:
    ddb = boto3.client("dynamodb", endpoint_url=stack.aws)
    return int(ddb.scan(TableName="fila-local-events", Select="COUNT")["Count"])


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_gets_its_contract_code_and_stores_nothing(stack: Stack, name: str) -> None:
    make, codes, code = CASES[name]
    source, headers, body = make()
    before = stored_events(stack)
    status, answer = send(stack, source, headers, body)
    assert status in codes, (status, answer)
    if code is not None:
        assert answer["error"]["code"] == code
    assert stored_events(stack) == before


def test_slow_and_truncated_bodies_leave_the_api_healthy(stack: Stack) -> None:
    headers, body = stripe_delivery(stripe_event("customer.updated"))
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as slow:  # a slow emitter
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        slow.sendall(f"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode())
        for i in range(0, len(body), 64):
            slow.sendall(body[i:i + 64])
            time.sleep(0.02)
        assert slow.recv(200).startswith(b"HTTP/1.1 200")
    for _ in range(5):  # truncated: promise more than is sent, then hang up
        with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as cut:
            cut.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 5000\r\n\r\n{\"id\":")
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as bad:  # not HTTP at all
        bad.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64)
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
