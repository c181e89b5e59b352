"""Who is calling: what the edge that received the token hands down instead of the token.

Over HTTP the bearer layer verifies the token once per request and puts a `Caller` into the ASGI
scope; for a `tools/call` it has already admitted (or refused) the call in the same step, and the
gate takes that decision (`PendingCall`) rather than asking the store again. Over stdio the process
verifies `KAMIYO_TOKEN` once at start-up and every call carries the same `Caller`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from billing.access import Denial, Grant
from billing.tokens import Credential

SCOPE_KEY = "ai.kamiyo.caller"


class _Stage(Enum):
    PENDING = "pending"
    TAKEN = "taken"
    WITHDRAWN = "withdrawn"


@dataclass(slots=True)
class PendingCall:
    """A `tools/call` decided before the MCP server parsed it: taken by the gate that runs the tool,
    or withdrawn by the edge when the request ends without reaching it (and then refunded)."""

    tool: str
    decision: Grant | Denial
    _stage: _Stage = field(default=_Stage.PENDING)

    def take(self, tool: str) -> Grant | Denial | None:
        """The decision, once, for the call of `tool` it was made for; None otherwise."""
        if self._stage is not _Stage.PENDING or tool != self.tool:
            return None
        self._stage = _Stage.TAKEN
        return self.decision

    def withdraw(self) -> Grant | None:
        """Withdraw a decision nobody took; the grant it counted, if any, is the caller's to refund."""
        if self._stage is not _Stage.PENDING:
            return None
        self._stage = _Stage.WITHDRAWN
        return self.decision if isinstance(self.decision, Grant) else None


@dataclass(frozen=True, slots=True)
class Caller:
    credential: Credential
    pending: PendingCall | None = None


def caller_in(scope: dict[str, Any]) -> Caller | None:
    found = scope.get(SCOPE_KEY)
    return found if isinstance(found, Caller) else None
