"""The purchase path's request checks and Stripe parameters: pure functions, no server."""

from __future__ import annotations

from typing import Any

import pytest

from billing.checkout_request import (
    CheckoutRequest,
    check_email,
    check_idempotency_key,
    check_redirect_url,
    check_session_id,
    checkout_session_params,
    client_reference,
    parse_checkout_request,
    parse_portal_return_url,
    url_origin,
    with_session_placeholder,
)
from billing.config import BillingConfig
from billing.errors import BillingError, InvalidRequestError

ORIGINS = ("https://kamiyo.ai", "http://127.0.0.1:8000")
CONFIG = BillingConfig(
    public_url="https://kamiyo.ai",
    stripe_secret_key="sk_test_x",
    prices={"personal": "price_p", "team": "price_t"},
    allowed_redirect_origins=ORIGINS,
)


def body(**overrides: Any) -> dict[str, Any]:
    return {"tier": "personal", "user_email": "Ada@Example.COM", "success_url": "https://kamiyo.ai/ok",
            "cancel_url": "https://kamiyo.ai/pricing", **overrides}


def refusal(call: Any, *args: Any, **kwargs: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_a_valid_body_becomes_a_request_with_the_tiers_price_and_a_normalized_email() -> None:
    request = parse_checkout_request(body(tier="team"), CONFIG)

    assert request == CheckoutRequest("team", "price_t", "ada@example.com",
                                      "https://kamiyo.ai/ok?session_id={CHECKOUT_SESSION_ID}",
                                      "https://kamiyo.ai/pricing")


@pytest.mark.parametrize(
    ("overrides", "code", "fragment"),
    [
        ({"tier": "platinum"}, "invalid_tier", "choose one of personal, team, enterprise"),
        ({"tier": "enterprise"}, "tier_not_available", "STRIPE_PRICE_MCP_ENTERPRISE"),
        ({"tier": 3}, "invalid_field", "tier must be a string"),
        ({"tier": None}, "missing_field", "tier is required"),
        ({"user_email": "  "}, "missing_field", "user_email must not be empty"),
        ({"user_email": "ada@@example.com"}, "invalid_email", "not a valid email"),
        ({"success_url": "https://kamiyo.ai.evil.com/ok"}, "redirect_not_allowed", "success_url"),
        ({"cancel_url": "ftp://kamiyo.ai/"}, "invalid_redirect_url", "cancel_url"),
    ],
)
def test_the_first_unusable_field_is_named_with_a_precise_code(overrides: dict[str, Any], code: str,
                                                               fragment: str) -> None:
    error = refusal(parse_checkout_request, body(**overrides), CONFIG)

    assert error.code == code
    assert fragment in error.message
    assert isinstance(error, BillingError)


def test_a_huge_bad_value_is_not_echoed_whole() -> None:
    error = refusal(parse_checkout_request, body(tier="x" * 10_000), CONFIG)

    assert len(error.message) < 300


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Kamiyo.AI/path?q=1", "https://kamiyo.ai"),
        ("https://kamiyo.ai:443/", "https://kamiyo.ai"),
        ("http://127.0.0.1:8000/x", "http://127.0.0.1:8000"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
        ("https://user@kamiyo.ai/", None),
        ("https://kamiyo.ai:99999/", None),
        ("javascript:alert(1)", None),
        ("//kamiyo.ai/x", None),
        ("/relative", None),
        ("mailto:a@kamiyo.ai", None),
    ],
)
def test_an_origin_is_scheme_host_and_non_default_port_or_nothing(url: str, origin: str | None) -> None:
    assert url_origin(url) == origin


@pytest.mark.parametrize(
    "url",
    [
        "https://kamiyo.ai/ok",
        "https://KAMIYO.ai:443/ok#frag",
        "http://127.0.0.1:8000/billing/success?x=1",
    ],
)
def test_urls_on_an_allowed_origin_pass_unchanged(url: str) -> None:
    assert check_redirect_url(url, ORIGINS, field="success_url") == url


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://kamiyo.ai.evil.com/", "redirect_not_allowed"),
        ("https://evil.com/?next=https://kamiyo.ai", "redirect_not_allowed"),
        ("http://kamiyo.ai/", "redirect_not_allowed"),
        ("http://127.0.0.1:8001/", "redirect_not_allowed"),
        ("https://kamiyo.ai@evil.com/", "invalid_redirect_url"),
        ("https://kamiyo.ai\\@evil.com/", "invalid_redirect_url"),
        ("https://kamiyo.ai/\nLocation: x", "invalid_redirect_url"),
        ("https://kamiyo.ai/ a", "invalid_redirect_url"),
        ("https://kamiyo.ai/" + "a" * 2100, "invalid_redirect_url"),
        ("kamiyo.ai/ok", "invalid_redirect_url"),
    ],
)
def test_urls_elsewhere_or_disguised_are_refused(url: str, code: str) -> None:
    assert refusal(check_redirect_url, url, ORIGINS, field="cancel_url").code == code


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://k.ai/ok", "https://k.ai/ok?session_id={CHECKOUT_SESSION_ID}"),
        ("https://k.ai/ok?a=1", "https://k.ai/ok?a=1&session_id={CHECKOUT_SESSION_ID}"),
        ("https://k.ai/ok?", "https://k.ai/ok?session_id={CHECKOUT_SESSION_ID}"),
        ("https://k.ai/ok#done", "https://k.ai/ok?session_id={CHECKOUT_SESSION_ID}#done"),
        ("https://k.ai/ok/{CHECKOUT_SESSION_ID}", "https://k.ai/ok/{CHECKOUT_SESSION_ID}"),
    ],
)
def test_the_session_placeholder_is_added_once_before_any_fragment(url: str, expected: str) -> None:
    assert with_session_placeholder(url) == expected


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@sub.example.org", "o'neil@example.ie",
                                   "x@xn--bcher-kva.example", "fu{*^c@kmdto.xn--e1a4c"])
