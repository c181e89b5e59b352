-- Core of the billing authority: who is entitled to what, and the tokens that prove it.
-- Times are unix seconds (UTC). No table ever holds a plaintext token or secret.

CREATE TABLE customers (
    user_id             TEXT PRIMARY KEY,
    email               TEXT NOT NULL,
    name                TEXT,
    stripe_customer_id  TEXT UNIQUE,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX customers_email ON customers (email);

-- An entitlement: a Stripe subscription (kind 'stripe') or an operator grant (kind 'grant').
CREATE TABLE subscriptions (
    subscription_id         TEXT PRIMARY KEY,
    kind                    TEXT NOT NULL CHECK (kind IN ('stripe', 'grant')),
    stripe_subscription_id  TEXT UNIQUE,
    user_id                 TEXT NOT NULL REFERENCES customers (user_id),
    tier                    TEXT NOT NULL,
    status                  TEXT NOT NULL,
    current_period_end      BIGINT,
    cancel_at_period_end    BIGINT NOT NULL DEFAULT 0,
    payment_state           TEXT,
    last_event_created      BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX subscriptions_user ON subscriptions (user_id);

CREATE TABLE tokens (
    token_id         TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES customers (user_id),
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (subscription_id),
    token_hash       TEXT NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    revoked_at       BIGINT,
    revoked_reason   TEXT,
    replaced_by      TEXT
);
CREATE INDEX tokens_subscription ON tokens (subscription_id);
CREATE INDEX tokens_user ON tokens (user_id);

-- Call counters per subscription (all its tokens share the quota), one row holding the current
-- minute and day windows so that one statement can check and count a call atomically.
-- The tier and limits are copied in by that statement so its RETURNING clause can report them.
CREATE TABLE usage (
    subscription_id  TEXT PRIMARY KEY REFERENCES subscriptions (subscription_id),
    tier             TEXT NOT NULL,
    minute_start     BIGINT NOT NULL,
    minute_count     BIGINT NOT NULL,
    minute_limit     BIGINT NOT NULL,
    day_start        BIGINT NOT NULL,
    day_count        BIGINT NOT NULL,
    day_limit        BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT,
    detail      TEXT
);
CREATE INDEX audit_log_subject ON audit_log (subject);
