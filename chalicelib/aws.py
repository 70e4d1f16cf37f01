"""AWS clients, created once per container and shared by every request and record.

boto3 reads ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) itself, so the same code talks to
AWS or to any endpoint that speaks its APIs.
Clients (not resources) because clients are thread-safe.

DynamoDB's requests skip botocore's parameter validation: the store builds every one of them in one
place (tested against the emulator) and the service validates them again; botocore's walk of every
AttributeValue was about a fifth of the consumer's client CPU for a no-op job.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=64,
)
_UNVALIDATED = _CONFIG.merge(Config(parameter_validation=False))
_BUILT_BY_THE_STORE = {"dynamodb"}
_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: list[boto3.session.Session] = []  # one per container: a new one reloads botocore's data files


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is None:
        with _lock:  # making a client from a session is not thread-safe
            found = _clients.get(service)
            if found is None:
                if not _session:
                    _session.append(boto3.session.Session())
                found = _clients[service] = _session[0].client(service, config=config(service))
    return found


def config(service: str) -> Config:
    """How fila's client of ``service`` is configured (benches give their own clients the same)."""
    return _UNVALIDATED if service in _BUILT_BY_THE_STORE else _CONFIG


def is_conditional_failure(err: ClientError) -> bool:
    """A conditional write that lost: the expected answer of every "at most once" step."""
    return bool(err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def reset() -> None:
    """Forget every client (tests that move the endpoint)."""
    with _lock:
        _clients.clear()
        _session.clear()
