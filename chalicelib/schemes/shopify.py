"""Shopify: ``X-Shopify-Hmac-Sha256: <base64>`` over the raw body; no timestamp in the scheme."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib import display
from chalicelib.errors import InvalidSignature
from chalicelib.schemes import Headers, extract, first, header_field, hmac_sha256, require_header, same

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

    def facts(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A Shopify webhook's payload is the order or customer itself (an order's ``name`` is its number,
        "#1001": the customer's name is its customer's)."""
        found = extract({k: v for k, v in payload.items() if k != "name"}, payload)
        if payload.get("total_price") is not None:
            found["amount"] = _minor_units(payload["total_price"])
        found["reference"] = display.crm(first(payload, "name") or str(payload.get("id") or ""), 255) or None
        return found


def _minor_units(price: Any) -> int | None:
    """Shopify's prices are decimal strings ("42.00"): in minor units, as the other providers give them."""
    try:
        return int((Decimal(str(price)) * 100).to_integral_value())
    except (InvalidOperation, ValueError):
        return None


def _digest(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac_sha256(secret.encode(), body)).decode()


SCHEME = ShopifyScheme()
