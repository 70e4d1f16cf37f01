"""``update-crm``: upsert the customer in the CRM (idempotently) and keep fila's own copy."""

from __future__ import annotations

from typing import Any

from chalicelib import contacts
from chalicelib.jobs import Job, Permanent
from chalicelib.system import handler
from chalicelib.targets import crm

MAX_EMAIL = 254  # RFC 5321's limit on a forward path


@handler("update-crm", attempts=3)
def update_crm(job: Job) -> dict[str, Any]:
    email, name = job.data.get("email"), job.data.get("name") or ""
    if not email:
        raise Permanent("the event carries no customer email")
    if len(email) > MAX_EMAIL:
        raise Permanent(f"the customer email is longer than {MAX_EMAIL} characters")
    properties = {k: job.data[k] for k in ("amount", "currency", "reference", "type")
                  if job.data.get(k) is not None}
    properties["last_event"] = f"{job.data['source']}/{job.data['event_id']}"
    contacts.save(job.store, email, name, properties)
    job.log("contact saved; calling the CRM")
    crm.upsert(email, name, properties, idempotency_key=job.job_id)
    job.log("the CRM accepted the contact")
    return {"email": email}
