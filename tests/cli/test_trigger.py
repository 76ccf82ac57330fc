"""``pulseloop trigger``: bad input changes nothing; good input queues or runs a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import invoke, invoke_json, run_cli


def assert_one_line_usage_error(args: list[str], expected: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["greet", "--body", "{not json"], "--body is not JSON"),
        (["nope", "--body", "{}"], "known loops: await-reply, greet, needs-file"),
        (["greet", "--body", "{}", "--timeout", "soon"], "--timeout"),
        (["greet", "--body", "{}", "--id", ""], "--id"),
        (["greet", "--id", "a/b"], "run id 'a/b' is not allowed"),
        (["greet", "--id", "two words"], "A-Z a-z 0-9 . _ ~ : -"),
        (["greet", "--id", "x" * 300], "(300 characters)"),
        (["greet", "--id", "café"], "'café'"),
    ],
)
def test_bad_input_is_refused_before_the_database_opens(
    tmp_path: Path, loop_file: Path, db: Path, extra: list[str], expected: str
) -> None:
    assert_one_line_usage_error(
        ["trigger", *extra, "--app", str(loop_file), "--db", str(db)], expected
    )
    assert not db.exists()
    assert not db.parent.exists()
    assert not (tmp_path / ".pulseloop").exists()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (None, "no such file"),
        ("import no_such_dependency_xyz\n", "ModuleNotFoundError"),
        ("VALUE = 1\n", "defines no loop"),
    ],
)
def test_an_app_that_does_not_load_is_refused(
    tmp_path: Path, db: Path, source: str | None, expected: str
) -> None:
    app = tmp_path / "app.py"
    if source is not None:
        app.write_text(source)
    assert_one_line_usage_error(
        ["trigger", "greet", "--app", str(app), "--body", "{}", "--db", str(db)], expected
    )
    assert not db.exists()
    assert not (tmp_path / ".pulseloop").exists()


def test_an_unwritable_database_path_is_refused(tmp_path: Path, loop_file: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be")
    db = blocker / "runs.db"
    assert_one_line_usage_error(
        ["trigger", "greet", "--app", str(loop_file), "--body", "{}", "--db", str(db)],
        "cannot create the database folder",
    )
    assert not db.exists()


def test_trigger_queues_a_run_and_prints_its_id(loop_file: Path, db: Path) -> None:
    result = invoke(
        "trigger", "greet", "--app", str(loop_file), "--body", '{"name": "ada"}', "--db", str(db)
    )
    assert result.exit_code == 0, result.output
    run_id = result.stdout.split()[1]
    shown = invoke_json("runs", "show", run_id, "--db", str(db))
    assert shown["status"] == "queued"
    assert shown["body"] == {"name": "ada"}


def test_an_id_with_dots_tildes_and_colons_is_accepted(loop_file: Path, db: Path) -> None:
    args = ["trigger", "greet", "--app", str(loop_file), "--db", str(db)]
    run = invoke_json(*args, "--id", "order.7~v2:retry-1_b", "--body", '{"name": "ada"}')
    assert run["id"] == "order.7~v2:retry-1_b"
    shown = invoke_json("runs", "show", "order.7~v2:retry-1_b", "--db", str(db))
    assert shown["status"] == "queued"


def test_trigger_with_an_id_is_idempotent(loop_file: Path, db: Path) -> None:
    args = ["trigger", "greet", "--app", str(loop_file), "--id", "order-1", "--db", str(db)]
    first = invoke_json(*args, "--body", '{"name": "a"}')
    again = invoke_json(*args, "--body", '{"name": "b"}')
    assert first["id"] == again["id"] == "order-1"
    assert again["body"] == {"name": "a"}
    assert set(first) == {
        "id", "loop", "status", "body", "output", "error",
        "created_at", "updated_at", "started_at", "finished_at", "wake_at", "summary", "purged_at",
    }  # fmt: skip


def test_trigger_wait_runs_it_and_prints_the_timeline(tmp_path: Path, loop_file: Path) -> None:
    db = tmp_path / "runs.db"
    done = run_cli(
        "trigger", "greet", "--app", str(loop_file), "--body", '{"name": "ada"}',
        "--wait", "--db", str(db), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout
    assert "say hello" in done.stdout
    assert "hello ada" in done.stdout


def test_trigger_wait_json_is_the_run_with_its_steps(tmp_path: Path, loop_file: Path) -> None:
    db = tmp_path / "runs.db"
    done = run_cli(
        "trigger", "greet", "--app", str(loop_file), "--body", '{"name": "ada"}',
        "--wait", "--json", "--id", "r-1", "--db", str(db), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["id"] == "r-1"
    assert run["status"] == "completed"
    assert run["output"] == {"greeting": "hello ada"}
    assert [step["name"] for step in run["steps"]] == ["say hello"]


def test_trigger_wait_gives_up_on_a_parked_run_and_leaves_it(
    tmp_path: Path, loop_file: Path, db: Path
) -> None:
    result = invoke(
        "trigger", "await-reply", "--app", str(loop_file), "--id", "w-1",
        "--wait", "--timeout", "0 seconds", "--db", str(db),
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "still waiting" in result.stderr
    run = invoke_json("runs", "show", "w-1", "--db", str(db))
    assert run["status"] == "waiting"
    reply = run["steps"][-1]
    assert (reply["name"], reply["kind"], reply["status"]) == ("reply", "event", "waiting")
    assert reply["deadline"] is not None


def test_trigger_wait_reports_a_failed_run_with_exit_1(loop_file: Path, db: Path) -> None:
    result = invoke(
        "trigger", "needs-file", "--app", str(loop_file), "--body", '{"path": "absent.txt"}',
        "--wait", "--json", "--db", str(db),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "failed"
    assert "absent.txt is missing" in run["error"]["message"]
