"""Standard Webhooks v1: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

Signature: space-separated ``v1,<base64>`` over ``"<id>.<ts>." + body``; the key is the base64
secret after ``whsec_``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from chalicelib.errors import InvalidSignature
from chalicelib.schemes import (
    Headers,
    as_dict,
    check_timestamp,
    extract,
    header_field,
    hmac_sha256,
    require_header,
    same,
    text_field,
)


class StandardScheme:
    name = "standard"
    secret_env = "STANDARD_WEBHOOK_SECRET"

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[str], now: float,
               tolerance: int) -> None:
        msg_id = require_header(headers, "webhook-id")
        timestamp = require_header(headers, "webhook-timestamp")
        given = [
            sig for version, _, sig in
            (item.partition(",") for item in require_header(headers, "webhook-signature").split(" "))
            if version == "v1" and sig
        ]
        signed = f"{msg_id}.{timestamp}.".encode("utf-8", "surrogatepass") + body
        expected = [base64.b64encode(hmac_sha256(_key(s), signed)).decode() for s in secrets]
        if not any(same(e, g) for e in expected for g in given):
            raise InvalidSignature("no v1 signature matches")
        check_timestamp(timestamp, now, tolerance)

    def identify(self, headers: Headers, payload: dict[str, Any]) -> tuple[str, str]:
        return header_field(headers, "webhook-id"), text_field(payload.get("type"), "body type")

    def sign(self, body: bytes, secret: str, now: float, event_id: str,
             event_type: str) -> dict[str, str]:
        ts = str(int(now))
        sig = base64.b64encode(hmac_sha256(_key(secret), f"{event_id}.{ts}.".encode() + body)).decode()
        return {"webhook-id": event_id, "webhook-timestamp": ts, "webhook-signature": f"v1,{sig}"}

    def facts(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A Standard Webhook's payload is ``{"type", "timestamp", "data"}``; ``data`` is the object
        (or holds it under ``object``, as Stripe-shaped emitters do)."""
        data = as_dict(payload.get("data"))
        return extract(as_dict(data.get("object")) or data, payload)


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("STANDARD_WEBHOOK_SECRET must be whsec_<base64>") from None


SCHEME = StandardScheme()
