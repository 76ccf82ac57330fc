"""How runs, steps and deploys look: Rich tables for people, stable JSON for programs.

The JSON shapes are documented in ``docs/cli.md``; change them only by adding keys.
Times are ISO-8601 in UTC, durations are seconds (``*_s``), absent values are ``null``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any

import typer
from rich.console import Console, Group, RenderableType
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from pulseloop.durations import format_duration
from pulseloop.runs import Attempt, Deploy, Run, StepInfo

STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "cancelled": "red dim",
    "waiting": "yellow",
    "retrying": "yellow",
    "running": "cyan",
    "queued": "blue",
    "paused": "magenta",
}


# JSON ------------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds(), 6)


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    """One attempt of a step's callback."""
    return {
        "number": attempt.number,
        "status": attempt.status,
        "started_at": _iso(attempt.started_at),
        "finished_at": _iso(attempt.finished_at),
        "duration_s": _seconds(attempt.duration),
        "error": attempt.error,
        "version": attempt.version,
    }


def step_json(step: StepInfo) -> dict[str, Any]:
    """One entry of a run's step timeline."""
    return {
        "name": step.name,
        "kind": step.kind,
        "status": step.status,
        "started_at": _iso(step.started_at),
        "finished_at": _iso(step.finished_at),
        "duration_s": _seconds(step.duration),
        "deadline": _iso(step.deadline),
        "version": step.version,
        "output": step.output,
        "error": step.error,
        "attempts": [attempt_json(a) for a in step.attempts],
    }


def run_json(run: Run, *, steps: bool = True) -> dict[str, Any]:
    """A run; with ``steps`` (``runs show``, ``trigger --wait``) its step timeline too."""
    data: dict[str, Any] = {
        "id": run.id,
        "loop": run.loop,
        "status": run.status,
        "body": run.body,
        "output": run.output,
        "error": run.error,
        "created_at": _iso(run.created_at),
        "updated_at": _iso(run.updated_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "wake_at": _iso(run.wake_at),
        "summary": run.summary,
        "purged_at": _iso(run.purged_at),
    }
    if steps:
        data["steps"] = [step_json(s) for s in run.steps]
    return data


def deploy_json(deploy: Deploy) -> dict[str, Any]:
    """A loop version some worker served."""
    return {
        "loop": deploy.loop,
        "version": deploy.version,
        "first_seen": _iso(deploy.first_seen),
        "last_seen": _iso(deploy.last_seen),
    }


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout and nothing else (no colour, no wrapping)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


# people ----------------------------------------------------------------------------------
# Every user-supplied string (run ids, loop and step names, versions) goes into a table as
# a Text, never a str: Rich reads a str cell as markup, so a run id "[link=...]" would
# render as a link and one with "[/bold]" would raise and lose the table.
def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(status, style=STATUS_STYLES.get(status, ""))


def format_time(value: datetime | None) -> str:
    """A UTC time to the second, or ``—``."""
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _run_duration(run: Run) -> timedelta | None:
    return None if run.finished_at is None else run.finished_at - run.created_at


def timeline_table(run: Run, *, title: str | None = None, versions: bool = True) -> Table:
    """The run's steps in order: step, kind, status, attempts, duration (version, deadline).

    The deadline column appears only when some step waits with one.
    """
    deadlines = any(step.deadline is not None for step in run.steps)
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("step", min_width=8)
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    if versions:
        table.add_column("version", no_wrap=True)
    if deadlines:
        table.add_column("deadline (UTC)", no_wrap=True)
    for step in run.steps:
        row: list[RenderableType] = [
            Text(step.name),
            Text(step.kind),
            status_text(step.status),
            str(len(step.attempts)) if step.attempts else "—",
            format_duration(step.duration),
        ]
        if versions:
            row.append(Text(step.version or "—"))
        if deadlines:
            row.append(format_time(step.deadline) if step.deadline else "")
        table.add_row(*row)
    return table


def _value(value: Any) -> RenderableType:
    try:
        return JSON.from_data(value, indent=2)
    except (TypeError, ValueError):
        return Text(repr(value))


def run_view(run: Run) -> RenderableType:
    """A run for people: its header, body, output or error, and its step timeline."""
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    header.add_row("run", Text(run.id))
    header.add_row("loop", Text(run.loop))
    header.add_row("status", status_text(run.status))
    header.add_row("created", format_time(run.created_at) + " UTC")
    if run.finished_at is not None:
        header.add_row("finished", format_time(run.finished_at) + " UTC")
        header.add_row("took", format_duration(_run_duration(run)))
    elif run.wake_at is not None:
        header.add_row("wakes", format_time(run.wake_at) + " UTC")
    if run.purged_at is not None:  # retention removed its patient data
        header.add_row("purged", format_time(run.purged_at) + " UTC (patient data removed)")
    else:
        header.add_row("body", _value(run.body))
    if run.purged_at is None and run.error is not None:
        message = f"{run.error.get('type', 'Error')}: {run.error.get('message', '')}"
        header.add_row("error", Text(message, style="red"))
    elif run.purged_at is None and run.status == "completed":
        header.add_row("output", _value(run.output))
    parts: list[RenderableType] = [header]
    if run.steps:
        parts.append(timeline_table(run, title="steps"))
    else:
        parts.append(Text("no steps recorded yet", style="dim"))
    return Group(*parts)


def runs_table(runs: list[Run]) -> Table:
    """``runs list``: newest first."""
    table = Table(expand=False)
    table.add_column("id", no_wrap=True)
    table.add_column("loop", min_width=10)
    table.add_column("status", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("summary")
    for run in runs:
        table.add_row(
            Text(run.id),
            Text(run.loop),
            status_text(run.status),
            format_time(run.created_at),
            format_duration(_run_duration(run)),
            Text(run.summary or ""),  # the loop's words, printed literally (no markup)
        )
    return table


def deploys_table(deploys: list[Deploy]) -> Table:
    """``deploys``: the loop versions workers served, newest first."""
    table = Table(expand=False)
    table.add_column("loop")
    table.add_column("version", no_wrap=True)
    table.add_column("first seen (UTC)", no_wrap=True)
    table.add_column("last seen (UTC)", no_wrap=True)
    for deploy in deploys:
        table.add_row(
            Text(deploy.loop),
            Text(deploy.version),
            format_time(deploy.first_seen),
            format_time(deploy.last_seen),
        )
    return table


PIPE_WIDTH = 120


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout/stderr (created per command, so tests can capture).

    Output that is not a terminal (a pipe, a log file) gets 120 columns unless ``COLUMNS``
    says otherwise: Rich's 80-column default would cut run ids short.
    """
    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPE_WIDTH
    return out
