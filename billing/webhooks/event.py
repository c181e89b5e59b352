"""The Stripe event envelope, parsed from a verified body. Pure, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class MalformedEventError(ValueError):
    """The body verified but is not a Stripe event; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    created: int
    livemode: bool
    object: Mapping[str, Any] = field(repr=False)
    previous_attributes: Mapping[str, Any] = field(default_factory=dict, repr=False)
    api_version: str | None = None


def parse_event(raw: bytes | str) -> StripeEvent:
    """The event in a (verified) webhook body.

    Raises:
        MalformedEventError: not JSON, or not an event (id, type, created, data.object).
    """
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedEventError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedEventError("the body is not a JSON object")
    event_id, event_type, created = body.get("id"), body.get("type"), body.get("created")
    data = body.get("data")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise MalformedEventError("the event has no id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 255:
        raise MalformedEventError("the event has no type")
    if not isinstance(created, int) or isinstance(created, bool):
        raise MalformedEventError("the event has no created time")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEventError("the event has no data.object")
    previous = data.get("previous_attributes")
    api_version = body.get("api_version")
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=created,
        livemode=bool(body.get("livemode")),
        object=data["object"],
        previous_attributes=previous if isinstance(previous, dict) else {},
        api_version=api_version if isinstance(api_version, str) else None,
    )
