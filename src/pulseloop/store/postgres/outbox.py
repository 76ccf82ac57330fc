"""The outbox hook on PostgreSQL: the terminal transitions run these inside their own
transaction (the writer's batch for a run's finish), so a notification commits with the
transition or not at all (see :mod:`pulseloop.store.webhooks`).

Each insert also wakes deliverers in other processes (``DELIVERIES_HINT`` on the
``pulseloop_work`` channel, see :mod:`pulseloop.store.postgres.wakeups`), so a scan
analysed in a server process or a run cancelled over HTTP is POSTed at once, not at the
next 5 s poll. Design record: the hint is a ``pg_notify`` inside the transition's own
transaction, selected from the insert's ``RETURNING`` rows. PostgreSQL delivers it only
when that transaction commits (never before the rows are visible, never for a rollback)
and only if a row was queued: a transition of an organization without endpoints, or a
batch rerun that inserted nothing, notifies nothing. Considered: the store's
:class:`~pulseloop.store.postgres.wakeups.Notifier` after the commit, which is how work
hints are sent because a notifying commit takes a cluster-wide lock; but these helpers
run inside transactions whose commit they do not see, and only commits that queue a
webhook pay the lock here. Still a hint: deliverers keep polling.
"""

from __future__ import annotations

from typing import Any

import psycopg

from pulseloop.store.postgres.wakeups import CHANNEL
from pulseloop.store.postgres.writer import Statement
from pulseloop.store.webhooks import (
    DELIVERIES_HINT,
    RUN_OUTBOX,
    SCAN_OUTBOX,
    run_outbox_params,
    scan_outbox_params,
)

Conn = psycopg.AsyncConnection[Any]


def _hinting(insert: str) -> str:
    """``insert`` (it runs to completion whatever reads it) and one NOTIFY if it queued a
    row; the notification leaves with the commit."""
    return (
        f"WITH queued AS ({insert} RETURNING 1) "
        f"SELECT pg_notify('{CHANNEL}', '{DELIVERIES_HINT}') FROM queued LIMIT 1"
    )


PG_RUN_OUTBOX = _hinting(RUN_OUTBOX)
PG_SCAN_OUTBOX = _hinting(SCAN_OUTBOX)


def run_ended_statement(run_key: str, status: str) -> Statement:
    """The insert for a write batch; it matches only if the run is ``status`` now, and a
    rerun of the batch adds nothing (the transition's rows are unique)."""
    return Statement(PG_RUN_OUTBOX, run_outbox_params(run_key, status))


async def run_ended(conn: Conn, run_key: str, status: str) -> None:
    """Queue ``run.<status>`` for each subscribed endpoint of the run's organization."""
    await conn.execute(PG_RUN_OUTBOX, run_outbox_params(run_key, status))


async def scan_ended(conn: Conn, scan_id: str, status: str) -> None:
    """Queue ``scan.<status>`` for each subscribed endpoint of the scan's organization."""
    await conn.execute(PG_SCAN_OUTBOX, scan_outbox_params(scan_id, status))
