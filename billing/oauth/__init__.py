"""The OAuth 2.1 authorization server whose grant is the subscription (MCP authorization spec).

    clients.py      what a client may register: redirect URIs, exact matching (loopback ports free)
    metadata_doc.py Client ID Metadata Documents: fetched with timeouts, size limit, cache, SSRF guard
    secret.py       the random secrets of the flow (request ids, links, codes, refresh tokens) and their hashes
    provider.py     the SDK's `OAuthAuthorizationServerProvider` over the store: codes, grants, refresh, revocation
    sign_in.py      the person's side: sign-in by mailed link, token or claim code; consent; which subscription

An OAuth access token is a JWT from the same `TokenCodec` (aud = the resource URL, RFC 8707) and a
row of `tokens` (kind 'oauth', linked to its grant), so `Authority.authorize` decides its calls
with the same single statement as a bearer token's: tier, shared quotas, revocation, ended
subscriptions. Nothing here knows MCP.
"""
