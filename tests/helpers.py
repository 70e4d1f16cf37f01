"""Shared test plumbing: free ports, a moto server per session, a fresh stage per test, answers given
in-process."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

from fila.local.emulator import free_port
from fila.local.provision import use_stage


def unique_stage() -> str:
    return "local-" + uuid.uuid4().hex[:10]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


__all__ = ["free_port", "stop", "unique_stage", "use_stage"]


class Streamed:
    """A response body botocore reads as streamed (answers given in a test, with no network)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.raw
