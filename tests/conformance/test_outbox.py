"""The webhook outbox: every run and scan terminal transition queues one delivery per
subscribed endpoint of its organization, once, and deliveries are claimed once however
many deliverers race."""

from __future__ import annotations

import asyncio

from pulseloop.store import Store
from pulseloop.store.base import Lease
from pulseloop.store.webhooks import EVENTS, AttemptLog, EndpointRecord


async def _endpoint(store: Store, endpoint_id: str, org: str, *events: str) -> None:
    record = EndpointRecord(
        endpoint_id, org, "http://127.0.0.1:9/x", events or EVENTS, "whsec_t", 0.0
    )
    await store.webhooks.add_endpoint(record)


async def _queued(store: Store, org: str = "org") -> list[tuple[str, str, str | None]]:
    found = await store.webhooks.list_deliveries(org, limit=100)
    return sorted((d.endpoint_id, d.event, d.scan_id or d.run_id) for d in found)


async def test_each_terminal_transition_queues_its_event(store: Store) -> None:
    await _endpoint(store, "all", "org")
    await _endpoint(store, "scans", "org", "scan.completed")
    await _endpoint(store, "elsewhere", "other")
    for i, deadline in enumerate((None, None, 5.0, None)):
        await store.create_run("org", f"r{i}", "loop", "null", 1.0, deadline_at=deadline)
    (done,) = await store.claim_runs("org", "w", ["loop"], 1, 2.0, 30.0, 2.0, run_id="r0")
    await store.finish_run(Lease(done.key, "w"), "completed", "1", None, 3.0)
    await store.cancel_run("org", "r1", 3.0)
    await store.expire_deadlines("org", 10.0, {"type": "RunTimeout", "message": "late"})
    await store.create_scan("org", "r3", "make", "s-done", "h1", "{}", 1.0, 20.0)
    await store.create_scan("org", "r3", "again", "s-late", "h2", "{}", 1.0, 20.0)
    await store.create_scan("org", "r3", "third", "s-gave-up", "h3", "{}", 1.0, 50.0)
    await store.finish_scan("s-done", "completed", "{}", None, 11.0)
    await store.finish_scan("s-done", "failed", None, "late", 12.0)  # the first outcome stands
    await store.finish_open_scan("h3", ("pending",), "failed", None, "gave_up", 13.0)
    await store.fire_timers("org", 30.0)  # s-late expires
    await store.pause_run("org", "r3", 31.0)  # not terminal: nothing
    assert await _queued(store) == [
        ("all", "run.cancelled", "r1"),
        ("all", "run.completed", "r0"),
        ("all", "run.failed", "r2"),
        ("all", "scan.completed", "s-done"),
        ("all", "scan.expired", "s-late"),
        ("all", "scan.failed", "s-gave-up"),
        ("scans", "scan.completed", "s-done"),
    ]
    assert await _queued(store, "other") == []
    (run_event,) = [d for d in await store.webhooks.list_deliveries("org") if d.run_id == "r0"]
    assert (run_event.loop, run_event.status, run_event.occurred_at) == ("loop", "completed", 3.0)


async def test_a_removed_endpoint_gets_nothing_more(store: Store) -> None:
    await _endpoint(store, "gone", "org")
    await store.create_run("org", "r0", "loop", "null", 1.0)
    await store.create_run("org", "r1", "loop", "null", 1.0)
    await store.cancel_run("org", "r0", 2.0)
    assert await store.webhooks.remove_endpoint("org", "gone", 3.0)
    assert not await store.webhooks.remove_endpoint("org", "gone", 3.0)
    await store.cancel_run("org", "r1", 4.0)
    (only,) = await store.webhooks.list_deliveries("org")
    assert (only.run_id, only.state, only.last_error) == ("r0", "failed", "endpoint removed")
    assert await store.webhooks.claim_deliveries("w", 10, 100.0, 60.0) == ([], None)


async def test_deliveries_are_claimed_once_and_fenced_by_the_lease(
    store: Store, second_store: Store
) -> None:
    await _endpoint(store, "e", "org")
    for i in range(30):
        await store.create_run("org", f"r{i}", "loop", "null", 1.0)
        await store.cancel_run("org", f"r{i}", 2.0 + i)
    claims = await asyncio.gather(
        *(s.webhooks.claim_deliveries(f"w{n}", 7, 100.0, 600.0)
          for n, s in enumerate((store, second_store) * 3))
    )  # fmt: skip
    ids = [d.delivery.id for due, _ in claims for d in due]
    assert len(ids) == len(set(ids)) == 30
    first = claims[0][0][0]
    assert first.url == "http://127.0.0.1:9/x"
    attempt = AttemptLog(first.delivery.id, 1, 100.0, 12.5, 500, "HTTP 500")
    holder = "w0"
    assert not await store.webhooks.record_attempt("intruder", attempt, "delivered", None)
    assert await store.webhooks.record_attempt(holder, attempt, "pending", 160.0)
    assert not await store.webhooks.record_attempt(holder, attempt, "pending", 160.0)
    (logged,) = await store.webhooks.list_attempts("org", first.delivery.id)
    assert (logged.status_code, logged.error, logged.duration_ms) == (500, "HTTP 500", 12.5)
    assert await store.webhooks.list_attempts("other", first.delivery.id) == []
    again, _ = await store.webhooks.claim_deliveries("w9", 50, 150.0, 60.0)
    assert again == []  # not due before 160, and the rest are leased
    again, _ = await store.webhooks.claim_deliveries("w9", 50, 161.0, 60.0)
    assert [d.delivery.id for d in again] == [first.delivery.id]
    assert again[0].delivery.attempts == 1
