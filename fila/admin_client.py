"""The CLI's side of the admin API: URL and token from flags or env, clear errors, progress bars."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from fila.local.defaults import SECRETS


class AdminError(Exception):
    pass


class Admin:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        local = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        self.url = (url or os.environ.get("FILA_URL") or local).rstrip("/")
        self.token = token or os.environ.get("ADMIN_TOKEN") or SECRETS["ADMIN_TOKEN"]

    def call(self, method: str, path: str, **params: Any) -> Any:
        try:
            response = requests.request(method, f"{self.url}/admin/api{path}", timeout=120,
                                        headers={"Authorization": f"Bearer {self.token}"},
                                        params={k: v for k, v in params.items() if v is not None})
        except requests.RequestException as err:
            raise AdminError(f"cannot reach fila at {self.url}: {type(err).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise AdminError(f"{response.status_code} from {self.url}: not JSON") from None
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise AdminError(f"{response.status_code} {error.get('code', '')}: {error.get('message', body)}")
        return body


def progress(done: int, total: int, label: str, width: int = 30) -> None:
    """A one-line progress bar on stderr (hand-written: ten lines do not justify a dependency)."""
    total = max(total, 1)
    filled = int(width * min(done, total) / total)
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def while_running(work: Callable[[], Any], tick: Callable[[], None], every: float = 0.3) -> Any:
    """Run ``work`` in a thread and call ``tick`` until it returns (live progress of a server-side task)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = work()
        except Exception as err:
            result["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while thread.is_alive():
        tick()
        time.sleep(every)
    if "error" in result:
        raise result["error"]
    return result["value"]
