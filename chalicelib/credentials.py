"""Webhook secrets and the admin token.

Local stage: the documented defaults, overridable by env. Other stages: SSM Parameter Store
SecureString ``/fila/<stage>/<NAME>``, fetched once per container and re-read after ``REFRESH_SECONDS``
so a rotation reaches warm containers. A value may hold several secrets separated by commas (rotation).
"""

from __future__ import annotations

import os
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.errors import Unavailable
from chalicelib.settings import settings

LOCAL_DEFAULTS = {
    "STRIPE_WEBHOOK_SECRET": "whsec_fila_local_stripe",
    "GITHUB_WEBHOOK_SECRET": "fila-local-github",
    "SHOPIFY_WEBHOOK_SECRET": "fila-local-shopify",
    "STANDARD_WEBHOOK_SECRET": "whsec_ZmlsYS1sb2NhbC1zdGFuZGFyZC13ZWJob29rcy1rZXk=",
    "ADMIN_TOKEN": "fila-local-admin",
}
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
        except (BotoCoreError, ClientError) as err:  # missing or unreachable: say so, retryably
            raise Unavailable(f"the {name} secret cannot be read") from err
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        _cache[name] = (now, values)
    return values


def _read(name: str) -> str:
    if settings().is_local:
        return os.environ.get(name) or LOCAL_DEFAULTS[name]
    response = aws.client("ssm").get_parameter(
        Name=f"/fila/{settings().stage}/{name}", WithDecryption=True
    )
    return str(response["Parameter"]["Value"])


def forget() -> None:
    """Drop cached values (tests, and after a rotation is announced)."""
    _cache.clear()
