"""``notify-slack``: one readable message per payment."""

from __future__ import annotations

from typing import Any

from chalicelib.jobs import Job
from chalicelib.system import handler
from chalicelib.targets import slack


def money(amount: int | None, currency: str | None) -> str:
    return "an unknown amount" if amount is None else f"{amount / 100:,.2f} {currency or ''}".strip()


@handler("notify-slack", attempts=3)
def notify_slack(job: Job) -> dict[str, Any]:
    d = job.data
    text = slack.post(":moneybag: {amount} from {who} ({type}, event {event})",
                      amount=money(d.get("amount"), d.get("currency")),
                      who=d.get("name") or d.get("email") or "a customer",
                      type=d.get("type"), event=f"{d['source']}/{d['event_id']}")
    return {"text": text}
