"""Per-token caps on open MCP sessions, so no one customer can fill the server's session table.

MCP sessions (handshake-era streamable HTTP) live in the memory of the process that opened them,
and the SDK refuses new ones server-wide once `max_sessions` are open. Here each token may hold at
most its tier's `sessions_per_token` in this process: opening one more closes that token's session
that has been idle longest (no call in flight; an open GET stream does not count as a call), by the
same DELETE a client would send, and a token whose sessions are all busy is refused (429). The
limit is per process because what it protects — memory and the session table — is per process.

Sessions the SDK ended on its own (idle timeout) are forgotten here once they answer 404, or once
nothing has used them for longer than the idle timeout.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Scope, Send

SESSION_HEADER = b"mcp-session-id"
# The opening request's headers a closing DELETE repeats (the transport checks Host and Origin).
_KEPT_HEADERS = frozenset({b"host", b"origin", b"mcp-protocol-version"})


@dataclass(slots=True)
class _Session:
    owner: str
    opened_with: Scope
    last_active: float
    calls: int = 0  # POSTs in flight
    streams: int = 0  # GETs in flight


class SessionLimits:
    def __init__(self, app: ASGIApp, *, idle_timeout: float | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._owned: dict[str, set[str]] = {}  # owner -> its session ids
        self._opening: dict[str, int] = {}  # owner -> opening requests in flight (reserved places)
        self._sweep_at = 1024

    def open_count(self, owner: str) -> int:
        """Sessions `owner` holds in this process (including ones being opened)."""
        self._forget_expired(self._owned.get(owner, set()))
        return len(self._owned.get(owner, ())) + self._opening.get(owner, 0)

    @asynccontextmanager
    async def opening(self, owner: str, cap: int, scope: Scope, send: Send) -> AsyncIterator[Send | None]:
        """Reserve a place for a session `owner` is opening, closing its longest-idle session if it is at
        `cap`; yields the `send` that records the session the response opens, or None when there is no
        place (every session busy)."""
        while self.open_count(owner) >= cap:
            victim = self._longest_idle(owner)
            if victim is None:
                yield None
                return
            await self._close(victim)
        self._opening[owner] = self._opening.get(owner, 0) + 1

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                session_id = _header(message.get("headers", []), SESSION_HEADER)
                if session_id is not None:
                    self._add(session_id, _Session(owner, scope, self._clock()))
            await send(message)

        try:
            yield recording
        finally:
            self._opening[owner] -= 1
            if not self._opening[owner]:
                del self._opening[owner]

    @asynccontextmanager
    async def using(self, session_id: str, method: str, send: Send) -> AsyncIterator[Send]:
        """Track a request on an open session; yields the `send` that notices the session has ended."""
        session = self._sessions.get(session_id)
        if session is None:
            yield send
            return
        call = method != "GET"
        if call:
            session.calls += 1
        else:
            session.streams += 1
        session.last_active = self._clock()

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start" and (
                    message["status"] == 404 or (method == "DELETE" and message["status"] < 400)):
                self._remove(session_id)
            await send(message)

        try:
            yield watching
        finally:
            if call:
                session.calls -= 1
            else:
                session.streams -= 1
            session.last_active = self._clock()

    def _add(self, session_id: str, session: _Session) -> None:
        self._sessions[session_id] = session
        self._owned.setdefault(session.owner, set()).add(session_id)
        if len(self._sessions) >= self._sweep_at:
            self._forget_expired(set(self._sessions))
            self._sweep_at = max(1024, 2 * len(self._sessions))

    def _remove(self, session_id: str) -> _Session | None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            owned = self._owned[session.owner]
            owned.discard(session_id)
            if not owned:
                del self._owned[session.owner]
        return session

    def _longest_idle(self, owner: str) -> str | None:
        idle = [(self._sessions[sid].last_active, sid) for sid in self._owned.get(owner, ())
                if not self._sessions[sid].calls]
        return min(idle)[1] if idle else None

    async def _close(self, session_id: str) -> None:
        """End a session through the transport, as the client's own DELETE would."""
        session = self._remove(session_id)
        assert session is not None
        template = session.opened_with
        headers = [(k, v) for k, v in template["headers"] if k in _KEPT_HEADERS]
        scope = {**template, "method": "DELETE", "headers": [*headers, (SESSION_HEADER, session_id.encode())]}
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            return None

        await self._app(scope, receive, discard)

    def _forget_expired(self, session_ids: set[str]) -> None:
        """Drop sessions the transport has surely ended: unused, nothing in flight, past the idle timeout."""
        if self._idle_timeout is None:
            return
        horizon = self._clock() - self._idle_timeout
        for session_id in [sid for sid in session_ids if (s := self._sessions[sid]).last_active < horizon
                           and not s.calls and not s.streams]:
            self._remove(session_id)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def requested_session(scope: Scope) -> str | None:
    """The session id a request names, if any."""
    return _header(scope.get("headers", []), SESSION_HEADER)
