"""Runtime settings, read from the environment once per container.

Resource names are derived here and only here: ``fila-<stage>-<key>``, where the keys are those of
the resources' declaration. Lambda gets ``FILA_STAGE`` from the stage's Chalice config; the local
stack sets it for its processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

LOCAL_STAGES = "local"  # `local` and `local-<name>`: secrets from the environment, never deployable


class StageNotSet(RuntimeError):
    pass


def stage() -> str:
    found = os.environ.get("FILA_STAGE")
    if not found:
        raise StageNotSet("FILA_STAGE is not set: the stage decides every resource name")
    return found


def is_local(name: str) -> bool:
    return name == LOCAL_STAGES or name.startswith(LOCAL_STAGES + "-")


def resource_name(key: str) -> str:
    """Physical name of a queue, table or bucket from its key in the resources' declaration."""
    return f"fila-{stage()}-{key}"


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
        """``local`` and ``local-<name>`` (one per test, or per developer on a shared endpoint)."""
        return is_local(self.stage)


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
