"""fila's own copy of each contact (the contacts table), which the hourly CRM sync reconciles from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib import clock
from chalicelib.store import Change, Query, Store

TABLE = "contacts"
PAGE = 500


@dataclass(frozen=True)
class Contact:
    email: str
    name: str
    properties: dict[str, Any]
    updated_at: str


def save(store: Store, email: str, name: str, properties: dict[str, Any]) -> None:
    store.update(TABLE, {"email": email}, Change(put={"name": name, "properties": json.dumps(properties),
                                                      "updated_at": clock.iso()}))


def changed(store: Store, after: str, until: str) -> list[Contact]:
    """Contacts changed in (after, until], oldest first (an index query, every page)."""
    found, cursor = [], None
    while True:
        query = Query(TABLE, "by_change", "contacts", after=after, until=until)
        records, cursor = store.query(query, PAGE, cursor)
        found += [Contact(r["email"], r.get("name", ""), json.loads(r["properties"]), r["updated_at"])
                  for r in records]
        if cursor is None:
            return found
