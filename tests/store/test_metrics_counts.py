"""``/metrics`` totals: exact after any mix of operations, and on PostgreSQL a scrape whose
work does not grow with history (store/postgres/counts.py).

The SQLite scrape's work is measured in tests/store/test_flat_history.py (virtual-machine
instructions). On PostgreSQL every statement the store runs for ``stats()`` is recorded
as it goes to the server, then replayed under ``EXPLAIN (ANALYZE, BUFFERS)`` at two
history sizes: the pages it touches are a deterministic measure of its work.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from pulseloop.store import open_store
from pulseloop.store.base import Lease, Store
from pulseloop.store.migrations import migrations_for
from pulseloop.store.postgres import counts
from tests.helpers import eventually
from tests.pg import MASTER_KEY, SECRET_KEY, PgServer

ORG = "acme"
SMALL, LARGE = 200, 20_000
"""Finished runs (3 steps each, a scan every third) in the small and the large database."""


async def _full_count(url: str) -> tuple[dict[str, int], dict[str, int]]:
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            runs = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY 1"))
            scans = dict(conn.execute("SELECT status, count(*) FROM scans GROUP BY 1"))
        finally:
            conn.close()
        return runs, scans
    async with await psycopg.AsyncConnection.connect(url) as pg:
        cur = await pg.execute("SELECT status, count(*) FROM runs GROUP BY 1")
        runs = {str(s): int(n) for s, n in await cur.fetchall()}
        cur = await pg.execute("SELECT status, count(*) FROM scans GROUP BY 1")
        scans = {str(s): int(n) for s, n in await cur.fetchall()}
    return runs, scans


async def _mixed_operations(store: Store) -> None:
    await store.ensure_org(ORG, 0.0)
    await store.create_run(ORG, "c1", "loop", "{}", 100.0)
    await store.create_run(ORG, "c2", "loop", "{}", 100.0)
    await store.create_run(ORG, "c3", "loop", "{}", 100.0)
    await store.create_run(ORG, "c1", "loop", "{}", 100.0)  # idempotent: counted once
    await store.cancel_run(ORG, "c2", 101.0)
    claimed = await store.claim_runs(ORG, "w", ["loop"], 5, 101.0, 30.0, 101.0)
    first, second = sorted(claimed, key=lambda r: r.id)
    await store.finish_run(Lease(first.key, "w"), "failed", None, {"message": "x"}, 102.0)
    await store.park_run(Lease(second.key, "w"), 500.0, [], 102.0)
    await store.retry_run(ORG, first.id, 103.0)
    await store.create_scan(ORG, "c1", "scan", "x-2", "hx-2", "{}", 103.0, 104.0)
    await store.create_scan(ORG, "c1", "again", "x-3", "hx-3", "{}", 103.0, 999.0)
    await store.finish_scan("x-3", "failed", None, "no_face", 103.0)
    await store.fire_timers(ORG, 105.0)  # x-2 expires


async def test_counters_match_a_full_count_after_mixed_operations(db_url: str) -> None:
    store = open_store(db_url)
    await store.open()
    try:
        await _mixed_operations(store)
        before_fold = await store.stats(0.0)
        again = await store.stats(0.0)  # folded now: the same answer
    finally:
        await store.close()
    runs, scans = await _full_count(db_url)
    assert runs == {"queued": 1, "cancelled": 1, "waiting": 1}
    assert scans == {"expired": 1, "failed": 1}
    for stats in (before_fold, again):
        assert {k: v for k, v in stats.runs_by_status.items() if v} == runs
        assert {k: v for k, v in stats.scans_by_status.items() if v} == scans


# PostgreSQL only ----------------------------------------------------------------------
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
async def pg(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of the test's own to its database."""
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()


async def _fill(pg: psycopg.AsyncConnection[Any], start: int, finished_runs: int) -> None:
    """``finished_runs`` completed runs of 3 steps each and a scan every third run."""
    end = start + finished_runs - 1
    await pg.execute(
        "INSERT INTO orgs (name, created_at) VALUES (%s, 0) ON CONFLICT DO NOTHING", (ORG,)
    )
    await pg.execute(
        "INSERT INTO runs (org, id, loop, status, input, output, history_len, created_at, "
        "updated_at, started_at, finished_at, run_key) SELECT %s, 'old-' || i, 'loop', "
        "'completed', '{}', '1', 1, i, i, i, i + 1, 'old-' || i "
        "FROM generate_series(%s::int, %s::int) AS i",
        (ORG, start, end),
    )
    await pg.execute(
        "INSERT INTO steps (run_id, name, seq, kind, status, output, attempts, started_at, "
        "finished_at) SELECT 'old-' || i, 's' || k, k, 'do', 'completed', '1', 1, i, i + 0.5 "
        "FROM generate_series(%s::int, %s::int) AS i, generate_series(0, 2) AS k",
        (start, end),
    )
    await pg.execute(
        "INSERT INTO scans (org, id, run_id, step, token_hash, status, metadata, created_at, "
        "updated_at, expires_at, completed_at) SELECT %s, 's-' || i, 'old-' || i, 'scan', "
        "'h-' || i, 'completed', '{}', i, i, i + 9, i "
        "FROM generate_series(%s::int, %s::int, 3) AS i",
        (ORG, start, end),
    )


