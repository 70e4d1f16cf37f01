"""Webhooks over real HTTP to the running stack, taken by its real consumers."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import requests

from fila.local.running import Stack
from tests.signing import stripe_delivery, stripe_event

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]  # one worker: one session stack


def event_status(stack: Stack, source: str, event_id: str) -> str | None:
    """As an operator reads it (the admin API: the stored status, then its jobs')."""
    response = requests.get(f"{stack.base}/admin/api/events/{source}/{quote(event_id, safe='')}", timeout=10,
                            headers={"Authorization": "Bearer fila-local-admin"})
    return str(response.json()["status"]) if response.status_code == 200 else None


def wait_status(stack: Stack, source: str, event_id: str, wanted: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (status := event_status(stack, source, event_id)) != wanted:
        assert time.monotonic() < deadline, f"status {status!r}, wanted {wanted!r}"
        time.sleep(0.1)


def test_a_signed_event_is_acked_then_taken_by_the_consumer(stack: Stack) -> None:
    headers, body = stripe_delivery(stripe_event("payment_intent.succeeded"))
    response = requests.post(stack.base + "/webhooks/stripe", headers=headers, data=body, timeout=5)
    assert response.status_code == 200
    ack = response.json()
    assert ack == {"received": True, "event_id": json.loads(body)["id"], "duplicate": False}
    wait_status(stack, "stripe", ack["event_id"], "completed", timeout=60)


def test_concurrent_redeliveries_over_http_are_acked_once(stack: Stack) -> None:
    headers, body = stripe_delivery(stripe_event("invoice.paid"))

    def deliver(_: int) -> dict[str, object]:
        return dict(requests.post(stack.base + "/webhooks/stripe", headers=headers, data=body, timeout=10).json())

    with ThreadPoolExecutor(8) as pool:
        acks = list(pool.map(deliver, range(8)))
    assert sorted(bool(a["duplicate"]) for a in acks) == [False] + [True] * 7
    wait_status(stack, "stripe", str(acks[0]["event_id"]), "completed", timeout=60)
