"""``pulseloop purge`` and ``pulseloop orgs retention``; ``runs show`` of a purged run."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.cli.helpers import invoke, invoke_json
from tests.cli.test_runs import run_to_end, show


def _finished_days_ago(db: Path, run_id: str, days: float) -> None:
    """Move a run's finish into the past (the CLI purges against the wall clock)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE runs SET finished_at = ? WHERE id = ?", (time.time() - days * 86400, run_id)
        )
    conn.close()


def test_purge_dry_run_then_purge_and_show(loop_file: Path, db: Path) -> None:
    run_to_end(loop_file, db, "greet", '{"name": "ada"}', "old")
    run_to_end(loop_file, db, "greet", '{"name": "bob"}', "new")
    _finished_days_ago(db, "old", 91)
    assert invoke_json("purge", "--org", "default", "--dry-run", "--db", str(db)) == [
        {"org": "default", "dry_run": True, "cutoff": _any(), "runs": 1, "scans": 0,
         "webhook_deliveries": 0,
         "batches": 0},
    ]  # fmt: skip
    assert show(db, "old")["body"] == {"name": "ada"}  # the dry run changed nothing

    result = invoke("purge", "--org", "default", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "default: purged 1 runs and 0 scans" in result.stdout
    old, new = show(db, "old"), show(db, "new")
    assert old["purged_at"] is not None and old["body"] is None and old["output"] is None
    assert old["status"] == "completed" and [s["name"] for s in old["steps"]] == ["say hello"]
    assert new["purged_at"] is None and new["body"] == {"name": "bob"}
    people = invoke("runs", "show", "old", "--db", str(db))
    assert people.exit_code == 0, people.output
    assert "purged" in people.stdout and "patient data removed" in people.stdout


def test_retention_policy_show_and_set(db: Path) -> None:
    assert invoke("orgs", "create", "clinic", "--db", str(db)).exit_code == 0
    shown = invoke_json("orgs", "retention", "--org", "clinic", "--db", str(db))
    assert shown == {"org": "clinic", "retention_days": 90}
    result = invoke("orgs", "retention", "--org", "clinic", "--days", "30", "--db", str(db))
    assert result.exit_code == 0 and "30 days" in result.stdout, result.output
    assert (
        invoke_json("orgs", "retention", "--org", "clinic", "--db", str(db))["retention_days"] == 30
    )
    bad = invoke("orgs", "retention", "--org", "clinic", "--days", "0", "--db", str(db))
    assert bad.exit_code != 0 and "1 to 36500" in bad.output
    missing = invoke("orgs", "retention", "--org", "nope", "--db", str(db))
    assert missing.exit_code != 0 and "nope" in missing.output
    reset = invoke("orgs", "retention", "--org", "clinic", "--default", "--db", str(db))
    assert reset.exit_code == 0 and "90 days" in reset.stdout, reset.output


class _any:
    def __eq__(self, other: object) -> bool:
        return True
