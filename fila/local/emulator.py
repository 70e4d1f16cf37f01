"""The AWS endpoint: moto's server, started here unless something already listens there."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from fila.local.defaults import stage_env

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"


class StartAborted(Exception):
    """A stop was asked for while the emulator was starting; what was started is stopped again."""


class Stoppable(Protocol):
    @property
    def requested(self) -> bool: ...


def endpoint() -> str:
    """``AWS_ENDPOINT_URL``; else LocalStack's ``LOCALSTACK_HOST`` (host:port, as localstack-client
    reads it); else the embedded default."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"]
    if os.environ.get("LOCALSTACK_HOST"):
        host = os.environ["LOCALSTACK_HOST"]
        return host if "://" in host else f"http://{host if ':' in host else host + ':4566'}"
    return DEFAULT_ENDPOINT


def host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_listening(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None,
                   aborted: Callable[[], bool] = lambda: False) -> None:
    deadline = time.monotonic() + timeout
    while not listening(host, port):
        if aborted():
            raise StartAborted(f"stopped before {host}:{port} listened")
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {host}:{port}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")
        time.sleep(0.05)


def state_dir() -> Path | None:
    """Where the embedded emulator keeps its state between runs: ``$FILA_STATE_DIR/emulator``
    (default ``.fila``, beside the checkout); ``FILA_STATE_DIR=`` (empty) keeps nothing."""
    folder = os.environ.get("FILA_STATE_DIR", ".fila")
    return Path(folder).resolve() / "emulator" if folder else None


def status(url: str) -> dict[str, Any]:
    """An embedded emulator's ``/_fila/status`` ({} for any other endpoint, LocalStack included)."""
    import urllib3

    try:
        response = urllib3.request("GET", f"{url}/_fila/status", timeout=3, retries=False)
        found = json.loads(response.data) if response.status == 200 else {}
    except (urllib3.exceptions.HTTPError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def endpoints(url: str) -> dict[str, str]:
    """The direct endpoints of an embedded emulator's service processes ({} for any other endpoint)."""
    return {str(k): str(v) for k, v in status(url).get("endpoints", {}).items()}


def start_moto(url: str, log: int | None = subprocess.DEVNULL, state: Path | None = None,
               stop: Stoppable | None = None, role: str = "main") -> subprocess.Popen[bytes] | None:
    """Start the embedded emulator on ``url`` (its state kept in the folder ``state``, if given); None if
    something already listens there (used as is). A ``stop`` asked for meanwhile stops it and raises
    StartAborted. ``role="all"``: every service in one process (CloudFormation and Lambda then see the
    queues and tables they make or read, which a split emulator keeps in other processes)."""
    host, port = host_port(url)
    if listening(host, port):
        return None
    proc = subprocess.Popen(
        [sys.executable, "-m", "fila.local.moto_server", host, str(port), "--role", role,
         *(["--state-dir", str(state)] if state else [])],
        stdout=log, stderr=log, start_new_session=True,
    )
    try:
        wait_listening(host, port, timeout=30, proc=proc, aborted=lambda: stop is not None and stop.requested)
    except StartAborted:
        proc.send_signal(signal.SIGTERM)  # it saves nothing it has not restored
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    return proc


def local_env(url: str, port: int) -> dict[str, str]:
    """Everything the stack's processes need: the endpoints, the stage and the local defaults."""
    return {**aws_env(url), **stage_env(port), "PORT": str(port)}


def aws_env(url: str) -> dict[str, str]:
    """Environment for every local process: the endpoint (and the direct ones of the embedded
    emulator's SQS and DynamoDB processes, which botocore reads per service), harmless credentials."""
    return {
        **{f"AWS_ENDPOINT_URL_{service.upper()}": direct for service, direct in endpoints(url).items()},
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }
