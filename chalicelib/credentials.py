"""Webhook secrets and the admin token.

Local stages (``local``, ``local-<name>``): from the environment, where the local stack puts its
documented defaults; they never run on Lambda. Every other stage: SSM Parameter Store SecureString
``/fila/<stage>/<NAME>``, fetched once per container and re-read after ``REFRESH_SECONDS`` so a
rotation reaches warm containers. A value may hold several secrets separated by commas (rotation).
A secret that cannot be read answers 503, never a default.
"""

from __future__ import annotations

import os
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.errors import Unavailable
from chalicelib.settings import settings

REFRESH_SECONDS = 300

clock = time.monotonic  # replaceable in tests
_cache: dict[str, tuple[float, tuple[str, ...]]] = {}
_lock = threading.Lock()


def secrets(name: str) -> tuple[str, ...]:
    """Every currently valid value of a secret (rotation: any one verifies)."""
    now = clock()
    hit = _cache.get(name)
    if hit is not None and now - hit[0] < REFRESH_SECONDS:
        return hit[1]
    with _lock:
        try:
            raw = _read(name)
        except (BotoCoreError, ClientError, LookupError) as err:  # missing or unreachable: say so, retryably
            raise Unavailable(f"the {name} secret cannot be read") from err
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if not values:
            raise Unavailable(f"the {name} secret is empty")
        _cache[name] = (now, values)
    return values


def _read(name: str) -> str:
    if settings().is_local:
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            raise LookupError("a local stage never runs on Lambda: its secrets are public")
        return os.environ[name]
    response = aws.client("ssm").get_parameter(
        Name=f"/fila/{settings().stage}/{name}", WithDecryption=True
    )
    return str(response["Parameter"]["Value"])


def forget() -> None:
    """Drop cached values (tests, and after a rotation is announced)."""
    _cache.clear()
