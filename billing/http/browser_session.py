"""The sign-in pages' browser session and CSRF tokens (plain forms, no JavaScript).

    sessions = BrowserSessions(lambda: secret, secure=True)
    session = sessions.current(request)                    # the cookie's value, or a new one to set
    token = sessions.csrf(session, "consent", request_id)  # a hidden field of the form
    sessions.check(form, session, "consent", request_id)   # raises CSRFError on a forged post

The cookie holds a random session id (HttpOnly, SameSite=Lax, Path=/oauth, Secure on https); the
store only ever sees its hash. A form's token is an HMAC of the session, the form's purpose and
its subject, so a token works only for that form, in that browser, and a cross-site page can
neither read one nor send the cookie along with a POST.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from billing.errors import BillingError
from billing.oauth.secret import SESSION_PREFIX, looks_like, new_secret, secret_hash

COOKIE = "kamiyo_oauth_session"
COOKIE_PATH = "/oauth"
COOKIE_SECONDS = 86_400
CSRF_FIELD = "csrf"


class CSRFError(BillingError):
    """A form post without this browser's token for it."""


@dataclass(frozen=True, slots=True)
class Session:
    value: str
    is_new: bool

    @property
    def hash(self) -> str:
        return secret_hash(self.value)


class BrowserSessions:
    """`key` gives the server's secret when first needed (the lifespan opens it after routes are built)."""

    def __init__(self, key: Callable[[], str], *, secure: bool) -> None:
        self._secret = key
        self._key: bytes | None = None
        self._secure = secure

    def current(self, request: Request) -> Session:
        value = request.cookies.get(COOKIE, "")
        if looks_like(value, SESSION_PREFIX):
            return Session(value, False)
        return Session(new_secret(SESSION_PREFIX), True)

    def csrf(self, session: Session, purpose: str, subject: str) -> str:
        if self._key is None:
            self._key = hashlib.sha256(b"kamiyo-oauth-csrf\x00" + self._secret().encode()).digest()
        message = f"{session.value}\x00{purpose}\x00{subject}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def check(self, form: FormData, session: Session, purpose: str, subject: str) -> None:
        """Raises CSRFError unless the form carries this session's token for `purpose` and `subject`."""
        sent = form.get(CSRF_FIELD)
        if session.is_new or not isinstance(sent, str) or not hmac.compare_digest(
                sent, self.csrf(session, purpose, subject)):
            raise CSRFError("This form expired or was not sent from this site. Reload the page and try again.")

    def keep(self, response: Response, session: Session) -> Response:
        """Set the cookie when the session is new (every page that renders a form calls this)."""
        if session.is_new:
            response.set_cookie(COOKIE, session.value, max_age=COOKIE_SECONDS, path=COOKIE_PATH, httponly=True,
                                secure=self._secure, samesite="lax")
        return response
