-- Secrets at rest: nothing stored lets its reader mint a token (the Python half, which redacts
-- Checkout Session ids from stored events, is billing/store/data_migrations.py). PostgreSQL keeps
-- the old row versions until VACUUM: see the README ("Secrets at rest").

-- An emailed claim is reserved when its mail is queued and gets the hash of its code only when the
-- mail is sent: the code itself never reaches the database.
ALTER TABLE claims ALTER COLUMN secret_hash DROP NOT NULL;

-- The outbox keeps what renders a mail, not the mail: `link_id` names the single-use link row the
-- mail will carry (for a welcome mail, its reserved claim) and `params` the rest (JSON).
ALTER TABLE outbox ADD COLUMN link_id TEXT;
ALTER TABLE outbox ADD COLUMN params TEXT NOT NULL DEFAULT '{}';

-- Welcome mails queued by older versions held their claim code in their bodies: reserve a claim for
-- each, end the claim of the code it held, and forget the body (it is composed again when sent).
INSERT INTO claims (claim_id, subscription_id, kind, secret_hash, expires_at, created_at)
    SELECT 'clm_outbox_' || id, subscription_id, 'email_code', NULL, created_at + 604800, created_at
    FROM outbox WHERE kind = 'welcome' AND sent_at IS NULL AND cancelled_at IS NULL AND subscription_id IS NOT NULL;
UPDATE claims SET expires_at = created_at
    WHERE kind = 'email_code' AND secret_hash IS NOT NULL AND redeemed_at IS NULL AND subscription_id IN (
        SELECT subscription_id FROM outbox WHERE kind = 'welcome' AND sent_at IS NULL AND cancelled_at IS NULL);
UPDATE outbox SET link_id = 'clm_outbox_' || id,
                  params = CASE WHEN subject LIKE 'Your new %' THEN '{"resent": true}' ELSE '{}' END
    WHERE kind = 'welcome' AND sent_at IS NULL AND cancelled_at IS NULL AND subscription_id IS NOT NULL;
UPDATE outbox SET body_text = '', body_html = '' WHERE body_text <> '' OR body_html <> '';
