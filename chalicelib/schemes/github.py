"""GitHub: ``X-Hub-Signature-256: sha256=<hex>`` over the raw body; no timestamp in the scheme."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.errors import InvalidSignature
from chalicelib.schemes import Headers, extract, header_field, hmac_sha256, require_header, same, text_field

HEADER = "x-hub-signature-256"


class GitHubScheme:
    name = "github"
    secret_env = "GITHUB_WEBHOOK_SECRET"

    def verify(self, headers: Headers, body: bytes, secrets: Sequence[str], now: float,
               tolerance: int) -> None:
        prefix, _, given = require_header(headers, HEADER).partition("=")
        if prefix != "sha256" or not given:
            raise InvalidSignature("X-Hub-Signature-256 must be sha256=<hex>")
        if not any(same(hmac_sha256(s.encode(), body).hex(), given) for s in secrets):
            raise InvalidSignature("signature does not match")

    def identify(self, headers: Headers, payload: dict[str, Any]) -> tuple[str, str]:
        event_id = header_field(headers, "x-github-delivery")
        event_type = header_field(headers, "x-github-event")
        action = payload.get("action")
        if action is not None:
            event_type = text_field(f"{event_type}.{text_field(action, 'body action')}", "event type")
        return event_id, event_type

    def sign(self, body: bytes, secret: str, now: float, event_id: str,
             event_type: str) -> dict[str, str]:
        event, _, _ = event_type.partition(".")
        return {
            "X-Hub-Signature-256": "sha256=" + hmac_sha256(secret.encode(), body).hex(),
            "X-GitHub-Delivery": event_id,
            "X-GitHub-Event": event,
        }

    def facts(self, payload: dict[str, Any]) -> dict[str, Any]:
        """GitHub's events are about repositories, not customers: whatever an email field says."""
        return extract({}, payload)


SCHEME = GitHubScheme()
