"""POST /webhooks/{source}: every row of the contract's response table, through the real app."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import Client

from fila.local.defaults import SECRETS as LOCAL_DEFAULTS
from tests.integration.conftest import Emulated
from tests.signing import (
    github_delivery,
    shopify_delivery,
    standard_delivery,
    stripe_delivery,
    stripe_event,
)


def post(client: Client, source: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    response = client.http.post(f"/webhooks/{source}", headers=headers, body=body)
    return response.status_code, json.loads(response.body)


def error_code(result: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    return result[0], result[1]["error"]["code"]


@pytest.mark.parametrize("source, delivery, lane", [
    ("stripe", lambda: stripe_delivery(stripe_event("invoice.paid")), "high"),
    ("standard", lambda: standard_delivery({"type": "customer.created", "data": {}}), "default"),
    ("github", lambda: github_delivery({"action": "opened"}, event="issues"), None),
    ("shopify", lambda: shopify_delivery({"id": 1}, topic="orders/create"), None),
])
def test_a_signed_delivery_is_stored_then_queued_once(client: Client, emulated: Emulated, source: str,
                                                      delivery: Any, lane: str | None) -> None:
    headers, body = delivery()
    status, ack = post(client, source, headers, body)
    assert status == 200 and ack["received"] is True and ack["duplicate"] is False
    (item,) = emulated.events()
    assert item["source"]["S"] == source and item["event_id"]["S"] == ack["event_id"]
    assert item["body"]["S"].encode() == body  # the exact bytes, not a re-serialisation
    assert "stripe-signature" not in item["headers"]["M"] and "x-hub-signature-256" not in item["headers"]["M"]
    if lane is None:  # no route: stored as ignored, never enqueued
        assert item["status"]["S"] == "ignored" and emulated.depth() == 0
        return
    assert item["status"]["S"] == "received"
    (message,) = emulated.messages(lane)
    sent = json.loads(message["Body"])  # what dispatch needs travels with it: no read of the event
    assert {k: sent[k] for k in ("kind", "source", "event_id")} == {"kind": "event", "source": source,
                                                                   "event_id": ack["event_id"]}
    assert sent["type"] == item["type"]["S"] and set(sent["facts"]) == {"email", "name", "amount", "currency",
                                                                         "reference"}
    assert emulated.depth() == 1


def test_a_redelivery_is_acknowledged_as_duplicate_and_enqueues_nothing(client: Client, emulated: Emulated) -> None:
    headers, body = stripe_delivery(stripe_event())
    first = post(client, "stripe", headers, body)
    again = post(client, "stripe", headers, body)
    assert first[1]["duplicate"] is False and again == (200, {**first[1], "duplicate": True})
    assert len(emulated.events()) == 1 and len(emulated.all_messages()) == 1


def test_a_payload_over_the_item_limit_goes_to_s3_and_reads_back(client: Client, emulated: Emulated) -> None:
    event = stripe_event()
    event["data"]["object"]["notes"] = "x" * 900_000
    headers, body = stripe_delivery(event)
    assert len(body) < 1024 * 1024
    status, ack = post(client, "stripe", headers, body)
    assert status == 200
    (item,) = emulated.events()
    assert "body" not in item and item["body_ref"]["S"].startswith(f"payloads/stripe/{ack['event_id']}/")
    from chalicelib import runtime
    stored = runtime.system().events.get("stripe", ack["event_id"])
    assert stored is not None and stored.body == body


def _now_minus(seconds: int) -> int:
    return int(time.time()) - seconds


Delivery = tuple[dict[str, str], bytes]


def edit(delivery: Delivery, *, headers: dict[str, str] | None = None, drop: str = "",
         old: bytes = b"", new: bytes = b"") -> Delivery:
    """A signed delivery changed after signing: headers replaced or dropped, body bytes replaced."""
    h, body = delivery
    h = {k: v for k, v in {**h, **(headers or {})}.items() if k != drop}
    return h, body.replace(old, new) if old else body


def exactly(size: int) -> dict[str, Any]:
    event = stripe_event()
    event["pad"] = "x" * (size - len(json.dumps({**event, "pad": ""})))
    return event


REJECTIONS: dict[str, tuple[str, Callable[[], Delivery], int, str]] = {
    "no signature": ("stripe", lambda: edit(stripe_delivery(stripe_event()), drop="Stripe-Signature"), 401, "invalid_signature"),
    "wrong secret": ("stripe", lambda: stripe_delivery(stripe_event(), secret="whsec_wrong"), 401, "invalid_signature"),
    "tampered body": ("stripe", lambda: edit(stripe_delivery(stripe_event()), old=b"4200", new=b"9999"), 401, "invalid_signature"),
    "malformed header": ("stripe", lambda: edit(stripe_delivery(stripe_event()), headers={"Stripe-Signature": "garbage"}), 401, "invalid_signature"),
    "github wrong signature": ("github", lambda: edit(github_delivery({}), headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}), 401, "invalid_signature"),
    "shopify wrong secret": ("shopify", lambda: shopify_delivery({}, secret="nope"), 401, "invalid_signature"),
    "signature for another source": ("github", lambda: _github_signed_like_shopify(), 401, "invalid_signature"),
    "stale stripe timestamp": ("stripe", lambda: stripe_delivery(stripe_event(), timestamp=_now_minus(301)), 401, "timestamp_out_of_tolerance"),
    "future stripe timestamp": ("stripe", lambda: stripe_delivery(stripe_event(), timestamp=_now_minus(-301)), 401, "timestamp_out_of_tolerance"),
    "stale standard timestamp": ("standard", lambda: standard_delivery({"type": "x"}, timestamp=time.time() - 600), 401, "timestamp_out_of_tolerance"),
    "future standard timestamp": ("standard", lambda: standard_delivery({"type": "x"}, timestamp=time.time() + 600), 401, "timestamp_out_of_tolerance"),
    "not json": ("shopify", lambda: _signed_shopify(b"not json{"), 400, "invalid_payload"),
    "json but not an object": ("shopify", lambda: _signed_shopify(b"[1,2]"), 400, "invalid_payload"),
    "invalid utf-8": ("shopify", lambda: _signed_shopify(b'{"a":"\xff"}'), 400, "invalid_payload"),
    "missing id": ("stripe", lambda: stripe_delivery({"type": "invoice.paid"}), 400, "invalid_payload"),
    "missing type": ("stripe", lambda: stripe_delivery({"id": "evt_1"}), 400, "invalid_payload"),
    "id of the wrong type": ("stripe", lambda: stripe_delivery({"id": 12, "type": "invoice.paid"}), 400, "invalid_payload"),
    "missing github delivery id": ("github", lambda: edit(github_delivery({}), drop="X-GitHub-Delivery"), 400, "invalid_payload"),
    "wrong content type": ("stripe", lambda: edit(stripe_delivery(stripe_event()), headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type"),
    "form encoded": ("github", lambda: edit(github_delivery({}), headers={"Content-Type": "application/x-www-form-urlencoded"}), 415, "unsupported_media_type"),
    "unknown source": ("paypal", lambda: stripe_delivery(stripe_event()), 404, "unknown_source"),
    "one byte over 1 MiB": ("stripe", lambda: stripe_delivery(exactly(1024 * 1024 + 1)), 413, "payload_too_large"),
}


def _github_signed_like_shopify() -> Delivery:
    """A GitHub-format signature made with Shopify's secret: valid for another source, not this one."""
    return github_delivery({}, secret=LOCAL_DEFAULTS["SHOPIFY_WEBHOOK_SECRET"])


