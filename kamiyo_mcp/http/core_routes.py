"""Core HTTP routes: health, token validation and the RFC 9728 protected-resource metadata."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing.errors import InvalidTokenError, StoreError
from billing.http.errors import error_response
from kamiyo_mcp import __version__
from kamiyo_mcp.http.bearer import parse_bearer
from kamiyo_mcp.runtime import Runtime

logger = logging.getLogger(__name__)


def core_routes(runtime: Runtime) -> list[Route]:
    settings = runtime.settings

    async def healthz(request: Request) -> Response:
        try:
            ok = await runtime.store.ping()
        except (StoreError, RuntimeError):  # RuntimeError: the runtime is not open
            logger.exception("health check: store unavailable")
            ok = False
        body = {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unavailable",
                "version": __version__}
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
        status = runtime.authority.status_of(identity)
        subscription = status["subscription"]
        assert isinstance(subscription, dict)
        return JSONResponse({
            "valid": True,
            "active": bool(subscription["access"]),
            "user_id": identity.state.user_id,
            "tier": identity.state.tier,
            "token_id": identity.state.token_id,
            "subscription_status": identity.state.status,
            "expires_at": status["token"]["expires_at"],  # type: ignore[index]
            "revoked": identity.state.revoked_at is not None,
        })

    def resource_metadata(request: Request) -> Response:
        return JSONResponse(
            {
                "resource": settings.resource_url,
                "authorization_servers": [settings.public_url],
                "scopes_supported": ["mcp"],
                "bearer_methods_supported": ["header"],
                "resource_name": "KAMIYO MCP",
                "resource_documentation": settings.public_url + "/pricing",
            },
            headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
        )

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/mcp/validate", validate, methods=["POST"]),
        Route("/.well-known/oauth-protected-resource/mcp", resource_metadata, methods=["GET"]),
        Route("/.well-known/oauth-protected-resource", resource_metadata, methods=["GET"]),
    ]
