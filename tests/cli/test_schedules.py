"""``pulseloop schedules list|pause|resume|delete`` on a database with schedules."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pulseloop import App
from tests.cli.helpers import invoke, invoke_json

SCHEDULE_KEYS = {
    "id", "loop", "cron", "tz", "body", "missed", "start", "end", "paused", "next_fire",
    "upcoming", "last_fire", "last_run_id", "source", "created_at",
}  # fmt: skip


def _make(db: Path) -> None:
    async def make() -> None:
        async with App(database_url=f"sqlite:///{db}", worker=False) as pulse:
            await pulse.schedules.create(
                "greet", cron="0 8 * * *", tz="Europe/Paris", id="p1-morning",
                body={"name": "p1"},
            )  # fmt: skip
            await pulse.schedules.create("greet", cron="*/30 * * * *", id="half-hourly")

    asyncio.run(make())


def test_list_pause_resume_delete(db: Path) -> None:
    _make(db)
    listed = invoke_json("schedules", "list", "--db", str(db))
    assert [s["id"] for s in listed] == ["half-hourly", "p1-morning"]
    assert set(listed[1]) == SCHEDULE_KEYS and len(listed[1]["upcoming"]) == 3
    assert listed[1]["body"] == {"name": "p1"}
    table = invoke("schedules", "list", "--db", str(db))
    assert table.exit_code == 0 and "p1-morning" in table.stdout and "Europe/Paris" in table.stdout

    paused = invoke("schedules", "pause", "p1-morning", "--db", str(db))
    assert paused.exit_code == 0 and "is now paused" in paused.stdout
    after = invoke_json("schedules", "list", "--loop", "greet", "--db", str(db))
    assert [s["paused"] for s in after] == [False, True] and after[1]["next_fire"] is None
    resumed = invoke_json("schedules", "resume", "p1-morning", "--db", str(db))
    assert resumed["paused"] is False and resumed["next_fire"] is not None
    assert resumed["upcoming"][0] == resumed["next_fire"] and len(resumed["upcoming"]) == 3

    deleted = invoke("schedules", "delete", "half-hourly", "--db", str(db))
    assert deleted.exit_code == 0 and "deleted" in deleted.stdout
    assert [s["id"] for s in invoke_json("schedules", "list", "--db", str(db))] == ["p1-morning"]


def test_an_unknown_schedule_is_one_line_and_exit_1(db: Path) -> None:
    _make(db)
    result = invoke("schedules", "pause", "nope", "--db", str(db))
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: no schedule 'nope'")
    assert "Traceback" not in result.output


def test_list_on_a_database_without_schedules(db: Path) -> None:
    asyncio.run(_empty(db))
    result = invoke("schedules", "list", "--db", str(db))
    assert result.exit_code == 0 and "no schedules" in result.stdout


async def _empty(db: Path) -> None:
    async with App(database_url=f"sqlite:///{db}", worker=False):
        pass
