"""An organization's webhook endpoints and their delivery log: ``app.webhooks``.

    created = await app.webhooks.add("https://ehr.example/hooks", events=["scan.completed"])
    created.secret      # whsec_...: shown this once; verify deliveries with it
    await app.webhooks.list()
    await app.webhooks.deliveries(attempts=True)
    await app.webhooks.remove(created.id)

The server POSTs to whatever URL an organization's admin adds (only ``http``/``https``
is refused otherwise): an admin of one organization can point it at hosts on the
server's own network. See docs/webhooks.md for what to do about that.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pulseloop.errors import InvalidWebhook, WebhookNotFound
from pulseloop.store.webhooks import (
    EVENTS,
    AttemptLog,
    DeliveryRecord,
    EndpointRecord,
    WebhookStore,
)

if TYPE_CHECKING:
    from pulseloop.client import OrgClient

MAX_URL_CHARS = 2000
MAX_ENDPOINTS = 20
"""Endpoints per organization: each terminal event is one row per endpoint."""


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def delivery_id(number: int) -> str:
    """The public id of a delivery (the ``Pulseloop-Delivery`` header)."""
    return f"dlv_{number}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A webhook endpoint; ``secret`` is set only on the one :meth:`Webhooks.add` returns."""

    id: str
    url: str
    events: tuple[str, ...]
    created_at: datetime
    secret: str | None = None

    @classmethod
    def of(cls, record: EndpointRecord, secret: str | None = None) -> Endpoint:
        """From the store's record."""
        created = datetime.fromtimestamp(record.created_at, UTC)
        return cls(record.id, record.url, record.events, created, secret)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST: the receiver's status code, or the error that stopped it."""

    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None

    @classmethod
    def of(cls, log: AttemptLog) -> Attempt:
        """From the store's row."""
        started = datetime.fromtimestamp(log.started_at, UTC)
        return cls(log.attempt, started, log.duration_ms, log.status_code, log.error)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification to one endpoint, with its attempts when asked for."""

    id: str
    endpoint_id: str
    event: str
    run_id: str | None
    scan_id: str | None
    loop: str | None
    status: str
    occurred_at: datetime
    state: str
    """``pending`` (retried at ``next_attempt_at``), ``delivered`` or ``failed``."""
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    finished_at: datetime | None
    attempts: tuple[Attempt, ...] = ()

    @classmethod
    def of(cls, r: DeliveryRecord, attempts: Iterable[AttemptLog] = ()) -> Delivery:
        """From the store's row (and its attempt rows)."""
        occurred = datetime.fromtimestamp(r.occurred_at, UTC)
        return cls(
            delivery_id(r.id), r.endpoint_id, r.event, r.run_id, r.scan_id, r.loop, r.status,
            occurred, r.state, r.attempts, _time(r.next_attempt_at), r.last_status_code,
            r.last_error, _time(r.finished_at), tuple(Attempt.of(a) for a in attempts),
        )  # fmt: skip


def check_url(url: str) -> str:
    """``url`` if it is an absolute ``http``/``https`` URL with a host; InvalidWebhook
    naming the problem otherwise."""
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL_CHARS:
        raise InvalidWebhook(f"a webhook url is 1-{MAX_URL_CHARS} characters", "url")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise InvalidWebhook(f"webhook url {url[:100]!r} cannot be parsed", "url") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhook(
            f"webhook url {url[:100]!r} is not http(s); use https://host/path", "url"
        )
    if not host:
        raise InvalidWebhook(f"webhook url {url[:100]!r} names no host", "url")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhook(
            "a webhook url must not carry credentials (user:password@); the signature "
            "authenticates the sender",
            "url",
        )
    return url


def check_events(events: Iterable[str] | None) -> tuple[str, ...]:
    """The event types, deduplicated in their canonical order; every one when None."""
    if events is None:
        return EVENTS
    wanted = list(events)
    unknown = [e for e in wanted if e not in EVENTS]
    if unknown or not wanted:
        raise InvalidWebhook(
            f"unknown or no event types {unknown!r}; choose from {', '.join(EVENTS)}",
            "events",
        )
    return tuple(e for e in EVENTS if e in wanted)


class Webhooks:
    """The webhook endpoints and delivery log of one organization."""

    def __init__(self, client: OrgClient) -> None:
        self._client = client

    @property
    def _store(self) -> WebhookStore:
        return self._client.runtime.store.webhooks

    async def add(self, url: str, *, events: Iterable[str] | None = None) -> Endpoint:
        """Add an endpoint for ``events`` (all of them by default); the returned
        endpoint carries its signing ``secret``, which is never shown again."""
        org = self._client.org
        record = EndpointRecord(
            "whe_" + secrets.token_hex(8), org, check_url(url), check_events(events),
            "whsec_" + secrets.token_urlsafe(32), self._client.clock.now(),
        )  # fmt: skip
        if len(await self._store.list_endpoints(org)) >= MAX_ENDPOINTS:
            raise InvalidWebhook(
                f"{org!r} has {MAX_ENDPOINTS} webhook endpoints already; remove one first",
                "url",
            )
        await self._store.add_endpoint(record)
        await self._client.record("add_webhook", "webhook", record.id)
        return Endpoint.of(record, secret=record.secret)

    async def list(self) -> list[Endpoint]:
        """The organization's endpoints, oldest first (without secrets)."""
        return [Endpoint.of(r) for r in await self._store.list_endpoints(self._client.org)]

    async def remove(self, endpoint_id: str) -> None:
        """Remove the endpoint; its pending deliveries fail (WebhookNotFound if none)."""
        removed = await self._store.remove_endpoint(
            self._client.org, endpoint_id, self._client.clock.now()
        )
        if not removed:
            raise WebhookNotFound(
                f"no webhook endpoint {endpoint_id!r} in this organization; "
                "`pulseloop webhooks list` shows them"
            )
        await self._client.record("remove_webhook", "webhook", endpoint_id)

    async def deliveries(
        self, *, limit: int = 50, endpoint_id: str | None = None, attempts: bool = False
    ) -> builtins.list[Delivery]:
        """The delivery log, newest first; ``attempts`` adds each one's attempts."""
        org = self._client.org
        records = await self._store.list_deliveries(org, limit=limit, endpoint_id=endpoint_id)
        if not attempts:
            return [Delivery.of(r) for r in records]
        return [Delivery.of(r, await self._store.list_attempts(org, r.id)) for r in records]
