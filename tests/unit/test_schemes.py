"""Signature schemes, checked against the providers' own signers and published vectors."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.errors import FilaError, InvalidPayload, InvalidSignature, TimestampOutOfTolerance
from chalicelib.schemes import schemes
from chalicelib.schemes.github import SCHEME as GITHUB
from chalicelib.schemes.shopify import SCHEME as SHOPIFY
from chalicelib.schemes.standard import SCHEME as STANDARD
from chalicelib.schemes.stripe import SCHEME as STRIPE
from tests.signing import standard_delivery, stripe_delivery, stripe_event

NOW = time.time()
STRIPE_SECRET = "whsec_test_secret"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_github_published_test_vector() -> None:
    headers = {"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    GITHUB.verify(headers, b"Hello, World!", ["It's a Secret to Everybody"], NOW, 300)
    with pytest.raises(InvalidSignature):
        GITHUB.verify(headers, b"Hello, World?", ["It's a Secret to Everybody"], NOW, 300)


def test_stripe_signature_from_the_stripe_library() -> None:
    headers, body = stripe_delivery(stripe_event(), STRIPE_SECRET, timestamp=int(NOW))
    STRIPE.verify(lower(headers), body, [STRIPE_SECRET], NOW, 300)
    with pytest.raises(InvalidSignature):
        STRIPE.verify(lower(headers), body + b" ", [STRIPE_SECRET], NOW, 300)


def test_stripe_any_of_several_v1_signatures_verifies() -> None:
    headers, body = stripe_delivery(stripe_event(), STRIPE_SECRET, timestamp=int(NOW))
    t, v1 = headers["Stripe-Signature"].split(",")
    headers["Stripe-Signature"] = f"{t},v1={'0' * 64},{v1},v0=deadbeef"
    STRIPE.verify(lower(headers), body, [STRIPE_SECRET], NOW, 300)


@pytest.mark.parametrize("skew", [-301, 301])
def test_stripe_timestamps_outside_tolerance_are_rejected_both_ways(skew: int) -> None:
    headers, body = stripe_delivery(stripe_event(), STRIPE_SECRET, timestamp=int(NOW) + skew)
    with pytest.raises(TimestampOutOfTolerance):
        STRIPE.verify(lower(headers), body, [STRIPE_SECRET], NOW, 300)
    STRIPE.verify(lower(headers), body, [STRIPE_SECRET], NOW, 400)  # configurable


def test_standard_webhooks_signature_from_the_reference_library() -> None:
    headers, body = standard_delivery({"type": "user.created"}, STANDARD_SECRET, timestamp=NOW)
    STANDARD.verify(lower(headers), body, [STANDARD_SECRET], NOW, 300)
    assert STANDARD.identify(lower(headers), {"type": "user.created"}) == (headers["webhook-id"], "user.created")
    with pytest.raises(InvalidSignature):
        STANDARD.verify(lower(headers), body.replace(b"user", b"USER"), [STANDARD_SECRET], NOW, 300)
    stale, body = standard_delivery({"type": "x"}, STANDARD_SECRET, timestamp=NOW - 1000)
    with pytest.raises(TimestampOutOfTolerance):
        STANDARD.verify(lower(stale), body, [STANDARD_SECRET], NOW, 300)


def test_rotation_any_configured_secret_verifies() -> None:
    headers, body = stripe_delivery(stripe_event(), "whsec_new", timestamp=int(NOW))
    STRIPE.verify(lower(headers), body, ["whsec_old", "whsec_new"], NOW, 300)
    with pytest.raises(InvalidSignature):
        STRIPE.verify(lower(headers), body, ["whsec_old"], NOW, 300)


def test_our_signers_agree_with_the_providers() -> None:
    """`fila send` signs with the schemes' own sign(); each must verify with the providers' rules."""
    body = b'{"id":"evt_1","type":"invoice.paid"}'
    for scheme, secret in ((STRIPE, STRIPE_SECRET), (GITHUB, "gh"), (SHOPIFY, "sh"), (STANDARD, STANDARD_SECRET)):
        headers = lower(scheme.sign(body, secret, NOW, "evt_1", "invoice.paid"))
        scheme.verify(headers, body, [secret], NOW, 300)
    # stripe's library checks the timestamp against the clock: sign now, not at import time
    stripe_header = STRIPE.sign(body, STRIPE_SECRET, time.time(), "evt_1", "x")["Stripe-Signature"]
    import stripe
    stripe.WebhookSignature.verify_header(body.decode(), stripe_header, STRIPE_SECRET, tolerance=300)


def test_github_type_includes_the_action() -> None:
    headers = {"x-github-delivery": "d-1", "x-github-event": "issues"}
    assert GITHUB.identify(headers, {"action": "opened"}) == ("d-1", "issues.opened")
    assert GITHUB.identify(headers, {}) == ("d-1", "issues")
    with pytest.raises(InvalidPayload):
        GITHUB.identify(headers, {"action": 3})


@pytest.mark.parametrize("payload", [{}, {"id": "evt_1"}, {"type": "x"}, {"id": 7, "type": "x"},
                                     {"id": "evt_1", "type": ["x"]}, {"id": "", "type": "x"},
                                     {"id": "a" * 256, "type": "x"}, {"id": "evt\n1", "type": "x"}])
def test_stripe_needs_a_string_id_and_type(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidPayload):
        STRIPE.identify({}, payload)


header_text = st.text(st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(schemes())), values=st.dictionaries(
    st.sampled_from(["stripe-signature", "x-hub-signature-256", "x-shopify-hmac-sha256", "webhook-id",
                     "webhook-timestamp", "webhook-signature"]), header_text))
def test_no_header_value_breaks_a_parser(name: str, values: dict[str, str]) -> None:
    """Whatever the headers say, a scheme answers only with one of the contract's errors."""
    try:
        schemes()[name].verify(values, b"{}", ["whsec_c2VjcmV0"], NOW, 300)
    except FilaError as err:
        assert err.status == 401
    else:
        pytest.fail("random headers verified")
