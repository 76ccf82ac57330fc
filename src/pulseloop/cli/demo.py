"""``pulseloop demo``: run the spec's examples end to end and show what happened.

A demo is a list of :class:`Scenario` values: which example file holds the loop, the body
to trigger it with, and what a person would do while it runs (``drive``: answer an SMS,
finish a scan). Adding a scenario is adding one entry to :data:`SCENARIOS`; the runner,
the database and the rendering are shared.

The examples are loaded by path from the repository's ``examples/`` folder, found in the
current directory or next to the package's source tree.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.json import JSON
from rich.panel import Panel
from rich.text import Text

import pulseloop
from pulseloop.app import App
from pulseloop.cli.common import EXIT_FAILED, CliError, run_async, user_errors
from pulseloop.cli.loading import load_app
from pulseloop.cli.render import console, format_duration, status_text, timeline_table
from pulseloop.config import database_url_for
from pulseloop.engine.loop import Loop
from pulseloop.runs import Run

DEFAULT_DEMO_DB = Path(".pulseloop") / "demo.db"
RUN_TIMEOUT = "1 minute"


@dataclass(frozen=True, slots=True)
class Scenario:
    """One example run of the demo."""

    title: str
    description: str
    example: str
    """File name in ``examples/`` that defines the loop."""
    loop: str
    body: Callable[[ModuleType], Any]
    """The event body, given the imported example module."""
    drive: Callable[[App, Run], Awaitable[None]] | None = None
    """What the outside world does once the run is triggered (a reply, a scan)."""


async def _patient_replies(pulse: App, run: Run) -> None:
    await pulse.send_event(run.id, "patient-reply", {"text": "Much better, thanks"})


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        title="Compute total",
        description="One checkpointed step sums an order's prices.",
        example="compute_total.py",
        loop="compute-total",
        body=lambda module: module.EXAMPLE_BODY,
    ),
    Scenario(
        title="Follow-up",
        description="An SMS that fails once and is retried, a durable sleep, a reply wait.",
        example="follow_up.py",
        loop="follow-up",
        body=lambda module: {"phone": "+15550100"},
        drive=_patient_replies,
    ),
)


def demo(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database file or URL (default: a fresh .pulseloop/demo.db).",
            show_default=False,
            metavar="PATH_OR_URL",
        ),
    ] = None,
) -> None:
    """Run the examples end to end on embedded SQLite and show each run's step timeline."""
    with user_errors():
        folder = find_examples()
        modules: dict[str, ModuleType] = {}
        loops: dict[str, type[Loop]] = {}
        for scenario in SCENARIOS:
            modules[scenario.example], found = _load_example(folder / scenario.example)
            loops.update(found)
        url = database_url_for(db) if db else _fresh_demo_database()
    out = console()
    out.print(f"[bold]pulseloop demo[/bold] — {len(SCENARIOS)} runs on {url}\n")
    runs = run_async(_run_all(list(loops.values()), url, modules))
    for scenario, run in zip(SCENARIOS, runs, strict=True):
        out.print(scenario_view(scenario, run))
    if any(run.status != "completed" for run in runs):
        raise typer.Exit(EXIT_FAILED)


def find_examples() -> Path:
    """The ``examples/`` folder: in the current directory, or beside the source tree."""
    candidates = [
        Path.cwd() / "examples",
        Path(pulseloop.__file__).resolve().parents[2] / "examples",
    ]
    for folder in candidates:
        if all((folder / s.example).is_file() for s in SCENARIOS):
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise CliError(
        f"cannot find the examples folder (looked in {tried}); run the demo from a "
        "pulseloop checkout",
        EXIT_FAILED,
    )


def _load_example(path: Path) -> tuple[ModuleType, dict[str, type[Loop]]]:
    loaded = load_app(str(path))
    cls = next(iter(loaded.loops.values()))
    return sys.modules[cls.__module__], loaded.loops


def _fresh_demo_database() -> str:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            DEFAULT_DEMO_DB.with_name(DEFAULT_DEMO_DB.name + suffix).unlink()
    return database_url_for(str(DEFAULT_DEMO_DB))


async def _run_all(loops: list[type[Loop]], url: str, modules: dict[str, ModuleType]) -> list[Run]:
    runs: list[Run] = []
    async with App(loops, url, poll_interval="50 milliseconds") as pulse:
        for scenario in SCENARIOS:
            run = await pulse.trigger(scenario.loop, scenario.body(modules[scenario.example]))
            if scenario.drive is not None:
                await scenario.drive(pulse, run)
            runs.append(await pulse.wait_for_run(run.id, timeout=RUN_TIMEOUT))
    return runs


def scenario_view(scenario: Scenario, run: Run) -> RenderableType:
    """A panel: what the scenario shows, its step timeline, and the run's output."""
    took = None if run.finished_at is None else run.finished_at - run.created_at
    parts: list[RenderableType] = [
        Text(scenario.description, style="dim"),
        Text.assemble("run ", run.id, " ", status_text(run.status), f" in {format_duration(took)}"),
        timeline_table(run, versions=False),
    ]
    if run.error is not None:
        parts.append(Text(f"error: {run.error.get('message')}", style="red"))
    else:
        parts.append(Text("output", style="bold"))
        parts.append(JSON.from_data(run.output, indent=2))
    return Panel(
        Group(*parts), title=f"{scenario.title} ({scenario.loop})", title_align="left", expand=False
    )
