"""The claim rules, without servers."""

from __future__ import annotations

from dataclasses import replace

from billing.claims import (
    EMAIL_CLAIM_TTL_SECONDS,
    REDACTED_SESSION_PREFIX,
    ClaimState,
    claim_hash,
    decide_redemption,
    is_claim_code,
    is_session_id,
    new_claim_code,
    redact_session_ids,
    session_claim_hash,
)

NOW = 1_900_000_000
OPEN = ClaimState("clm_1", "sub_1", "email_code", NOW + 60, None, "usr_1", "a@example.com", "team", "active",
                  NOW + 86_400, False)


def decide(claim: ClaimState | None, now: int = NOW):  # type: ignore[no-untyped-def]
    return decide_redemption(claim, now, support_email="help@example.com", pricing_url="https://k.test/pricing")


def test_an_open_claim_of_an_active_subscription_may_be_redeemed() -> None:
    assert decide(OPEN) is None
    assert decide(replace(OPEN, status="past_due")) is None
    assert decide(replace(OPEN, status="trialing", cancel_at_period_end=True)) is None


def test_an_unknown_claim_is_404_and_says_nothing_about_subscriptions() -> None:
    refusal = decide(None)
    assert refusal is not None and (refusal.status, refusal.code) == (404, "claim_not_found")
    assert "subscription" not in refusal.message


def test_a_redeemed_claim_is_410_and_points_to_rotation_and_support() -> None:
    refusal = decide(replace(OPEN, redeemed_at=NOW - 5))
    assert refusal is not None and (refusal.status, refusal.code) == (410, "claim_already_redeemed")
    assert "rotate" in refusal.message and "help@example.com" in refusal.message


def test_an_expired_claim_is_410_at_its_expiry_second() -> None:
    assert decide(OPEN, NOW + 59) is None
    refusal = decide(OPEN, NOW + 60)
    assert refusal is not None and (refusal.status, refusal.code) == (410, "claim_expired")


def test_a_claim_of_an_ended_subscription_is_403_with_the_reason() -> None:
    canceled = decide(replace(OPEN, status="canceled"))
    assert canceled is not None and (canceled.status, canceled.code) == (403, "subscription_not_active")
    assert "canceled" in canceled.message and "https://k.test/pricing" in canceled.message
    unpaid = decide(replace(OPEN, status="incomplete"))
    assert unpaid is not None and "payment" in unpaid.message
    period_over = decide(replace(OPEN, cancel_at_period_end=True, current_period_end=NOW - 1))
    assert period_over is not None and period_over.status == 403 and "cancelled" in period_over.message


def test_the_ended_reason_wins_over_expiry_but_not_over_redemption() -> None:
    both = decide(replace(OPEN, status="canceled", expires_at=NOW - 1))
    assert both is not None and both.status == 403
    redeemed = decide(replace(OPEN, status="canceled", redeemed_at=NOW - 1))
    assert redeemed is not None and redeemed.status == 410


def test_claim_codes_are_random_urlsafe_and_stored_only_as_a_digest() -> None:
    codes = {new_claim_code() for _ in range(50)}
    assert len(codes) == 50 and all(is_claim_code(code) and len(code) >= 43 for code in codes)
    code = codes.pop()
    digest = claim_hash(code)
    assert len(digest) == 64 and int(digest, 16) >= 0 and code not in digest
    assert not is_claim_code("short") and not is_claim_code("x" * 43 + "!") and not is_claim_code(None)


def test_session_ids_are_recognised_by_shape() -> None:
    assert is_session_id("cs_test_a1B2c3") and is_session_id("cs_live_" + "z" * 58)
    assert not is_session_id("pi_123") and not is_session_id("cs_") and not is_session_id("cs_a/b")


def test_an_emailed_claim_lasts_seven_days() -> None:
    assert EMAIL_CLAIM_TTL_SECONDS == 7 * 86_400


def test_redaction_replaces_every_session_id_by_its_digest_and_leaves_the_rest_alone() -> None:
    live, test = "cs_live_" + "a1" * 20, "cs_test_b2C3"
    text = f'{{"id": "{live}", "note": "cs_ but no id; xcs_test_notasession", "ref": "{test}"}}'

    redacted = redact_session_ids(text)

    assert live not in redacted and test not in redacted
    assert REDACTED_SESSION_PREFIX + claim_hash(live) in redacted
    assert session_claim_hash(REDACTED_SESSION_PREFIX + claim_hash(test)) == claim_hash(test)
    assert "cs_ but no id; xcs_test_notasession" in redacted  # not an id: a letter before it
    assert redact_session_ids(redacted) == redacted


def test_a_payload_naming_no_session_is_stored_exactly_as_received() -> None:
    payload = '{"id": "evt_1", "object": {"id": "sub_1", "note": "cs_ test_ live_"}}'

    assert redact_session_ids(payload) is payload
