"""``pulseloop webhooks add|list|remove|deliveries``: the organization's webhook endpoints.

Like ``pulseloop schedules``, each command opens the database without a worker, does one
thing through ``App.webhooks`` and closes it; workers deliver from the shared outbox.
``add`` prints the endpoint's signing secret: it is shown this once.
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
from pulseloop.webhooks import EVENTS, Delivery, Endpoint

T = TypeVar("T")

app = typer.Typer(help="Add, list and remove webhook endpoints; read the delivery log.")


async def _with_app(db: str | None, action: Callable[[App], Awaitable[T]]) -> T:
    async with App(database_url=existing_database_url(db), worker=False) as pulse:
        return await action(pulse)


def endpoint_json(e: Endpoint) -> dict[str, Any]:
    """The ``--json`` shape (the API's ``WebhookOut``)."""
    return {
        "id": e.id, "url": e.url, "events": list(e.events),
        "created_at": e.created_at.isoformat(), "secret": e.secret,
    }  # fmt: skip


def delivery_json(d: Delivery) -> dict[str, Any]:
    """The ``--json`` shape (the API's ``DeliveryOut``)."""

    def iso(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": d.id, "endpoint_id": d.endpoint_id, "event": d.event, "run_id": d.run_id,
        "scan_id": d.scan_id, "loop": d.loop, "status": d.status,
        "occurred_at": iso(d.occurred_at), "state": d.state, "attempt_count": d.attempt_count,
        "next_attempt_at": iso(d.next_attempt_at), "last_status_code": d.last_status_code,
        "last_error": d.last_error, "finished_at": iso(d.finished_at),
        "attempts": [
            {"attempt": a.attempt, "started_at": iso(a.started_at),
             "duration_ms": a.duration_ms, "status_code": a.status_code, "error": a.error}
            for a in d.attempts
        ],
    }  # fmt: skip


@app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="http:// or https:// URL to POST to.")],
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help=f"Subscribe to this event (repeat); all by default: {', '.join(EVENTS)}.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add an endpoint; prints its signing secret, which is never shown again."""

    async def action(pulse: App) -> Endpoint:
        return await pulse.webhooks.add(url, events=events or None)

    created = run_async(_with_app(db, action))
    if as_json:
        print_json(endpoint_json(created))
        return
    console().print(Text(f"webhook {created.id} added for {', '.join(created.events)}"))
    console().print(Text(f"secret (shown once; verify deliveries with it): {created.secret}"))


@app.command("list")
def list_endpoints(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List the organization's endpoints (without secrets)."""
    found = run_async(_with_app(db, lambda pulse: pulse.webhooks.list()))
    if as_json:
        print_json([endpoint_json(e) for e in found])
        return
    if not found:
        console().print("no webhook endpoints")
        return
    table = Table(expand=False)
    for column in ("id", "url", "events", "added (UTC)"):
        table.add_column(column)
    for e in found:  # user-supplied strings as Text: never read as markup
        table.add_row(Text(e.id), Text(e.url), Text(", ".join(e.events)), format_time(e.created_at))
    console().print(table)


@app.command("remove")
def remove(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.", metavar="ENDPOINT_ID")],
    db: DbOption = None,
) -> None:
    """Remove an endpoint; its pending deliveries are marked failed."""
    run_async(_with_app(db, lambda pulse: pulse.webhooks.remove(endpoint_id)))
    console().print(Text(f"webhook {endpoint_id} removed"))


@app.command("deliveries")
def deliveries(
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="How many.")] = 20,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The delivery log, newest first, with each delivery's attempts."""
    found = run_async(
        _with_app(db, lambda pulse: pulse.webhooks.deliveries(limit=limit, attempts=True))
    )
    if as_json:
        print_json([delivery_json(d) for d in found])
        return
    if not found:
        console().print("no deliveries")
        return
    table = Table(expand=False)
    for column in ("delivery", "event", "run", "state", "attempts"):
        table.add_column(column)
    for d in found:
        tries = "\n".join(
            f"{a.attempt}: {a.status_code or a.error} ({a.duration_ms:.0f} ms)" for a in d.attempts
        )
        table.add_row(Text(d.id), Text(d.event), Text(d.run_id or "—"), Text(d.state), Text(tries))
    console().print(table)
