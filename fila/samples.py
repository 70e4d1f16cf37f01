"""Realistic sample events per source, signed like the provider would (like `stripe trigger`)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from chalicelib.schemes import schemes
from fila.local.defaults import secret as secret_of


def _stripe(event_type: str, event_id: str) -> dict[str, Any]:
    return {
        "id": event_id, "object": "event", "api_version": "2024-06-20", "created": int(time.time()),
        "type": event_type, "livemode": False,
        "data": {"object": {
            "id": "pi_" + uuid.uuid4().hex[:24], "object": "payment_intent", "amount": 4200,
            "currency": "eur", "customer": "cus_" + uuid.uuid4().hex[:14], "status": "succeeded",
            "receipt_email": "ada@example.com",
            "metadata": {"customer_name": "Ada Lovelace", "order_id": "ord_1843"},
        }},
    }


def _github(event_type: str, event_id: str) -> dict[str, Any]:
    event, _, action = event_type.partition(".")
    body: dict[str, Any] = {
        "repository": {"id": 1296269, "full_name": "octocat/Hello-World"},
        "sender": {"login": "octocat", "id": 1},
    }
    if action:
        body["action"] = action
    if event == "issues":
        body["issue"] = {"number": 1347, "title": "Found a bug", "state": "open"}
    return body


def _shopify(event_type: str, event_id: str) -> dict[str, Any]:
    return {"id": 820982911946154508, "email": "ada@example.com", "total_price": "42.00",
            "currency": "EUR", "customer": {"first_name": "Ada", "last_name": "Lovelace"}}


def _standard(event_type: str, event_id: str) -> dict[str, Any]:
    return {"type": event_type, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {"email": "ada@example.com", "name": "Ada Lovelace", "amount": 4200, "currency": "eur"}}


BUILDERS = {"stripe": _stripe, "github": _github, "shopify": _shopify, "standard": _standard}


def signed_sample(source: str, event_type: str, event_id: str | None = None,
                  secret: str | None = None) -> tuple[str, dict[str, str], bytes]:
    """(event id, headers, body) of a sample delivery, signed with the stage's current secret."""
    scheme = schemes()[source]
    event_id = event_id or {"stripe": "evt_", "standard": "msg_"}.get(source, "") + uuid.uuid4().hex[:24]
    body = json.dumps(BUILDERS[source](event_type, event_id)).encode()
    secret = secret or secret_of(scheme.secret_env)
    headers = scheme.sign(body, secret, time.time(), event_id, event_type)
    headers["Content-Type"] = "application/json"
    headers["User-Agent"] = f"fila-send/{source}"
    return event_id, headers, body
