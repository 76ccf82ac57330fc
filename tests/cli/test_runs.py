"""``pulseloop runs ...`` and ``deploys``: reading runs, acting on them, and the JSON shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import invoke, invoke_json

RUN_KEYS = {
    "id", "loop", "status", "body", "output", "error",
    "created_at", "updated_at", "started_at", "finished_at", "wake_at", "summary", "purged_at",
}  # fmt: skip
STEP_KEYS = {
    "name", "kind", "status", "started_at", "finished_at", "duration_s", "deadline",
    "version", "output", "error", "attempts",
}  # fmt: skip
ATTEMPT_KEYS = {"number", "status", "started_at", "finished_at", "duration_s", "error", "version"}


def run_to_end(loop_file: Path, db: Path, loop: str, body: str, run_id: str) -> dict[str, Any]:
    """Trigger (or re-drive, for an existing id) ``run_id`` in this process until it settles."""
    result = invoke(
        "trigger", loop, "--app", str(loop_file), "--body", body, "--id", run_id,
        "--wait", "--timeout", "0 seconds", "--db", str(db), "--json",
    )  # fmt: skip
    assert result.exit_code in (0, 1, 3), result.output
    return show(db, run_id)


def show(db: Path, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = invoke_json("runs", "show", run_id, "--db", str(db))
    return run


def test_show_json_has_the_documented_shape(loop_file: Path, db: Path) -> None:
    run = run_to_end(loop_file, db, "greet", '{"name": "ada"}', "g-1")
    assert set(run) == RUN_KEYS | {"steps"}
    assert run["status"] == "completed"
    assert run["output"] == {"greeting": "hello ada"}
    (step,) = run["steps"]
    assert set(step) == STEP_KEYS
    assert (step["name"], step["kind"], step["status"]) == ("say hello", "do", "completed")
    (attempt,) = step["attempts"]
    assert set(attempt) == ATTEMPT_KEYS
    assert run["created_at"].endswith("+00:00")


def test_show_for_people_has_the_timeline(loop_file: Path, db: Path) -> None:
    run_to_end(loop_file, db, "await-reply", "{}", "w-1")
    result = invoke("runs", "show", "w-1", "--db", str(db))
    assert result.exit_code == 0, result.output
    for text in ("waiting", "ask", "reply", "event", "deadline"):
        assert text in result.stdout


def test_list_filters_and_json(loop_file: Path, db: Path) -> None:
    run_to_end(loop_file, db, "greet", '{"name": "a"}', "g-1")
    run_to_end(loop_file, db, "await-reply", "{}", "w-1")
    everything = invoke_json("runs", "list", "--db", str(db))
    assert {r["id"] for r in everything} == {"g-1", "w-1"}
    assert all(set(r) == RUN_KEYS for r in everything)
    waiting = invoke_json("runs", "list", "--status", "waiting", "--db", str(db))
    assert [r["id"] for r in waiting] == ["w-1"]
    greets = invoke_json("runs", "list", "--loop", "greet", "--db", str(db))
    assert [r["id"] for r in greets] == ["g-1"]
    assert len(invoke_json("runs", "list", "--limit", "1", "--db", str(db))) == 1
    table = invoke("runs", "list", "--db", str(db))
    assert table.exit_code == 0
    assert "g-1" in table.stdout
    assert "w-1" in table.stdout


def test_list_refuses_an_unknown_status(loop_file: Path, db: Path) -> None:
    run_to_end(loop_file, db, "greet", '{"name": "a"}', "g-1")
    result = invoke("runs", "list", "--status", "done", "--db", str(db))
    assert result.exit_code == 2
    assert "is not a run status" in result.stderr


def test_pause_resume_and_cancel(loop_file: Path, db: Path) -> None:
    run_to_end(loop_file, db, "await-reply", "{}", "w-1")
    paused = invoke_json("runs", "pause", "w-1", "--db", str(db))
    assert paused["status"] == "paused"
    assert show(db, "w-1")["status"] == "paused"
    invoke_json("runs", "resume", "w-1", "--db", str(db))
    assert show(db, "w-1")["status"] in ("queued", "waiting")
    result = invoke("runs", "cancel", "w-1", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "cancelled" in result.stdout
    assert show(db, "w-1")["status"] == "cancelled"


def test_retry_runs_the_failed_step_again(tmp_path: Path, loop_file: Path, db: Path) -> None:
    needed = tmp_path / "needed.txt"
    body = f'{{"path": "{needed}"}}'
    failed = run_to_end(loop_file, db, "needs-file", body, "n-1")
    assert failed["status"] == "failed"
    needed.write_text("found it")
    assert invoke_json("runs", "retry", "n-1", "--db", str(db))["status"] == "queued"
    done = run_to_end(loop_file, db, "needs-file", body, "n-1")
    assert done["status"] == "completed"
    assert done["output"] == {"content": "found it"}


def test_restart_forgets_the_step_and_runs_on(loop_file: Path, db: Path) -> None:
    run_to_end(loop_file, db, "greet", '{"name": "a"}', "g-1")
    restarted = invoke_json("runs", "restart", "g-1", "--from", "say hello", "--db", str(db))
    assert restarted["status"] == "queued"
    assert show(db, "g-1")["steps"] == []
    assert run_to_end(loop_file, db, "greet", "{}", "g-1")["status"] == "completed"


@pytest.mark.parametrize("action", ["show", "cancel", "pause", "resume", "retry"])
def test_an_unknown_run_is_exit_1(loop_file: Path, db: Path, action: str) -> None:
    run_to_end(loop_file, db, "greet", '{"name": "a"}', "g-1")
    result = invoke("runs", action, "nope", "--db", str(db))
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no run 'nope' in this organization; check the id"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["cancel", "g-1"], "cannot cancel run 'g-1': it is completed"),
        (["retry", "g-1"], "cannot retry run 'g-1': it is completed"),
        (["restart", "g-1", "--from", "nope"], "has no step named 'nope'"),
    ],
)
def test_an_action_that_does_not_fit_is_exit_1(
    loop_file: Path, db: Path, args: list[str], expected: str
) -> None:
    run_to_end(loop_file, db, "greet", '{"name": "a"}', "g-1")
    result = invoke("runs", *args, "--db", str(db))
    assert result.exit_code == 1
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args", [["runs", "list"], ["runs", "show", "x"], ["runs", "cancel", "x"], ["deploys"]]
)
def test_read_commands_never_create_a_database(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "absent.db"
    result = invoke(*args, "--db", str(db))
    assert result.exit_code == 1
    assert f"no database at {db}" in result.stderr
    assert not db.exists()
    default = invoke(*args)
    assert default.exit_code == 1
    assert not (tmp_path / ".pulseloop").exists()


def test_deploys_lists_served_versions(loop_file: Path, db: Path) -> None:
    run_to_end(loop_file, db, "greet", '{"name": "a"}', "g-1")
    deploys = invoke_json("deploys", "--db", str(db))
    assert {d["loop"] for d in deploys} == {"greet", "await-reply", "needs-file"}
    assert all(set(d) == {"loop", "version", "first_seen", "last_seen"} for d in deploys)
    table = invoke("deploys", "--db", str(db))
    assert table.exit_code == 0
    assert deploys[0]["version"] in table.stdout
