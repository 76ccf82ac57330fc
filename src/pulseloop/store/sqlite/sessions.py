"""Dashboard sessions and failed sign-ins in SQLite (:class:`~pulseloop.store.base.SessionStore`).

Every server process on the file sees the same rows, so a restart or a second process keeps
people signed in. Only the SHA-256 of a session's token is stored. ``ends_at`` is
``min(expires_at, last_seen_at + idle_s)``: the absolute expiry and the idle timeout in one
indexed column the lookup checks and the purge deletes by. Revoking a key deletes its
sessions by a trigger in the same transaction (migration 0008); the lookup's join refuses a
revoked key as well, so no path depends on the trigger alone.

Each function is one operation for the database thread (one transaction, group-committed
with whatever else is waiting; BEGIN IMMEDIATE also serializes it against other processes,
which is what makes :func:`begin_sign_in`'s check-then-count exact).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from pulseloop.store.base import SessionRecord

Runner = Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]

_COLUMNS = "s.token_hash, s.org, s.key_id, s.created_at, s.last_seen_at, s.expires_at, s.idle_s"
FAILURE_PURGE_BATCH = 500
"""Failed sign-ins older than the window deleted per attempt, at most."""


def create_session(
    conn: sqlite3.Connection,
    session: SessionRecord,
    replaces: str | None,
    max_per_key: int,
    purge: int,
) -> None:
    """Insert ``session``; drop the one it replaces, the key's oldest beyond the cap, and
    up to ``purge`` ended sessions."""
    if replaces is not None:
        conn.execute("DELETE FROM sessions WHERE token_hash = ?", (replaces,))
    purge_sessions(conn, session.created_at, purge)
    conn.execute(  # keep the key's newest max_per_key - 1, then add this one
        "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "
        "WHERE key_id = ? ORDER BY created_at DESC, token_hash LIMIT -1 OFFSET ?)",
        (session.key_id, max(0, max_per_key - 1)),
    )
    conn.execute(
        "INSERT INTO sessions (token_hash, org, key_id, created_at, last_seen_at, expires_at, "
        "idle_s, ends_at) VALUES (?, ?, ?, ?, ?, ?, ?, min(?, ? + ?))",
        (
            session.token_hash, session.org, session.key_id, session.created_at,
            session.last_seen_at, session.expires_at, session.idle_s,
            session.expires_at, session.last_seen_at, session.idle_s,
        ),
    )  # fmt: skip


def find_session(
    conn: sqlite3.Connection, token_hash: str, now: float, touch_after_s: float
) -> SessionRecord | None:
    """The live session of ``token_hash`` whose key is valid, touched if stale; else None."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM sessions s JOIN keys k ON k.id = s.key_id "
        "WHERE s.token_hash = ? AND s.ends_at > ? AND k.revoked_at IS NULL AND k.org = s.org",
        (token_hash, now),
    ).fetchone()
    if row is None:
        return None
    record = SessionRecord(*row)
    if record.last_seen_at <= now - touch_after_s:
        conn.execute(  # never backwards, should another process's clock be ahead
            "UPDATE sessions SET last_seen_at = ?, ends_at = min(expires_at, ? + idle_s) "
            "WHERE token_hash = ? AND last_seen_at < ?",
            (now, now, token_hash, now),
        )
        record = replace(record, last_seen_at=now)
    return record


def drop_session(conn: sqlite3.Connection, token_hash: str) -> None:
    """Delete one session."""
    conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))


def purge_sessions(conn: sqlite3.Connection, now: float, limit: int) -> int:
    """Delete at most ``limit`` sessions that have ended; return how many."""
    if limit <= 0:
        return 0
    cur = conn.execute(
        "DELETE FROM sessions WHERE token_hash IN "
        "(SELECT token_hash FROM sessions WHERE ends_at <= ? LIMIT ?)",
        (now, limit),
    )
    return cur.rowcount


def begin_sign_in(
    conn: sqlite3.Connection,
    names: Sequence[str],
    attempt: str,
    now: float,
    window_s: float,
    failures: int,
) -> float:
    """Refuse (seconds to wait) if a name has ``failures`` in the window; else record the
    attempt against every name and return 0.0."""
    since = now - window_s
    conn.execute(
        "DELETE FROM sign_in_failures WHERE (attempt, name) IN "
        "(SELECT attempt, name FROM sign_in_failures WHERE at <= ? LIMIT ?)",
        (since, FAILURE_PURGE_BATCH),
    )
    wait_s = 0.0
    for name in names:
        row = conn.execute(  # the failures-th newest failure: when it leaves, one may try
            "SELECT at FROM sign_in_failures WHERE name = ? AND at > ? AND attempt <> ? "
            "ORDER BY at DESC LIMIT 1 OFFSET ?",
            (name, since, attempt, failures - 1),
        ).fetchone()
        if row is not None:
            wait_s = max(wait_s, float(row[0]) + window_s - now)
    if wait_s > 0:
        return wait_s
    conn.executemany(
        "INSERT OR IGNORE INTO sign_in_failures (attempt, name, at) VALUES (?, ?, ?)",
        [(attempt, name, now) for name in names],
    )
    return 0.0


def forget_sign_in(conn: sqlite3.Connection, attempt: str) -> None:
    """The attempt succeeded: delete its rows."""
    conn.execute("DELETE FROM sign_in_failures WHERE attempt = ?", (attempt,))


class SqliteSessions:
    """:class:`~pulseloop.store.base.SessionStore` on the store's database thread."""

    def __init__(self, run: Runner) -> None:
        self._run = run

    async def create_session(
        self, session: SessionRecord, *, replaces: str | None, max_per_key: int, purge: int
    ) -> None:
        await self._run(lambda c: create_session(c, session, replaces, max_per_key, purge))

    async def find_session(
        self, token_hash: str, now: float, touch_after_s: float
    ) -> SessionRecord | None:
        found: SessionRecord | None = await self._run(
            lambda c: find_session(c, token_hash, now, touch_after_s)
        )
        return found

    async def drop_session(self, token_hash: str) -> None:
        await self._run(lambda c: drop_session(c, token_hash))

    async def purge_sessions(self, now: float, limit: int) -> int:
        purged: int = await self._run(lambda c: purge_sessions(c, now, limit))
        return purged

    async def begin_sign_in(
        self, names: Sequence[str], attempt: str, now: float, window_s: float, failures: int
    ) -> float:
        wait_s: float = await self._run(
            lambda c: begin_sign_in(c, names, attempt, now, window_s, failures)
        )
        return wait_s

    async def forget_sign_in(self, attempt: str) -> None:
        await self._run(lambda c: forget_sign_in(c, attempt))
