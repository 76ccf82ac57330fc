"""Chaos on PostgreSQL: 200 runs using every durable feature on four workers and two
servers sharing one database, 30 worker SIGKILLs (and 3 server SIGKILLs) under the load,
then the database restarted ``-m immediate`` mid-load; the same processes finish.

See ``tests/crash/chaos_pg.py`` for the scenario and ``tests/crash/chaos.py`` for what
is checked. The database server is this test's own: restarting the session's would
disturb nothing today, but a restart is a crash and deserves its own server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from pulseloop.testing.postgres import ThrowawayPostgres
from tests.crash.chaos_pg import run_pg_chaos
from tests.pg import MASTER_KEY, SECRET_KEY


@pytest.mark.crash
@pytest.mark.slow
def test_pg_chaos_loses_nothing_across_kills_and_a_database_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSELOOP_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", MASTER_KEY)
    server = ThrowawayPostgres().start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE chaos")
        report = asyncio.run(
            run_pg_chaos(
                server, server.url("chaos"), tmp_path,
                runs=200, kills=30, server_kills=3, seed=2026_12_02,
            )
        )  # fmt: skip
    finally:
        server.stop()
    assert report.kills >= 30
    assert report.server_kills == 3
    assert report.database_restarts == 1
    assert report.uploads >= 40  # every 5th run's trace went through a server
    assert report.problems == []
