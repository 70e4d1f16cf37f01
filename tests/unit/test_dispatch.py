"""The routing table and what the handlers are told about an event."""

from __future__ import annotations

import pytest

from chalicelib import routing
from chalicelib.dispatch import facts
from chalicelib.routing import Route, route_for


@pytest.mark.parametrize(("event_type", "jobs", "lane"), [
    ("payment_intent.succeeded", ("update-crm", "notify-slack", "generate-invoice-pdf"), "high"),
    ("invoice.paid", ("update-crm", "notify-slack", "generate-invoice-pdf"), "high"),
    ("payment.success", ("update-crm", "notify-slack", "generate-invoice-pdf"), "high"),
    ("customer.created", ("update-crm", "send-welcome-email"), "default"),
    ("customer.updated", ("update-crm",), "default"),
])
def test_the_contract_routes(event_type: str, jobs: tuple[str, ...], lane: str) -> None:
    route = route_for(event_type)
    assert route is not None and route.jobs == jobs and route.lane == lane


def test_unknown_types_have_no_route() -> None:
    assert route_for("issues.opened") is None and route_for("orders/create") is None


def test_wildcards_match_and_the_first_row_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "ROUTES", (*routing.ROUTES, Route(("invoice.*",), ("notify-slack",))))
    assert route_for("invoice.finalized") == Route(("invoice.*",), ("notify-slack",))
    assert route_for("invoice.paid") is not None and route_for("invoice.paid").lane == "high"  # type: ignore[union-attr]


def test_facts_from_a_stripe_payment_intent() -> None:
    payload = {"data": {"object": {"amount": 4200, "currency": "eur", "receipt_email": "ada@example.com",
                                   "metadata": {"customer_name": "Ada Lovelace"}, "id": "pi_1"}}}
    assert facts(payload) == {"email": "ada@example.com", "name": "Ada Lovelace", "amount": 4200,
                              "currency": "EUR", "reference": "pi_1"}


def test_facts_from_a_stripe_invoice_and_a_standard_webhook() -> None:
    invoice = {"data": {"object": {"amount_paid": 990, "currency": "usd", "customer_email": "g@example.com",
                                   "customer_name": "Grace", "number": "INV-7"}}}
    assert facts(invoice)["amount"] == 990 and facts(invoice)["reference"] == "INV-7"
    standard = {"type": "payment.success", "data": {"email": "k@example.com", "name": "K", "amount": 5, "currency": "gbp"}}
    assert facts(standard) == {"email": "k@example.com", "name": "K", "amount": 5, "currency": "GBP", "reference": None}


def test_facts_never_fail_on_odd_shapes() -> None:
    odd: list[dict[str, object]] = [{}, {"data": []}, {"data": {"object": "x"}},
                                    {"data": {"amount": "12", "customer": "cus_1"}}]
    for payload in odd:
        assert facts(payload)["email"] == "" and facts(payload)["amount"] is None
