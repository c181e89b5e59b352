"""Client ID Metadata Documents: fetched over real HTTPS, guarded against SSRF, bounded, cached."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from billing.oauth.clients import KIND_DOCUMENT
from billing.oauth.metadata_doc import (
    MAX_BYTES,
    MetadataDocumentError,
    MetadataDocuments,
    is_document_client_id,
    is_public_address,
    parse_document,
)
from tests.support_oauth import HANG, NO_LENGTH, DocumentHost, https_document_host

REDIRECT = "http://127.0.0.1:5000/callback"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[DocumentHost]:
    with https_document_host(tmp_path) as served:
        yield served


def document(url: str, **extra: object) -> dict[str, object]:
    return {"client_id": url, "client_name": "Doc App", "redirect_uris": [REDIRECT], **extra}


def fetcher(host: DocumentHost, *, trusted: bool = True, now: list[float] | None = None,
            timeout: float = 5.0) -> MetadataDocuments:
    clock = now or [1_900_000_000.0]
    return MetadataDocuments(ca_file=str(host.ca_file), private_hosts=["localhost"] if trusted else [],
                             clock=lambda: clock[0], timeout=timeout)


async def test_a_document_is_fetched_checked_and_cached(host: DocumentHost) -> None:
    url = host.url + "/client.json"
    host.serve_json("/client.json", document(url), headers={"Cache-Control": "max-age=120"})
    now = [1_900_000_000.0]
    documents = fetcher(host, now=now)
    client = await documents.get(url)
    assert client.client_id == url and client.client_name == "Doc App" and client.kind == KIND_DOCUMENT
    assert client.token_endpoint_auth_method == "none" and client.client_secret is None
    await documents.get(url)
    assert host.hits == ["/client.json"]
    now[0] += 121  # max-age passed: fetched again
    await documents.get(url)
    assert host.hits == ["/client.json", "/client.json"]


async def test_a_document_on_a_private_address_is_never_fetched(host: DocumentHost) -> None:
    url = host.url + "/client.json"
    host.serve_json("/client.json", document(url))
    with pytest.raises(MetadataDocumentError) as refused:
        await fetcher(host, trusted=False).get(url)
    assert "private or reserved address" in refused.value.reason
    with pytest.raises(MetadataDocumentError) as by_ip:
        await fetcher(host, trusted=False).get(url.replace("localhost", "127.0.0.1"))
    assert "private or reserved address" in by_ip.value.reason
    assert host.hits == []  # no request left this process


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1",
                                     "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1"])
def test_loopback_private_link_local_reserved_and_embedded_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


def test_public_addresses_are_public() -> None:
    assert is_public_address(ipaddress.ip_address("93.184.216.34"))
    assert is_public_address(ipaddress.ip_address("2606:4700:4700::1111"))


async def test_a_huge_document_is_refused_whether_or_not_it_announces_its_size(host: DocumentHost) -> None:
    big = json.dumps(document(host.url + "/big.json", padding="x" * (MAX_BYTES + 10))).encode()
    host.serve("/big.json", big, headers={"Content-Type": "application/json"})
    host.serve("/sneaky.json", big, headers={"Content-Type": "application/json", NO_LENGTH: "1"})
    for path in ("/big.json", "/sneaky.json"):
        with pytest.raises(MetadataDocumentError) as refused:
            await fetcher(host).get(host.url + path)
        assert f"larger than {MAX_BYTES} bytes" in refused.value.reason


async def test_a_document_that_never_arrives_times_out(host: DocumentHost) -> None:
    host.serve("/slow.json", b"{}", headers={"Content-Type": "application/json", HANG: "1"})
    with pytest.raises(MetadataDocumentError) as refused:
        await fetcher(host, timeout=0.5).get(host.url + "/slow.json")
    assert "did not arrive within 0.5 s" in refused.value.reason


async def test_redirects_wrong_types_and_failures_are_refused_and_remembered(host: DocumentHost) -> None:
    host.serve("/moved.json", b"", status=302, headers={"Location": "https://169.254.169.254/latest"})
    host.serve("/html.json", b"<html></html>", headers={"Content-Type": "text/html"})
    now = [1_900_000_000.0]
    documents = fetcher(host, now=now)
    with pytest.raises(MetadataDocumentError, match="HTTP 302"):
        await documents.get(host.url + "/moved.json")
    with pytest.raises(MetadataDocumentError, match="not application/json"):
        await documents.get(host.url + "/html.json")
    with pytest.raises(MetadataDocumentError, match="HTTP 404"):
        await documents.get(host.url + "/missing.json")
    with pytest.raises(MetadataDocumentError, match="HTTP 302"):
        await documents.get(host.url + "/moved.json")  # remembered: not fetched again within the minute
    assert host.hits.count("/moved.json") == 1


async def test_an_untrusted_certificate_is_refused(host: DocumentHost, tmp_path: Path) -> None:
    url = host.url + "/client.json"
    host.serve_json("/client.json", document(url))
    with pytest.raises(MetadataDocumentError, match="could not be fetched"):
        await MetadataDocuments(private_hosts=["localhost"]).get(url)  # the public CA bundle: not our test CA


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps(document("https://other.example/client.json")).encode(), "client_id is not the URL"),
    (json.dumps(document("URL", client_secret="s3cret")).encode(), "must not hold a client secret"),
    (json.dumps(document("URL", token_endpoint_auth_method="client_secret_basic")).encode(), "refused"),
    (json.dumps(document("URL", redirect_uris=["http://evil.example/cb"])).encode(), "only on the loopback"),
    (json.dumps({"client_id": "URL"}).encode(), "redirect_uri"),
])
def test_a_document_that_is_not_a_usable_client_is_refused(body: bytes, reason: str) -> None:
    url = "https://app.example/client.json"
    with pytest.raises(MetadataDocumentError) as refused:
        parse_document(url, body.replace(b'"URL"', json.dumps(url).encode()))
    assert reason in refused.value.reason


@pytest.mark.parametrize("url", ["http://app.example/client.json", "https://app.example/a/../client.json",
                                 "https://user@app.example/client.json", "https://app.example/c.json#x"])
async def test_unusable_client_id_urls_are_refused_before_any_fetch(url: str) -> None:
    with pytest.raises(MetadataDocumentError):
        await MetadataDocuments().get(url)


def test_only_https_urls_with_a_path_are_document_client_ids() -> None:
    assert is_document_client_id("https://app.example/client.json")
    assert not is_document_client_id("https://app.example/")
    assert not is_document_client_id("3f1c9a60-1d7e-4c1b-9f60-5b8f0f3e2d11")
