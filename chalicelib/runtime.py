"""The job system the deployed functions use: fila's handlers and hooks, DynamoDB and SQS, built once
per container (clients are created once and shared by every request and record)."""

from __future__ import annotations

from functools import cache

from chalicelib.queues import SqsQueues
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.system import JobSystem

_chosen: list[JobSystem] = []  # one given with ``use`` (a bench's), in place of the default


def system() -> JobSystem:
    return _chosen[0] if _chosen else _default()


@cache
def _default() -> JobSystem:
    from chalicelib.handlers import HANDLERS
    from chalicelib.mappings import LambdaMappings
    from chalicelib.metrics import JobMetrics
    from chalicelib.stats import LaneStats
    from chalicelib.store.lanes import LaneRecords

    store = DynamoStore()
    return JobSystem(HANDLERS, store=store, queues=SqsQueues(), mappings=LambdaMappings(),
                     hooks=[JobMetrics(), LaneStats(LaneRecords(store))])


def use(chosen: JobSystem | None) -> None:
    """Run ``chosen`` in place of the default (None: the default again)."""
    _chosen[:] = [chosen] if chosen is not None else []


def forget() -> None:
    """Build the default again at the next call (tests that move to another stage)."""
    _default.cache_clear()
