"""`fila send`: realistic signed samples for every source, accepted by the running stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fila.local.running import Stack
from tests.e2e.test_ingest_e2e import event_status, wait_status

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("source, event_type, status", [
    ("stripe", "payment_intent.succeeded", "completed"),
    ("standard", "customer.created", "completed"),
    ("github", "issues.opened", "ignored"),
    ("shopify", "orders/create", "ignored"),
])
def test_fila_send_is_accepted_and_taken(stack: Stack, source: str, event_type: str, status: str) -> None:
    out = subprocess.run([sys.executable, "-m", "fila.cli", "send", source, event_type, "--url", stack.base],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    code, _, _, event_id, _ = out.stdout.split(" ", 4)
    assert code == "200" and '"duplicate":false' in out.stdout
    wait_status(stack, source, event_id, status)
    assert event_status(stack, source, event_id) == status