class _Recorder:
    """Records each statement a store's connections send, as sent (a pass-through spy)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.on = False
        original = psycopg.AsyncConnection.execute

        async def execute(conn: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if self.on:
                text = query.decode() if isinstance(query, bytes) else str(query)
                self.statements.append((text, params))
            return await original(conn, query, params, **kwargs)

        monkeypatch.setattr(psycopg.AsyncConnection, "execute", execute)


async def _pages(pg: psycopg.AsyncConnection[Any], statements: list[tuple[str, Any]]) -> int:
    """Shared buffers (hit or read) the statements touch, each replayed under EXPLAIN
    ANALYZE in a transaction rolled back afterwards."""
    total = 0
    for text, params in statements:
        if not text.lstrip().upper().startswith(("SELECT", "WITH")):
            continue  # SET TRANSACTION and the like
        await pg.execute("BEGIN")
        try:
            cur = await pg.execute(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + text, params, prepare=False
            )
            row = await cur.fetchone()
        finally:
            await pg.execute("ROLLBACK")
        assert row is not None
        plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
        total += int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])
    return total


async def _scrape_work(
    url: str, pg: psycopg.AsyncConnection[Any], recorder: _Recorder, size: int, base: int
) -> tuple[int, list[str]]:
    """Pages a scrape touches once ``size`` more finished runs exist (after a fold and
    the vacuum autovacuum would do), with a few status changes not folded yet."""
    await _fill(pg, base, size)
    store = open_store(url)
    await store.open()
    try:
        await store.stats(1e9)  # fold the fill's deltas
        await pg.execute("VACUUM ANALYZE")
        for i in range(5):
            await store.create_run(ORG, f"new-{base}-{i}", "loop", "{}", 1e6)
        recorder.statements.clear()
        recorder.on = True
        stats = await store.stats(1e6 - 10)
        recorder.on = False
    finally:
        await store.close()
    runs, _ = await _full_count(url)
    assert stats.runs_by_status == runs  # exact, whatever was folded when
    return await _pages(pg, recorder.statements), [t for t, _ in recorder.statements]


async def test_a_postgres_scrape_does_the_same_work_whatever_the_history(
    pg_url: str, pg: psycopg.AsyncConnection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = _Recorder(monkeypatch)
    small, statements = await _scrape_work(pg_url, pg, recorder, SMALL, 0)
    large, _ = await _scrape_work(pg_url, pg, recorder, LARGE - SMALL, SMALL)
    assert large <= 2 * small + 10, f"pages: {small} at {SMALL} runs, {large} at {LARGE}"
    assert any("status_deltas" in s for s in statements), statements  # what was measured


async def test_a_second_folder_skips_and_totals_stay_exact(
    pg_url: str, pg: psycopg.AsyncConnection[Any]
) -> None:
    store = open_store(pg_url)
    await store.open()
    try:
        await _mixed_operations(store)
        async with await psycopg.AsyncConnection.connect(pg_url) as first:
            assert await counts.fold(first)  # holds the fold lock until it commits
            async with await psycopg.AsyncConnection.connect(pg_url) as second:
                assert not await counts.fold(second)
                assert (await counts.totals(second))["run"]["queued"] == 1
                await second.commit()
            await first.commit()
        cur = await pg.execute("SELECT count(*) FROM status_deltas")
        assert await cur.fetchone() == (0,)
        await store.create_run(ORG, "after", "loop", "{}", 200.0)
        assert (await store.stats(0.0)).runs_by_status["queued"] == 2
    finally:
        await store.close()


async def test_counts_start_from_the_rows_of_an_older_database(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSELOOP_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", MASTER_KEY)
    url = pg_server.create_database(empty=True)
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("CREATE TABLE pulseloop_schema (version integer NOT NULL)")
            for migration in migrations_for("postgres"):
                if migration.version < 17:
                    await conn.execute(migration.sql.encode())
            await conn.execute("INSERT INTO pulseloop_schema (version) VALUES (16)")
            for i, status in enumerate(("completed", "completed", "failed", "queued")):
                await conn.execute(
                    "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, "
                    "run_key) VALUES (%s, %s, 'loop', %s, '{}', 0, 0, %s)",
                    (ORG, f"r{i}", status, f"r{i}"),
                )
        store = open_store(url)
        await store.open()
        try:
            stats = await store.stats(0.0)
        finally:
            await store.close()
        assert stats.runs_by_status == {"completed": 2, "failed": 1, "queued": 1}
    finally:
        pg_server.drop_database(url)


async def test_an_open_store_folds_in_the_background(
    pg_url: str, pg: psycopg.AsyncConnection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment nobody scrapes still folds: the delta table stays small."""
    monkeypatch.setattr(counts, "FOLD_EVERY_S", 0.01)
    store = open_store(pg_url)
    await store.open()
    try:
        await _mixed_operations(store)

        async def folded() -> bool:
            cur = await pg.execute("SELECT count(*) FROM status_deltas")
            return await cur.fetchone() == (0,)

        await eventually(folded, "a background fold")
        cur = await pg.execute("SELECT status, n FROM status_counts WHERE kind = 'run' AND n > 0")
        assert dict(await cur.fetchall()) == {"queued": 1, "cancelled": 1, "waiting": 1}
    finally:
        await store.close()
