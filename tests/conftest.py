"""Shared fixtures: a fresh SQLite database per test, a fake clock, app factories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pulseloop import App, Loop
from pulseloop.testing import FakeClock


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A database URL for a fresh file in this test's folder."""
    return f"sqlite:///{tmp_path / 'pulseloop.db'}"


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
