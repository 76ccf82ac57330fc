"""``pulseloop trigger LOOP --app APP --body JSON``: start a run, optionally wait for it.

Everything the user typed is checked before the database is opened (body, APP, loop, id,
timeout), so a typo never leaves a database file or a half-made run behind.

``--wait`` runs an in-process worker restricted to this one run (``App(only_run=...)``), so
triggering from a shell never executes other queued runs. The run's id must be known before
the App opens, so it is generated here when ``--id`` is absent.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Annotated, Any

import typer

from pulseloop.app import App, check_run_id, new_run_id
from pulseloop.cli.common import (
    EXIT_FAILED,
    EXIT_STILL_WAITING,
    CliError,
    DbOption,
    JsonOption,
    database_url,
    duration_option,
    fail,
    run_async,
    user_errors,
)
from pulseloop.cli.loading import LoadedApp, load_app
from pulseloop.cli.render import console, print_json, run_json, run_view
from pulseloop.durations import format_duration
from pulseloop.engine.codec import encode
from pulseloop.errors import InvalidRunId, PulseloopError
from pulseloop.runs import Run

PARKED_STATUSES = frozenset({"waiting", "paused", "queued"})
_CHECK_S = 0.25


def trigger(
    loop: Annotated[
        str, typer.Argument(help="The loop to run, e.g. compute-total.", metavar="LOOP")
    ],
    app_path: Annotated[
        str,
        typer.Option(
            "--app",
            help="The loops: path/to/file.py or module:attr.",
            metavar="APP",
            show_default=False,
        ),
    ],
    body: Annotated[
        str, typer.Option("--body", help="The event body, as JSON.", metavar="JSON")
    ] = "{}",
    run_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Run id: 1-200 characters of A-Za-z0-9._~:- (see docs/engine.md); "
            "triggering an existing id returns that run.",
            metavar="ID",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Run it here and wait until it finishes.")
    ] = False,
    timeout: Annotated[
        str,
        typer.Option(
            "--timeout",
            help="With --wait: give up once the run stays parked this long.",
            metavar="DURATION",
        ),
    ] = "1 minute",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a run of LOOP with a JSON body; print its id, or with --wait its result."""
    with user_errors():
        event = _parse_body(body)
        loaded = load_app(app_path)
        loaded.loop(loop)
        _check_id(run_id)
        patience = duration_option(timeout, "--timeout")
        url = database_url(db)
    run_id = run_id or new_run_id()
    if not wait:
        run = run_async(_trigger(loaded, url, loop, event, run_id))
        if as_json:
            print_json(run_json(run, steps=False))
        else:
            console().print(f"run [bold]{run.id}[/bold] {run.status} (loop {run.loop})")
        return
    run = run_async(_trigger_and_wait(loaded, url, loop, event, run_id, patience))
    if as_json:
        print_json(run_json(run))
    else:
        console().print(run_view(run))
    if not run.done:
        fail(
            f"run {run.id} is still {run.status} after {format_duration(patience)}; it stays "
            f"parked (see `pulseloop runs show {run.id}`)",
            EXIT_STILL_WAITING,
        )
    if run.status != "completed":
        raise typer.Exit(EXIT_FAILED)


def _parse_body(text: str) -> Any:
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--body is not JSON ({exc}); e.g. --body '{{\"items\": []}}'") from exc
    try:
        encode(event, "the event body (--body)")
    except PulseloopError as exc:
        raise CliError(str(exc)) from exc
    return event


def _check_id(run_id: str | None) -> None:
    if run_id is None:
        return
    try:
        check_run_id(run_id)
    except InvalidRunId as exc:
        raise CliError(f"--id: {exc}") from exc


async def _trigger(loaded: LoadedApp, url: str, loop: str, event: Any, run_id: str) -> Run:
    async with App(list(loaded.loops.values()), url, worker=False) as pulse:
        return await pulse.trigger(loop, event, id=run_id)


async def _trigger_and_wait(
    loaded: LoadedApp, url: str, loop: str, event: Any, run_id: str, patience: timedelta
) -> Run:
    loops = list(loaded.loops.values())
    async with App(loops, url, only_run=run_id, poll_interval="100 milliseconds") as pulse:
        await pulse.trigger(loop, event, id=run_id)
        return await wait_while_moving(pulse, run_id, patience)


async def wait_while_moving(pulse: App, run_id: str, patience: timedelta) -> Run:
    """Wait for the run to finish; return it early once it stays parked ``patience`` long.

    Time spent running steps never counts: a long step is progress, a wait is not.
    """
    parked_since: float | None = None
    while True:
        try:
            return await pulse.wait_for_run(run_id, timeout=_CHECK_S)
        except TimeoutError:
            pass
        run = await pulse.get_run(run_id)
        if run.status not in PARKED_STATUSES:
            parked_since = None
            continue
        now = time.monotonic()
        if parked_since is None:
            parked_since = now
        elif now - parked_since >= patience.total_seconds():
            return run
