"""The store contract (tests/store_contract.py) on the in-memory store."""

from __future__ import annotations

import pytest

from fila.memory import MemoryStore
from tests.store_contract import *  # noqa: F403 - the contract's tests run here


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()
