"""``pulseloop scans``: work with facial vitals scans from the command line.

``pulseloop scans analyze FILE [--json]`` analyses a video file (WebM, MP4, Y4M) or a colour
trace (``.json``, the schema in ``docs/vitals.md``). Exit status: 0 when the scan passed the
quality gate, 1 when it was refused (the reason is printed), 2 when the file could not be
read. With ``--json`` stdout carries exactly the result object and nothing else; progress
and messages go to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pulseloop.cli import remote
from pulseloop.cli.common import (
    DbOption,
    KeyOption,
    UrlOption,
    existing_database_url,
    run_async,
    user_errors,
)
from pulseloop.errors import ScanNotFound

app = typer.Typer(
    help="Facial vitals scans: analyse a video or trace, show a scan.", no_args_is_help=True
)

EXIT_REFUSED = 1
EXIT_UNREADABLE = 2


VITALS_EXTRA = "pip install 'pulseloop[vitals]'"


def _load_vitals() -> Any:
    """The vitals engine, or exit 2 with one line naming the extra to install."""
    try:
        import pulseloop.vitals as vitals
    except ImportError as exc:
        reason = str(exc)
        if VITALS_EXTRA not in reason:
            reason = f"analysing a scan needs the vitals extra: {VITALS_EXTRA} ({reason})"
        Console(stderr=True).print(f"[red]error:[/red] {escape(reason)}", highlight=False)
        raise typer.Exit(EXIT_UNREADABLE) from exc
    return vitals


def _analyze(file: Path, quiet: bool, err: Console) -> Any:
    vitals = _load_vitals()
    if file.suffix.lower() == ".json":
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise vitals.TraceInvalid("$", f"cannot be read from {file} ({exc})") from exc
        return vitals.analyze_trace(vitals.parse_trace(data))
    columns = (
        TextColumn("decoding {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=quiet) as bar:
        task = bar.add_task(file.name, total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        return vitals.analyze_video(file, progress=progress)


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f} {unit}".rstrip()


def _summary(result: dict[str, Any], message: str | None, out: Console) -> None:
    v, q = result["vitals"], result["quality"]
    if result["failure_reason"] is None:
        out.print("[bold green]Scan accepted[/bold green]")
    else:
        out.print(f"[bold red]Scan refused: {result['failure_reason']}[/bold red]")
        out.print(message or "")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("heart rate", _fmt(v["heart_rate_bpm"], "bpm"))
    table.add_row("breathing rate", _fmt(v["respiratory_rate_bpm"], "/min"))
    table.add_row("HRV SDNN", _fmt(v["hrv_sdnn_ms"], "ms"))
    table.add_row("HRV RMSSD", _fmt(v["hrv_rmssd_ms"], "ms"))
    table.add_row("", "")
    table.add_row("signal-to-noise", _fmt(q["snr_db"], "dB"))
    table.add_row("confidence", _fmt(q["confidence"], "", 2))
    table.add_row(
        "face coverage",
        _fmt(None if q["face_coverage"] is None else 100 * q["face_coverage"], "%", 0),
    )
    table.add_row("motion", _fmt(q["motion"], "face widths/s", 2))
    table.add_row("brightness", _fmt(q["brightness"], "/ 255", 0))
    table.add_row("frame rate", _fmt(q["frame_rate_hz"], "fps"))
    table.add_row("duration", _fmt(q["duration_s"], "s"))
    out.print(table)
    for name, reason in v["unavailable"].items():
        out.print(f"[dim]{name}: not reported ({reason})[/dim]")


@app.callback()
def scans() -> None:
    """Facial vitals scans: analyse a face video or a colour trace."""
    # A callback keeps `analyze` a named sub-command even while it is the only one.


@app.command("show")
def show(
    scan_id: Annotated[str, typer.Argument(metavar="SCAN_ID", help="The scan's id.")],
    db: DbOption = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Print a scan's state and result as JSON (from --db, or a server with --url/--key)."""
    if url is not None:
        with user_errors():
            data = remote.get_scan(url, key, scan_id)
    else:
        data = run_async(_scan_from_db(db, scan_id))
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


async def _scan_from_db(db: str | None, scan_id: str) -> dict[str, Any]:
    from pulseloop.app import App
    from pulseloop.server.api_models import ScanOut

    async with App(database_url=existing_database_url(db), worker=False) as pulse:
        record = await pulse.get_scan(scan_id)
        if record is None:
            raise ScanNotFound(f"no scan {scan_id!r} in this organization; check the id")
        data: dict[str, Any] = ScanOut.of(record).model_dump(mode="json")
        return data


@app.command()
def analyze(
    file: Annotated[
        Path, typer.Argument(help="A face video (.webm, .mp4, .y4m) or a trace (.json).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print exactly the result object as JSON on stdout.")
    ] = False,
) -> None:
    """Measure heart rate, breathing rate and HRV from a face video or a colour trace."""
    err = Console(stderr=True)
    vitals = _load_vitals()
    try:
        result = _analyze(file, quiet=as_json, err=err)
    except (vitals.VitalsError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_UNREADABLE) from exc
    payload = result.to_json()
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        _summary(payload, result.failure_message, Console())
    if not result.ok:
        raise typer.Exit(EXIT_REFUSED)
