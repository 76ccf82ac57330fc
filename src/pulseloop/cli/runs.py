"""``pulseloop runs ...`` and ``pulseloop deploys``: read runs and act on them.

Each command opens the database without a worker, does one thing through :class:`App`, and
closes it. Actions only change the run's record; a worker (``pulseloop dev`` / ``worker``)
serving the run's loop picks the run up from there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from pulseloop.app import App
from pulseloop.cli import remote
from pulseloop.cli.common import (
    DbOption,
    JsonOption,
    KeyOption,
    UrlOption,
    existing_database_url,
    fail,
    run_async,
    user_errors,
)
from pulseloop.cli.render import (
    console,
    deploy_json,
    deploys_table,
    print_json,
    run_json,
    run_view,
    runs_table,
)
from pulseloop.runs import Deploy, Run
from pulseloop.store.base import RUN_STATUSES

T = TypeVar("T")

app = typer.Typer(help="Inspect runs and act on them (cancel, pause, resume, retry, restart).")

RunId = Annotated[str, typer.Argument(help="The run's id.", show_default=False, metavar="RUN_ID")]


async def _with_app(db: str | None, action: Callable[[App], Awaitable[T]]) -> T:
    async with App(database_url=existing_database_url(db), worker=False) as pulse:
        return await action(pulse)


def _show(run: Run, as_json: bool) -> None:
    if as_json:
        print_json(run_json(run))
    else:
        console().print(run_view(run))


@app.command("list")
def list_runs(
    loop: Annotated[
        str | None,
        typer.Option("--loop", help="Only runs of this loop.", show_default=False, metavar="LOOP"),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help=f"Only runs with this status ({', '.join(RUN_STATUSES)}).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, help="At most this many runs, newest first.", metavar="N"),
    ] = 50,
    db: DbOption = None,
    url: UrlOption = None,
    key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first (from --db, or from a server with --url and --key)."""
    if status is not None and status not in RUN_STATUSES:
        fail(f"--status {status!r} is not a run status; use one of {', '.join(RUN_STATUSES)}")

    async def action(pulse: App) -> list[Run]:
        return await pulse.list_runs(loop=loop, status=status, limit=limit)

    if url is not None:
        with user_errors():
            runs = remote.list_runs(url, key, loop=loop, status=status, limit=limit)
    else:
        runs = run_async(_with_app(db, action))
    if as_json:
        print_json([run_json(r, steps=False) for r in runs])
    elif runs:
        console().print(runs_table(runs))
    else:
        console().print("no runs")


@app.command("show")
def show(
    run_id: RunId,
    db: DbOption = None,
    url: UrlOption = None,
    key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run: status, body, output or error, and its step timeline."""

    async def action(pulse: App) -> Run:
        return await pulse.get_run(run_id)

    if url is not None:
        with user_errors():
            run = remote.get_run(url, key, run_id)
        _show(run, as_json)
        return
    _show(run_async(_with_app(db, action)), as_json)


def _act(verb: str, run_id: str, db: str | None, as_json: bool) -> None:
    async def action(pulse: App) -> Run:
        method: Callable[[str], Awaitable[Run]] = getattr(pulse, verb)
        return await method(run_id)

    _report(run_async(_with_app(db, action)), as_json)


def _report(run: Run, as_json: bool) -> None:
    if as_json:
        print_json(run_json(run, steps=False))
    else:
        console().print(f"run {run.id} is now [bold]{run.status}[/bold]")


@app.command("cancel")
def cancel(run_id: RunId, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Cancel an unfinished run; nothing more of it runs."""
    _act("cancel", run_id, db, as_json)


@app.command("pause")
def pause(run_id: RunId, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Pause a run; a running one stops after its current step is recorded."""
    _act("pause", run_id, db, as_json)


@app.command("resume")
def resume(run_id: RunId, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Resume a paused run."""
    _act("resume", run_id, db, as_json)


@app.command("retry")
def retry(run_id: RunId, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Retry a failed run: finished steps replay, the failed step runs again."""
    _act("retry", run_id, db, as_json)


@app.command("restart")
def restart(
    run_id: RunId,
    from_step: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="STEP",
            help="Forget this step and every later one, and run on from there.",
            show_default=False,
        ),
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restart a run from a named step."""

    async def action(pulse: App) -> Run:
        return await pulse.restart(run_id, from_step)

    _report(run_async(_with_app(db, action)), as_json)


def deploys(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List the loop versions workers served, newest first."""

    async def action(pulse: App) -> list[Deploy]:
        return await pulse.deploys()

    found = run_async(_with_app(db, action))
    if as_json:
        print_json([deploy_json(d) for d in found])
    elif found:
        console().print(deploys_table(found))
    else:
        console().print("no deploys yet: no worker has served a loop on this database")
