"""Shared fixtures: a fresh database per test on each backend, a fake clock, app factories.

Every test that takes ``db_url`` (or ``make_app``) runs twice: on a SQLite file in the
test's folder and on a fresh database of the session's throwaway PostgreSQL server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pulseloop import App, Loop
from pulseloop.testing import FakeClock
from tests.pg import MASTER_KEY, SECRET_KEY, PgServer

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server; if it cannot start, every test using it fails."""
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which store backend this test runs on."""
    return str(request.param)


@pytest.fixture
def db_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A database URL for a fresh database: a file in this test's folder, or a new
    PostgreSQL database (with the shared scan-link and master keys a shared database
    requires)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'pulseloop.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    monkeypatch.setenv("PULSELOOP_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("PULSELOOP_MASTER_KEY", MASTER_KEY)
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture
def clock() -> FakeClock:
    """Workflow time that moves only when the test says so."""
    return FakeClock()


AppFactory = Callable[..., Any]


@pytest.fixture
def make_app(db_url: str, clock: FakeClock) -> AppFactory:
    """``async with make_app([Loop, ...]) as app``: an App on the test's db and clock."""

    @asynccontextmanager
    async def factory(loops: Sequence[type[Loop]], **options: Any) -> AsyncIterator[App]:
        options.setdefault("clock", clock)
        options.setdefault("poll_interval", "50 milliseconds")
        async with App(list(loops), db_url, **options) as app:
            yield app

    return factory
