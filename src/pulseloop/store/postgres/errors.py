"""Driver errors become pulseloop errors here, and nowhere else.

Three kinds matter to callers:

* the connection is gone (server restarted, backend terminated, network): a write whose
  outcome is unknown is retried by the caller only if it is idempotent;
* a transient conflict (deadlock, serialization failure): the transaction was rolled
  back whole and can simply run again;
* anything else: a bug or a schema problem, reported as :class:`StoreError`.
"""

from __future__ import annotations

import psycopg

from pulseloop.errors import StoreError

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
"""Errors after which PostgreSQL has rolled the transaction back and a rerun is safe."""


def is_disconnect(exc: BaseException, conn: psycopg.AsyncConnection[object] | None) -> bool:
    """True if ``exc`` means the connection is unusable (reconnect and maybe retry)."""
    if conn is not None and (conn.closed or conn.broken):
        return True
    if isinstance(exc, psycopg.errors.AdminShutdown | psycopg.errors.CrashShutdown):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, psycopg.OperationalError) and (sqlstate is None or sqlstate[:2] == "08"):
        return True
    return isinstance(exc, psycopg.InterfaceError | OSError)


def is_transient(exc: BaseException) -> bool:
    """True for a conflict PostgreSQL resolved by rolling this transaction back."""
    return getattr(exc, "sqlstate", None) in TRANSIENT_SQLSTATES


def translate(exc: BaseException, where: str) -> StoreError:
    """A :class:`StoreError` naming what failed; the driver's message kept for operators."""
    if is_disconnect(exc, None):
        return StoreError(
            f"lost the connection to PostgreSQL at {where} ({_first_line(exc)}); "
            "check that the server is up and reachable, the operation can be retried"
        )
    return StoreError(f"PostgreSQL refused an operation at {where}: {_first_line(exc)}")


def unreachable(display_url: str, exc: BaseException) -> StoreError:
    """The server could not be reached at start-up."""
    return StoreError(
        f"cannot connect to PostgreSQL at {display_url} ({_first_line(exc)}); check the "
        "host, port, database name and credentials in --db / PULSELOOP_DATABASE_URL"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
