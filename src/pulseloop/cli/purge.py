"""``pulseloop purge``: apply retention now (workers also do it in the background).

Prints counts only, never patient data. ``--dry-run`` counts what is due and changes
nothing. See docs/security.md ("Retention").
"""

from __future__ import annotations

import time
from typing import Annotated, cast

import typer

from pulseloop.cli.common import DbOption, JsonOption, run_async
from pulseloop.cli.orgs import known_org, with_store
from pulseloop.cli.render import print_json
from pulseloop.config import Settings
from pulseloop.store.base import OrgStore
from pulseloop.store.retention import PurgeReport, purge_org
from pulseloop.store.sealed.keyring import PayloadSql


def _report_json(report: PurgeReport) -> dict[str, object]:
    return {
        "org": report.org,
        "dry_run": report.dry_run,
        "cutoff": report.cutoff,
        "runs": report.runs,
        "scans": report.scans,
        "webhook_deliveries": report.deliveries,
        "batches": len(report.batches),
    }


def purge(
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Purge this organization (default: every organization).",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    older_than: Annotated[
        int | None,
        typer.Option(
            "--older-than",
            help="Purge what finished more than DAYS ago (default: each organization's "
            "retention policy, see `pulseloop orgs retention`).",
            metavar="DAYS",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what is due; change nothing.")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Purge the patient payloads of finished runs and terminal scans past retention,
    keeping their ids, statuses and times."""

    async def action(store: OrgStore) -> list[PurgeReport]:
        sql = cast(PayloadSql, store)  # both backends (and EncryptedStore) run it
        await known_org(store, org or Settings.load().org)
        names = [org] if org else [o.name for o in await store.list_orgs()]
        now = time.time()
        return [
            await purge_org(
                sql, name, now, older_than_days=older_than, dry_run=dry_run, actor="cli"
            )
            for name in names
        ]

    reports = run_async(with_store(db, action))
    if as_json:
        print_json([_report_json(r) for r in reports])
        return
    verb = "would purge" if dry_run else "purged"
    for r in reports:
        typer.echo(
            f"{r.org}: {verb} {r.runs} runs and {r.scans} scans"
            + (f" ({r.deliveries} webhook deliveries)" if r.deliveries else "")
        )
