"""Deliveries signed by the providers' own code (or their published vectors), for tests only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import stripe
from standardwebhooks.webhooks import Webhook

from fila.local.defaults import SECRETS as LOCAL_DEFAULTS


def stripe_delivery(payload: dict[str, Any], secret: str = LOCAL_DEFAULTS["STRIPE_WEBHOOK_SECRET"],
                    timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
    return {"Content-Type": "application/json", "Stripe-Signature": header}, body.encode()


def standard_delivery(payload: dict[str, Any], secret: str = LOCAL_DEFAULTS["STANDARD_WEBHOOK_SECRET"],
                      msg_id: str | None = None, timestamp: float | None = None) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, UTC)
    signature = Webhook(secret).sign(msg_id, at, body)
    return {"Content-Type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}, body.encode()


def github_delivery(payload: dict[str, Any], event: str = "issues",
                    secret: str = LOCAL_DEFAULTS["GITHUB_WEBHOOK_SECRET"],
                    delivery: str | None = None) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}",
            "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4())}, body


def shopify_delivery(payload: dict[str, Any], topic: str = "orders/create",
                     secret: str = LOCAL_DEFAULTS["SHOPIFY_WEBHOOK_SECRET"],
                     webhook_id: str | None = None) -> tuple[dict[str, str], bytes]:
    """As Shopify's docs compute it: base64(HMAC-SHA256(secret, raw body))."""
    body = json.dumps(payload).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"Content-Type": "application/json", "X-Shopify-Hmac-Sha256": digest,
            "X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4())}, body


def stripe_event(event_type: str = "payment_intent.succeeded", event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": event_type,
            "data": {"object": {"id": "pi_123", "amount": 4200, "currency": "eur",
                                "receipt_email": "ada@example.com"}}}
