"""Dashboard sessions and failed sign-ins on PostgreSQL (``SessionStore`` in ``store/base.py``).

The same rows and rules as the SQLite backend (see ``store/sqlite/sessions.py``): only a
token's SHA-256 is stored, ``ends_at`` carries both expiry and the idle timeout, a trigger
deletes a revoked key's sessions and the lookup's join refuses it anyway.

:func:`begin_sign_in` takes a transaction-scoped advisory lock per name it counts against
(in sorted order, so two attempts never deadlock): under READ COMMITTED two concurrent
attempts would otherwise each miss the other's uncommitted row, and N server processes
could let N guesses past a full count.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import psycopg

from pulseloop.store.base import SessionRecord

Conn = psycopg.AsyncConnection[Any]
Transact = Callable[..., Awaitable[Any]]

_COLUMNS = "s.token_hash, s.org, s.key_id, s.created_at, s.last_seen_at, s.expires_at, s.idle_s"
_NAME_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('pulseloop-sign-in:' || %s, 0))"
FAILURE_PURGE_BATCH = 500
"""Failed sign-ins older than the window deleted per attempt, at most."""


async def create_session(
    conn: Conn, session: SessionRecord, replaces: str | None, max_per_key: int, purge: int
) -> None:
    """Insert ``session``; drop the one it replaces, the key's oldest beyond the cap, and
    up to ``purge`` ended sessions."""
    if replaces is not None:
        await conn.execute("DELETE FROM sessions WHERE token_hash = %s", (replaces,))
    await purge_sessions(conn, session.created_at, purge)
    await conn.execute(  # keep the key's newest max_per_key - 1, then add this one
        "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "
        "WHERE key_id = %s ORDER BY created_at DESC, token_hash OFFSET %s)",
        (session.key_id, max(0, max_per_key - 1)),
    )
    await conn.execute(
        "INSERT INTO sessions (token_hash, org, key_id, created_at, last_seen_at, expires_at, "
        "idle_s, ends_at) VALUES (%s, %s, %s, %s, %s, %s, %s, LEAST(%s, %s + %s))",
        (
            session.token_hash, session.org, session.key_id, session.created_at,
            session.last_seen_at, session.expires_at, session.idle_s,
            session.expires_at, session.last_seen_at, session.idle_s,
        ),
    )  # fmt: skip


async def find_session(
    conn: Conn, token_hash: str, now: float, touch_after_s: float
) -> SessionRecord | None:
    """The live session of ``token_hash`` whose key is valid, touched if stale; else None."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM sessions s JOIN keys k ON k.id = s.key_id "
        "WHERE s.token_hash = %s AND s.ends_at > %s AND k.revoked_at IS NULL AND k.org = s.org",
        (token_hash, now),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    record = SessionRecord(*row)
    if record.last_seen_at <= now - touch_after_s:
        await conn.execute(  # never backwards, should another process's clock be ahead
            "UPDATE sessions SET last_seen_at = %s, ends_at = LEAST(expires_at, %s + idle_s) "
            "WHERE token_hash = %s AND last_seen_at < %s",
            (now, now, token_hash, now),
        )
        record = replace(record, last_seen_at=now)
    return record


async def drop_session(conn: Conn, token_hash: str) -> None:
    """Delete one session."""
    await conn.execute("DELETE FROM sessions WHERE token_hash = %s", (token_hash,))


async def purge_sessions(conn: Conn, now: float, limit: int) -> int:
    """Delete at most ``limit`` sessions that have ended; return how many."""
    if limit <= 0:
        return 0
    cur = await conn.execute(
        "DELETE FROM sessions WHERE token_hash IN "
        "(SELECT token_hash FROM sessions WHERE ends_at <= %s LIMIT %s)",
        (now, limit),
    )
    return cur.rowcount


async def begin_sign_in(
    conn: Conn, names: Sequence[str], attempt: str, now: float, window_s: float, failures: int
) -> float:
    """Refuse (seconds to wait) if a name has ``failures`` in the window; else record the
    attempt against every name and return 0.0."""
    since = now - window_s
    for name in sorted(set(names)):
        await conn.execute(_NAME_LOCK, (name,))
    await conn.execute(
        "DELETE FROM sign_in_failures WHERE (attempt, name) IN "
        "(SELECT attempt, name FROM sign_in_failures WHERE at <= %s LIMIT %s)",
        (since, FAILURE_PURGE_BATCH),
    )
    wait_s = 0.0
    for name in names:
        cur = await conn.execute(  # the failures-th newest failure: when it leaves, one may try
            "SELECT at FROM sign_in_failures WHERE name = %s AND at > %s AND attempt <> %s "
            "ORDER BY at DESC LIMIT 1 OFFSET %s",
            (name, since, attempt, failures - 1),
        )
        row = await cur.fetchone()
        if row is not None:
            wait_s = max(wait_s, float(row[0]) + window_s - now)
    if wait_s > 0:
        return wait_s
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO sign_in_failures (attempt, name, at) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [(attempt, name, now) for name in names],
        )
    return 0.0


async def forget_sign_in(conn: Conn, attempt: str) -> None:
    """The attempt succeeded: delete its rows."""
    await conn.execute("DELETE FROM sign_in_failures WHERE attempt = %s", (attempt,))


class PostgresSessions:
    """:class:`~pulseloop.store.base.SessionStore` over the store's pooled transactions.

    ``transact(fn, idempotent=...)`` is the store's ``_tx``: one pooled transaction,
    rerun after a dropped connection when that is safe.
    """

    def __init__(self, transact: Transact) -> None:
        self._tx = transact

    async def create_session(
        self, session: SessionRecord, *, replaces: str | None, max_per_key: int, purge: int
    ) -> None:
        # a rerun inserts the same primary key: not idempotent, rerun only before COMMIT
        await self._tx(
            lambda c: create_session(c, session, replaces, max_per_key, purge), idempotent=False
        )

    async def find_session(
        self, token_hash: str, now: float, touch_after_s: float
    ) -> SessionRecord | None:
        found: SessionRecord | None = await self._tx(
            lambda c: find_session(c, token_hash, now, touch_after_s)
        )
        return found

    async def drop_session(self, token_hash: str) -> None:
        await self._tx(lambda c: drop_session(c, token_hash))

    async def purge_sessions(self, now: float, limit: int) -> int:
        purged: int = await self._tx(lambda c: purge_sessions(c, now, limit))
        return purged

    async def begin_sign_in(
        self, names: Sequence[str], attempt: str, now: float, window_s: float, failures: int
    ) -> float:
        wait_s: float = await self._tx(
            lambda c: begin_sign_in(c, names, attempt, now, window_s, failures)
        )
        return wait_s

    async def forget_sign_in(self, attempt: str) -> None:
        await self._tx(lambda c: forget_sign_in(c, attempt))
