"""``pulseloop audit verify``: recompute the audit trail's hash chains.

Every row's hash covers its content and its predecessor's hash, and each organization's
last row is recorded apart (``audit_heads``), so an edited row, a deleted row and deleted
newest rows all show. The first break of each chain is named; the exit status is 1 if any
chain is broken.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pulseloop.cli.common import DbOption, run_async
from pulseloop.cli.orgs import with_store
from pulseloop.store.audit import verify
from pulseloop.store.base import Store

app = typer.Typer(help="The audit trail: who read or did what, tamper-evident.")


@app.command("verify")
def verify_command(
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Only this organization (default: all).",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Recompute every audit chain; name the first edited or deleted row (exit 1)."""

    async def action(store: Store) -> list[tuple[str, int, str | None]]:
        names = [org] if org else await store.audit.orgs()
        return [(name, *await verify(store.audit, name)) for name in names]

    broken = False
    for name, checked, problem in run_async(with_store(db, action)):
        if problem is None:
            typer.echo(f"{name}: {checked} rows, chain intact")
        else:
            broken = True
            typer.echo(f"{name}: BROKEN after {checked} good rows: {problem}", err=True)
    if broken:
        raise typer.Exit(1)
