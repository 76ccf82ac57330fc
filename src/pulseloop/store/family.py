"""Child runs' SQL, written once for both backends (``%s``; SQLite runs it through
:func:`~pulseloop.store.sql.lite`), and the rows it reads.

A run's end (:data:`SIGNAL_PARENT`, :data:`WAKE_PARENT`) leaves its parent a signal and
re-queues the parent only when none of its open child waits still lacks one, so a parent
fanned out over n children replays once when the last ends, not n times. Ending a run
cancels its unfinished descendants (:data:`CANCEL_TREE`): one recursive statement however
deep the tree. On PostgreSQL the parent's row is locked first (:data:`LOCK_PARENT`), as
every signal producer does (see ``postgres/runs.py``).
"""

from __future__ import annotations

from typing import Any

from pulseloop.store.records import (
    CHILD_SIGNAL_PREFIX,
    ChildRun,
    ChildStart,
    RunFamily,
    RunRecord,
)
from pulseloop.store.sqlite.rows import RUN_COLUMNS, run_from_row

_PARENT_OF = "(SELECT parent_key FROM runs WHERE run_key = %s)"

LOCK_PARENT = f"SELECT 1 FROM runs WHERE run_key = {_PARENT_OF} FOR NO KEY UPDATE"
"""PostgreSQL only: lock the parent before signalling it (params: child key)."""

_ENDED = "('completed', 'failed', 'cancelled')"

SIGNAL_PARENT = (
    "INSERT INTO signals (run_id, key, payload, created_at) "
    "SELECT c.parent_key, 'child:' || c.run_key, '{\"status\": \"' || c.status || '\"}', %s "
    f"FROM runs c WHERE c.run_key = %s AND c.parent_key IS NOT NULL AND c.status IN {_ENDED} "
    "AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.run_id = c.parent_key "
    "AND s.key = 'child:' || c.run_key AND s.consumed_by IS NULL)"
)
"""Params: now, child key. Only once the child has ended; at most one pending signal per
child (a rerun of the same write adds none). The payload is the status alone."""

WAKE_PARENT = (
    "UPDATE runs SET status = 'queued', wake_at = NULL, updated_at = %s "
    f"WHERE run_key = {_PARENT_OF} AND status = 'waiting' AND NOT EXISTS ("
    "SELECT 1 FROM waits w WHERE w.run_id = runs.run_key AND w.kind = 'child' "
    "AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.run_id = w.run_id AND s.key = w.key "
    "AND s.consumed_by IS NULL))"
)
"""Params: now, child key. Runs after :data:`SIGNAL_PARENT` in the same transaction."""

CHILDREN_ANSWERED = (
    "NOT EXISTS (SELECT 1 FROM waits w WHERE w.run_id = %s AND w.kind = 'child' "
    "AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.run_id = w.run_id AND s.key = w.key "
    "AND s.consumed_by IS NULL))"
)
"""A condition (params: the run's key): every open child wait of the run has its signal.
A run parking on child waits goes back to the queue only then (the rule of
:data:`WAKE_PARENT`), so children ending while it ran do not replay it once each."""


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
DROP_TREE_WAITS = f"{_TREE}DELETE FROM waits WHERE run_id IN (SELECT run_key FROM tree)"
"""Params: the ended run's key."""

CONSUME_CHILD_SIGNALS = (
    "UPDATE signals SET consumed_by = %s WHERE run_id = %s AND key = %s AND consumed_by IS NULL"
)
"""Params: the parent's step, parent key, child signal key: the child's row is read in the
same transaction, so its pending wake-up hints are spent."""

PARENT_FENCE = "SELECT org, id FROM runs WHERE run_key = %s AND lease_owner = %s"
"""Params: the lease's run key and worker: the parent, held (a fence, like every write of
its worker)."""
INSERT_CHILD = (
    "INSERT INTO runs (org, id, loop, status, input, created_at, updated_at, run_key, "
    "deadline_at, parent_key, parent_id, parent_step) "
    "VALUES (%s, %s, %s, 'queued', %s, %s, %s, %s, %s, %s, %s, %s)"
)
CHILD_ROW = f"SELECT {RUN_COLUMNS}, parent_key, parent_step FROM runs WHERE org = %s AND id = %s"


def insert_child_params(
    org: str, key: str, parent: tuple[str, str], child: ChildStart
) -> tuple[Any, ...]:
    """:data:`INSERT_CHILD`'s parameters: ``parent`` is (key, id)."""
    c = child
    return (org, c.run_id, c.loop, c.input, c.created_at, c.created_at, key, c.deadline_at,
            parent[0], parent[1], c.step)  # fmt: skip


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
