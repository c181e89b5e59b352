"""The per-call SQL shared by both backends' call counters (built from the tier table).

A call is admitted when its token is live, its subscription grants access, its tier reaches the
tool's, and neither quota window is full; admitting it counts it. All of that is one
`INSERT ... SELECT ... ON CONFLICT DO UPDATE ... RETURNING` statement over a `calls` source with
the columns `id, hash, now, minute, day, min_rank`: SQLite feeds it a JSON batch (`json_each`),
PostgreSQL one call's parameters (its upsert cannot touch one row twice in a statement). The same
trip reads the token's state (`TOKEN_STATE_SQL`): the grant's view, or the reason for a refusal.
"""

from __future__ import annotations

from collections.abc import Sequence

from billing.access import ENTITLED_STATUSES
from billing.quota import Windows
from billing.store.records import CallCount, TokenState
from billing.tiers import TIERS

TOKEN_STATE_COLUMNS = """
t.token_id, t.user_id, c.email, t.subscription_id, s.kind, s.stripe_subscription_id,
c.stripe_customer_id, s.tier, s.status, s.current_period_end, s.cancel_at_period_end,
s.payment_state, t.created_at, t.expires_at, t.revoked_at, t.revoked_reason,
u.minute_start, COALESCE(u.minute_count, 0), u.day_start, COALESCE(u.day_count, 0)
"""
TOKEN_STATE_FROM = """
FROM tokens AS t
JOIN subscriptions AS s ON s.subscription_id = t.subscription_id
JOIN customers AS c ON c.user_id = t.user_id
LEFT JOIN usage AS u ON u.subscription_id = t.subscription_id
"""
TOKEN_STATE_SQL = f"SELECT {TOKEN_STATE_COLUMNS} {TOKEN_STATE_FROM}"
STATE_WIDTH = 20  # columns of TOKEN_STATE_COLUMNS

# Give back a counted call that never reached its tool (only while its windows are still current).
REFUND_SQL = """
UPDATE usage SET
  minute_count = CASE WHEN minute_start = ? AND minute_count > 0 THEN minute_count - 1 ELSE minute_count END,
  day_count = CASE WHEN day_start = ? AND day_count > 0 THEN day_count - 1 ELSE day_count END
WHERE subscription_id = ?
"""


def token_state(row: Sequence[object]) -> TokenState:
    """A `TokenState` from the `TOKEN_STATE_COLUMNS` of a row."""
    values = list(row[:STATE_WIDTH])
    values[10] = bool(values[10])
    return TokenState(*values)  # type: ignore[arg-type]


def call_count(row: Sequence[object]) -> CallCount:
    """A `CallCount` from the `subscription_id, tier, minute_count, minute_limit, day_count, day_limit`
    a counted call returns."""
    subscription_id, tier, minute_count, minute_limit, day_count, day_limit = row
    return CallCount(str(subscription_id), str(tier), _int(minute_count), _int(minute_limit), _int(day_count),
                     _int(day_limit))


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer column, got {type(value).__name__}")
    return value


def tier_case(column: str, values: dict[str, int]) -> str:
    """`CASE column WHEN 'tier' THEN n ... ELSE 0 END`."""
    # Built from our own tier table (fixed identifiers and ints), never from input.
    arms = " ".join(f"WHEN '{name}' THEN {int(value)}" for name, value in values.items())
    return f"CASE {column} {arms} ELSE 0 END"


def admit_and_count_sql(calls: str) -> str:
    """The statement over the `calls` source (a parenthesized subquery).

    A row of the SELECT exists only for an admissible call; the upsert's WHERE refuses the
    increment when a window is full. Rows are processed in `id` order, so calls of one
    subscription within a batch see each other's counts. A call with no RETURNING row was not
    admitted (the authority then asks the store why).
    """
    minute = tier_case("s.tier", {n: t.calls_per_minute for n, t in TIERS.items()})
    day = tier_case("s.tier", {n: t.calls_per_day for n, t in TIERS.items()})
    rank = tier_case("s.tier", {n: int(t.rank) for n, t in TIERS.items()})
    statuses = ", ".join(f"'{s}'" for s in sorted(ENTITLED_STATUSES))
    return f"""
INSERT INTO usage (subscription_id, tier, minute_start, minute_count, minute_limit,
                   day_start, day_count, day_limit, last_request)
SELECT s.subscription_id, s.tier, c.minute, 1, {minute}, c.day, 1, {day}, c.id
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
  day_count = CASE WHEN usage.day_start = excluded.day_start THEN usage.day_count + 1 ELSE 1 END,
  day_start = excluded.day_start,
  day_limit = excluded.day_limit,
  last_request = excluded.last_request
WHERE (usage.minute_start <> excluded.minute_start OR usage.minute_count < excluded.minute_limit)
  AND (usage.day_start <> excluded.day_start OR usage.day_count < excluded.day_limit)
RETURNING last_request, subscription_id, tier, minute_count, minute_limit, day_count, day_limit
"""


def refund_params(subscription_id: str, counted_in: Windows) -> tuple[int, int, str]:
    return counted_in.minute, counted_in.day, subscription_id
