"""What only PostgreSQL has to prove: many processes booting on one empty database, a
newer schema left untouched, a connection dropped in the middle of a step's record,
and the settings a shared database needs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from pulseloop import App, Event, Loop, Step
from pulseloop.errors import SchemaTooNew, StoreError
from pulseloop.store import open_store
from pulseloop.store.migrations import latest_version
from tests.helpers import eventually
from tests.pg import MASTER_KEY, SECRET_KEY, PgServer

BOOTERS = 8


@pytest.fixture
def empty_url(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database pulseloop has never touched (the master key set for its processes)."""
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", MASTER_KEY)
    url = pg_server.create_database(empty=True)
    try:
        yield url
    finally:
        pg_server.drop_database(url)


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


@pytest.fixture
async def admin(empty_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A superuser connection to the test's database."""
    conn = await psycopg.AsyncConnection.connect(empty_url, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()


async def _fingerprint(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, ...]:
    cur = await conn.execute(
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables "
        "WHERE table_schema = 'public'"
    )
    tables = (await cur.fetchone() or [None])[0]
    cur = await conn.execute(
        "SELECT to_regclass('pulseloop_schema') IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM pg_class WHERE relname = 'pulseloop_schema')"
    )
    return tables, (await cur.fetchone() or [None])[0]


BOOT = """
import asyncio, sys
from pulseloop.store import open_store

async def main() -> None:
    store = open_store(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # everyone starts at once
    await store.open()
    await store.close()

asyncio.run(main())
"""


async def test_eight_processes_migrate_one_empty_database_at_once(
    empty_url: str, admin: psycopg.AsyncConnection[Any]
) -> None:
    pipes: dict[str, Any] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    procs = [
        subprocess.Popen([sys.executable, "-c", BOOT, empty_url], **pipes, text=True)
        for _ in range(BOOTERS)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    cur = await admin.execute("SELECT version FROM pulseloop_schema")
    assert await cur.fetchall() == [(latest_version("postgres"),)]
    cur = await admin.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'runs_ready'")
    assert await cur.fetchone() == (1,)


async def test_a_newer_schema_is_refused_and_left_untouched(
    empty_url: str, admin: psycopg.AsyncConnection[Any]
) -> None:
    await admin.execute("CREATE TABLE pulseloop_schema (version integer NOT NULL)")
    await admin.execute("INSERT INTO pulseloop_schema VALUES (999)")
    await admin.execute("CREATE TABLE from_the_future (x integer)")
    before = await _fingerprint(admin)
    store = open_store(empty_url)
    with pytest.raises(SchemaTooNew, match="999"):
        await store.open()
    assert await _fingerprint(admin) == before
    cur = await admin.execute("SELECT version FROM pulseloop_schema")
    assert await cur.fetchall() == [(999,)]


calls: list[str] = []


class TwoSteps(Loop):
    """Step "a" locks its own run row from outside, so recording "a" blocks mid-write."""

    name = "two-steps"
    blocker: psycopg.AsyncConnection[Any] | None = None
    locked: asyncio.Event | None = None

    async def run(self, event: Event, step: Step) -> list[str]:
        async def a() -> str:
            calls.append("a")
            assert TwoSteps.blocker is not None and TwoSteps.locked is not None
            await TwoSteps.blocker.execute("BEGIN")
            await TwoSteps.blocker.execute(
                "SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (event.id,)
            )
            TwoSteps.locked.set()
            return "A"

        def b() -> str:
            calls.append("b")
            return "B"

        return [await step.do("a", a), await step.do("b", b)]


async def test_a_connection_dropped_mid_step_loses_nothing_and_the_run_resumes(
    pg_url: str,
) -> None:
    calls.clear()
    TwoSteps.locked = asyncio.Event()
    TwoSteps.blocker = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    admin = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    try:
        async with App([TwoSteps], pg_url, poll_interval=0.05) as app:
            run = await app.trigger("two-steps")
            await TwoSteps.locked.wait()
            writer_pid: list[int] = []

            async def writer_blocked() -> bool:  # the step's transaction is open, waiting
                cur = await admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'pulseloop' "
                    "AND wait_event_type = 'Lock'"
                )
                writer_pid[:] = [r[0] for r in await cur.fetchall()]
                return bool(writer_pid)

            await eventually(writer_blocked, "the step record waiting on the row lock")
            await admin.execute("SELECT pg_terminate_backend(%s)", (writer_pid[0],))
            await TwoSteps.blocker.execute("ROLLBACK")
            done = await app.wait_for_run(run.id, timeout="60 seconds")
            detail = await app.store.get_run_detail(app.org, run.id)
    finally:
        await TwoSteps.blocker.close()
        await admin.close()
    assert done.status == "completed" and done.output == ["A", "B"]
    assert calls == ["a", "b"]  # "a" was recorded (once, whole) after the reconnect
    assert detail is not None
    assert [(s.name, s.output) for s in detail.steps] == [("a", '"A"'), ("b", '"B"')]


async def test_a_shared_database_needs_the_secret_key(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULSELOOP_SECRET_KEY", raising=False)
    with pytest.raises(StoreError, match="PULSELOOP_SECRET_KEY"):
        async with App([TwoSteps], pg_url):
            pass
    monkeypatch.setenv("PULSELOOP_SECRET_KEY", SECRET_KEY)
    async with App([TwoSteps], pg_url, worker=False) as app:
        assert app.secret == SECRET_KEY.encode()


async def test_unreachable_server_and_bad_parameters_are_explained() -> None:
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL at postgresql://u@127"):
        await open_store("postgresql://u:hunter2@127.0.0.1:1/x?connect_timeout=2").open()
    with pytest.raises(StoreError, match="listen=off"):
        open_store("postgresql://127.0.0.1/x?listen=maybe")
    with pytest.raises(StoreError, match="unsupported database URL"):
        open_store("mysql://x")


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith("pulseloop.store.postgres.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'pulseloop\[postgres\]'"):
        open_store("postgresql://127.0.0.1/x")


async def test_a_trigger_in_one_process_wakes_workers_in_another(pg_url: str) -> None:
    listening = open_store(pg_url)
    other = open_store(pg_url)
    await listening.open()
    await other.open()
    try:
        woken = asyncio.Event()
        listening.subscribe_wakeups("org", woken.set)  # type: ignore[attr-defined]

        async def healthy() -> bool:
            return bool(listening.hints_healthy)  # type: ignore[attr-defined]

        await eventually(healthy, "LISTEN delivering its own probe")
        await other.create_run("org", "r1", "loop", "null", 1.0)
        await woken.wait()  # the hint arrived (coalesced, after the commit)
    finally:
        await other.close()
        await listening.close()


class Greet(Loop):
    name = "greet"

    async def run(self, event: Event, step: Step) -> str:
        return str(await step.do("greet", lambda: f"hello {event.body['name']}"))


async def test_poll_only_still_runs_what_another_process_queued(pg_url: str) -> None:
    async with App([Greet], pg_url + "?listen=off", poll_interval=0.05) as worker_app:
        assert not worker_app.store.hints_healthy  # type: ignore[attr-defined]
        async with App([Greet], pg_url, worker=False) as client:
            run = await client.trigger("greet", {"name": "poll"})
            done = await client.wait_for_run(run.id, timeout="60 seconds")
    assert done.output == "hello poll"
