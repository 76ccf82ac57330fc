"""Outbound notifications: webhook endpoints, signed deliveries, and verifying them.

Receivers import :func:`verify_webhook`; operators use ``app.webhooks`` (a
:class:`Webhooks`). See docs/webhooks.md.
"""

from __future__ import annotations

from pulseloop.store.webhooks import EVENTS, RUN_EVENTS, SCAN_EVENTS
from pulseloop.webhooks.endpoints import Attempt, Delivery, Endpoint, Webhooks
from pulseloop.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TOLERANCE,
    verify_webhook,
)

__all__ = [
    "DELIVERY_HEADER",
    "EVENTS",
    "EVENT_HEADER",
    "RUN_EVENTS",
    "SCAN_EVENTS",
    "SIGNATURE_HEADER",
    "TOLERANCE",
    "Attempt",
    "Delivery",
    "Endpoint",
    "Webhooks",
    "verify_webhook",
]
