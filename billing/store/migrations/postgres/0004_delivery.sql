-- Token delivery: the transactional outbox of emails (the welcome mail carries an 'email_code'
-- claim link; the claim kinds themselves are in 0002). Times are unix seconds (UTC).

-- A mail is pending while sent_at and cancelled_at are NULL. The sender takes a due row by moving
-- next_attempt_at past the send (a lease that doubles as the retry time), sends, then sets sent_at:
-- a crash between the two sends the mail again later, never not at all. Once sent, the bodies are
-- cleared (they held a claim link).
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body_text        TEXT NOT NULL,
    body_html        TEXT NOT NULL,
    subscription_id  TEXT REFERENCES subscriptions (subscription_id),
    created_at       BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    sent_at          BIGINT,
    cancelled_at     BIGINT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX outbox_subscription ON outbox (subscription_id);
CREATE INDEX claims_kind ON claims (subscription_id, kind, redeemed_at);
