"""Signature schemes, one module per provider behind one interface: a new provider is one file.

Each scheme verifies a delivery over its exact raw bytes in constant time, and names the event
(id, type) from headers and the decoded JSON body. Verification is hand-written on ``hmac``: the
providers' SDKs are heavy for a Lambda bundle and don't report *why* a check failed (signature vs
timestamp), which the contract's error codes need. Tests sign with the providers' own libraries.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from chalicelib import display
from chalicelib.errors import InvalidPayload, InvalidSignature, TimestampOutOfTolerance

Headers = Mapping[str, str]  # lower-case names


class Scheme(Protocol):
    name: str
    secret_env: str

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[str], now: float,
               tolerance: int) -> None:
        """Raise InvalidSignature or TimestampOutOfTolerance unless one secret signed this body."""

    def identify(self, headers: Headers, payload: dict[str, Any]) -> tuple[str, str]:
        """(event id, event type), or raise InvalidPayload."""

    def sign(self, body: bytes, secret: str, now: float, event_id: str,
             event_type: str) -> dict[str, str]:
        """Headers an emitter would send (the CLI's `fila send`)."""

    def facts(self, payload: dict[str, Any]) -> dict[str, Any]:
        """What the handlers need (customer email and name, amount in minor units, currency,
        reference), from the shape this provider sends; never fails on an odd shape."""


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def same(expected: str | bytes, given: str | bytes) -> bool:
    """Constant-time equality that accepts any header text (compare_digest rejects non-ASCII str)."""
    if isinstance(expected, str):
        expected = expected.encode()
    if isinstance(given, str):
        given = given.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected, given)


def require_header(headers: Headers, name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise InvalidSignature(f"missing {name} header")
    return value


def check_timestamp(raw: str, now: float, tolerance: int) -> None:
    try:
        ts = int(raw)
    except ValueError:
        raise InvalidSignature("timestamp is not an integer") from None
    if abs(now - ts) > tolerance:
        raise TimestampOutOfTolerance(f"timestamp is more than {tolerance}s from now")


KEY_SEPARATORS = "#:>"  # job ids are <source>#<event id>:<job>[><chained job>]
MAX_ID_LENGTH = 255


def text_field(value: object, what: str) -> str:
    """An event id or type: what every sink and the key scheme can carry. A non-empty string of at
    most 255 characters, without control characters or the key separators ``#``, ``:`` and ``>``
    (no provider sends them: ``evt_…``, ``msg_…``, GUIDs, ``orders/create``)."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise InvalidPayload(f"{what} must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise InvalidPayload(f"{what} contains control characters")
    if any(c in KEY_SEPARATORS for c in value):
        raise InvalidPayload(f"{what} contains one of {' '.join(KEY_SEPARATORS)}, which fila's keys use")
    return value


def header_field(headers: Headers, name: str) -> str:
    return text_field(headers.get(name, "").strip() or None, f"header {name}")


def extract(obj: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The facts of a payment or customer object ``obj`` of ``payload`` (Stripe's ``data.object``, a
    Standard Webhook's ``data``, a Shopify order itself), bounded once here: every job carries them."""
    metadata, customer = as_dict(obj.get("metadata")), as_dict(obj.get("customer"))
    email = first(obj, "receipt_email", "customer_email", "email") or first(payload, "email") \
        or first(customer, "email")
    name = first(obj, "customer_name", "name") or first(metadata, "customer_name") or " ".join(
        p for p in (first(customer, "first_name"), first(customer, "last_name")) if p) or email
    amount = obj.get("amount_paid", obj.get("amount", obj.get("amount_received")))
    return {"email": display.crm(email), "name": display.crm(name),
            "amount": amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            "currency": display.crm(str(obj.get("currency") or "").upper(), 16) or None,
            "reference": display.crm(first(obj, "number", "id"), MAX_ID_LENGTH) or None}


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def first(data: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def schemes() -> dict[str, Scheme]:
    from chalicelib.schemes import github, shopify, standard, stripe

    return {s.name: s for s in (stripe.SCHEME, github.SCHEME, shopify.SCHEME, standard.SCHEME)}
