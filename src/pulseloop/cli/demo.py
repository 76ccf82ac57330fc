"""``pulseloop demo``: run the spec's examples end to end and show what happened.

A demo is a list of :class:`Scenario` values: which example file holds the loop, the body
to trigger it with, and what a person would do while it runs (``drive``: answer an SMS,
finish a scan). Adding a scenario is adding one entry to :data:`SCENARIOS`; the runner,
the database and the rendering are shared.

The examples are loaded by path from the repository's ``examples/`` folder, found in the
current directory or next to the package's source tree.
"""

from __future__ import annotations

import asyncio
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
from pulseloop.cli.render import console, status_text, timeline_table
from pulseloop.config import database_url_for
from pulseloop.durations import format_duration
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
    drive: Callable[[App, Run], Awaitable[str | None]] | None = None
    """What the outside world does once the run is triggered (a reply, a scan); may
    return a line to show beside the result (e.g. the ground truth)."""


async def _patient_replies(pulse: App, run: Run) -> str | None:
    await pulse.send_event(run.id, "patient-reply", {"text": "Much better, thanks"})
    return None


PATIENT_HEART_RATE_BPM = 76.0


async def _patient_does_the_scan(pulse: App, run: Run) -> str | None:
    """Wait for the link, then film a synthetic face (known pulse) and upload its trace."""
    from pulseloop.testing.patient import visit

    for _ in range(600):
        current = await pulse.get_run(run.id)
        if current.status != "queued" and current.steps and current.steps[0].output:
            break
        await asyncio.sleep(0.05)
    link = current.step("Generate a health scan").output["url"]
    console().print(f"simulated patient opens {link.split('/s/')[0]}/s/… and films 30 s")
    seen = await visit(link, PATIENT_HEART_RATE_BPM, duration_s=30.0)
    return (
        f"truth: heart rate {seen.heart_rate_bpm:.1f} bpm, breathing "
        f"{seen.respiratory_rate_bpm:.1f} /min ({seen.frames} frames uploaded, HTTP "
        f"{seen.upload_status})"
    )


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
    Scenario(
        title="Health check",
        description="The spec's loop: provision a facial scan, park until the patient has "
        "filmed their face, resume with the vitals (metadata carried through).",
        example="health_check.py",
        loop="health-check",
        body=lambda module: module.EXAMPLE_BODY,
        drive=_patient_does_the_scan,
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
    results = run_async(_run_all(list(loops.values()), url, modules))
    for scenario, (run, note) in zip(SCENARIOS, results, strict=True):
        out.print(scenario_view(scenario, run, note))
    runs = [run for run, _ in results]
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


async def _run_all(
    loops: list[type[Loop]], url: str, modules: dict[str, ModuleType]
) -> list[tuple[Run, str | None]]:
    from pulseloop.server.app import create_app  # the HTTP stack: only the demo needs it
    from pulseloop.server.serve import free_port, serving

    results: list[tuple[Run, str | None]] = []
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    async with contextlib.AsyncExitStack() as stack:
        pulse = await stack.enter_async_context(
            App(loops, url, poll_interval="50 milliseconds", public_url=public)
        )
        # the scan pages, on loopback, as `pulseloop dev` serves them
        await stack.enter_async_context(serving(create_app(pulse), port=port, log_level="warning"))
        for scenario in SCENARIOS:
            run = await pulse.trigger(scenario.loop, scenario.body(modules[scenario.example]))
            note = await scenario.drive(pulse, run) if scenario.drive is not None else None
            results.append((await pulse.wait_for_run(run.id, timeout=RUN_TIMEOUT), note))
    return results


def scenario_view(scenario: Scenario, run: Run, note: str | None = None) -> RenderableType:
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
    if note:
        parts.append(Text(note, style="cyan"))
    return Panel(
        Group(*parts), title=f"{scenario.title} ({scenario.loop})", title_align="left", expand=False
    )
