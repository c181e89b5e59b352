"""The size budget of one tool answer (pure).

An answer travels twice: as structured content (JSON) and as its text rendering, and a client
puts both in the model's context. ``BUDGET_BYTES`` (100 KB, about 25k tokens) bounds the two
together, whatever the tier: a tier's higher cap means more pages, never a bigger answer. Lists
are cut to fit, and the answer says how many more there are and how to get them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

BUDGET_BYTES = 100_000
# What lists may use; the rest covers the fixed fields, the JSON-RPC envelope and JSON escaping of the text.
LIST_BUDGET_BYTES = 80_000

T = TypeVar("T")


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (UTF-8)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def answer_size(structured: dict[str, Any], text: str) -> int:
    """Bytes an answer takes on the wire: its structured content plus its text, as JSON strings."""
    return json_size(structured) + json_size(text)


def fit(items: Sequence[T], cost: Callable[[T], int], budget: int = LIST_BUDGET_BYTES) -> int:
    """How many leading ``items`` fit in ``budget`` bytes, by each one's ``cost``."""
    used = 0
    for count, item in enumerate(items):
        used += cost(item)
        if used > budget:
            return count
    return len(items)
