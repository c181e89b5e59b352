"""The per-call SQL shared by both backends' call counters (built from the tier table in force).

A call is admitted when its token is live, its subscription grants access, its tier reaches the
tool's, the minute window is not full, and the day window is not full or the subscription has
opted into metered overage and its spend cap for the billing period allows one more overage call;
admitting it counts it, and marks it metered when it is past the daily quota. All of that is one
`INSERT ... SELECT ... ON CONFLICT DO UPDATE ... RETURNING` statement over a `calls` source with
the columns `id, hash, now, minute, day, min_rank`: SQLite feeds it a JSON batch (`json_each`),
PostgreSQL one call's parameters (its upsert cannot touch one row twice in a statement). The same
trip writes a metered call's meter event (`METER_EVENT_SQL`) and reads the token's state
(`TOKEN_STATE_SQL`): the grant's view, or the reason for a refusal.
"""

from __future__ import annotations

from typing import Any

from billing.access import ENTITLED_STATUSES
from billing.quota import Windows
from billing.store.connection import Row
from billing.store.records import CallCount, TokenState
from billing.tiers import DEFAULT_TIERS, TierTable

TOKEN_STATE_COLUMNS = """
t.token_id, t.user_id, c.email, t.subscription_id, s.kind, s.stripe_subscription_id,
c.stripe_customer_id, s.tier, s.status, s.current_period_end, s.cancel_at_period_end,
s.payment_state, t.created_at, t.expires_at, t.revoked_at, t.revoked_reason,
u.minute_start, COALESCE(u.minute_count, 0), u.day_start, COALESCE(u.day_count, 0), t.kind,
s.overage_item_id, s.overage_cap_cents, COALESCE(u.overage_period, 0), COALESCE(u.overage_count, 0)
"""
TOKEN_STATE_FROM = """
FROM tokens AS t
JOIN subscriptions AS s ON s.subscription_id = t.subscription_id
JOIN customers AS c ON c.user_id = t.user_id
LEFT JOIN usage AS u ON u.subscription_id = t.subscription_id
"""
TOKEN_STATE_SQL = f"SELECT {TOKEN_STATE_COLUMNS} {TOKEN_STATE_FROM}"
STATE_WIDTH = 25  # columns of TOKEN_STATE_COLUMNS
# The columns a counted call returns (after its request id): `call_count` reads them.
COUNTED_COLUMNS = ("subscription_id, tier, minute_count, minute_limit, day_count, day_limit, last_metered,"
                   " overage_period, overage_count, overage_limit")

# A metered call's meter event, written in the trip that counted it: the sender posts it to Stripe
# once it is due (a few seconds later, so a call that fails in its tool is usually voided unsent).
METER_EVENT_SQL = ("INSERT INTO meter_events (identifier, subscription_id, occurred_at, period_end, next_attempt_at)"
                   " VALUES (?, ?, ?, ?, ?)")
METER_SETTLE_SECONDS = 5

# Give back a counted call that never reached its tool (only while its windows are still current).
REFUND_SQL = """
UPDATE usage SET
  minute_count = CASE WHEN minute_start = ? AND minute_count > 0 THEN minute_count - 1 ELSE minute_count END,
  day_count = CASE WHEN day_start = ? AND day_count > 0 THEN day_count - 1 ELSE day_count END
WHERE subscription_id = ?
"""


def token_state(row: Row) -> TokenState:
    """A `TokenState` from the `TOKEN_STATE_COLUMNS` of a row."""
    values: list[Any] = [row[i] for i in range(STATE_WIDTH)]
    values[10] = bool(values[10])
    return TokenState(*values)


def call_count(row: Row) -> CallCount:
    """A `CallCount` from the `COUNTED_COLUMNS` a counted call returns."""
    (subscription_id, tier, minute_count, minute_limit, day_count, day_limit, metered, period, overage_count,
     overage_limit) = (row[i] for i in range(10))
    return CallCount(str(subscription_id), str(tier), _int(minute_count), _int(minute_limit), _int(day_count),
                     _int(day_limit), bool(metered), _int(period), _int(overage_count), _int(overage_limit))


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer column, got {type(value).__name__}")
    return value


