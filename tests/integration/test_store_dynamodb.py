"""The store contract (tests/store_contract.py) on DynamoDB (the emulator), a fresh stage per test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import aws
from chalicelib.jobs import Job, JobStatus, Options
from chalicelib.store import Change, Expect, Query
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.jobs import JobRecords
from tests.store_contract import *  # noqa: F403 - the contract's tests run here


@pytest.fixture
def store(stage: str) -> DynamoStore:
    return DynamoStore()


@pytest.fixture
def updates() -> Iterator[list[dict[str, Any]]]:
    """The parameters of every UpdateItem fila's DynamoDB client makes during the test."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(dict(params))

    events = aws.client("dynamodb").meta.events
    events.register("provide-client-params.dynamodb.UpdateItem", record, unique_id="test-updates")
    yield seen
    events.unregister("provide-client-params.dynamodb.UpdateItem", unique_id="test-updates")


def test_a_claim_and_its_settle_name_each_attribute_once_and_keep_the_job_listed(
        store: DynamoStore, updates: list[dict[str, Any]]) -> None:
    jobs = JobRecords(store)
    jobs.create(Job(job_id="c1", name="test", queue="default", data={}, options=Options(),
                    created_at="2026-11-30T10:00:00.000Z", updated_at="2026-11-30T10:00:00.000Z"))
    now = time.time()
    claimed = jobs.claim("c1", now + 60, now)
    assert claimed is not None
    assert jobs.settle(claimed, JobStatus.COMPLETED, keep=60, now=now)
    for request in updates:
        names = list(request["ExpressionAttributeNames"].values())
        assert len(names) == len(set(names)), names
        assert "time_shard" not in names  # the job exists: it keeps the shard it was created with
    page, _ = store.query(Query("jobs", "by_time", "job"), 10)
    assert [(r["job_id"], r["status"]) for r in page] == [("c1", "completed")]


def test_only_a_write_that_may_create_the_item_sets_its_constant_shard(
        store: DynamoStore, updates: list[dict[str, Any]]) -> None:
    store.update("contacts", {"email": "a@example.com"}, Change(put={"updated_at": "2026-11-30T10:00:00.000Z"}))
    store.update("contacts", {"email": "a@example.com"}, Change(put={"updated_at": "2026-11-30T10:00:01.000Z"}),
                 Expect(exists=True))
    store.update("contacts", {"email": "b@example.com"}, Change(put={"updated_at": "2026-11-30T10:00:02.000Z"}),
                 Expect(any_of=(Expect(missing=("x",)), Expect(equal={"n": 1}))))  # met without the item
    shards = ["change_shard" in r["ExpressionAttributeNames"].values() for r in updates]
    assert shards == [True, False, True]
    page, _ = store.query(Query("contacts", "by_change", "contacts", newest_first=True), 10)
    assert [r["email"] for r in page] == ["b@example.com", "a@example.com"]
