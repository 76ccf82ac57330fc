"""JSON in and out of the store, with the size limits of DESIGN.md.

Step results go through a JSON round trip on the first run too, so the first execution
and every replay return the same value and type (a tuple comes back as a list).
"""

from __future__ import annotations

import json
from typing import Any

from pulseloop.errors import LimitExceeded, NotSerializable

MAX_PAYLOAD_BYTES = 1024 * 1024
"""Largest step result, event body or run output, encoded."""

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode(value: Any, what: str) -> str:
    """``value`` as JSON text; ``what`` names it in errors ("result of step 'x'")."""
    try:
        text = _encoder.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise NotSerializable(
            f"{what} is not JSON-serialisable ({exc}); return only dicts, lists, str, "
            "int, float, bool and None (convert objects, dates and sets first)"
        ) from exc
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise LimitExceeded(
            f"{what} is {size:,} bytes encoded, over the {MAX_PAYLOAD_BYTES:,}-byte limit; "
            "store large data elsewhere and return a reference to it"
        )
    return text


def decode(text: str | None) -> Any:
    """Inverse of :func:`encode` (None stays None)."""
    return None if text is None else json.loads(text)


def round_trip(value: Any, what: str) -> tuple[Any, str]:
    """The value as replay will see it, and its encoding."""
    text = encode(value, what)
    return json.loads(text), text