def tier_case(column: str, values: dict[str, int]) -> str:
    """`CASE column WHEN 'tier' THEN n ... ELSE 0 END`."""
    # Built from our own tier table (fixed identifiers and ints), never from input.
    arms = " ".join(f"WHEN '{name}' THEN {int(value)}" for name, value in values.items())
    return f"CASE {column} {arms} ELSE 0 END"


def admit_and_count_sql(calls: str, tiers: TierTable = DEFAULT_TIERS) -> str:
    """The statement over the `calls` source (a parenthesized subquery).

    A row of the SELECT exists only for an admissible call; the upsert's WHERE refuses the
    increment when the minute is full, or the day is full and no overage is left under the cap.
    Rows are processed in `id` order, so calls of one subscription within a batch see each other's
    counts. A call with no RETURNING row was not admitted (the authority then says why).
    """
    minute = tier_case("s.tier", {t.name: t.calls_per_minute for t in tiers})
    day = tier_case("s.tier", {t.name: t.calls_per_day for t in tiers})
    rank = tier_case("s.tier", {t.name: int(t.rank) for t in tiers})
    statuses = ", ".join(f"'{s}'" for s in sorted(ENTITLED_STATUSES))
    # Overage calls the subscription's cap pays for this period: 0 unless it carries the overage item.
    caps = " ".join(
        f"WHEN '{t.name}' THEN (CASE WHEN COALESCE(s.overage_cap_cents, {t.overage_cap_usd * 100}) < "
        f"{t.overage_cap_usd * 100} THEN s.overage_cap_cents ELSE {t.overage_cap_usd * 100} END) * 10000 / "
        f"{t.overage_micro_usd_per_call}"
        for t in tiers if t.overage and t.overage_micro_usd_per_call > 0)
    overage_limit = (f"CASE WHEN s.kind = 'stripe' AND s.overage_item_id IS NOT NULL THEN CASE s.tier {caps} ELSE 0 END"
                     " ELSE 0 END") if caps else "0"
    over_day = "(usage.day_start = excluded.day_start AND usage.day_count >= excluded.day_limit)"
    overage_so_far = "(CASE WHEN usage.overage_period = excluded.overage_period THEN usage.overage_count ELSE 0 END)"
    return f"""
INSERT INTO usage (subscription_id, tier, minute_start, minute_count, minute_limit,
                   day_start, day_count, day_limit, last_request,
                   overage_period, overage_count, overage_limit, last_metered)
SELECT s.subscription_id, s.tier, c.minute, 1, {minute}, c.day, 1, {day}, c.id,
       COALESCE(s.current_period_end, 0), 0, {overage_limit}, 0
FROM {calls} AS c
JOIN tokens AS t ON t.token_hash = c.hash
JOIN subscriptions AS s ON s.subscription_id = t.subscription_id
WHERE t.revoked_at IS NULL
  AND t.expires_at > c.now
  AND s.status IN ({statuses})
  AND NOT (s.cancel_at_period_end = 1 AND s.current_period_end IS NOT NULL
           AND s.current_period_end <= c.now)
  AND {rank} >= c.min_rank
ORDER BY c.id
ON CONFLICT (subscription_id) DO UPDATE SET
  tier = excluded.tier,
  minute_count = CASE WHEN usage.minute_start = excluded.minute_start
                      THEN usage.minute_count + 1 ELSE 1 END,
  minute_start = excluded.minute_start,
  minute_limit = excluded.minute_limit,
  last_metered = CASE WHEN {over_day} THEN 1 ELSE 0 END,
  overage_count = {overage_so_far} + CASE WHEN {over_day} THEN 1 ELSE 0 END,
  overage_period = excluded.overage_period,
  overage_limit = excluded.overage_limit,
  day_count = CASE WHEN usage.day_start = excluded.day_start THEN usage.day_count + 1 ELSE 1 END,
  day_start = excluded.day_start,
  day_limit = excluded.day_limit,
  last_request = excluded.last_request
WHERE (usage.minute_start <> excluded.minute_start OR usage.minute_count < excluded.minute_limit)
  AND (usage.day_start <> excluded.day_start OR usage.day_count < excluded.day_limit
       OR {overage_so_far} < excluded.overage_limit)
RETURNING last_request, {COUNTED_COLUMNS}
"""


def refund_params(subscription_id: str, counted_in: Windows) -> tuple[int, int, str]:
    return counted_in.minute, counted_in.day, subscription_id
