"""fila's AWS resources and its lanes, read from their one declaration (``infra/resources.json``,
shipped beside this module as ``resources.json``). The consumers, the Chalice config, IAM, the
CloudFormation templates and the local provisioning all derive from it.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("resources.json")


@dataclass(frozen=True)
class RateLimit:
    """At most ``max`` jobs of a lane start per ``per_seconds`` (Bull's ``limiter: {max, duration}``)."""

    max: int
    per_seconds: int

    def __post_init__(self) -> None:
        if self.max < 1 or self.per_seconds < 1:
            raise ValueError(f"a rate limit needs max >= 1 and per_seconds >= 1, not {self}")


@dataclass(frozen=True)
class Lane:
    """A queue (with its DLQ) and the Lambda function that consumes it."""

    name: str
    visibility_timeout: int
    max_receive_count: int
    retention_seconds: int
    batch_size: int
    batching_window: int
    concurrency: int  # the event source mapping's maximum concurrency
    parallel: int  # records of one batch processed at once inside an invocation
    timeout: int  # the consumer function's timeout, seconds
    reserved_concurrency: dict[str, int] = field(default_factory=dict)  # per stage
    rate_limit: RateLimit | None = None

    @property
    def function(self) -> str:
        return f"consume_{self.name}"


@dataclass(frozen=True)
class Index:
    """A GSI. Its partition attribute is either an attribute of the item itself, or derived: from
    another attribute (``of``) or one value for every item (``constant``), spread over ``shards``
    partitions (``<value>#<n>``, n from the item's key), so no partition is hot."""

    name: str
    keys: tuple[tuple[str, str], ...]  # (attribute, type): partition, then sort
    shards: int = 1
    of: str | None = None
    constant: str | None = None

    @property
    def derived(self) -> bool:
        return self.of is not None or self.constant is not None

    @property
    def partition(self) -> str:
        return self.keys[0][0]

    @property
    def sort(self) -> str:
        return self.keys[1][0]

    def shard(self, value: str, item_key: str) -> str:
        """The partition value an item with key ``item_key`` files ``value`` under."""
        return value if self.shards == 1 else f"{value}#{zlib.crc32(item_key.encode()) % self.shards}"

    def partitions(self, value: str) -> list[str]:
        return [value] if self.shards == 1 else [f"{value}#{n}" for n in range(self.shards)]


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[tuple[str, str], ...]
    indexes: dict[str, Index]
    ttl: str | None


@cache
def declaration() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PATH.read_text())
    return data


@cache
def lanes() -> dict[str, Lane]:
    out = {}
    for name, spec in declaration()["queues"].items():
        consumer = dict(spec["consumer"])
        limit = _rate_limit(name, consumer.pop("rate_limit", None))
        queue = (spec["visibility_timeout"], spec["max_receive_count"], spec["retention_seconds"])
        out[name] = Lane(name, *queue, **consumer, rate_limit=limit)
    return out


def _rate_limit(lane: str, declared: dict[str, int] | None) -> RateLimit | None:
    """As declared, unless ``RATE_LIMIT_<LANE>`` (``<max>`` or ``<max>/<seconds>``) says otherwise: a
    limit that stands for an account's quota (SES's sending rate) differs between accounts."""
    variable = f"RATE_LIMIT_{lane.upper()}"
    value = os.environ.get(variable, "").strip()
    if not value:
        return RateLimit(**declared) if declared else None
    most, _, seconds = value.partition("/")
    try:
        return RateLimit(int(most), int(seconds or 1))
    except ValueError as e:
        raise ValueError(f"{variable}={value!r}: expected <max> or <max>/<seconds> ({e})") from None


@cache
def tables() -> dict[str, Table]:
    return {name: Table(name, _pairs(spec["key"]),
                        {i: Index(i, _pairs(s["keys"]), s.get("shards", 1), s.get("of"), s.get("constant"))
                         for i, s in spec["indexes"].items()},
                        spec.get("ttl"))
            for name, spec in declaration()["tables"].items() if not name.startswith("_")}


def _pairs(keys: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((name, kind) for name, kind in keys)


def index(table: str, name: str) -> Index:
    return tables()[table].indexes[name]


def function_timeouts() -> dict[str, int]:
    """Every Lambda function's timeout: the lanes' consumers and the others."""
    others = {k: v["timeout"] for k, v in declaration()["functions"].items() if not k.startswith("_")}
    return {**others, **{lane.function: lane.timeout for lane in lanes().values()}}
