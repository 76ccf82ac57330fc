"""Row <-> record conversion for the SQLite backend."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from pulseloop.store.base import AttemptRecord, RunRecord, StepRecord, WaitRecord

RUN_COLUMNS = (
    "org, id, loop, status, input, output, error, generation, history_len, "
    "created_at, updated_at, started_at, finished_at, wake_at, run_key, summary, deadline_at, "
    "purged_at, trace_parent"
)
STEP_COLUMNS = (
    "run_id, name, seq, kind, status, output, error, attempts, started_at, finished_at, version"
)
ATTEMPT_COLUMNS = (
    "run_id, step, generation, attempt, status, started_at, finished_at, error, retry_at, "
    "version, worker"
)
WAIT_COLUMNS = "run_id, name, seq, kind, key, deadline_at, created_at"


def dump_error(error: dict[str, Any] | None) -> str | None:
    """Errors are stored as JSON text."""
    return None if error is None else json.dumps(error)


def load_error(text: str | None) -> dict[str, Any] | None:
    """Inverse of :func:`dump_error`."""
    return None if text is None else dict(json.loads(text))


def run_from_row(row: sqlite3.Row | tuple[Any, ...]) -> RunRecord:
    """A ``SELECT RUN_COLUMNS`` row as a record."""
    (org, id_, loop, status, input_, output, error, gen, hist, created, updated, started,
     finished, wake, key, summary, deadline, purged, trace_parent) = row  # fmt: skip
    return RunRecord(
        org, id_, loop, status, input_, output, load_error(error), gen, hist,
        created, updated, started, finished, wake, key, summary, deadline, purged,
        trace_parent,
    )  # fmt: skip


def step_from_row(row: tuple[Any, ...]) -> StepRecord:
    """A ``SELECT STEP_COLUMNS`` row as a record."""
    run_id, name, seq, kind, status, output, error, attempts, started, finished, version = row
    return StepRecord(
        run_id, name, seq, kind, status, output, load_error(error), attempts, started,
        finished, version,
    )  # fmt: skip


def step_to_row(step: StepRecord) -> tuple[Any, ...]:
    """Parameters for an INSERT of STEP_COLUMNS."""
    return (
        step.run_id, step.name, step.seq, step.kind, step.status, step.output,
        dump_error(step.error), step.attempts, step.started_at, step.finished_at, step.version,
    )  # fmt: skip


def attempt_from_row(row: tuple[Any, ...]) -> AttemptRecord:
    """A ``SELECT ATTEMPT_COLUMNS`` row as a record."""
    run_id, step, gen, attempt, status, started, finished, error, retry_at, version, worker = row
    return AttemptRecord(
        run_id, step, gen, attempt, status, started, finished, load_error(error), retry_at,
        version, worker,
    )  # fmt: skip


def attempt_to_row(a: AttemptRecord) -> tuple[Any, ...]:
    """Parameters for an INSERT of ATTEMPT_COLUMNS."""
    return (
        a.run_id, a.step, a.generation, a.attempt, a.status, a.started_at, a.finished_at,
        dump_error(a.error), a.retry_at, a.version, a.worker,
    )  # fmt: skip


def wait_from_row(row: tuple[Any, ...]) -> WaitRecord:
    """A ``SELECT WAIT_COLUMNS`` row as a record."""
    return WaitRecord(*row)


def wait_to_row(w: WaitRecord) -> tuple[Any, ...]:
    """Parameters for an INSERT of WAIT_COLUMNS."""
    return (w.run_id, w.name, w.seq, w.kind, w.key, w.deadline_at, w.created_at)
