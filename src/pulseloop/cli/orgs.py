"""``pulseloop orgs ...`` and ``pulseloop keys ...``: organizations and their API keys.

``keys create`` prints the key once (stdout, alone, so scripts can capture it); only its
SHA-256 is stored. ``keys revoke`` takes the key id shown by ``keys list`` (or the key).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar, cast

import typer

from pulseloop.audited import CLI_ACTOR, LOCAL_ADDRESS, Actor, record_key_event
from pulseloop.cli.common import (
    CliError,
    DbOption,
    JsonOption,
    database_url,
    run_async,
    user_errors,
)
from pulseloop.cli.render import print_json
from pulseloop.config import Settings
from pulseloop.errors import OrgNotFound
from pulseloop.keys import KEY_PREFIX, hash_api_key, new_api_key
from pulseloop.store import open_store
from pulseloop.store.base import KeyRecord, OrgRecord, OrgStore, Store
from pulseloop.store.retention import (
    DEFAULT_DAYS,
    MAX_DAYS,
    retention_days,
    set_retention_days,
)
from pulseloop.store.sealed import EncryptedStore
from pulseloop.store.sealed.keyring import PayloadSql
from pulseloop.store.sealed.master import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    NEW_MASTER_KEY_ENV,
    embedded_key_file,
    new_master_key,
    replace_key_file,
)
from pulseloop.store.sealed.rewrap import rewrap_data_keys

T = TypeVar("T")

orgs_app = typer.Typer(help="Organizations: each clinic's data is visible to it alone.")
keys_app = typer.Typer(help="API keys of an organization (for the /v1 API and --url).")

OrgOption = Annotated[
    str, typer.Option("--org", help="The organization.", metavar="NAME", show_default=False)
]
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


async def with_store(db: str | None, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the database (creating it if needed), run ``action`` on its organizations and
    keys, close it."""
    store = open_store(database_url(db))
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


async def known_org(store: OrgStore, name: str) -> None:
    """OrgNotFound unless ``name`` is an organization. The one workers serve by default
    (``PULSELOOP_ORG``, else ``default``) is created on first use: it has runs without
    anyone having run ``orgs create``."""
    if await store.get_org(name) is not None:
        return
    if name != Settings.load().org:
        raise OrgNotFound(f"no organization named {name!r}; see `pulseloop orgs list`")
    await store.ensure_org(name, time.time())


def check_org_name(name: str) -> str:
    """1-63 lowercase letters, digits, ``-`` or ``_``."""
    if not (0 < len(name) < 64 and set(name) <= _NAME_CHARS and name[0].isalnum()):
        raise CliError(
            f"organization name {name!r} must be 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


async def issue_key(store: OrgStore, org: str) -> tuple[KeyRecord, str]:
    """A new key for ``org``: its record and the key itself (shown once)."""
    key_id, key = new_api_key()
    return await store.create_key(org, key_id, hash_api_key(key), time.time()), key


def _org_json(org: OrgRecord) -> dict[str, object]:
    return {"name": org.name, "created_at": org.created_at}


def _key_json(key: KeyRecord) -> dict[str, object]:
    return {"id": key.id, "org": key.org, "created_at": key.created_at,
            "revoked_at": key.revoked_at}  # fmt: skip


async def _checked(name: str) -> str:
    return check_org_name(name)


@orgs_app.command("create")
def create_org(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new organization's name.")],
    db: DbOption = None,
) -> None:
    """Create an organization."""

    async def action(store: OrgStore) -> OrgRecord:
        return await store.create_org(name, time.time())

    run_async(_checked(name))
    org = run_async(with_store(db, action))
    typer.echo(f"organization {org.name} created")


@orgs_app.command("list")
def list_orgs(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List organizations."""
    found = run_async(with_store(db, lambda store: store.list_orgs()))
    if as_json:
        print_json([_org_json(o) for o in found])
    else:
        for org in found:
            typer.echo(org.name)


@orgs_app.command("retention")
def org_retention(
    org: OrgOption,
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            help=f"Keep payloads of finished runs and terminal scans this many days "
            f"(1-{MAX_DAYS}). Without it (or --default), show the policy.",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help=f"Back to the default ({DEFAULT_DAYS} days).")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show or set how long an organization keeps patient payloads (see docs/security.md,
    "Retention"); workers and `pulseloop purge` remove them after that."""
    if days is not None and default:
        raise CliError("give --days N or --default, not both")

    async def action(store: OrgStore) -> int:
        sql = cast(PayloadSql, store)  # both backends (and EncryptedStore) run it
        await known_org(store, org)
        if days is not None or default:
            return await set_retention_days(sql, org, days)
        return await retention_days(sql, org)

    kept = run_async(with_store(db, action))
    if as_json:
        print_json({"org": org, "retention_days": kept})
    else:
        typer.echo(f"{org} keeps payloads of finished runs and scans for {kept} days")


@keys_app.command("create")
def create_key(org: OrgOption, db: DbOption = None) -> None:
    """Create an API key for an organization; the key is printed once, on stdout."""
    record, key = run_async(with_store(db, lambda store: issue_key(store, org)))
    typer.echo(f"key {record.id} created for {org}; it is shown only now:", err=True)
    typer.echo(key)


@keys_app.command("list")
def list_keys(org: OrgOption, db: DbOption = None, as_json: JsonOption = False) -> None:
    """List an organization's keys (ids only; keys are never stored)."""
    found = run_async(with_store(db, lambda store: store.list_keys(org)))
    if as_json:
        print_json([_key_json(k) for k in found])
        return
    for key in found:
        state = "revoked" if key.revoked_at is not None else "active"
        typer.echo(f"{key.id}  {state}")


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The key's id (or the key itself).")
    ],
    db: DbOption = None,
) -> None:
    """Revoke a key: requests with it get 401 from now on. Its record stays."""
    if key_id.startswith(KEY_PREFIX):  # pl_<id>_<secret>: never echo the secret back
        key_id = key_id[len(KEY_PREFIX) :].split("_", 1)[0]
    record = run_async(with_store(db, lambda store: revoke_audited(store, key_id, time.time())))
    typer.echo(f"key {record.id} of {record.org} revoked")


