"""Shopify: ``X-Shopify-Hmac-Sha256: <base64>`` over the raw body; no timestamp in the scheme."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from chalicelib.errors import InvalidSignature
from chalicelib.schemes import Headers, header_field, hmac_sha256, require_header, same

HEADER = "x-shopify-hmac-sha256"


class ShopifyScheme:
    name = "shopify"
    secret_env = "SHOPIFY_WEBHOOK_SECRET"

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[str], now: float,
               tolerance: int) -> None:
        given = require_header(headers, HEADER)
        if not any(same(_digest(s, body), given) for s in secrets):
            raise InvalidSignature("signature does not match")

    def identify(self, headers: Headers, payload: dict[str, Any]) -> tuple[str, str]:
        return header_field(headers, "x-shopify-webhook-id"), header_field(headers, "x-shopify-topic")

    def sign(self, body: bytes, secret: str, now: float, event_id: str,
             event_type: str) -> dict[str, str]:
        return {
            "X-Shopify-Hmac-Sha256": _digest(secret, body),
            "X-Shopify-Webhook-Id": event_id,
            "X-Shopify-Topic": event_type,
        }


def _digest(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac_sha256(secret.encode(), body)).decode()


SCHEME = ShopifyScheme()
