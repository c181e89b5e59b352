"""GET /openapi.json: the billing API's contract (schemathesis fuzzes a server against it in CI)."""

from __future__ import annotations

from billing.http.openapi import openapi_document
from tests.billing.http.app_harness import running_app
from tests.fakes.stripe_fake import FakeStripe

OPERATIONS = {
    ("/api/billing/create-checkout-session", "post"),
    ("/api/billing/checkout-session/{session_id}", "get"),
    ("/api/billing/create-portal-session", "post"),
    ("/api/billing/checkout-health", "get"),
    ("/api/billing/overage-cap", "post"),
}


async def test_the_served_document_lists_every_billing_endpoint_with_its_shapes_and_the_error_shape(
    env: dict[str, str], fake: FakeStripe
) -> None:
    async with running_app(env, fake) as billing:
        response = await billing.client.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document == openapi_document()
    assert document["openapi"].startswith("3.1")
    assert {(path, method) for path, item in document["paths"].items() for method in item} == OPERATIONS
    for path, item in document["paths"].items():
        for operation in item.values():
            responses = operation["responses"]
            assert "200" in responses, path
            errors = [r for status, r in responses.items() if status != "200"]
            assert errors and all(
                r["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"} for r in errors
            ), path
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
