"""``pulseloop schedules list|pause|resume|delete``: read recurring triggers, act on them.

Like ``pulseloop runs``, each command opens the database without a worker, does one
thing through ``App.schedules`` and closes it; a running worker notices the change at its
next timer pass. Creating schedules is for code (``Cron`` on a loop,
``app.schedules.create``) and the API (``POST /v1/schedules``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from pulseloop.app import App
from pulseloop.cli.common import DbOption, JsonOption, existing_database_url, run_async
from pulseloop.cli.render import console, format_time, print_json
from pulseloop.schedules import Schedule

T = TypeVar("T")
UPCOMING = 3

app = typer.Typer(help="Inspect schedules (recurring triggers) and pause, resume or delete them.")

ScheduleId = Annotated[
    str, typer.Argument(help="The schedule's id.", show_default=False, metavar="SCHEDULE_ID")
]


async def _with_app(db: str | None, action: Callable[[App], Awaitable[T]]) -> T:
    async with App(database_url=existing_database_url(db), worker=False) as pulse:
        return await action(pulse)


def schedule_json(s: Schedule) -> dict[str, Any]:
    """The ``--json`` shape (the API's ``ScheduleOut``, times in ISO 8601)."""

    def iso(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": s.id, "loop": s.loop, "cron": s.cron, "tz": s.tz, "body": s.body,
        "missed": s.missed, "start": iso(s.start), "end": iso(s.end), "paused": s.paused,
        "next_fire": iso(s.next_fire), "upcoming": [iso(t) for t in s.upcoming],
        "last_fire": iso(s.last_fire), "last_run_id": s.last_run_id, "source": s.source,
        "created_at": iso(s.created_at),
    }  # fmt: skip


def schedules_table(found: list[Schedule]) -> Table:
    """``schedules list``: by id, with the next fire times in UTC."""
    table = Table(expand=False)
    for column in ("id", "loop", "cron", "tz", "state", "next fires (UTC)", "last run"):
        table.add_column(column, no_wrap=column != "next fires (UTC)")
    for s in found:  # user-supplied strings as Text: never read as markup
        table.add_row(
            Text(s.id), Text(s.loop), Text(s.cron), Text(s.tz),
            Text("paused" if s.paused else "active" if s.next_fire else "ended"),
            "\n".join(format_time(t) for t in s.upcoming) or "—",
            Text(s.last_run_id or "—"),
        )  # fmt: skip
    return table


@app.command("list")
def list_schedules(
    loop: Annotated[
        str | None,
        typer.Option("--loop", help="Only this loop's schedules.", show_default=False),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the organization's schedules with their next fire times."""

    async def action(pulse: App) -> list[Schedule]:
        return await pulse.schedules.list(loop=loop, upcoming=UPCOMING)

    found = run_async(_with_app(db, action))
    if as_json:
        print_json([schedule_json(s) for s in found])
    elif found:
        console().print(schedules_table(found))
    else:
        console().print("no schedules")


def _act(verb: str, schedule_id: str, db: str | None, as_json: bool) -> None:
    async def action(pulse: App) -> Schedule | None:
        method: Callable[[str], Awaitable[Schedule | None]] = getattr(pulse.schedules, verb)
        if await method(schedule_id) is None:
            return None  # deleted
        return await pulse.schedules.get(schedule_id, upcoming=UPCOMING)

    result = run_async(_with_app(db, action))
    if as_json:
        print_json(None if result is None else schedule_json(result))
    elif result is None:
        console().print(f"schedule {schedule_id} deleted")
    else:
        nxt = format_time(result.next_fire)
        state = "paused" if result.paused else f"active, next fire {nxt} UTC"
        console().print(Text(f"schedule {result.id} is now {state}"))


@app.command("pause")
def pause(schedule_id: ScheduleId, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Stop firing until resumed (ticks while paused are not caught up)."""
    _act("pause", schedule_id, db, as_json)


@app.command("resume")
def resume(schedule_id: ScheduleId, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Fire again from the first tick after now."""
    _act("resume", schedule_id, db, as_json)


@app.command("delete")
def delete(schedule_id: ScheduleId, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Delete the schedule; the runs it started stay."""
    _act("delete", schedule_id, db, as_json)
