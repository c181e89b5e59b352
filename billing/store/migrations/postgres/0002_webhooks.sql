-- Stripe webhooks: every verified event (dedupe, audit, replay) and the single-use claims an
-- entitlement is picked up with. Times are unix seconds (UTC).

-- status: received | processed | failed | ignored. Applying an event and marking it processed
-- happen in one transaction; a failure is recorded afterwards with its error and attempt count.
CREATE TABLE stripe_events (
    event_id      TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    created       BIGINT NOT NULL,
    livemode      BIGINT NOT NULL DEFAULT 0,
    payload       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('received', 'processed', 'failed', 'ignored')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT,
    message       TEXT,
    received_at   BIGINT NOT NULL,
    processed_at  BIGINT
);
CREATE INDEX stripe_events_status ON stripe_events (status, created);
CREATE INDEX stripe_events_type ON stripe_events (type, created);

-- A single-use, expiring right to mint a token for a subscription. Only the SHA-256 of the
-- secret is kept (for kind 'checkout_session' the secret is the Checkout Session id).
CREATE TABLE claims (
    claim_id         TEXT PRIMARY KEY,
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (subscription_id),
    kind             TEXT NOT NULL CHECK (kind IN ('checkout_session', 'email_code')),
    secret_hash      TEXT NOT NULL UNIQUE,
    expires_at       BIGINT NOT NULL,
    redeemed_at      BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX claims_subscription ON claims (subscription_id);

-- Ordering of the events that set a customer's email, and of the invoice events that set a
-- subscription's payment state (subscriptions.last_event_created orders its own state).
ALTER TABLE customers ADD COLUMN last_event_created BIGINT;
ALTER TABLE subscriptions ADD COLUMN payment_event_created BIGINT;
