"""Which columns hold patient data, how each ciphertext is bound to its row, and the SQL
(written once, ``?`` placeholders) the encryption layer runs on either backend.

A ciphertext's associated data names its column and its row (``aad``), so a ciphertext
copied into another row or column fails to open. The row is named by what both its writer
and its readers know: ``(org, id)`` for a run's input (its key is chosen by the insert),
the run key for the run's other columns and its steps (run keys are unique across
organizations), ``(org, scan id)`` for scans and analysis jobs, ``(org, schedule id)``
for a schedule's body. Two exceptions, both
within one run: a step's error and its attempts' errors share their binding (a retry
copies the step row into the attempts table inside the store), and a signal is bound to
its key and creation time (its row id does not exist yet when it is sealed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SEALED_PREFIX = "plx1."
"""How every ciphertext starts; plaintext JSON never does (rows from before encryption)."""
ERROR_KEY = "sealed"
"""Error columns hold dicts: a sealed error is stored as ``{"sealed": "<ciphertext>"}``."""


def aad(column: str, *row: str) -> bytes:
    """The associated data binding a ciphertext to ``column`` of one row."""
    return "\x1f".join((column, *row)).encode()


@dataclass(frozen=True, slots=True)
class PayloadColumn:
    """One column of patient data, as the background re-encryption pass walks it.

    ``select`` takes ``(*cursor, limit)`` and returns ``(org, *cursor, *more, value)`` in
    cursor order, so a pass that passes on the last cursor seen reads each row once;
    ``update`` takes ``(new value, *cursor, old value)`` (it changes nothing if a writer
    changed the row meanwhile). ``row`` names the row for :func:`aad` from
    ``(org, *cursor, *more)``.
    """

    name: str
    select: str
    update: str
    start: tuple[Any, ...]
    row: Callable[[tuple[Any, ...]], tuple[str, ...]]
    is_error: bool = False


def _runs(column: str, by_id: bool = False) -> PayloadColumn:
    return PayloadColumn(
        f"runs.{column}",
        f"SELECT org, org, id, run_key, {column} FROM runs WHERE (org, id) > (?, ?) "
        f"AND {column} IS NOT NULL AND purged_at IS NULL ORDER BY org, id LIMIT ?",
        f"UPDATE runs SET {column} = ? WHERE org = ? AND id = ? AND {column} = ?",
        ("", ""),
        (lambda r: (r[2],)) if by_id else (lambda r: (r[3],)),
        is_error=column == "error",
    )


def _steps(table: str, column: str, cursor: tuple[str, ...]) -> PayloadColumn:
    order = ", ".join(f"t.{c}" for c in cursor)
    marks = ", ".join("?" for _ in cursor)
    match = " AND ".join(f"{c} = ?" for c in cursor)
    return PayloadColumn(
        f"{table}.{column}",
        f"SELECT r.org, {order}, t.{column} FROM {table} t JOIN runs r ON r.run_key = t.run_id "
        f"WHERE ({order}) > ({marks}) AND t.{column} IS NOT NULL AND r.purged_at IS NULL "
        f"ORDER BY {order} LIMIT ?",
        f"UPDATE {table} SET {column} = ? WHERE {match} AND {column} = ?",
        ("", "", -1, -1)[: len(cursor)],
        lambda r: (r[1], r[2]),  # run key, step name
        is_error=column == "error",
    )


ATTEMPT_CURSOR = ("run_id", "step", "generation", "attempt")

COLUMNS: tuple[PayloadColumn, ...] = (
    _runs("input", by_id=True),
    _runs("output"),
    _runs("error"),
    _runs("summary"),
    _steps("steps", "output", ("run_id", "name")),
    _steps("steps", "error", ("run_id", "name")),
    _steps("attempts", "error", ATTEMPT_CURSOR),
    PayloadColumn(
        "signals.payload",
        "SELECT r.org, t.id, t.key, t.created_at, t.payload FROM signals t "
        "JOIN runs r ON r.run_key = t.run_id WHERE t.id > ? AND r.purged_at IS NULL "
        "ORDER BY t.id LIMIT ?",
        "UPDATE signals SET payload = ? WHERE id = ? AND payload = ?",
        (0,),
        lambda r: (r[2], repr(r[3])),  # signal key, created_at
    ),
    PayloadColumn(
        "scans.metadata",
        "SELECT org, id, metadata FROM scans WHERE id > ? AND purged_at IS NULL "
        "ORDER BY id LIMIT ?",
        "UPDATE scans SET metadata = ? WHERE id = ? AND metadata = ?",
        ("",),
        lambda r: (r[1],),
    ),
    PayloadColumn(
        "scans.result",
        "SELECT org, id, result FROM scans WHERE id > ? AND result IS NOT NULL "
        "AND purged_at IS NULL ORDER BY id LIMIT ?",
        "UPDATE scans SET result = ? WHERE id = ? AND result = ?",
        ("",),
        lambda r: (r[1],),
    ),
    PayloadColumn(
        "analysis_jobs.payload",
        "SELECT org, scan_id, payload FROM analysis_jobs WHERE scan_id > ? "
        "ORDER BY scan_id LIMIT ?",
        "UPDATE analysis_jobs SET payload = ? WHERE scan_id = ? AND payload = ?",
        ("",),
        lambda r: (r[1],),
    ),
    PayloadColumn(
        "schedules.body",
        "SELECT org, org, id, body FROM schedules WHERE (org, id) > (?, ?) "
        "ORDER BY org, id LIMIT ?",
        "UPDATE schedules SET body = ? WHERE org = ? AND id = ? AND body = ?",
        ("", ""),
        lambda r: (r[2],),  # the schedule's id
    ),
    PayloadColumn(  # not patient data, but it forges notifications (sealed/webhooks.py)
        "webhook_endpoints.secret",
        "SELECT org, id, secret FROM webhook_endpoints WHERE id > ? ORDER BY id LIMIT ?",
        "UPDATE webhook_endpoints SET secret = ? WHERE id = ? AND secret = ?",
        ("",),
        lambda r: (r[1],),  # the endpoint's id
    ),
)
"""Every column of patient data. Ids, statuses, times, wait keys and failure reasons (a
fixed vocabulary) stay plaintext so claims, queries and indexes work. Rows retention has
purged (``purged_at``) hold nothing to seal: the re-encryption pass skips them."""

ADD_DATA_KEY = (
    "INSERT INTO data_keys (id, org, wrapped, created_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"
)
LIST_DATA_KEYS = "SELECT id, org, wrapped, created_at FROM data_keys ORDER BY created_at, id"
SCAN_ORG = "SELECT org FROM scans WHERE id = ?"
RUN_ORG = "SELECT org FROM runs WHERE run_key = ?"


def stored_error(token: str) -> str:
    """How an error column holds a sealed error (what the store's ``json.dumps`` makes)."""
    return json.dumps({ERROR_KEY: token})


def token_of(stored: str, is_error: bool) -> str | None:
    """The ciphertext a stored value holds, or None for a plaintext (legacy) value."""
    if is_error:
        if not stored.startswith('{"' + ERROR_KEY):
            return None
        value = json.loads(stored).get(ERROR_KEY)
        return value if isinstance(value, str) and value.startswith(SEALED_PREFIX) else None
    return stored if stored.startswith(SEALED_PREFIX) else None
