"""How the MCP endpoint describes its protection: RFC 9728 metadata and the `WWW-Authenticate` challenge.

Only what exists is advertised. With no OAuth authorization server the metadata names none, so a
client does not go looking for one (and fail at client registration) when a token is refused; an
authorization server that is served is listed by passing its issuer in `authorization_servers`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProtectedResource:
    resource_url: str
    metadata_url: str
    documentation_url: str
    authorization_servers: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    def metadata(self) -> dict[str, object]:
        """The RFC 9728 protected-resource metadata document."""
        document: dict[str, object] = {"resource": self.resource_url}
        if self.authorization_servers:
            document["authorization_servers"] = list(self.authorization_servers)
        if self.scopes:
            document["scopes_supported"] = list(self.scopes)
        document.update({
            "bearer_methods_supported": ["header"],
            "resource_name": "KAMIYO MCP",
            "resource_documentation": self.documentation_url,
        })
        return document

    def challenge(self, description: str | None = None) -> str:
        """A `WWW-Authenticate: Bearer ...` value; `description` says why a presented token was refused."""
        params = []
        if description is not None:
            params.append(f'error="invalid_token", error_description="{_quoted(description)}"')
        params.append(f'resource_metadata="{self.metadata_url}"')
        if self.scopes:  # the scope a client asks for when it signs in (MCP authorization, RFC 6750 §3)
            params.append(f'scope="{" ".join(self.scopes)}"')
        return "Bearer " + ", ".join(params)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
