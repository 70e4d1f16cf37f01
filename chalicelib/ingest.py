"""The front door: ``POST /webhooks/{source}`` (docs/contract.md, "Webhook ingestion").

Check (size, content type, signature, payload) → store (one conditional write) → enqueue (one send)
→ ack. The event is durable before the 200; if the send fails the recovery sweep enqueues it later.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice import Blueprint, Response

from chalicelib import clock, credentials, metrics, runtime
from chalicelib.dispatch import event_message
from chalicelib.errors import (
    FilaError,
    InvalidPayload,
    PayloadTooLarge,
    Unavailable,
    UnknownSource,
    UnsupportedMediaType,
    error_response,
    json_response,
)
from chalicelib.events import Event, EventStatus
from chalicelib.logs import logger
from chalicelib.queues import Queues
from chalicelib.routing import route_for
from chalicelib.schemes import schemes
from chalicelib.settings import settings
from chalicelib.store.events import EventRecords
from chalicelib.sweep import Stranded

blueprint = Blueprint(__name__)

SCHEMES = schemes()
# Headers worth keeping with the event (never the signature ones: they are useless once verified).
KEPT_HEADERS = (
    "content-type", "user-agent", "x-github-delivery", "x-github-event", "x-github-hook-id",
    "x-shopify-topic", "x-shopify-webhook-id", "x-shopify-shop-domain", "x-shopify-api-version",
    "x-shopify-event-id", "webhook-id", "webhook-timestamp",
)
STRANDED = Stranded()  # this container's


@blueprint.route("/webhooks/{source}", methods=["POST"], content_types=["*/*"])
def receive(source: str) -> Response:
    request = blueprint.current_request
    started = time.perf_counter()
    try:
        raw = request.raw_body
        body = raw if isinstance(raw, bytes) else raw.encode()
        system = runtime.system()
        ack = accept(source, request.headers, body, events=system.events, queues=system.queues,
                     stranded=STRANDED)
    except FilaError as err:
        logger.info("webhook rejected", extra={"source": source[:32], "outcome": err.code})
        metrics.record({"source": source if source in SCHEMES else "unknown", "outcome": err.code},
                       count="Webhooks")
        return error_response(err)
    metrics.record({"source": source, "outcome": ack.outcome}, count="Webhooks",
                   milliseconds={"AckLatency": (time.perf_counter() - started) * 1000})
    return json_response(200, ack.body())


@dataclass(frozen=True)
class Ack:
    event_id: str
    duplicate: bool
    outcome: str  # accepted | accepted-not-queued | duplicate (logs and metrics)

    def body(self) -> dict[str, Any]:
        return {"received": True, "event_id": self.event_id, "duplicate": self.duplicate}


def accept(source: str, headers: Mapping[str, str], body: bytes, *, events: EventRecords, queues: Queues,
           now: float | None = None, stranded: Stranded | None = None) -> Ack:
    """Verify, store and enqueue one delivery; the ack body, or a FilaError saying why not. ``stranded``:
    what the container remembers of failed sends, to ask for an early sweep once sends work again."""
    scheme = SCHEMES.get(source)
    if scheme is None:
        raise UnknownSource(f"unknown source {source[:64]!r}; expected one of {sorted(SCHEMES)}")
    config = settings()
    if len(body) > config.max_body_bytes:
        raise PayloadTooLarge(f"body is over {config.max_body_bytes} bytes")
    lower = {k.lower(): v for k, v in headers.items()}
    if not _is_json(lower.get("content-type", "")):
        raise UnsupportedMediaType("content type must be application/json")
    now = time.time() if now is None else now
    scheme.verify(lower, body, credentials.secrets(scheme.secret_env), now, config.tolerance_seconds)
    payload = _decode(body)
    event_id, event_type = scheme.identify(lower, payload)
    route = route_for(event_type)
    event = Event(
        source=source,
        event_id=event_id,
        type=event_type,
        received_at=clock.iso(now),
        body=body,
        status=EventStatus.RECEIVED if route else EventStatus.IGNORED,
        lane=route.lane if route else None,
        headers={k: lower[k][:256] for k in KEPT_HEADERS if k in lower},
        facts=scheme.facts(payload) if route else {},
    )
    try:
        first = events.add(event)
    except (BotoCoreError, ClientError) as err:
        raise Unavailable("the event could not be stored; retry later") from err
    outcome = "accepted" if first else "duplicate"
    if first and route is not None:
        outcome = _enqueue(queues, event, route.lane, stranded or Stranded())
    logger.info("webhook", extra={"source": source, "event_id": event_id, "event_type": event_type,
                                  "outcome": outcome, "bytes": len(body)})
    return Ack(event_id, duplicate=not first, outcome=outcome)


def _enqueue(queues: Queues, event: Event, lane: str, stranded: Stranded) -> str:
    message = event_message(event)
    try:
        queues.send(lane, message)
    except Exception as err:  # stored is enough; the cause is logged, not a traceback
        logger.warning("enqueue failed; sent again once sends work, or by the recovery sweep",
                       extra={"source": event.source, "event_id": event.event_id, "error": repr(err)[:300]})
        stranded.failed(lane, message)
        return "accepted-not-queued"
    stranded.sent(queues)
    return "accepted"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _decode(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidPayload("body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidPayload("body must be a JSON object")
    return payload

