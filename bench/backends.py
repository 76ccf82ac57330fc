"""Where a benchmark part's database lives: a new SQLite file, or a new database on one
throwaway PostgreSQL server the benchmark starts itself (127.0.0.1, as ``postgres``).

Every (workload, engine) part gets a fresh, empty database, named by the part, so no part
measures another's leftovers. Both engines are handed the same URL: pulseloop's
``sqlite:///...`` / ``postgresql://...`` and DBOS's ``system_database_url`` take one form.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from pulseloop.testing.postgres import ThrowawayPostgres

BENCH_SECRET_KEY = "bench-secret-key-shared-by-every-process-of-the-benchmark"
"""PULSELOOP_SECRET_KEY for a shared PostgreSQL database (every process needs the same)."""
BENCH_MASTER_KEY = "be" * 32
"""PULSELOOP_MASTER_KEY likewise (encryption at rest)."""


class Databases:
    """Fresh databases for one benchmark run; ``close()`` removes them all."""

    def __init__(self, backend: str) -> None:
        if backend not in ("sqlite", "postgres"):
            raise SystemExit(f"--backend {backend!r}: choose sqlite or postgres")
        self.backend = backend
        self.tmp = tempfile.TemporaryDirectory(prefix="pulseloop-bench-")
        self.server: ThrowawayPostgres | None = None
        if backend == "postgres":
            self.server = ThrowawayPostgres().start()
            os.environ["PULSELOOP_SECRET_KEY"] = BENCH_SECRET_KEY  # inherited by children
            os.environ["PULSELOOP_MASTER_KEY"] = BENCH_MASTER_KEY

    def describe(self) -> str:
        """One line for the report's header."""
        if self.server is None:
            return f"SQLite files in {self.tmp.name}"
        return f"PostgreSQL ({self.server.bindir.parent.name}) on 127.0.0.1:{self.server.port}"

    def url(self, name: str) -> str:
        """The URL of a new, empty database for the part ``name``."""
        safe = "".join(c if c.isalnum() else "_" for c in name.lower())
        if self.server is None:
            return f"sqlite:///{Path(self.tmp.name) / safe}.db"
        import psycopg

        with psycopg.connect(self.server.url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {safe} WITH (FORCE)".encode())
            conn.execute(f"CREATE DATABASE {safe}".encode())
        return self.server.url(safe)

    def close(self) -> None:
        """Stop the server this run started (if any) and remove the temporary files."""
        if self.server is not None:
            self.server.stop()
        self.tmp.cleanup()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read on a connection of its own (the store under test is not used)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        return list(pg.execute(sql.encode()).fetchall())


def count_waiting(url: str) -> int:
    """pulseloop runs parked (status 'waiting')."""
    ((n,),) = query(url, "SELECT count(*) FROM runs WHERE status = 'waiting'")
    return int(n)


def commit_floor_us(url: str, commits: int = 200) -> float:
    """Median microseconds of one synced one-row commit on this database: the floor
    under one sequential step (a), which needs at least one commit."""
    import statistics
    import time

    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///") + ".floor", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        run = conn.execute
    else:
        import psycopg

        conn = psycopg.connect(url, autocommit=True)  # type: ignore[assignment]
        run = conn.execute  # type: ignore[assignment]
    try:
        run("CREATE TABLE floor_probe (i integer)")
        times = []
        for i in range(commits):
            start = time.perf_counter()
            run(f"INSERT INTO floor_probe VALUES ({i})")
            times.append((time.perf_counter() - start) * 1e6)
        run("DROP TABLE floor_probe")
        return statistics.median(times)
    finally:
        conn.close()
