-- OAuth 2.1 authorization server (billing/oauth): clients, pending authorizations, sign-in links,
-- grants, authorization codes and refresh-token families. An OAuth access token is one more row of
-- `tokens` (kind 'oauth'), so the one admit-and-count statement decides its calls like a bearer
-- token's. Every secret (client secret, sign-in link, browser session, code, refresh token,
-- access token) is kept only as its SHA-256. A request id is not a secret (the consent is bound to the
-- browser session that signed in, and only the client holds the PKCE verifier). Times are unix
-- seconds (UTC).

ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'bearer';
ALTER TABLE tokens ADD COLUMN oauth_grant_id TEXT;
CREATE INDEX tokens_oauth_grant ON tokens (oauth_grant_id) WHERE oauth_grant_id IS NOT NULL;

-- A client: registered dynamically (RFC 7591) or known by its Client ID Metadata Document (the
-- client id is the document's URL; the row records what was last fetched, for the operator).
CREATE TABLE oauth_clients (
    client_id    TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('registered', 'metadata_document')),
    client_name  TEXT,
    metadata     TEXT NOT NULL,
    secret_hash  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX oauth_clients_created ON oauth_clients (kind, created_at);

-- An authorization request between /authorize and the consent: who asked, where the code goes,
-- and (once someone signed in) whose account and which browser session may approve it.
CREATE TABLE oauth_requests (
    request_id           TEXT PRIMARY KEY,
    client_id              TEXT NOT NULL,
    redirect_uri           TEXT NOT NULL,
    redirect_uri_explicit  BIGINT NOT NULL,
    code_challenge         TEXT NOT NULL,
    state                  TEXT,
    scopes                 TEXT NOT NULL,
    resource               TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    expires_at             BIGINT NOT NULL,
    email                  TEXT,
    user_id                TEXT REFERENCES customers (user_id),
    subscription_id        TEXT REFERENCES subscriptions (subscription_id),
    session_hash           TEXT,
    signed_in_by           TEXT,
    signed_in_at           BIGINT,
    completed_at           BIGINT
);
CREATE INDEX oauth_requests_expiry ON oauth_requests (expires_at);

-- A single-use sign-in link mailed to an address, for one authorization request. It is reserved
-- with its mail; the secret is made when the mail is sent, and only its hash is kept (NULL until
-- then; a mail sent again carries a new secret in a sibling row).
CREATE TABLE oauth_sign_in_links (
    link_id       TEXT PRIMARY KEY,
    link_hash     TEXT UNIQUE,
    request_id  TEXT NOT NULL REFERENCES oauth_requests (request_id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX oauth_sign_in_links_email ON oauth_sign_in_links (email, created_at);
CREATE INDEX oauth_sign_in_links_request ON oauth_sign_in_links (request_id);

-- A grant: one consent of one customer to one client, paid for by one subscription. Its refresh
-- tokens form one family; revoking the grant ends the family and every access token it minted.
CREATE TABLE oauth_grants (
    grant_id         TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL REFERENCES customers (user_id),
    subscription_id  TEXT NOT NULL REFERENCES subscriptions (subscription_id),
    scopes           TEXT NOT NULL,
    resource         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    refreshed_at     BIGINT,
    revoked_at       BIGINT,
    revoked_reason   TEXT
);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id);
CREATE INDEX oauth_grants_subscription ON oauth_grants (subscription_id);

-- An authorization code: single use; `grant_id` is set when it is exchanged, so a replay can end
-- what the first exchange created.
CREATE TABLE oauth_codes (
    code_hash              TEXT PRIMARY KEY,
    client_id              TEXT NOT NULL,
    user_id                TEXT NOT NULL REFERENCES customers (user_id),
    subscription_id        TEXT NOT NULL REFERENCES subscriptions (subscription_id),
    redirect_uri           TEXT NOT NULL,
    redirect_uri_explicit  BIGINT NOT NULL,
    code_challenge         TEXT NOT NULL,
    scopes                 TEXT NOT NULL,
    resource               TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    expires_at             BIGINT NOT NULL,
    used_at                BIGINT,
    grant_id               TEXT REFERENCES oauth_grants (grant_id)
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);

CREATE TABLE oauth_refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES oauth_grants (grant_id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
