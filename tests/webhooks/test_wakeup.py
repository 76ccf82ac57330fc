"""PostgreSQL: a delivery queued in one process wakes the deliverer of another at once
(a NOTIFY sent with the commit that queued it), instead of at its next poll; a
transition that queues nothing sends no hint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pulseloop import App, Event, Loop, Step
from pulseloop.store.postgres.connection import parse_url
from pulseloop.store.postgres.wakeups import CHANNEL
from pulseloop.store.webhooks import DELIVERIES_HINT
from tests.pg import MASTER_KEY, SECRET_KEY, PgServer
from tests.webhooks.receiver import receiver
from tests.webhooks.test_delivery import deliverer


class Other(Loop):
    """What the delivering process serves (not the loop whose run is cancelled)."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("echo", lambda: event.body)


@pytest.fixture
def pg_url(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database, with the shared scan-link and master keys set."""
    monkeypatch.setenv("PULSELOOP_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", MASTER_KEY)
    url = pg_server.create_database()
    try:
        yield url
    finally:
        pg_server.drop_database(url)


async def test_a_delivery_queued_elsewhere_wakes_an_idle_deliverer(pg_url: str) -> None:
    with receiver() as hook:
        async with (
            App([Other], pg_url) as delivering,  # a worker: its deliverer runs here
            App([], pg_url, worker=False) as api,  # a server process: no deliverer
        ):
            await api.webhooks.add(hook.url, events=["run.cancelled"])
            waiting = deliverer(delivering)
            await waiting.stop()
            waiting.poll_s = 24 * 3600.0  # only a wake-up can make it look again
            waiting.idle.clear()
            waiting.start()
            await waiting.idle.wait()  # it looked, found nothing, and sleeps
            run = await api.trigger("quick", {"patient": "p-1"}, id="visit-1")
            await api.client(api.org).cancel(run.id)  # queued by the api's transaction
            got = await hook.next()
    assert got.headers["pulseloop-event"] == "run.cancelled"


async def hints_before_probe(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Deliverer hints received before a probe sent now: notifications arrive in commit
    order, so one not seen by then was never sent (no waiting for nothing to happen)."""
    await conn.execute("SELECT pg_notify(%s, 'test-probe')", (CHANNEL,))
    seen: list[str] = []
    async for note in conn.notifies():
        if note.payload == "test-probe":
            return seen
        if note.payload == DELIVERIES_HINT:
            seen.append(note.payload)
    raise AssertionError("the notification stream ended")


async def test_only_a_transition_that_queues_a_delivery_sends_a_hint(pg_url: str) -> None:
    async with (
        App([], pg_url, worker=False) as api,
        await psycopg.AsyncConnection.connect(parse_url(pg_url).conninfo, autocommit=True) as conn,
    ):
        await conn.execute(f"LISTEN {CHANNEL}")
        client = api.client(api.org)
        await client.cancel((await api.trigger("quick", {}, id="no-endpoint")).id)
        assert await hints_before_probe(conn) == []  # nothing queued, no hint
        await api.webhooks.add("http://127.0.0.1:9/hooks", events=["run.cancelled"])
        await client.cancel((await api.trigger("quick", {}, id="with-endpoint")).id)
        assert await hints_before_probe(conn) == [DELIVERIES_HINT]
