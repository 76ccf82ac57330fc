"""The floor under workload (a): SQLite alone doing what one pulseloop step does.

Run it: ``.venv/bin/python bench/sqlite_floor.py``. One connection, WAL,
``synchronous=FULL``, on a temp file; per iteration the same statements
``record_step`` runs (fence UPDATE ... RETURNING, step INSERT, attempt INSERT, waits
DELETE) inside ``BEGIN IMMEDIATE`` / ``COMMIT``. Prints microseconds per transaction for
an empty commit (no fsync: nothing written), the step transaction, the same without its
COMMIT, and a lean variant (fence by SELECT, no attempts row: fewer pages per commit),
so ``us/step`` from bench/engine.py can be read as floor + engine overhead. Last, 100 such
step writes per commit (group commit, workload (b)) with and without the per-operation
SAVEPOINT / RELEASE that ``Database._execute`` adds in a batch.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

N = 2000


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(
        """
        CREATE TABLE runs (id TEXT PRIMARY KEY, lease_owner TEXT, status TEXT,
                           updated_at REAL, history_len INTEGER DEFAULT 0);
        CREATE TABLE steps (run_id TEXT, name TEXT, seq INTEGER, kind TEXT, status TEXT,
                            output TEXT, error TEXT, attempts INTEGER, started_at REAL,
                            finished_at REAL, version TEXT, PRIMARY KEY (run_id, name));
        CREATE TABLE attempts (run_id TEXT, step TEXT, generation INTEGER, attempt INTEGER,
                               status TEXT, started_at REAL, finished_at REAL, error TEXT,
                               retry_at REAL, version TEXT, worker TEXT,
                               PRIMARY KEY (run_id, step, generation, attempt));
        CREATE TABLE waits (run_id TEXT, name TEXT, PRIMARY KEY (run_id, name));
        INSERT INTO runs VALUES ('r', 'w', 'running', 0, 0);
        """
    )
    return conn


def step_tx(conn: sqlite3.Connection, i: int, commit: bool = True) -> None:
    conn.execute("BEGIN IMMEDIATE")
    step_body(conn, i)
    conn.execute("COMMIT" if commit else "ROLLBACK")


def step_body(conn: sqlite3.Connection, i: int) -> None:
    """The statements of SqliteStore.record_step for one completed step."""
    now = time.time()
    conn.execute(
        "UPDATE runs SET updated_at = ?, history_len = history_len + 1 "
        "WHERE id = ? AND lease_owner = ? RETURNING status",
        (now, "r", "w"),
    ).fetchone()
    conn.execute(
        "INSERT OR IGNORE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("r", f"s{i}", i, "do", "completed", "null", None, 1, now, now, "v1"),
    )
    conn.execute(
        "INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("r", f"s{i}", 0, 1, "completed", now, now, None, None, "v1", "w"),
    )
    conn.execute("DELETE FROM waits WHERE run_id = ? AND name = ?", ("r", f"s{i}"))


def lean_tx(conn: sqlite3.Connection, i: int) -> None:
    """Fence by SELECT (no runs-row write), the step row only (no attempts row)."""
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("SELECT status FROM runs WHERE id = ? AND lease_owner = ?", ("r", "w")).fetchone()
    conn.execute(
        "INSERT OR IGNORE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("r", f"s{i}", i, "do", "completed", "null", None, 1, now, now, "v1"),
    )
    conn.execute("COMMIT")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        conn = connect(str(Path(folder) / "floor.db"))
        results: dict[str, list[float]] = {}
        labels = ("empty commit", "step tx", "step tx, no commit (rollback)", "lean step tx")
        for label in labels:
            samples = []
            for rep in range(3):
                start = time.perf_counter()
                for i in range(N):
                    k = rep * N + i
                    if label == "empty commit":
                        conn.execute("BEGIN IMMEDIATE")
                        conn.execute("COMMIT")
                    elif label == "lean step tx":
                        lean_tx(conn, 10 * N + k)
                    else:
                        step_tx(conn, k, commit=label == "step tx")
                samples.append((time.perf_counter() - start) / N * 1e6)
            results[label] = samples
            print(f"{label:32} {statistics.median(samples):7.1f} us/tx  (runs: "
                  + ", ".join(f"{s:.0f}" for s in samples) + ")")  # fmt: skip
        # group commit: 100 step writes per transaction, with and without the SAVEPOINT /
        # RELEASE that Database._execute wraps around each operation of a batch
        k = 100 * N
        for savepoints in (True, False, True, False):
            start = time.perf_counter()
            for _ in range(20):
                conn.execute("BEGIN IMMEDIATE")
                for _ in range(100):
                    k += 1
                    if savepoints:
                        conn.execute("SAVEPOINT op")
                    step_body(conn, k)
                    if savepoints:
                        conn.execute("RELEASE op")
                conn.execute("COMMIT")
            per_op = (time.perf_counter() - start) / 2000 * 1e6
            print(f"100 steps/commit, savepoints={savepoints!s:5}  {per_op:7.1f} us/step")
        conn.close()


if __name__ == "__main__":
    main()
