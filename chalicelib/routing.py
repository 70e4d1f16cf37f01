"""Which jobs an event type starts, and on which lane: one readable table (docs/contract.md, "Processing").

Patterns are shell-style (``invoice.*``); the first matching row wins. An event type with no row is
stored with status ``ignored`` and never enqueued.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Route:
    patterns: tuple[str, ...]
    jobs: tuple[str, ...]
    lane: str = "default"


ROUTES: tuple[Route, ...] = (
    Route(
        ("payment_intent.succeeded", "invoice.paid", "payment.success"),
        ("update-crm", "notify-slack", "generate-invoice-pdf"),
        lane="high",
    ),
    Route(("customer.created",), ("update-crm", "send-welcome-email")),
    Route(("customer.updated",), ("update-crm",)),
)


def route_for(event_type: str) -> Route | None:
    for route in ROUTES:
        if any(fnmatchcase(event_type, p) for p in route.patterns):
            return route
    return None
