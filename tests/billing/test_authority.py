from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest

from billing.access import Denial, Grant
from billing.authority import Authority
from billing.errors import ConfigurationError, InvalidTokenError, NotFoundError
from billing.store import SQLiteStore
from billing.tokens import AUDIENCE, ISSUER, TokenCodec, token_hash
from tests.support import JWT_SECRET

T0 = 1_899_999_980  # 20 s into a minute


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def authority(tmp_path: Path, clock: Clock) -> AsyncIterator[Authority]:
    store = await SQLiteStore.open(tmp_path / "kamiyo.db")
    yield Authority(store, TokenCodec(JWT_SECRET), public_url="https://kamiyo.test", clock=clock)
    await store.close()


async def test_an_operator_grant_authorizes_calls_at_its_tier(authority: Authority) -> None:
    issued = await authority.issue_grant("Ann@Example.com ", "team")
    decision = await authority.authorize(issued.token, "get_account_status")
    assert isinstance(decision, Grant)
    assert decision.tier.name == "team"
    assert (decision.minute_used, decision.day_used) == (1, 1)
    assert (decision.tier.calls_per_minute, decision.tier.calls_per_day) == (120, 10_000)
    assert decision.state is not None and decision.state.email == "ann@example.com"
    assert decision.subscription_id == issued.subscription_id
    [row] = await authority.list_tokens("ann@example.com")
    assert row.email == "ann@example.com" and row.token_id == issued.token_id


async def test_a_revoked_token_is_refused_on_the_next_call_with_the_reason(authority: Authority) -> None:
    issued = await authority.issue_grant("a@example.com", "personal")
    assert isinstance(await authority.authorize(issued.token, "get_account_status"), Grant)
    assert await authority.revoke(issued.token_id, reason="chargeback") is True
    decision = await authority.authorize(issued.token, "get_account_status")
    assert isinstance(decision, Denial)
    assert decision.code == "token_revoked" and "chargeback" in decision.message
    assert "https://kamiyo.test/pricing" in decision.message
    assert await authority.revoke(issued.token_id) is False


async def test_a_rotated_token_no_longer_authenticates_and_its_successor_does(authority: Authority) -> None:
    old = await authority.issue_grant("a@example.com", "team")
    new = await authority.rotate(old.token_id)
    assert new.token != old.token and new.subscription_id == old.subscription_id
    with pytest.raises(InvalidTokenError, match="replaced"):
        await authority.authenticate(old.token)
    refused = await authority.authorize(old.token, "get_account_status")
    assert isinstance(refused, Denial) and refused.code == "token_rotated" and refused.http_status == 401
    assert isinstance(await authority.authorize(new.token, "get_account_status"), Grant)
    with pytest.raises(NotFoundError):
        await authority.rotate(old.token_id)


async def test_the_tier_in_force_is_the_stores_not_the_tokens_claim(authority: Authority) -> None:
    issued = await authority.issue_grant("a@example.com", "personal")
    refused = await authority.authorize(issued.token, "monitor_wallet")
    assert isinstance(refused, Denial) and refused.code == "tier_required"
    assert "team tier" in refused.message and "pricing" in refused.message
    await authority.set_tier(issued.token_id, "enterprise")
    granted = await authority.authorize(issued.token, "monitor_wallet")
    assert isinstance(granted, Grant) and granted.tier.name == "enterprise"


async def test_the_per_minute_limit_is_exact_and_resets_with_the_next_minute(
    authority: Authority, clock: Clock
) -> None:
    issued = await authority.issue_grant("a@example.com", "personal")
    decisions = [await authority.authorize(issued.token, "get_account_status") for _ in range(31)]
    assert sum(isinstance(d, Grant) for d in decisions) == 30
    last = decisions[-1]
    assert isinstance(last, Denial) and last.code == "rate_limited" and last.http_status == 429
    assert last.retry_after == 40 and "30 calls per minute" in last.message
    clock.now += 40
    assert isinstance(await authority.authorize(issued.token, "get_account_status"), Grant)


async def test_refused_calls_do_not_count_against_the_quota(authority: Authority) -> None:
    issued = await authority.issue_grant("a@example.com", "personal")
    for _ in range(5):
        assert isinstance(await authority.authorize(issued.token, "monitor_wallet"), Denial)
    granted = await authority.authorize(issued.token, "get_account_status")
    assert isinstance(granted, Grant) and granted.minute_used == 1


async def test_the_daily_quota_names_its_reset_time(authority: Authority, clock: Clock) -> None:
    issued = await authority.issue_grant("a@example.com", "personal")
    granted = 0
    for _ in range(1001):
        decision = await authority.authorize(issued.token, "get_account_status")
        if isinstance(decision, Denial) and decision.code == "rate_limited":
            clock.now += 60  # next minute, same day
            decision = await authority.authorize(issued.token, "get_account_status")
        if isinstance(decision, Grant):
            granted += 1
        else:
            break
    assert granted == 1000
    assert isinstance(decision, Denial) and decision.code == "daily_quota_exhausted"
    assert "1,000 calls" in decision.message and "00:00:00 UTC" in decision.message


