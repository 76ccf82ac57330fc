"""Child runs' SQL, written once for both backends (``%s``; SQLite runs it through
:func:`~pulseloop.store.sql.lite`), and the rows it reads.

The signal. A parent waits for a child through a wait row of kind ``child`` (key
``child:<child key>``). A run's end turns its parent's wait into ``child-ended``
(:data:`ANSWER_PARENT`) and re-queues the parent only when no wait of kind ``child`` is
left (:data:`WAKE_PARENT`); a parent parking checks the same (:data:`CHILDREN_ANSWERED`).
So a parent fanned out over n children replays once, when the last ends, not n times, and
each check is one probe of a partial index, not a scan of the n waits (with a signal row
per child and "every open wait has its signal", n children cost O(n^2) probes: 23 s of
the 31 s a fan-out of 1,000 took on PostgreSQL). The child's row, not the wait, says how
it ended: ``start_child`` reads it and resets the wait's kind from it (a child retried by
an operator is waited for again).

Ending a run cancels its unfinished descendants (:data:`CANCEL_TREE`): one recursive
statement however deep the tree. On PostgreSQL the parent's row is locked first
(:data:`LOCK_PARENT`), as every signal producer does (see ``postgres/runs.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pulseloop.store.records import (
    CHILD_SIGNAL_PREFIX,
    TERMINAL_STATUSES,
    ChildRun,
    ChildStart,
    RunFamily,
    RunRecord,
    WaitRecord,
    child_signal_key,
)
from pulseloop.store.sqlite.rows import RUN_COLUMNS, WAIT_COLUMNS, run_from_row, wait_to_row
from pulseloop.store.webhooks import RUN_OUTBOX, run_outbox_params

_PARENT_OF = "(SELECT parent_key FROM runs WHERE run_key = %s)"

LOCK_PARENT = f"SELECT 1 FROM runs WHERE run_key = {_PARENT_OF} FOR NO KEY UPDATE"
"""PostgreSQL only: lock the parent before signalling it (params: child key)."""

_ENDED = "('completed', 'failed', 'cancelled')"

ANSWER_PARENT = (
    "UPDATE waits SET kind = 'child-ended' WHERE run_id = (SELECT parent_key FROM runs "
    f"WHERE run_key = %s AND status IN {_ENDED}) AND key = %s AND kind = 'child'"
)
"""Params: child key, its signal key (:func:`~pulseloop.store.records.child_signal_key`).
Only once the child has ended, so a rerun batch or a lost lease changes nothing."""

WAKE_PARENT = (
    "UPDATE runs SET status = 'queued', wake_at = NULL, updated_at = %s "
    f"WHERE run_key = {_PARENT_OF} AND status = 'waiting' AND NOT EXISTS ("
    "SELECT 1 FROM waits w WHERE w.run_id = runs.run_key AND w.kind = 'child')"
)
"""Params: now, child key. Runs after :data:`ANSWER_PARENT` in the same transaction."""

CHILDREN_ANSWERED = "NOT EXISTS (SELECT 1 FROM waits w WHERE w.run_id = %s AND w.kind = 'child')"
"""A condition (params: the run's key): no child of the run is still awaited."""


def split_keys(keys: list[str]) -> tuple[list[str], bool]:
    """A parking run's keys: (those any one signal of which is ready, whether it also
    waits for children, which are ready together: :data:`CHILDREN_ANSWERED`)."""
    others = [k for k in keys if not k.startswith(CHILD_SIGNAL_PREFIX)]
    return others, len(others) < len(keys)


_TREE = (
    "WITH RECURSIVE tree(run_key) AS (SELECT c.run_key FROM runs c JOIN runs p "
    f"ON c.parent_key = p.run_key WHERE p.run_key = %s AND p.status IN {_ENDED} "
    "UNION ALL SELECT r.run_key FROM runs r JOIN tree t ON r.parent_key = t.run_key) "
)
CANCEL_TREE = (
    f"{_TREE}UPDATE runs SET status = 'cancelled', finished_at = %s, updated_at = %s, "
    "wake_at = NULL, lease_owner = NULL, lease_expires_at = NULL "
    "WHERE run_key IN (SELECT run_key FROM tree) "
    "AND status IN ('queued', 'running', 'waiting', 'paused')"
)
"""Params: the ended run's key, now, now: its unfinished descendants, once it has ended
(their workers lose the lease, as on cancel)."""
_ONE_RUN = "WHERE r.run_key = %s AND r.status = %s"
assert _ONE_RUN in RUN_OUTBOX, "store/webhooks.py's RUN_OUTBOX changed: update TREE_OUTBOX"
TREE_OUTBOX = _TREE + RUN_OUTBOX.replace(
    _ONE_RUN,
    "WHERE r.run_key IN (SELECT run_key FROM tree) AND r.finished_at = %s AND r.status = %s",
)
"""Params: :func:`tree_outbox_params`. Each descendant :data:`CANCEL_TREE` just cancelled
queues ``run.cancelled`` for the webhooks (store/webhooks.py), as a cancel of its own would."""


def tree_outbox_params(run_key: str, now: float) -> tuple[Any, ...]:
    """:data:`TREE_OUTBOX`'s parameters: the ended run's key, the cascade's time."""
    event, _, status, pattern = run_outbox_params(run_key, "cancelled")
    return run_key, event, now, status, pattern


DROP_TREE_WAITS = f"{_TREE}DELETE FROM waits WHERE run_id IN (SELECT run_key FROM tree)"
"""Params: the ended run's key."""

UPSERT_CHILD_WAIT = (
    f"INSERT INTO waits ({WAIT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (run_id, name) DO UPDATE SET kind = excluded.kind"
)
"""The parent's wait for a child, its kind set from the child's status as just read."""


def child_wait(wait: WaitRecord, child: RunRecord) -> tuple[Any, ...]:
    """:data:`UPSERT_CHILD_WAIT`'s parameters: ``wait`` for ``child``."""
    kind = "child-ended" if child.status in TERMINAL_STATUSES else "child"
    return wait_to_row(dataclasses.replace(wait, kind=kind, key=child_signal_key(child.key)))


PARENT_FENCE = "SELECT org, id FROM runs WHERE run_key = %s AND lease_owner = %s"
"""Params: the lease's run key and worker: the parent, held (a fence, like every write of
its worker)."""
INSERT_CHILD = (
    "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, run_key, "
    "deadline_at, parent_key, parent_id, parent_step, trace_parent) "
    "VALUES (%s, %s, %s, 'queued', %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
CHILD_ROW = f"SELECT {RUN_COLUMNS}, parent_key, parent_step FROM runs WHERE org = %s AND id = %s"


def insert_child_params(
    org: str, key: str, parent: tuple[str, str], child: ChildStart
) -> tuple[Any, ...]:
    """:data:`INSERT_CHILD`'s parameters: ``parent`` is (key, id)."""
    c = child
    return (org, c.run_id, c.loop, c.input, c.created_at, c.created_at, key, c.deadline_at,
            parent[0], parent[1], c.step, c.trace_parent)  # fmt: skip


def child_row(row: tuple[Any, ...], parent_key: str, step: str) -> tuple[RunRecord, bool]:
    """A :data:`CHILD_ROW` row: the child, and whether it is ``step``'s of that parent."""
    return run_from_row(row[:-2]), (row[-2], row[-1]) == (parent_key, step)


CHILD_COLUMNS = "id, loop, status, parent_id, parent_step, created_at, finished_at"
FAMILY_OF = "SELECT run_key, parent_id, parent_step FROM runs WHERE org = %s AND id = %s"
DESCENDANTS = (
    "WITH RECURSIVE tree(run_key, depth) AS (SELECT run_key, 1 FROM runs WHERE parent_key = %s "
    "UNION ALL SELECT r.run_key, t.depth + 1 FROM runs r JOIN tree t "
    "ON r.parent_key = t.run_key WHERE t.depth < 32) "
    f"SELECT {CHILD_COLUMNS} FROM runs WHERE run_key IN (SELECT run_key FROM tree) "
    "ORDER BY created_at, id LIMIT %s"
)
"""Params: the run's key, limit. 32 levels deep at most (a guard, not a feature)."""


def family(row: tuple[Any, ...] | None, rows: list[tuple[Any, ...]]) -> RunFamily | None:
    """A :data:`FAMILY_OF` row and its :data:`DESCENDANTS` rows as a record."""
    if row is None:
        return None
    return RunFamily(row[1], row[2], [ChildRun(*r) for r in rows])
