"""The one ASGI app: the MCP endpoint and the sidecar routes, sharing one runtime and store."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from billing.http.checkout import StripeGatewaySlot, billing_routes
from billing.http.webhooks import webhook_routes
from billing.oauth.clients import SUPPORTED_SCOPES
from kamiyo_mcp import heap
from kamiyo_mcp.delivery import DeliveryWiring
from kamiyo_mcp.gate import caller_from_request
from kamiyo_mcp.http.bearer import BearerAuth
from kamiyo_mcp.http.core_routes import core_routes
from kamiyo_mcp.http.operator_access import OperatorAccess
from kamiyo_mcp.http.protected_resource import ProtectedResource
from kamiyo_mcp.intel_refresh import IntelRefreshWiring
from kamiyo_mcp.metering import MeteringWiring
from kamiyo_mcp.metrics import create_metrics, metrics_routes
from kamiyo_mcp.oauth import OAuthWiring
from kamiyo_mcp.reconciliation import ReconcileWiring
from kamiyo_mcp.runtime import Runtime
from kamiyo_mcp.server import build_server
from kamiyo_mcp.settings import Settings, is_loopback

MCP_PATH = "/mcp"


def create_app(settings: Settings, *, bind_host: str = "127.0.0.1",
               clock: Callable[[], float] = time.time, settle_heap: bool = False) -> Starlette:
    """A new app (with a new MCP session manager): `/mcp`, health, validation, metadata.

    `clock` is the authority's time; only tests pass another (see tests/clock_server.py). `settle_heap`:
    this process is the server and lives long: tune the garbage collector once start-up is done
    (`kamiyo_mcp.heap`; not for a test process that builds many apps).
    """
    runtime = Runtime(settings, clock=clock)
    stripe_gateway = StripeGatewaySlot(settings.billing)
    metrics = create_metrics()
    delivery = DeliveryWiring(runtime)
    reconciliation = ReconcileWiring(runtime, on_run=metrics.observe_reconcile)
    metering = MeteringWiring(runtime, stripe_gateway)
    intel_refresh = IntelRefreshWiring(runtime)
    oauth = OAuthWiring(runtime, stripe_gateway, mail_queued=delivery.wake)
    server = build_server(
        runtime, caller_from_request,
        missing_token_hint="Send your KAMIYO token as 'Authorization: Bearer <token>'.",
        on_tool_call=metrics.observe_tool_call, upgrades=metering.offers,
    )
    resource = protected_resource(settings, authorization_servers=(oauth.issuer,) if settings.oauth.enabled else ())
    server.streamable_http_app(  # creates the session manager with these options
        streamable_http_path=MCP_PATH, transport_security=transport_security(settings, bind_host),
        session_idle_timeout=settings.session_idle_timeout, max_sessions=settings.max_sessions,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with runtime.opened(), stripe_gateway.opened(), delivery.sending(), metering.sending(), \
                reconciliation.running(), intel_refresh.running(), server.session_manager.run():
            if settle_heap:
                heap.settle()
            yield

    # `/mcp` is matched first and goes straight to the session manager behind the bearer layer: the
    # SDK's own app around it would only route `/mcp` a second time.
    mcp_endpoint = BearerAuth(StreamableHTTPASGIApp(server.session_manager), lambda: runtime.authority,
                              server.catalog, path=MCP_PATH, resource=resource,
                              session_idle_timeout=settings.session_idle_timeout)
    app = Starlette(
        # Only KAMIYO_TRUSTED_PROXIES may name the client (X-Forwarded-For): every per-client limit reads it.
        middleware=[Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))]
        if settings.trusted_proxies else [],
        routes=[
            Route(MCP_PATH, endpoint=mcp_endpoint),
            *core_routes(runtime, resource, reconciliation=reconciliation.health, intel=intel_refresh.health),
            *billing_routes(lambda: runtime.authority, settings.billing, stripe_gateway),
            *webhook_routes(lambda: runtime.store, settings.billing, on_delivery=metrics.observe_webhook,
                            on_mail_queued=delivery.wake),
            *metrics_routes(metrics, lambda: runtime.store, access=OperatorAccess(
                token=settings.metrics_token,
                own_hosts=[urlsplit(settings.public_url).hostname or "", *settings.allowed_hosts])),
            *delivery.routes(),
            *metering.routes(),
            *oauth.routes(),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.metrics = metrics
    app.state.delivery = delivery
    app.state.reconciliation = reconciliation
    app.state.metering = metering
    app.state.intel_refresh = intel_refresh
    app.state.oauth = oauth
    return app


def protected_resource(settings: Settings, *, authorization_servers: tuple[str, ...] = ()) -> ProtectedResource:
    """The MCP endpoint's RFC 9728 description: an authorization server is advertised only when one is served."""
    return ProtectedResource(
        resource_url=settings.resource_url,
        metadata_url=settings.public_url + "/.well-known/oauth-protected-resource" + MCP_PATH,
        documentation_url=settings.public_url + "/pricing",
        authorization_servers=authorization_servers,
        scopes=SUPPORTED_SCOPES if authorization_servers else (),
    )


def transport_security(settings: Settings, bind_host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection: on for loopback binds, with the public URL's host always allowed."""
    public = urlsplit(settings.public_url)
    hosts = {public.netloc, *settings.allowed_hosts}
    origins = {f"{public.scheme}://{public.netloc}"}
    if is_loopback(bind_host) or is_loopback(public.hostname or ""):
        hosts |= {"127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"}
        origins |= {"http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"}
    for host in settings.allowed_hosts:
        origins |= {f"https://{host}", f"http://{host}"}
    enabled = is_loopback(bind_host) or bool(settings.allowed_hosts)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=enabled, allowed_hosts=sorted(hosts), allowed_origins=sorted(origins)
    )