async def test_an_expired_grant_is_refused(authority: Authority, clock: Clock) -> None:
    issued = await authority.issue_grant("a@example.com", "team", days=1)
    clock.now += 86_400
    decision = await authority.authorize(issued.token, "get_account_status")
    assert isinstance(decision, Denial) and decision.code == "token_expired" and "pricing" in decision.message


async def test_a_forged_token_is_refused_without_touching_quota(authority: Authority) -> None:
    live = await authority.issue_grant("a@example.com", "personal")
    real = authority.verify(live.token).claims
    # The live token's own claims, signed with another key: everything but the signature matches.
    payload = {"sub": real.sub, "tier": real.tier, "sid": real.sid, "jti": real.jti, "iat": real.iat,
               "exp": real.exp, "iss": ISSUER, "aud": AUDIENCE}
    token = jwt.encode(payload, "another-secret-that-is-long-enough-000", algorithm="HS256")
    for _ in range(3):
        decision = await authority.authorize(token, "get_account_status")
        assert isinstance(decision, Denial) and decision.http_status == 401 and decision.code == "invalid_token"
        assert token not in decision.message
    state = await authority.store.token_state(token_hash(live.token))
    assert state is not None and (state.minute_count, state.day_count) == (0, 0)
    first = await authority.authorize(live.token, "get_account_status")
    assert isinstance(first, Grant) and (first.minute_used, first.day_used) == (1, 1)


async def test_bad_operator_input_is_refused_with_a_clear_message(authority: Authority) -> None:
    with pytest.raises(ConfigurationError, match="unknown tier 'gold'"):
        await authority.issue_grant("a@example.com", "gold")
    with pytest.raises(ConfigurationError, match="not a valid email"):
        await authority.issue_grant("not-an-email", "team")
    with pytest.raises(ConfigurationError, match="days"):
        await authority.issue_grant("a@example.com", "team", days=0)
    assert await authority.list_tokens() == []


async def test_every_change_is_audited_without_the_token(authority: Authority) -> None:
    issued = await authority.issue_grant("a@example.com", "team")
    await authority.set_tier(issued.token_id, "personal")
    rotated = await authority.rotate(issued.token_id)
    await authority.revoke(rotated.token_id)
    entries = await authority.store.audit_entries()
    assert [e["action"] for e in entries] == ["grant.create", "grant.set_tier", "token.rotate", "token.revoke"]
    text = repr(entries)
    assert issued.token not in text and rotated.token not in text


async def test_account_status_reports_usage_and_limits(authority: Authority) -> None:
    issued = await authority.issue_grant("a@example.com", "team")
    await authority.authorize(issued.token, "get_account_status")
    grant = await authority.authorize(issued.token, "get_account_status")
    assert isinstance(grant, Grant)
    status = authority.account_status(grant)
    assert status["tier"] == "team"
    assert status["usage"]["calls_this_minute"] == 2 and status["usage"]["calls_left_today"] == 9_998  # type: ignore[index]
    assert status["subscription"]["kind"] == "operator_grant"  # type: ignore[index]


async def test_a_call_that_does_not_show_the_account_is_admitted_without_reading_it(authority: Authority) -> None:
    issued = await authority.issue_grant("lean@example.com", "team")
    lean = await authority.admit(authority.verify(issued.token), "search_crypto_exploits")
    assert isinstance(lean, Grant) and lean.state is None and (lean.minute_used, lean.tier.name) == (1, "team")
    with pytest.raises(ValueError, match="account"):
        authority.account_status(lean)
    shown = await authority.admit(authority.verify(issued.token), "get_account_status", with_account=True)
    assert isinstance(shown, Grant) and shown.state is not None and shown.minute_used == 2
    await authority.revoke(issued.token_id)
    refused = await authority.admit(authority.verify(issued.token), "search_crypto_exploits")
    assert isinstance(refused, Denial) and refused.code == "token_revoked"  # a refusal always reads the state


async def test_concurrent_calls_of_different_tiers_and_tools_are_each_decided_on_their_own(
    authority: Authority,
) -> None:
    import asyncio

    personal = await authority.issue_grant("p@example.com", "personal")
    team = await authority.issue_grant("t@example.com", "team")
    calls = [(personal.token, "monitor_wallet"), (team.token, "monitor_wallet"),
             (personal.token, "get_account_status"), ("forged.token.x", "get_account_status")] * 10
    decisions = await asyncio.gather(*(authority.authorize(token, tool) for token, tool in calls))
    kinds = [(type(d).__name__, getattr(d, "code", None)) for d in decisions[:4]]
    assert kinds == [("Denial", "tier_required"), ("Grant", None), ("Grant", None), ("Denial", "invalid_token")]
    assert all(type(d) is type(decisions[i % 4]) for i, d in enumerate(decisions))
    counts = sorted(d.minute_used for d in decisions[2::4] if isinstance(d, Grant))
    assert counts == list(range(1, 11))  # each call of the batch saw the ones before it
