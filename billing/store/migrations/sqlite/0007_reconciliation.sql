-- Reconciliation with Stripe: where each stored event came from, and the schedule lease.

-- 'webhook': delivered to our endpoint; 'recovery': fetched from GET /v1/events after Stripe could
-- not deliver it. The source of the copy that was applied (a failed delivery later recovered reads
-- 'recovery').
ALTER TABLE stripe_events ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook'
    CHECK (source IN ('webhook', 'recovery'));

-- One row per scheduled job (e.g. 'reconcile'): a lease so that one process at a time runs it
-- (taken and renewed in a write transaction, expiring if its holder dies), when it last started and
-- finished, and the JSON summary of the last finished run (shown by /healthz and /metrics).
CREATE TABLE scheduled_jobs (
    name              TEXT PRIMARY KEY,
    holder            TEXT,
    lease_expires_at  INTEGER NOT NULL DEFAULT 0,
    last_started_at   INTEGER,
    last_finished_at  INTEGER,
    last_result       TEXT
);
