"""Shared test plumbing: free ports, a moto server per session, a fresh stage per test."""

from __future__ import annotations

import subprocess
import uuid

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
