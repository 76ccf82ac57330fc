"""The outbox hook on PostgreSQL: the terminal transitions run these inside their own
transaction (the writer's batch for a run's finish), so a notification commits with the
transition or not at all (see :mod:`pulseloop.store.webhooks`)."""

from __future__ import annotations

from typing import Any

import psycopg

from pulseloop.store.postgres.writer import Statement
from pulseloop.store.webhooks import (
    RUN_OUTBOX,
    SCAN_OUTBOX,
    run_outbox_params,
    scan_outbox_params,
)

Conn = psycopg.AsyncConnection[Any]


def run_ended_statement(run_key: str, status: str) -> Statement:
    """The insert for a write batch; it matches only if the run is ``status`` now, and a
    rerun of the batch adds nothing (the transition's rows are unique)."""
    return Statement(RUN_OUTBOX, run_outbox_params(run_key, status))


async def run_ended(conn: Conn, run_key: str, status: str) -> None:
    """Queue ``run.<status>`` for each subscribed endpoint of the run's organization."""
    await conn.execute(RUN_OUTBOX, run_outbox_params(run_key, status))


async def scan_ended(conn: Conn, scan_id: str, status: str) -> None:
    """Queue ``scan.<status>`` for each subscribed endpoint of the scan's organization."""
    await conn.execute(SCAN_OUTBOX, scan_outbox_params(scan_id, status))
