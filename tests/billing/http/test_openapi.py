"""GET /openapi.json: the contract of every JSON route of the sidecar (schemathesis fuzzes it in CI)."""

from __future__ import annotations

import re

from starlette.routing import Route

from billing.http.openapi import openapi_document
from tests.billing.http.app_harness import running_app
from tests.fakes.stripe_fake import FakeStripe

# Not routes of the billing API: pages and their assets, MCP itself and its RFC 9728 metadata, and the
# OAuth 2.1 authorization server, whose endpoints and RFC 6749 error shapes its RFC 8414 metadata describes.
NOT_API = re.compile(r"^(/mcp$|/pricing|/billing/|/claim$|/static/|/\.well-known/|/openapi\.json$"
                     r"|/authorize$|/token$|/register$|/revoke$|/oauth/)")
METHODS = ("get", "post", "put", "patch", "delete")


def api_paths(routes: list[object]) -> set[str]:
    """The app's JSON routes, with path parameters as OpenAPI writes them."""
    return {re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path) for route in routes
            if isinstance(route, Route) and not NOT_API.match(route.path)}


async def test_every_json_route_of_the_app_is_documented_and_answers_only_its_documented_methods(
    env: dict[str, str], fake: FakeStripe
) -> None:
    document = openapi_document()
    async with running_app(env, fake) as billing:
        served = (await billing.client.get("/openapi.json")).json()
        routes = list(billing.client._transport.app.routes)  # type: ignore[attr-defined]
        assert served == document
        assert set(document["paths"]) == api_paths(routes)
        health = (await billing.client.get("/healthz")).json()
        declared = document["components"]["schemas"]["Health"]["properties"]
        assert {key for key, value in health.items() if key not in declared and not isinstance(value, dict)} == set()
        for path, item in document["paths"].items():
            url = path.replace("{session_id}", "cs_test_a1B2c3")
            for method in METHODS:
                answer = await billing.client.request(method.upper(), url)
                assert (answer.status_code == 405) == (method not in item), (method, path, answer.status_code)
                if answer.status_code == 405:
                    assert answer.headers["content-type"] == "application/json" and "allow" in answer.headers


def test_every_operation_documents_its_success_and_errors_in_the_error_shape() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    for path, item in document["paths"].items():
        for operation in item.values():
            responses = operation["responses"]
            assert "200" in responses and "405" in responses, path
            for status, response in responses.items():
                if int(status) >= 400 and (path, status) != ("/healthz", "503"):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}, (path, status)
                if status == "429":
                    assert response["headers"]["Retry-After"]["required"] is True
            if operation.get("requestBody"):
                assert "application/json" in operation["requestBody"]["content"]
    error = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["code", "message", "status"]


def test_every_schema_reference_resolves() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    names = {ref.removeprefix("#/components/schemas/") for ref in refs(document)}
    assert names <= set(schemas)
    assert names == set(schemas)  # nothing declared and unused
