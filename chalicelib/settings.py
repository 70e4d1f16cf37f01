"""Runtime settings, read from the environment once per container.

Resource names are derived here and only here: ``fila-<stage>-<key>``, where the keys are those of
``infra/resources.json``. Lambda gets ``FILA_STAGE`` from ``.chalice/config.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

LOCAL_STAGE = "local"


def stage() -> str:
    return os.environ.get("FILA_STAGE", LOCAL_STAGE)


def resource_name(key: str) -> str:
    """Physical name of a queue, table or bucket from its key in infra/resources.json."""
    return f"fila-{stage()}-{key}"


def resource_key(name: str) -> str:
    """The key in infra/resources.json of a physical name of this stage."""
    return name.removeprefix(resource_name(""))


def dlq_name(queue_key: str) -> str:
    return resource_name(f"{queue_key}-dlq")


@dataclass(frozen=True)
class Settings:
    stage: str
    max_body_bytes: int
    tolerance_seconds: int
    inline_payload_bytes: int
    sweep_after_seconds: int

    @property
    def is_local(self) -> bool:
        """``local`` and ``local-<name>`` (one per test, or per developer on a shared LocalStack)."""
        return self.stage == LOCAL_STAGE or self.stage.startswith(LOCAL_STAGE + "-")


@cache
def settings() -> Settings:
    env = os.environ.get
    return Settings(
        stage=stage(),
        max_body_bytes=int(env("MAX_BODY_BYTES", str(1024 * 1024))),
        tolerance_seconds=int(env("WEBHOOK_TOLERANCE_SECONDS", "300")),
        # DynamoDB items stop at 400 KB; bodies above this go to S3 (claim check).
        inline_payload_bytes=int(env("INLINE_PAYLOAD_BYTES", str(200 * 1024))),
        # An event still `received` this long after its ack is assumed never enqueued.
        sweep_after_seconds=int(env("SWEEP_AFTER_SECONDS", "60")),
    )
