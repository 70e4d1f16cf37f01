"""Text from an event (a customer's name, an invoice number) as each sink may show it.

An accepted event's fields come from whoever created the customer or the payment, so every value a
sink displays passes through that sink's rule here, once, in the target that talks to the sink:

- every sink: control characters and the invisible characters that reorder or hide text (bidi
  overrides and isolates, zero-width spaces) are removed, whitespace runs become one space, and the
  value is cut to a length with "…"; zero-width joiners stay (emoji and several scripts need them);
- Slack mrkdwn: ``&``, ``<`` and ``>`` escaped as Slack requires, so a name can neither mention
  (``<!channel>``) nor link (``<https://…|Invoice>``); fila's own markup is the template's only;
- email HTML: HTML-escaped (the text part and the subject are plain, SES takes them as fields);
- PDF: what the core fonts can draw (Latin-1; others become "?");
- CRM JSON: no escaping (JSON is data), only the length bound.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

NAME_LIMIT = 120
# fields that may be longer: a link fila made, an event's <source>/<id> (ids are at most 255)
FIELD_LIMITS = {"link": 2048, "event": 300}
CRM_TEXT_LIMIT = 1000
KEPT_FORMAT = frozenset("\u200c\u200d")  # zero-width non-joiner and joiner: how some text is written
LINE_BREAKS = frozenset(("Cc", "Zl", "Zp"))
_SPACES = re.compile(r"\s+")


def plain(value: Any, limit: int = NAME_LIMIT) -> str:
    """One line of visible text, at most ``limit`` characters. Format characters (Unicode ``Cf``:
    bidi overrides and isolates, zero-width spaces, BOMs) go, but for the joiners."""
    text = ("" if value is None else str(value))[: 20 * limit]  # bounded work for a 100 kB name
    kept = []
    for c in text:
        category = unicodedata.category(c)
        if category == "Cf" and c not in KEPT_FORMAT:
            continue
        kept.append(" " if category in LINE_BREAKS else c)
    text = _SPACES.sub(" ", "".join(kept)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def slack(value: Any, limit: int = NAME_LIMIT) -> str:
    """For Slack mrkdwn: https://api.slack.com/reference/surfaces/formatting#escaping"""
    return plain(value, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_html(value: Any, limit: int = NAME_LIMIT) -> str:
    return html.escape(plain(value, limit), quote=True)


def pdf(value: Any, limit: int = NAME_LIMIT) -> str:
    """fpdf2's core fonts draw Latin-1 only; fpdf2 itself escapes PDF string syntax."""
    return plain(value, limit).replace("…", "...").encode("latin-1", "replace").decode("latin-1")


def fill(template: str, escape: Any, fields: dict[str, Any]) -> str:
    """``template`` (fila's own text and markup) with each field through a sink's rule."""
    return template.format(**{k: escape(v, FIELD_LIMITS.get(k, NAME_LIMIT)) for k, v in fields.items()})


def crm(value: Any, limit: int = CRM_TEXT_LIMIT) -> Any:
    """Strings cut to ``limit``; numbers and nulls as they are (the CRM's JSON is data, not markup)."""
    return value[:limit] if isinstance(value, str) else value
