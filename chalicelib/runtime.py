"""The job system the deployed functions use: fila's handlers and hooks, DynamoDB and SQS, built once
per container (clients are created once and shared by every request and record)."""

from __future__ import annotations

from functools import cache

from chalicelib.queues import SqsQueues
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.system import JobSystem


@cache
def system() -> JobSystem:
    from chalicelib.handlers import HANDLERS
    from chalicelib.metrics import JobMetrics

    return JobSystem(HANDLERS, store=DynamoStore(), queues=SqsQueues(), hooks=[JobMetrics()])


def forget() -> None:
    """Build it again at the next call (tests that move to another stage)."""
    system.cache_clear()
