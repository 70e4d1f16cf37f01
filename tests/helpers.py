"""Shared test plumbing: free ports, a moto server per session, a fresh stage per test."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid

from chalicelib import aws, credentials, queues
from chalicelib.settings import settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def use_stage(stage: str) -> None:
    """Point chalicelib at ``stage``'s resources and forget everything cached for the previous one."""
    os.environ["FILA_STAGE"] = stage
    settings.cache_clear()
    queues.forget()
    credentials.forget()
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
