"""Webhook endpoints, the delivery outbox and its attempt log, written once for both
backends (see docs/webhooks.md).

Design record. *The outbox.* A terminal transition (a run completed, failed or cancelled;
a scan completed, failed or expired) inserts one delivery row per subscribed endpoint in
the transaction that makes the transition (:data:`RUN_OUTBOX`, :data:`SCAN_OUTBOX`,
called by each backend's terminal code through its small ``outbox`` helper). Considered:
publishing after the commit (a crash between the two loses the notification), or a
trigger (invisible to readers of the Python, and written twice). A transition written
twice (PostgreSQL's group commit reruns a batch whose reply was lost) inserts nothing
the second time: ``(endpoint, event, subject, occurred_at)`` is unique.

*Deliveries are durable work*, claimed like runs: a lease (``lease_owner``,
``lease_expires_at``) taken in one statement, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so
racing deliverers skip each other's rows; SQLite's single writer serialises claims. Each
attempt's row and the delivery's new state are written together, fenced by the lease, so
a deliverer that lost its lease (it stalled past it and another took over) records
nothing. A delivery is at-least-once: a crash after the POST and before the record sends
it again, with the same delivery id, which is what receivers dedupe on. Deliverers lease
under their worker's id, so a worker proven dead (``reclaim_dead_workers``) has its
deliveries freed at once like its runs, not after the lease.

Every statement here uses ``?`` placeholders and runs through the backend's
``payload_sql`` (one transaction per call), so no backend repeats it; only the claim's
row lock differs (passed in as ``lock``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

RUN_EVENTS = ("run.completed", "run.failed", "run.cancelled")
SCAN_EVENTS = ("scan.completed", "scan.failed", "scan.expired")
EVENTS = RUN_EVENTS + SCAN_EVENTS
"""Every event type an endpoint can subscribe to."""


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """A webhook endpoint of one organization (``secret`` as the layer above hands it:
    plaintext from the encrypting store, a ciphertext from a bare backend)."""

    id: str
    org: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: float
    deleted_at: float | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One notification to one endpoint; ``id`` is stable across its retries."""

    id: int
    org: str
    endpoint_id: str
    event: str
    run_id: str | None
    scan_id: str | None
    loop: str | None
    status: str
    occurred_at: float
    state: str
    """``pending`` (due at ``next_attempt_at``), ``delivered`` or ``failed``."""
    attempts: int
    next_attempt_at: float | None
    last_status_code: int | None
    last_error: str | None
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class AttemptLog:
    """One POST of a delivery: the receiver's status code, or the error that stopped it."""

    delivery_id: int
    attempt: int
    started_at: float
    duration_ms: float
    status_code: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery with where to send it and the secret that signs it."""

    delivery: DeliveryRecord
    url: str
    secret: str


class WebhookStore(Protocol):
    """Endpoints, claiming due deliveries, and their attempt log (each call one
    transaction; endpoint reads and the log are scoped by organization)."""

    async def add_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        """Insert a new endpoint."""

    async def list_endpoints(self, org: str) -> list[EndpointRecord]:
        """The organization's endpoints (removed ones left out), oldest first."""

    async def remove_endpoint(self, org: str, endpoint_id: str, now: float) -> bool:
        """Remove it (its pending deliveries fail); False if ``org`` has no such one."""

    async def claim_deliveries(
        self, worker: str, limit: int, now: float, lease_s: float
    ) -> tuple[list[DueDelivery], float | None]:
        """Lease up to ``limit`` due deliveries of live endpoints, soonest first, across
        organizations; return them and the next pending delivery's due time."""

    async def record_attempt(
        self, worker: str, attempt: AttemptLog, state: str, next_attempt_at: float | None
    ) -> bool:
        """Log the attempt and move the delivery to ``state`` (``pending`` again at
        ``next_attempt_at``, ``delivered`` or ``failed``), releasing the lease; False
        (nothing written) if ``worker`` no longer holds it."""

    async def list_deliveries(
        self, org: str, *, limit: int = 50, endpoint_id: str | None = None
    ) -> list[DeliveryRecord]:
        """The organization's deliveries, newest first."""

    async def list_attempts(self, org: str, delivery_id: int) -> list[AttemptLog]:
        """A delivery's attempts, oldest first (empty if it is not ``org``'s)."""


RunSql = Callable[[Sequence[tuple[str, tuple[Any, ...]]]], Awaitable[list[list[tuple[Any, ...]]]]]
"""A backend's ``payload_sql``: ``?`` statements run in one transaction."""

