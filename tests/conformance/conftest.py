"""The store conformance suite: every test here runs on SQLite and on PostgreSQL.

``store`` is an open store on the test's fresh database (``db_url`` is parametrised over
both backends in tests/conftest.py); ``second_store`` is another store on the same
database, as a second worker process would have.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pulseloop.store import Store, open_store


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """An open store on this test's database."""
    opened = open_store(db_url, for_worker=True)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def second_store(db_url: str, store: Store) -> AsyncIterator[Store]:
    """Another store on the same database (another worker process's view)."""
    opened = open_store(db_url, for_worker=True)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
