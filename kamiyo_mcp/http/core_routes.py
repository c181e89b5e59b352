"""Core HTTP routes: health, token validation and the RFC 9728 protected-resource metadata."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing.access import subscription_grants_access
from billing.account import iso
from billing.errors import InvalidTokenError, StoreError
from billing.http.endpoint import json_route
from billing.http.errors import error_response
from kamiyo_mcp import __version__
from kamiyo_mcp.http.bearer import parse_bearer
from kamiyo_mcp.http.protected_resource import ProtectedResource
from kamiyo_mcp.runtime import Runtime

logger = logging.getLogger(__name__)


def core_routes(runtime: Runtime, resource: ProtectedResource, *,
                reconciliation: Callable[[], Awaitable[dict[str, Any]]] | None = None,
                intel: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> list[Route]:
    """`reconciliation` gives the last reconciliation with Stripe for /healthz, `intel` the incident data's
    freshness (neither changes the status: a Stripe or data-source outage is not this server's)."""

    async def healthz(request: Request) -> Response:
        try:
            ok = await runtime.store.ping()
        except (StoreError, RuntimeError):  # RuntimeError: the runtime is not open
            logger.exception("health check: store unavailable")
            ok = False
        body: dict[str, Any] = {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unavailable",
                                "version": __version__}
        if ok and reconciliation is not None:
            try:
                body["reconciliation"] = await reconciliation()
            except StoreError:
                logger.exception("health check: the reconciliation state could not be read")
                body["reconciliation"] = {"error": "unavailable"}
        if intel is not None:
            try:
                body["intel"] = await intel()
            except Exception:  # the top of this request: whatever the intel file did, health still answers
                logger.exception("health check: the intel data's state could not be read")
                body["intel"] = {"error": "unavailable"}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def validate(request: Request) -> Response:
        token = parse_bearer(request.headers.get("authorization"))
        if token is None:
            return error_response(401, "invalid_token", "send the token as 'Authorization: Bearer <token>'",
                                  valid=False, headers={"WWW-Authenticate": "Bearer"})
        try:
            identity = await runtime.authority.authenticate(token)
        except InvalidTokenError as exc:
            return error_response(401, "invalid_token", exc.reason, valid=False,
                                  headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        except StoreError:
            logger.exception("validate: the store is unavailable")
            return error_response(503, "store_unavailable", "the account store is unavailable; retry shortly",
                                  headers={"Retry-After": "5"})
        state = identity.state
        revoked = state.revoked_at is not None
        return JSONResponse({
            "valid": True,
            "active": not revoked and subscription_grants_access(state, runtime.authority.now()),
            "user_id": state.user_id,
            "tier": state.tier,
            "token_id": state.token_id,
            "subscription_status": state.status,
            "expires_at": iso(state.expires_at),
            "revoked": revoked,
            "revoked_reason": state.revoked_reason,
        })

    def resource_metadata(request: Request) -> Response:
        return JSONResponse(
            resource.metadata(),
            headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
        )

    return [
        # JSON routes: a wrong method is a JSON 405 with Allow, as on every route of /openapi.json.
        json_route("/healthz", healthz, {"GET", "HEAD"}),
        json_route("/api/mcp/validate", validate, {"POST"}),
        Route("/.well-known/oauth-protected-resource/mcp", resource_metadata, methods=["GET"]),
        Route("/.well-known/oauth-protected-resource", resource_metadata, methods=["GET"]),
    ]
