from __future__ import annotations

from collections.abc import Iterator

import pytest

from fila.local.running import Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The real local stack for the session: emulator, API, consumers, schedules."""
    running = Stack().start()
    yield running
    running.stop()
