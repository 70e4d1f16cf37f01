"""``send-receipt-email`` and ``send-welcome-email``: SES, text and HTML, on the rate-limited queue."""

from __future__ import annotations

from html import escape
from typing import Any

from chalicelib.handlers.slack import money
from chalicelib.jobs import Job, Permanent, handler
from chalicelib.targets import documents, mailer


def _to(job: Job) -> str:
    email = job.data.get("email")
    if not email:
        raise Permanent("the event carries no customer email")
    return str(email)


@handler("send-receipt-email", queue="email", attempts=5)
def send_receipt_email(job: Job) -> dict[str, Any]:
    to, d = _to(job), job.data
    link = documents.link(d["pdf_key"])
    amount = money(d.get("amount"), d.get("currency"))
    text = f"Hello {d.get('name') or ''},\n\nThank you for your payment of {amount}.\nYour invoice: {link}\n"
    html = (f"<p>Hello {escape(d.get('name') or '')},</p>"
            f"<p>Thank you for your payment of {escape(amount)}.</p>"
            f'<p><a href="{escape(link)}">Download your invoice (PDF)</a></p>')
    return {"message_id": mailer.send(to, f"Your receipt ({amount})", text, html), "link": link}


@handler("send-welcome-email", queue="email", attempts=5)
def send_welcome_email(job: Job) -> dict[str, Any]:
    to, name = _to(job), job.data.get("name") or ""
    text = f"Welcome {name}!\n\nYour account is ready.\n"
    html = f"<h1>Welcome {escape(name)}!</h1><p>Your account is ready.</p>"
    return {"message_id": mailer.send(to, "Welcome!", text, html)}