# the outbox hook: the terminal transitions run these (``%s``, see store/sql.py) -----------
_OUTBOX_INSERT = (
    "INSERT INTO webhook_deliveries (org, endpoint_id, event, subject, run_id, scan_id, "
    "loop, status, occurred_at, state, attempts, next_attempt_at) "
)
RUN_OUTBOX = (
    _OUTBOX_INSERT + "SELECT r.org, e.id, %s, r.run_key, r.id, NULL, r.loop, r.status, "
    "r.finished_at, 'pending', 0, r.finished_at FROM runs r JOIN webhook_endpoints e "
    "ON e.org = r.org AND e.deleted_at IS NULL WHERE r.run_key = %s AND r.status = %s "
    "AND r.finished_at IS NOT NULL AND (',' || e.events || ',') LIKE %s "
    "ON CONFLICT DO NOTHING"
)
"""Params: (event, run key, status, :func:`event_pattern`)."""
SCAN_OUTBOX = (
    _OUTBOX_INSERT + "SELECT s.org, e.id, %s, s.id, s.run_id, s.id, "
    "(SELECT r.loop FROM runs r WHERE r.org = s.org AND r.id = s.run_id), s.status, "
    "s.completed_at, 'pending', 0, s.completed_at FROM scans s JOIN webhook_endpoints e "
    "ON e.org = s.org AND e.deleted_at IS NULL WHERE s.id = %s AND s.status = %s "
    "AND s.completed_at IS NOT NULL AND (',' || e.events || ',') LIKE %s "
    "ON CONFLICT DO NOTHING"
)
"""Params: (event, scan id, status, :func:`event_pattern`)."""


def run_outbox_params(run_key: str, status: str) -> tuple[str, str, str, str]:
    """:data:`RUN_OUTBOX`'s parameters for a run that just reached ``status``."""
    event = f"run.{status}"
    return event, run_key, status, event_pattern(event)


def scan_outbox_params(scan_id: str, status: str) -> tuple[str, str, str, str]:
    """:data:`SCAN_OUTBOX`'s parameters for a scan that just reached ``status``."""
    event = f"scan.{status}"
    return event, scan_id, status, event_pattern(event)


def event_pattern(event: str) -> str:
    """The LIKE pattern matching ``event`` in a comma-joined list framed by commas (a
    parameter, so shared SQL keeps no literal ``%``)."""
    return f"%,{event},%"


DELIVERIES_HINT = "pulseloop:webhooks"
"""The wake-up key deliverers subscribe to (``subscribe_wakeups``, PostgreSQL's LISTEN):
sent when a commit queued deliveries (store/postgres/outbox.py). Organization names are
the other keys; a collision would only cost a spurious look."""


# worker liveness: each backend's ``reclaim_dead_workers`` runs these ------------------
DELIVERY_LEASE_OWNERS = (
    "SELECT lease_owner FROM webhook_deliveries WHERE state = 'pending' AND lease_owner IS NOT NULL"
)
"""Deliverers holding a lease (deliverers lease under their worker's id)."""
RELEASE_DEAD_DELIVERIES = (
    "UPDATE webhook_deliveries SET lease_owner = NULL, lease_expires_at = NULL "
    "WHERE state = 'pending' AND lease_owner IN ({marks})"
)
"""Free the deliveries of workers proven dead, so the next claim sends them again at once
(the same delivery id) instead of after the 60 s lease. ``{marks}``: the backend's list of
dead worker ids. ``state = 'pending'`` lets the claim's partial index find them."""


# endpoints, claims and the log -----------------------------------------------------------
_ENDPOINT = "id, org, url, events, secret, created_at, deleted_at"
_DELIVERY = (
    "id, org, endpoint_id, event, run_id, scan_id, loop, status, occurred_at, state, "
    "attempts, next_attempt_at, last_status_code, last_error, finished_at"
)
_ATTEMPT = "delivery_id, attempt, started_at, duration_ms, status_code, error"


def _endpoint(row: tuple[Any, ...]) -> EndpointRecord:
    return EndpointRecord(
        row[0], row[1], row[2], tuple(e for e in row[3].split(",") if e), row[4], row[5], row[6]
    )


def _delivery(row: tuple[Any, ...]) -> DeliveryRecord:
    (id_, org, endpoint, event, run_id, scan_id, loop, status, occurred_at, state) = row[:10]
    attempts, next_at, code, error, finished_at = row[10:]
    return DeliveryRecord(
        int(id_), org, endpoint, event, run_id, scan_id, loop, status, occurred_at, state,
        int(attempts), next_at, code, error, finished_at,
    )  # fmt: skip


