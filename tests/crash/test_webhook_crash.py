"""At-least-once webhooks across a crash, on both backends: a real worker process is
SIGKILLed while its POST is held open by a 127.0.0.1 receiver; the restarted worker
proves it dead, sends the delivery again at once with the same delivery id and body,
and the log records it once (one delivery, one attempt).

Nothing here waits for the 60 s delivery lease: the re-send arrives while the dead
worker's lease still runs, because a restarted worker frees a dead one's deliveries
(``RELEASE_DEAD_DELIVERIES`` in ``reclaim_dead_workers``) before its deliverer starts.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any, cast

import pytest

from pulseloop import App
from pulseloop.store.sealed.keyring import PayloadSql
from pulseloop.webhooks import Delivery, verify_webhook
from tests.crash.test_sigkill import start_worker, stop_worker
from tests.webhooks.receiver import receiver

LOOP_FILE = Path(__file__).with_name("hook_loop.py")


async def _row(db_url: str) -> list[tuple[Any, ...]]:
    """The raw delivery rows: state, attempts, lease owner and expiry."""
    async with App([], db_url, worker=False) as app:
        (rows,) = await cast(PayloadSql, app.store).payload_sql(
            [("SELECT state, attempts, lease_owner, lease_expires_at FROM webhook_deliveries", ())]
        )
        return rows


async def _log(db_url: str) -> list[Delivery]:
    async with App([], db_url, worker=False) as app:
        return await app.webhooks.deliveries(attempts=True)


@pytest.mark.crash
async def test_a_delivery_killed_mid_post_is_sent_again_with_its_id_and_recorded_once(
    db_url: str,
) -> None:
    with receiver(hold=1) as hook:
        async with App([], db_url, worker=False) as app:
            endpoint = await app.webhooks.add(hook.url, events=["run.completed"])
            await app.trigger("notify", {"patient": "p-1"}, id="visit-1")
        proc = start_worker(LOOP_FILE, db_url)
        try:
            first = await hook.next()  # the POST is open; the receiver holds it
        finally:
            stop_worker(proc, signal.SIGKILL)
        hook.release()  # its answer goes nowhere: the sender is dead
        ((state, attempts, owner, lease_expires_at),) = await _row(db_url)
        assert (state, attempts) == ("pending", 0) and owner is not None  # nothing recorded

        proc = start_worker(LOOP_FILE, db_url)
        try:
            second = await hook.next()
            resent_at = time.time()
            while not (log := await _log(db_url)) or log[0].state != "delivered":
                await asyncio.sleep(0.02)  # the worker records the attempt after the 200
        finally:
            stop_worker(proc, signal.SIGTERM)

    assert resent_at < lease_expires_at  # freed by the proof of death, not the lease
    (delivery,) = log
    assert delivery.attempt_count == 1
    assert [(a.attempt, a.status_code) for a in delivery.attempts] == [(1, 200)]
    assert first.headers["pulseloop-delivery"] == second.headers["pulseloop-delivery"]
    assert second.headers["pulseloop-delivery"] == delivery.id
    assert first.body == second.body and len(hook.received) == 2
    assert endpoint.secret is not None
    for request in (first, second):
        verify_webhook(request.body, request.headers["pulseloop-signature"], endpoint.secret)
