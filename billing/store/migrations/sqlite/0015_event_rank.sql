-- Stripe can send a subscription's events in the same second: within one `created` second they
-- apply in lifecycle order (created < updated < deleted), so the rank of the last applied event
-- is kept beside its time (NULL for rows written before, and for provisional rows).
ALTER TABLE subscriptions ADD COLUMN last_event_rank INTEGER;
