-- Metered overage inside the admit-and-count statement (issue 13). Per subscription: its billing
-- period (the period's end; 0 when unknown), the overage calls counted in it, the calls its spend cap
-- allows (0: no overage), and whether the last call it counted was past the daily quota (metered).
ALTER TABLE usage ADD COLUMN overage_period INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN overage_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN overage_limit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN last_metered INTEGER NOT NULL DEFAULT 0;
