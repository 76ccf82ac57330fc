"""The background service that POSTs queued notifications (see docs/webhooks.md).

Design record. Deliveries are rows the terminal transitions wrote (the outbox, see
:mod:`pulseloop.store.webhooks`); any worker process delivers them, claiming a few at a
time with a lease, as runs are claimed, so a process that dies mid-POST leaves its
deliveries to another once the lease runs out. Considered: sending from the worker that
finished the run (lost when it crashes between commit and send, and a slow receiver
would hold up the worker), and a queue outside the database (a second system to keep in
step with the transition). Retries back off exponentially with full jitter (so a
receiver that comes back is not hit by every sender at once) up to ``max_attempts``;
then the delivery is marked failed and stays in the log. Delivery is at-least-once: the
``Pulseloop-Delivery`` id is stable across retries for receivers to dedupe on.

The body holds ids, the event type, the loop, the status and times, never a run's input,
output or a scan's vitals: a receiver fetches those through the authenticated, audited
API, so every read of patient data is attributed to a key, and a misconfigured or
compromised endpoint receives no patient data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from pulseloop.background import Background, wait_event
from pulseloop.engine.clock import Clock
from pulseloop.store.webhooks import AttemptLog, DeliveryRecord, DueDelivery, WebhookStore
from pulseloop.webhooks.endpoints import delivery_id
from pulseloop.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_S = 30.0
"""The first retry's delay at most; each later one doubles (with full jitter)."""
MAX_BACKOFF_S = 6 * 3600.0
LEASE_S = 60.0
TIMEOUT_S = 10.0
"""Per POST: a receiver should answer at once and do its work later."""
POLL_S = 5.0
"""How often an idle deliverer looks for new rows other processes queued."""
BATCH = 32
"""Deliveries claimed and POSTed concurrently per pass."""


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def payload(delivery: DeliveryRecord) -> bytes:
    """The JSON body for ``delivery``: the same bytes on every attempt."""
    data: dict[str, Any] = {
        "run_id": delivery.run_id,
        "loop": delivery.loop,
        "status": delivery.status,
        "occurred_at": _iso(delivery.occurred_at),
    }
    if delivery.scan_id is not None:
        data["scan_id"] = delivery.scan_id
    body = {
        "id": delivery_id(delivery.id),
        "type": delivery.event,
        "org": delivery.org,
        "created_at": _iso(delivery.occurred_at),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def backoff_s(attempt: int, base_s: float = BACKOFF_S, cap_s: float = MAX_BACKOFF_S) -> float:
    """The delay before retry number ``attempt`` (1-based): full jitter over an
    exponentially growing ceiling."""
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


class Deliverer(Background):
    """Claims due deliveries and POSTs them, signed, until stopped."""

    task_name = "pulseloop-deliverer"

    def __init__(
        self,
        store: WebhookStore,
        clock: Clock,
        worker: str,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        lease_s: float = LEASE_S,
        timeout_s: float = TIMEOUT_S,
        poll_s: float = POLL_S,
        batch: int = BATCH,
    ) -> None:
        super().__init__()
        self.store = store
        self.clock = clock
        self.worker = worker
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.lease_s = lease_s
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.batch = batch
        self.attempted = asyncio.Event()
        """Set after each recorded attempt (tests wait on it, then read the log)."""
        # idle: set when a pass found nothing due and the deliverer waits (for a kick, a
        # wake-up hint from another process, the next due time or the poll)
        self._http: httpx.AsyncClient | None = None

    def start(self) -> None:
        """Start delivering in the background."""
        self._http = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        super().start()

    async def stop(self) -> None:
        """Stop; deliveries in flight are sent again by whoever claims them next."""
        await super().stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            wait_s = self.poll_s
            try:
                now = self.clock.now()
                due, upcoming = await self.store.claim_deliveries(
                    self.worker, self.batch, now, self.lease_s
                )
                if due:
                    await asyncio.gather(*(self._deliver(d) for d in due))
                    continue
                if upcoming is not None:
                    wait_s = min(self.poll_s, max(0.05, upcoming - now))
            except Exception:  # keep serving; the next pass retries
                log.exception("claiming webhook deliveries failed; retrying")
            self.idle.set()
            await wait_event(self._wake, wait_s)  # cleared at the top of the next pass

    async def _deliver(self, item: DueDelivery) -> None:
        delivery = item.delivery
        body = payload(delivery)
        started = self.clock.now()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "pulseloop-webhooks",
            SIGNATURE_HEADER: signature_header(item.secret, int(started), body),
            DELIVERY_HEADER: delivery_id(delivery.id),
            EVENT_HEADER: delivery.event,
        }
        code: int | None = None
        error: str | None = None
        t0 = time.perf_counter()
        try:
            assert self._http is not None
            response = await self._http.post(item.url, content=body, headers=headers)
            code = response.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        duration_ms = (time.perf_counter() - t0) * 1000
        number = delivery.attempts + 1
        if error is None:
            state, next_at = "delivered", None
        elif number >= self.max_attempts:
            state, next_at = "failed", None
        else:
            state, next_at = "pending", self.clock.now() + backoff_s(number, self.backoff_s)
        attempt = AttemptLog(delivery.id, number, started, duration_ms, code, error)
        try:
            if not await self.store.record_attempt(self.worker, attempt, state, next_at):
                log.warning("webhook delivery %s: lease lost before recording", delivery.id)
        finally:
            self.attempted.set()
        if error is not None:  # ids and the error only: bodies carry nothing more
            log.info("webhook delivery %s attempt %d: %s", delivery.id, number, error)