def _signed_shopify(body: bytes) -> tuple[dict[str, str], bytes]:
    import base64
    import hashlib
    import hmac
    digest = base64.b64encode(hmac.new(b"fila-local-shopify", body, hashlib.sha256).digest()).decode()
    return {"Content-Type": "application/json", "X-Shopify-Hmac-Sha256": digest, "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": str(uuid.uuid4())}, body


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_a_rejected_request_gets_its_code_and_changes_nothing(client: Client, emulated: Emulated, case: str) -> None:
    source, make, status, code = REJECTIONS[case]
    headers, body = make()
    if case == "one byte over 1 MiB":
        assert len(body) == 1024 * 1024 + 1
    assert error_code(post(client, source, headers, body)) == (status, code)
    assert emulated.events() == [] and emulated.depth() == 0


def test_exactly_one_mebibyte_is_accepted(client: Client, emulated: Emulated) -> None:
    headers, body = stripe_delivery(exactly(1024 * 1024))
    assert len(body) == 1024 * 1024
    assert post(client, "stripe", headers, body)[0] == 200


def test_rotation_old_and_new_secrets_both_verify(client: Client, emulated: Emulated, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import credentials
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new")
    credentials.forget()
    for secret in ("whsec_old", "whsec_new"):
        assert post(client, "stripe", *stripe_delivery(stripe_event(), secret=secret))[0] == 200
    assert error_code(post(client, "stripe", *stripe_delivery(stripe_event(), secret="whsec_fila_local_stripe"))) == (401, "invalid_signature")
    credentials.forget()


# Ids as each provider really sends them (from their docs and webhooks): every one must be accepted.
PROVIDER_IDS = [
    ("stripe", lambda i: stripe_delivery(stripe_event("invoice.paid", event_id=i)), "evt_1NG8Du2eZvKYlo2CUI79vXWy"),
    ("github", lambda i: github_delivery({"action": "opened"}, delivery=i), "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ("shopify", lambda i: shopify_delivery({"id": 1}, webhook_id=i), "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
    ("standard", lambda i: standard_delivery({"type": "invoice.paid"}, msg_id=i), "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
]


@pytest.mark.parametrize("source, delivery, event_id", PROVIDER_IDS)
def test_every_provider_id_format_is_accepted(client: Client, emulated: Emulated, source: str, delivery: Any,
                                             event_id: str) -> None:
    status, ack = post(client, source, *delivery(event_id))
    assert status == 200 and ack["event_id"] == event_id and len(emulated.events()) == 1


BAD_IDS = ['evt_2df131d9e9"><svg onload=alert(1)>', "evt_1#2", "evt:1", "evt>1", "e" * 256]
CONTROL_IDS = ["evt\x001", "evt\x1b[31m", "evt\u0085x"]  # only a JSON body can carry these, not a header


@pytest.mark.parametrize("source, delivery, bad_id", [
    *((s, d, bad) for s, d, _ in PROVIDER_IDS for bad in BAD_IDS),
    *(("stripe", PROVIDER_IDS[0][1], bad) for bad in CONTROL_IDS),
])
def test_an_id_the_key_scheme_cannot_carry_is_invalid_and_nothing_is_stored(
        client: Client, emulated: Emulated, source: str, delivery: Any, bad_id: str) -> None:
    assert error_code(post(client, source, *delivery(bad_id))) == (400, "invalid_payload")
    assert emulated.events() == [] and emulated.depth() == 0


@pytest.mark.parametrize("bad_type", ["invoice:paid", "a#b", "x>y", "t" * 256])
def test_an_event_type_the_key_scheme_cannot_carry_is_invalid(client: Client, emulated: Emulated, bad_type: str) -> None:
    assert error_code(post(client, "stripe", *stripe_delivery(stripe_event(bad_type)))) == (400, "invalid_payload")
    assert error_code(post(client, "shopify", *shopify_delivery({"id": 1}, topic=bad_type))) == (400, "invalid_payload")
    assert error_code(post(client, "stripe", *stripe_delivery(stripe_event("\x07" + bad_type)))) == (400, "invalid_payload")
    assert emulated.events() == []
