"""Shared test plumbing: free ports, a moto server per session, a fresh stage per test."""

from __future__ import annotations

import os
import subprocess
import uuid

from chalicelib import aws, credentials, queues, runtime
from chalicelib.settings import settings
from fila.local.emulator import free_port


def use_stage(stage: str) -> None:
    """Point chalicelib at ``stage``'s resources and forget everything cached for the previous one."""
    os.environ["FILA_STAGE"] = stage
    settings.cache_clear()
    queues.forget()
    credentials.forget()
    runtime.forget()
    aws.reset()


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
