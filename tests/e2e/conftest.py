from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from chalicelib import aws, queues
from chalicelib.credentials import forget
from fila.local import emulator
from fila.local.running import Stack
from tests.helpers import use_stage


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The real local stack for the session: emulator, API, consumers, schedules. Without snapshots
    (test_stack's tests keep and restore state): forking the emulator every second while a hundred
    tests change it cost this group a tenth of its CPU."""
    running = Stack(FILA_STATE_DIR="").start()
    yield running
    running.stop()


@pytest.fixture
def on_stack(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """This test process talks to the running stack's emulator and fakes; the fakes start clean."""
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(key)
    for key, value in emulator.local_env(stack.aws, stack.port).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PORT", str(stack.port))
    use_stage("local")
    for target in ("crm", "slack"):
        requests.delete(f"{stack.base}/_fakes/{target}/_received", timeout=5)
    yield stack
    monkeypatch.undo()
    aws.reset()
    queues.forget()
    forget()
