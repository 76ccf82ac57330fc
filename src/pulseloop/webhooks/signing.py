"""Signing notifications, and verifying them on the receiving side.

The scheme is Stripe's, which receivers' frameworks already know: the header
``Pulseloop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
The timestamp is inside the MAC, so a captured request cannot be replayed later than the
receiver's window (:data:`TOLERANCE`) with a fresh ``t``; within the window, receivers
dedupe on the ``Pulseloop-Delivery`` id. Several ``v1`` entries may appear (a receiver
accepts any that matches), which leaves room to roll a secret without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

from pulseloop.errors import WebhookSignatureError

SIGNATURE_HEADER = "Pulseloop-Signature"
DELIVERY_HEADER = "Pulseloop-Delivery"
EVENT_HEADER = "Pulseloop-Event"
TOLERANCE = timedelta(minutes=5)
"""How old (or how far in the future) a signed timestamp may be: clock skew plus the time
a request spends in flight, and no more, so a replay soon stops verifying."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Pulseloop-Signature`` value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_webhook(
    body: bytes | str,
    header: str | None,
    secret: str,
    *,
    tolerance: timedelta = TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a received notification and return its JSON payload.

    ``body``: the raw request body, exactly as received (before any JSON parsing);
    ``header``: the ``Pulseloop-Signature`` header; ``secret``: the endpoint's secret
    (``whsec_...``, shown once when the endpoint was added). Raises
    :class:`~pulseloop.errors.WebhookSignatureError` when the header is missing or
    malformed, no signature matches, or the timestamp is outside ``tolerance``.
    """
    raw = body.encode() if isinstance(body, str) else body
    if not header:
        raise WebhookSignatureError(f"no {SIGNATURE_HEADER} header; reject the request")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookSignatureError(
            f"{SIGNATURE_HEADER} {header[:100]!r} is not 't=<unix>,v1=<hex>'; reject it"
        )
    expected = signature(secret, timestamp, raw)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise WebhookSignatureError(
            "the signature does not match the body and secret; reject the request (check "
            "that the body is the raw bytes received and the secret is this endpoint's)"
        )
    age_s = (time.time() if now is None else now) - timestamp
    if abs(age_s) > tolerance.total_seconds():
        raise WebhookSignatureError(
            f"the signature is {age_s:.0f} s old, outside the {tolerance.total_seconds():.0f} s "
            "window; reject it as a possible replay"
        )
    payload = json.loads(raw)
    if not isinstance(payload, dict):
        raise WebhookSignatureError("the signed body is not a JSON object")
    return payload
