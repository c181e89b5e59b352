-- Upgrade links and metered overage (issue 13). Times are unix seconds (UTC).

-- A one-time link in a refusal that upgrades one subscription to one tier: single-use, short-lived,
-- only the SHA-256 of its code is kept (like claims). `used_at` is set when the link is followed
-- (it opened Stripe once); `completed_at` when a webhook showed the subscription at the target tier.
CREATE TABLE upgrade_links (
    link_id          TEXT PRIMARY KEY,
    code_hash        TEXT NOT NULL UNIQUE,
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (subscription_id),
    target_tier      TEXT NOT NULL,
    reason           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER,
    completed_at     INTEGER
);
CREATE INDEX upgrade_links_open ON upgrade_links (subscription_id) WHERE completed_at IS NULL;
CREATE INDEX upgrade_links_expiry ON upgrade_links (expires_at);

-- Overage opt-in and cap, kept in step with Stripe by the webhooks: the subscription item of the
-- metered overage price (NULL: not opted in) and the customer's cap for a billing period, in cents
-- (NULL: the tier's default).
ALTER TABLE subscriptions ADD COLUMN overage_item_id TEXT;
ALTER TABLE subscriptions ADD COLUMN overage_cap_cents INTEGER;

-- The outbox of meter events: one row per overage call, written in the transaction that admitted
-- and counted the call; its identifier (the call's id) is Stripe's meter-event identifier and the
-- idempotency key of the request that sends it, so a resend is never billed twice.
--   pending → sent                          the usual path
--   pending → voided                        the call failed inside the tool before it was sent
--   sent → cancel_pending → cancelled       it failed after it was sent: cancelled with an adjustment
--   pending → failed                        Stripe refused it for good (kept, with the error)
-- A row is taken by moving next_attempt_at past the send (a lease that doubles as the retry time).
CREATE TABLE meter_events (
    identifier       TEXT PRIMARY KEY,
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (subscription_id),
    occurred_at      INTEGER NOT NULL,
    period_end       INTEGER,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'voided', 'cancel_pending', 'cancelled', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    sent_at          INTEGER,
    cancelled_at     INTEGER
);
CREATE INDEX meter_events_due ON meter_events (next_attempt_at) WHERE status IN ('pending', 'cancel_pending');
CREATE INDEX meter_events_subscription ON meter_events (subscription_id, period_end, status);
CREATE INDEX meter_events_status ON meter_events (status);
