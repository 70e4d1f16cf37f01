"""The store contract (tests/store_contract.py) on DynamoDB (the emulator), a fresh stage per test."""

from __future__ import annotations

import pytest

from chalicelib.store.dynamodb import DynamoStore
from tests.store_contract import *  # noqa: F403 - the contract's tests run here


@pytest.fixture
def store(stage: str) -> DynamoStore:
    return DynamoStore()
