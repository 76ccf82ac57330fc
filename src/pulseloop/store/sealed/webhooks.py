"""Webhook endpoints through the encrypting store: each endpoint's signing secret is
sealed at rest with its organization's data key, bound to the endpoint's id.

Why seal a secret that is no patient data: whoever reads it can forge notifications the
receiver trusts (and it would leak through a database dump or backup like any column).
The deliverer opens it only to sign, in memory; it is never logged or shown again after
the endpoint is created.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from pulseloop.store.webhooks import (
    AttemptLog,
    DeliveryRecord,
    DueDelivery,
    EndpointRecord,
    WebhookStore,
)

SECRET = "webhook_endpoints.secret"

Seal = Callable[[str, str, str, str], Awaitable[str]]
"""(org, text, column, endpoint id) -> ciphertext."""
Open = Callable[[str, str, str, str], Awaitable[str]]
"""(org, stored, column, endpoint id) -> plaintext."""


class SealedWebhooks:
    """:class:`~pulseloop.store.webhooks.WebhookStore` sealing endpoint secrets."""

    def __init__(self, inner: WebhookStore, seal: Seal, open_: Open) -> None:
        self._inner = inner
        self._seal = seal
        self._open = open_

    async def add_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        """Store the endpoint with its secret sealed; return it as given."""
        sealed = await self._seal(record.org, record.secret, SECRET, record.id)
        await self._inner.add_endpoint(dataclasses.replace(record, secret=sealed))
        return record

    async def list_endpoints(self, org: str) -> list[EndpointRecord]:
        """The endpoints, secrets left out (they are shown once, at creation)."""
        return [dataclasses.replace(e, secret="") for e in await self._inner.list_endpoints(org)]

    async def remove_endpoint(self, org: str, endpoint_id: str, now: float) -> bool:
        """Remove it (nothing to seal)."""
        return await self._inner.remove_endpoint(org, endpoint_id, now)

    async def claim_deliveries(
        self, worker: str, limit: int, now: float, lease_s: float
    ) -> tuple[list[DueDelivery], float | None]:
        """Claimed deliveries with their endpoint's secret opened for signing."""
        due, upcoming = await self._inner.claim_deliveries(worker, limit, now, lease_s)
        opened = []
        for item in due:
            org, endpoint = item.delivery.org, item.delivery.endpoint_id
            secret = await self._open(org, item.secret, SECRET, endpoint)
            opened.append(dataclasses.replace(item, secret=secret))
        return opened, upcoming

    async def record_attempt(
        self, worker: str, attempt: AttemptLog, state: str, next_attempt_at: float | None
    ) -> bool:
        """Log the attempt (nothing to seal: codes, errors and times)."""
        return await self._inner.record_attempt(worker, attempt, state, next_attempt_at)

    async def list_deliveries(
        self, org: str, *, limit: int = 50, endpoint_id: str | None = None
    ) -> list[DeliveryRecord]:
        """The delivery log (ids, statuses and times only)."""
        return await self._inner.list_deliveries(org, limit=limit, endpoint_id=endpoint_id)

    async def list_attempts(self, org: str, delivery_id: int) -> list[AttemptLog]:
        """A delivery's attempts."""
        return await self._inner.list_attempts(org, delivery_id)
