"""OAuth test helpers: a headless person who signs in through the real pages, forms, an HTTPS document host.

    person = HeadlessPerson(inbox, "buyer@example.com")
    provider = OAuthClientProvider(url + "/mcp", metadata, MemoryTokens(), person.redirect, person.callback)

The person follows the authorization URL the official client hands over exactly as a browser
would: the sign-in page, the email form, the link read from the real SMTP inbox, "Continue", the
consent form, and back to the client's redirect URI (whose query the callback returns).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import re
import secrets
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp.client.auth import TokenStorage
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthToken

from tests.billing.http.delivery_harness import Inbox

NO_LENGTH = "X-Test-No-Content-Length"  # send the body without a Content-Length header
HANG = "X-Test-Hang"  # never answer
SIGN_IN_LINK = re.compile(r"https?://\S+/oauth/link\?code=[A-Za-z0-9_-]+")


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, label)

    def submit(self, button: str | None = None, **values: str) -> dict[str, str]:
        """The fields a browser sends when the button labelled `button` is pressed."""
        data = {**self.fields, **values}
        for name, value, label in self.buttons:
            if name and (button is None or label == button):
                data[name] = value
                break
        return data


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._label: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms:
            self._label = (a.get("name", ""), a.get("value", ""))
            self.forms[-1].buttons.append((self._label[0], self._label[1], ""))

    def handle_data(self, data: str) -> None:
        if self._label is not None and self.forms and data.strip():
            name, value, label = self.forms[-1].buttons[-1]
            self.forms[-1].buttons[-1] = (name, value, (label + " " + data.strip()).strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._label = None


def forms(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def form_to(html: str, action: str) -> Form:
    (found,) = [f for f in forms(html) if f.action == action]
    return found


def sign_in_link(message: EmailMessage) -> str:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    (link,) = set(SIGN_IN_LINK.findall(text.get_content()))
    assert link in html.get_content().replace("&amp;", "&")
    return link


async def next_sign_in_mail(inbox: Inbox) -> EmailMessage:
    """The next sign-in mail (welcome mails of a payment arrive in the same inbox and are passed over)."""
    while True:
        message = await inbox.next()
        if message["Subject"] == "Your KAMIYO sign-in link":
            return message


class MemoryTokens(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class HeadlessPerson:
    """Signs in (by the mailed link, or with a KAMIYO token) and presses a consent button, in one
    cookie-keeping browser."""

    def __init__(self, inbox: Inbox | None, email: str = "", *, token: str | None = None,
                 decision: str = "Allow") -> None:
        self.inbox = inbox
        self.email = email
        self.token = token
        self.decision = decision
        self.pages: list[httpx.Response] = []
        self.returned_to: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        async with httpx.AsyncClient(timeout=30, follow_redirects=False) as browser:
            page = await self._follow(browser, await browser.get(authorization_url))
            if self.token is not None:
                form = form_to(page.text, "/oauth/sign-in/secret")
                page = await self._follow(browser, await browser.post(
                    urljoin(str(page.url), form.action), data=form.submit(secret=self.token)))
            else:
                assert self.inbox is not None
                form = form_to(page.text, "/oauth/sign-in")
                page = await self._follow(browser, await browser.post(
                    urljoin(str(page.url), form.action), data=form.submit(email=self.email)))
                assert "Check your email" in page.text, page.text
                link = sign_in_link(await next_sign_in_mail(self.inbox))
                page = await self._follow(browser, await browser.get(link))
                form = form_to(page.text, "/oauth/link")
                page = await self._follow(browser, await browser.post(urljoin(link, form.action),
                                                                      data=form.submit()))
            form = form_to(page.text, "/oauth/consent")
            answer = await browser.post(urljoin(str(page.url), form.action), data=form.submit(self.decision))
            assert answer.status_code == 303, answer.text
            self.returned_to = answer.headers["location"]

    async def callback(self) -> AuthorizationCodeResult:
        assert self.returned_to is not None, "the person never came back to the client"
        query = parse_qs(urlsplit(self.returned_to).query)
        if "error" in query:
            raise RuntimeError(f"authorization refused: {query}")
        return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0],
                                       iss=query.get("iss", [None])[0])

    async def _follow(self, browser: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
        """Follow redirects within the server, as a browser would (never to the client's redirect URI)."""
        for _ in range(10):
            self.pages.append(response)
            if response.status_code not in (301, 302, 303, 307):
                assert response.status_code == 200, response.text
                return response
            response = await browser.get(urljoin(str(response.url), response.headers["location"]))
        raise AssertionError("too many redirects")


# ---- an HTTPS host for Client ID Metadata Documents ---------------------------------------------

@dataclass
class DocumentHost:
    url: str
    ca_file: Path
    documents: dict[str, tuple[int, dict[str, str], bytes]]
    hits: list[str]

    def serve_json(self, path: str, document: object, *, headers: dict[str, str] | None = None) -> str:
        return self.serve(path, json.dumps(document).encode(), headers={"Content-Type": "application/json",
                                                                        **(headers or {})})

    def serve(self, path: str, body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> str:
        self.documents[path] = (status, headers or {}, body)
        return self.url + path


@contextmanager
def https_document_host(directory: Path) -> Iterator[DocumentHost]:
    """An HTTPS server on https://localhost:PORT with a certificate from a CA made for this test."""
    ca_file, context = _test_tls(directory)
    documents: dict[str, tuple[int, dict[str, str], bytes]] = {}
    hits: list[str] = []

    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server hook)
            hits.append(self.path)
            status, headers, body = documents.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
            if HANG in headers:
                stopping.wait(30)  # a server that never answers (bounded: released when the host stops)
                return
            self.send_response(status)
            for key, value in headers.items():
                if key != NO_LENGTH:
                    self.send_header(key, value)
            if NO_LENGTH not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield DocumentHost(f"https://localhost:{server.server_address[1]}", ca_file, documents, hits)
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()


def _test_tls(directory: Path) -> tuple[Path, ssl.SSLContext]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kamiyo test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


async def authorized_over_http(issuer: str, token: str, *, redirect: str = "http://127.0.0.1:40999/callback"
                               ) -> tuple[str, dict[str, object]]:
    """A client registered at `issuer`, and the tokens a whole authorization over HTTP gave it (the person
    signs in with `token` and allows). Returns (client_id, token response)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    async with httpx.AsyncClient(timeout=30) as http:
        registered = await http.post(issuer + "/register", json={
            "client_name": "Test App", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"})
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        person = HeadlessPerson(None, token=token)
        await person.redirect(str(httpx.URL(issuer + "/authorize", params={
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect, "state": "s",
            "code_challenge": challenge, "code_challenge_method": "S256", "resource": issuer + "/mcp"})))
        code = (await person.callback()).code
        answer = await http.post(issuer + "/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": client_id,
            "code_verifier": verifier, "resource": issuer + "/mcp"})
        assert answer.status_code == 200, answer.text
        return client_id, dict(answer.json())
