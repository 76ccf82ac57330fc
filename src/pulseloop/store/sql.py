"""SQL both backends run as is, written once.

Statements are written with psycopg's ``%s`` placeholders; the SQLite backend runs them
through :func:`lite`, which swaps in sqlite3's ``?`` (cached, so once per statement). Only
statements the dialects agree on live here: organizations and keys, scan reads, and the
operator actions' plain updates. What differs stays with its backend: claims (``FOR
UPDATE SKIP LOCKED`` against SQLite's single writer), upserts (``INSERT OR IGNORE``
against ``ON CONFLICT DO NOTHING``), row locks (``FOR NO KEY UPDATE``), arrays
(``= ANY(%s)``), the hot step-write path and the ``/metrics`` counters.

Shared statements hold no literal ``%`` other than placeholders, so the swap is exact.
"""

from __future__ import annotations

from functools import cache


@cache
def lite(statement: str) -> str:
    """``statement`` with sqlite3's ``?`` placeholders instead of ``%s``."""
    return statement.replace("%s", "?")


# organizations and keys --------------------------------------------------------------
KEY_COLUMNS = "id, org, created_at, revoked_at"
GET_ORG = "SELECT name, created_at FROM orgs WHERE name = %s"
LIST_ORGS = "SELECT name, created_at FROM orgs ORDER BY created_at, name"
INSERT_KEY = "INSERT INTO keys (id, org, key_hash, created_at) VALUES (%s, %s, %s, %s)"
KEY_BY_HASH = f"SELECT {KEY_COLUMNS} FROM keys WHERE key_hash = %s"
KEY_BY_ID = f"SELECT {KEY_COLUMNS} FROM keys WHERE id = %s"
KEYS_OF_ORG = f"SELECT {KEY_COLUMNS} FROM keys WHERE org = %s ORDER BY created_at, id"
REVOKE_KEY = "UPDATE keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL"
STEP_LATENCIES = (
    "SELECT finished_at, finished_at - started_at FROM steps WHERE kind = 'do' "
    "AND finished_at > %s ORDER BY finished_at LIMIT %s"
)
"""``do`` steps finished after a time, oldest first (``/metrics``' histogram)."""

# scans -------------------------------------------------------------------------------
SCAN_COLUMNS = (
    "org, id, run_id, step, status, metadata, result, failure_reason, created_at, "
    "updated_at, expires_at, completed_at"
)
SCAN_OF_STEP = f"SELECT {SCAN_COLUMNS} FROM scans WHERE run_id = %s AND step = %s AND org = %s"
LATEST_SCAN = (
    f"SELECT {SCAN_COLUMNS} FROM scans WHERE run_id = %s AND org = %s ORDER BY seq DESC LIMIT 1"
)
SCAN_BY_ID = f"SELECT {SCAN_COLUMNS} FROM scans WHERE id = %s AND org = %s"
SCAN_BY_TOKEN = f"SELECT {SCAN_COLUMNS} FROM scans WHERE token_hash = %s"
SCAN_BY_KEY = f"SELECT {SCAN_COLUMNS} FROM scans WHERE id = %s"
"""By id alone (ids are unique across organizations): for outcomes, which name no org."""

LIST_DEPLOYS = (
    "SELECT org, loop, version, first_seen, last_seen FROM deploys "
    "WHERE org = %s ORDER BY first_seen DESC"
)

# operator actions (each inside the action's one transaction) -------------------------
CANCEL_RUN = (
    "UPDATE runs SET status = 'cancelled', finished_at = %s, updated_at = %s, wake_at = NULL, "
    "lease_owner = NULL, lease_expires_at = NULL WHERE run_key = %s"
)
PAUSE_RUN = "UPDATE runs SET status = 'paused', updated_at = %s WHERE run_key = %s"
REQUEUE_RUN = (
    "UPDATE runs SET status = 'queued', generation = generation + 1, output = NULL, "
    "error = NULL, finished_at = NULL, wake_at = NULL, lease_owner = NULL, "
    "lease_expires_at = NULL, updated_at = %s WHERE run_key = %s"
)
"""Back to the queue in a new generation (retry, restart): the holder's lease is gone."""
DELETE_WAITS = "DELETE FROM waits WHERE run_id = %s"
DELETE_FAILED_STEPS = "DELETE FROM steps WHERE run_id = %s AND status = 'failed'"
STEP_NAMES = "SELECT name FROM steps WHERE run_id = %s ORDER BY seq"
NAMES_FROM = (
    "SELECT name FROM steps WHERE run_id = %s AND seq >= %s "
    "UNION SELECT name FROM waits WHERE run_id = %s AND seq >= %s"
)
"""The steps and waits a restart forgets (their consumed signals go back)."""
DELETE_STEPS_FROM = "DELETE FROM steps WHERE run_id = %s AND seq >= %s"
DELETE_WAITS_FROM = "DELETE FROM waits WHERE run_id = %s AND seq >= %s"
