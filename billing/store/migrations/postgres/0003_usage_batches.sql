-- Which request of a batch last counted on this row, so a batched upsert's RETURNING rows map back
-- to the calls that produced them (see billing/store/call_counter.py).
ALTER TABLE usage ADD COLUMN last_request BIGINT;