def test_plain_addresses_are_accepted(email: str) -> None:
    assert check_email(email.upper()) == email


@pytest.mark.parametrize("email", ["plain", "@example.com", "a@", "a@b", "a@b.c", "a b@example.com", "a@-x.com",
                                   "a..b@example.com", "a@example.123", "<a@example.com>", "a@exa_mple.com"])
def test_addresses_stripe_would_refuse_are_refused_here(email: str) -> None:
    assert refusal(check_email, email).code == "invalid_email"


@pytest.mark.parametrize("session_id", ["cs_test_a1B2", "cs_live_" + "z" * 66])
def test_checkout_session_ids_of_either_mode_pass(session_id: str) -> None:
    assert check_session_id(session_id) == session_id


@pytest.mark.parametrize("session_id",
                         ["", "cs_test_", "cs_test_a/b", "cs_test_a.b", "sub_123", "cs_test_" + "a" * 251])
def test_anything_else_is_not_a_session_id(session_id: str) -> None:
    assert refusal(check_session_id, session_id).code == "invalid_session_id"


def test_idempotency_keys_are_optional_printable_and_at_most_255_characters() -> None:
    assert check_idempotency_key(None) is None
    assert check_idempotency_key("order-1:attempt/2") == "order-1:attempt/2"
    assert check_idempotency_key("k" * 255) == "k" * 255
    for bad in ("", "k" * 256, "has space", "tab\t", "é"):
        assert refusal(check_idempotency_key, bad).code == "invalid_idempotency_key"


def test_the_client_reference_is_the_user_id_or_a_stable_digest_of_the_email() -> None:
    assert client_reference("a@b.co", "usr_1") == "usr_1"
    assert client_reference("a@b.co", None) == client_reference("a@b.co", None)
    assert client_reference("a@b.co", None) != client_reference("c@b.co", None)
    assert "a@b.co" not in client_reference("a@b.co", None)
    assert len(client_reference("a@b.co", None)) <= 200


def test_stripe_params_for_a_new_buyer_prefill_the_email() -> None:
    request = parse_checkout_request(body(), CONFIG)

    params = checkout_session_params(request, stripe_customer_id=None, client_reference_id="ref", automatic_tax=False)

    assert params == {
        "mode": "subscription",
        "line_items": [{"price": "price_p", "quantity": 1}],
        "success_url": "https://kamiyo.ai/ok?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://kamiyo.ai/pricing",
        "client_reference_id": "ref",
        "metadata": {"tier": "personal"},
        "subscription_data": {"metadata": {"tier": "personal"}},
        "allow_promotion_codes": True,
        "billing_address_collection": "required",
        "customer_email": "ada@example.com",
    }


def test_stripe_params_for_a_known_customer_with_tax_reuse_the_customer_and_save_the_address() -> None:
    request = parse_checkout_request(body(), CONFIG)

    params = checkout_session_params(request, stripe_customer_id="cus_1", client_reference_id="usr_1",
                                     automatic_tax=True)

    assert params["customer"] == "cus_1" and "customer_email" not in params
    assert params["automatic_tax"] == {"enabled": True}
    assert params["customer_update"] == {"address": "auto", "name": "auto"}


def test_the_portal_return_url_defaults_to_the_public_url_and_must_be_allowed() -> None:
    assert parse_portal_return_url({}, CONFIG) == "https://kamiyo.ai/"
    assert parse_portal_return_url({"return_url": "https://kamiyo.ai/account"}, CONFIG) == "https://kamiyo.ai/account"
    assert refusal(parse_portal_return_url, {"return_url": "https://evil.com/"}, CONFIG).code == "redirect_not_allowed"
    assert refusal(parse_portal_return_url, {"return_url": 7}, CONFIG).code == "invalid_field"
