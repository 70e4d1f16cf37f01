"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]``, HMAC-SHA256 over ``"<t>." + body``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.errors import InvalidSignature
from chalicelib.schemes import (
    Headers,
    as_dict,
    check_timestamp,
    extract,
    hmac_sha256,
    require_header,
    same,
    text_field,
)

HEADER = "stripe-signature"


class StripeScheme:
    name = "stripe"
    secret_env = "STRIPE_WEBHOOK_SECRET"

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[str], now: float,
               tolerance: int) -> None:
        timestamp, signatures = _parse(require_header(headers, HEADER))
        signed = timestamp.encode() + b"." + body
        expected = [hmac_sha256(s.encode(), signed).hex() for s in secrets]
        if not any(same(e, given) for e in expected for given in signatures):
            raise InvalidSignature("no v1 signature matches")
        check_timestamp(timestamp, now, tolerance)

    def identify(self, headers: Headers, payload: dict[str, Any]) -> tuple[str, str]:
        return text_field(payload.get("id"), "body id"), text_field(payload.get("type"), "body type")

    def sign(self, body: bytes, secret: str, now: float, event_id: str,
             event_type: str) -> dict[str, str]:
        t = str(int(now))
        v1 = hmac_sha256(secret.encode(), t.encode() + b"." + body).hex()
        return {"Stripe-Signature": f"t={t},v1={v1}"}

    def facts(self, payload: dict[str, Any]) -> dict[str, Any]:
        return _facts(payload)


def _facts(payload: dict[str, Any]) -> dict[str, Any]:
    """Stripe's event carries the object it is about in ``data.object``."""
    return extract(as_dict(as_dict(payload.get("data")).get("object")), payload)


def _parse(header: str) -> tuple[str, list[str]]:
    timestamp, signatures = "", []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if not timestamp or not signatures:
        raise InvalidSignature("Stripe-Signature needs t= and at least one v1=")
    return timestamp, signatures


SCHEME = StripeScheme()