async def revoke_audited(store: Store, key_id: str, now: float) -> KeyRecord:
    """Revoke ``key_id`` and record it in its organization's audit trail."""
    record = await store.revoke_key(key_id, now)
    actor = Actor(CLI_ACTOR, LOCAL_ADDRESS)
    await record_key_event(store.audit, record.org, now, "revoke_key", record.id, actor)
    return record


@keys_app.command("rotate-data-key")
def rotate_data_key(
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Rotate this organization's key (default: every organization's).",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Make a new data key current (encryption at rest); older rows stay readable and
    workers re-encrypt them in the background."""

    async def action(store: OrgStore) -> list[tuple[str, str]]:
        if not isinstance(store, EncryptedStore):
            raise CliError("this database is not opened with encryption; nothing to rotate")
        names = [org] if org else [o.name for o in await store.list_orgs()]
        if org and await store.get_org(org) is None:
            raise OrgNotFound(f"no organization named {org!r}; see `pulseloop orgs list`")
        return [(name, (await store.rotate_data_key(name)).id) for name in names]

    for name, key_id in run_async(with_store(db, action)):
        typer.echo(f"data key {key_id} is now current for {name}")


@keys_app.command("rotate-master-key")
def rotate_master_key(
    new_key_file: Annotated[
        str | None,
        typer.Option(
            "--new-key-file",
            help="A file holding the new master key (64 hex digits or base64).",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    new_key_env: Annotated[
        str,
        typer.Option(
            "--new-key-env",
            help="The environment variable holding the new master key (without --new-key-file).",
            metavar="NAME",
        ),
    ] = NEW_MASTER_KEY_ENV,
    db: DbOption = None,
) -> None:
    """Re-wrap every organization's data keys under a new master key (one transaction);
    then restart every process with the new key: the old one opens nothing."""
    with user_errors():
        new = new_master_key(new_key_env, new_key_file)

    async def action(store: Store) -> int:
        if not isinstance(store, EncryptedStore):
            raise CliError("this database is not opened with encryption; nothing to rotate")
        return await rewrap_data_keys(store, new)

    count = run_async(with_store(db, action))
    typer.echo(f"{count} data keys re-wrapped under the new master key")
    key_file = embedded_key_file(database_url(db))
    if key_file is not None and not (
        os.environ.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_FILE_ENV)
    ):
        replace_key_file(key_file, new)  # the key came from this file: it holds the new one
        typer.echo(f"{key_file} now holds the new master key; back it up apart from the database")
    else:
        typer.echo(
            f"set {MASTER_KEY_ENV} (or {MASTER_KEY_FILE_ENV}) of every process to the new key "
            "and restart them; keep the old key until they are"
        )
