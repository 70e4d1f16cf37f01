"""``send-receipt-email`` and ``send-welcome-email``: SES, text and HTML, on the rate-limited queue."""

from __future__ import annotations

from typing import Any

from chalicelib.handlers.slack import money
from chalicelib.jobs import Job, Permanent
from chalicelib.system import handler
from chalicelib.targets import documents, mailer


def _to(job: Job) -> str:
    email = job.data.get("email")
    if not email:
        raise Permanent("the event carries no customer email")
    return str(email)


@handler("send-receipt-email", lane="email", attempts=5)
def send_receipt_email(job: Job) -> dict[str, Any]:
    to, d = _to(job), job.data
    link = documents.link(d["pdf_key"])
    message_id = mailer.send(
        to, "Your receipt ({amount})",
        "Hello {name},\n\nThank you for your payment of {amount}.\nYour invoice: {link}\n",
        "<p>Hello {name},</p><p>Thank you for your payment of {amount}.</p>"
        '<p><a href="{link}">Download your invoice (PDF)</a></p>',
        name=d.get("name") or "", amount=money(d.get("amount"), d.get("currency")), link=link)
    return {"message_id": message_id, "link": link}


@handler("send-welcome-email", lane="email", attempts=5)
def send_welcome_email(job: Job) -> dict[str, Any]:
    message_id = mailer.send(_to(job), "Welcome!", "Welcome {name}!\n\nYour account is ready.\n",
                             "<h1>Welcome {name}!</h1><p>Your account is ready.</p>",
                             name=job.data.get("name") or "")
    return {"message_id": message_id}