class SqlWebhooks:
    """:class:`WebhookStore` over a backend's ``payload_sql``; ``lock`` is appended to
    the claim's row selection (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)."""

    def __init__(self, run_sql: RunSql, lock: str = "") -> None:
        self._sql = run_sql
        self._lock = lock

    async def add_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        await self._sql(
            [
                (
                    f"INSERT INTO webhook_endpoints ({_ENDPOINT}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO NOTHING",  # a rerun after a lost reply
                    (
                        record.id,
                        record.org,
                        record.url,
                        ",".join(record.events),
                        record.secret,
                        record.created_at,
                        None,
                    ),
                )
            ]
        )
        return record

    async def list_endpoints(self, org: str) -> list[EndpointRecord]:
        (rows,) = await self._sql(
            [
                (
                    f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE org = ? "
                    "AND deleted_at IS NULL ORDER BY created_at, id",
                    (org,),
                )
            ]
        )
        return [_endpoint(r) for r in rows]

    async def remove_endpoint(self, org: str, endpoint_id: str, now: float) -> bool:
        removed, _ = await self._sql(
            [
                (
                    "UPDATE webhook_endpoints SET deleted_at = ? WHERE org = ? AND id = ? "
                    "AND deleted_at IS NULL RETURNING id",
                    (now, org, endpoint_id),
                ),
                (
                    "UPDATE webhook_deliveries SET state = 'failed', finished_at = ?, "
                    "last_error = 'endpoint removed', lease_owner = NULL, "
                    "lease_expires_at = NULL WHERE org = ? AND endpoint_id = ? "
                    "AND state = 'pending'",
                    (now, org, endpoint_id),
                ),
            ]
        )
        return bool(removed)

    async def claim_deliveries(
        self, worker: str, limit: int, now: float, lease_s: float
    ) -> tuple[list[DueDelivery], float | None]:
        if limit <= 0:
            return [], None
        claimed, endpoints, upcoming = await self._sql(
            [
                (
                    "UPDATE webhook_deliveries SET lease_owner = ?, lease_expires_at = ? "
                    "WHERE id IN (SELECT d.id FROM webhook_deliveries d "
                    "WHERE d.state = 'pending' AND d.next_attempt_at <= ? "
                    "AND (d.lease_expires_at IS NULL OR d.lease_expires_at < ?) "
                    "ORDER BY d.next_attempt_at LIMIT ? "
                    f"{self._lock}) RETURNING {_DELIVERY}",
                    (worker, now + lease_s, now, now, limit),
                ),
                (
                    f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE id IN (SELECT "
                    "endpoint_id FROM webhook_deliveries WHERE lease_owner = ?)",
                    (worker,),
                ),
                (
                    "SELECT min(next_attempt_at) FROM webhook_deliveries "
                    "WHERE state = 'pending' AND lease_owner IS NULL",
                    (),
                ),
            ]
        )
        by_id = {e.id: e for e in map(_endpoint, endpoints)}
        due = [
            DueDelivery(d, by_id[d.endpoint_id].url, by_id[d.endpoint_id].secret)
            for d in sorted(map(_delivery, claimed), key=lambda d: (d.next_attempt_at, d.id))
        ]
        return due, upcoming[0][0] if upcoming else None

    async def record_attempt(
        self, worker: str, attempt: AttemptLog, state: str, next_attempt_at: float | None
    ) -> bool:
        done = attempt.started_at + attempt.duration_ms / 1000
        _, moved = await self._sql(
            [
                (  # first, while the lease still shows on the row it fences
                    f"INSERT INTO webhook_attempts ({_ATTEMPT}) SELECT CAST(? AS BIGINT), "
                    "CAST(? AS INTEGER), CAST(? AS DOUBLE PRECISION), "
                    "CAST(? AS DOUBLE PRECISION), CAST(? AS INTEGER), CAST(? AS TEXT) "
                    "FROM webhook_deliveries WHERE id = ? AND lease_owner = ? "
                    "ON CONFLICT DO NOTHING",
                    (
                        attempt.delivery_id,
                        attempt.attempt,
                        attempt.started_at,
                        attempt.duration_ms,
                        attempt.status_code,
                        attempt.error,
                        attempt.delivery_id,
                        worker,
                    ),
                ),
                (
                    "UPDATE webhook_deliveries SET state = ?, attempts = ?, "
                    "next_attempt_at = ?, last_status_code = ?, last_error = ?, "
                    "finished_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                    "WHERE id = ? AND lease_owner = ? RETURNING id",
                    (
                        state,
                        attempt.attempt,
                        next_attempt_at,
                        attempt.status_code,
                        attempt.error,
                        None if state == "pending" else done,
                        attempt.delivery_id,
                        worker,
                    ),
                ),
            ]
        )
        return bool(moved)

    async def list_deliveries(
        self, org: str, *, limit: int = 50, endpoint_id: str | None = None
    ) -> list[DeliveryRecord]:
        only = "AND endpoint_id = ? " if endpoint_id is not None else ""
        params: tuple[Any, ...] = (org, limit) if endpoint_id is None else (org, endpoint_id, limit)
        (rows,) = await self._sql(
            [
                (
                    f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE org = ? {only}"
                    "ORDER BY id DESC LIMIT ?",
                    params,
                )
            ]
        )
        return [_delivery(r) for r in rows]

    async def list_attempts(self, org: str, delivery_id: int) -> list[AttemptLog]:
        (rows,) = await self._sql(
            [
                (
                    f"SELECT {_ATTEMPT} FROM webhook_attempts WHERE delivery_id = ? AND "
                    "delivery_id IN (SELECT id FROM webhook_deliveries WHERE org = ?) "
                    "ORDER BY attempt",
                    (delivery_id, org),
                )
            ]
        )
        return [AttemptLog(*r) for r in rows]
