"""The outbox hook on SQLite: the terminal transitions call these inside their own
transaction, so a notification commits with the transition or not at all (see
:mod:`pulseloop.store.webhooks`)."""

from __future__ import annotations

import sqlite3

from pulseloop.store.sql import lite
from pulseloop.store.webhooks import (
    RUN_OUTBOX,
    SCAN_OUTBOX,
    run_outbox_params,
    scan_outbox_params,
)


def run_ended(conn: sqlite3.Connection, run_key: str, status: str) -> None:
    """Queue ``run.<status>`` for each subscribed endpoint of the run's organization."""
    conn.execute(lite(RUN_OUTBOX), run_outbox_params(run_key, status))


def scan_ended(conn: sqlite3.Connection, scan_id: str, status: str) -> None:
    """Queue ``scan.<status>`` for each subscribed endpoint of the scan's organization."""
    conn.execute(lite(SCAN_OUTBOX), scan_outbox_params(scan_id, status))
