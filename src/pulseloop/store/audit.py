"""The audit trail's rows, their hash chain, and the store protocol both backends implement.

Each organization has one chain: rows numbered ``seq`` 1, 2, ... whose ``hash`` is the
SHA-256 of the row's content and its predecessor's hash (``GENESIS`` for the first).
``audit_heads`` keeps each chain's last seq and hash, so deleting the newest rows shows as
well as editing or deleting any other. Rows hold ids only, never a payload: an audit row is
as safe to show as a run id.

Appends are serialized per organization (PostgreSQL locks the chain's ``audit_heads`` row;
SQLite has one writer), so two concurrent appends never fork a chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

GENESIS = "0" * 64
"""The ``prev_hash`` of a chain's first row."""

AuditAction = Literal[
    "read_run",
    "list_runs",
    "read_scan",
    "trigger",
    "cancel",
    "pause",
    "resume",
    "retry",
    "restart",
    "revoke_key",
    "sign_in",
    "purge",
    "list_schedules",
    "read_schedule",
    "create_schedule",
    "pause_schedule",
    "resume_schedule",
    "delete_schedule",
    "read_audit",
    "add_webhook",
    "remove_webhook",
]
"""What was done (``AuditEntry.action``). ``purge`` is reserved for the retention purge."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What the caller knows of one audited action; the store numbers and hashes it."""

    org: str
    at: float
    actor: str
    """The API key id (a dashboard session's key id too), or ``cli`` for a local operator."""
    action: AuditAction
    object_kind: str
    """``run``, ``scan``, ``key``, ``org`` (a list's object is its organization)."""
    object_id: str
    address: str
    """The client's address (``local`` from the command line)."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored row of the audit trail."""

    org: str
    seq: int
    at: float
    actor: str
    action: str
    object_kind: str
    object_id: str
    address: str
    prev_hash: str
    hash: str


def row_hash(entry: AuditEntry | AuditRecord, seq: int, prev_hash: str) -> str:
    """SHA-256 (hex) of a row's content and its predecessor's hash (the seq and prev_hash
    given, not any ``entry`` holds)."""
    content = [
        entry.org, seq, entry.at, entry.actor, entry.action, entry.object_kind,
        entry.object_id, entry.address, prev_hash,
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()


def chained(entry: AuditEntry, head: tuple[int, str] | None) -> AuditRecord:
    """``entry`` as the row after ``head`` (seq, hash) of its chain (None: the first)."""
    seq, prev = (head[0] + 1, head[1]) if head is not None else (1, GENESIS)
    e = entry
    return AuditRecord(
        e.org, seq, e.at, e.actor, e.action, e.object_kind, e.object_id, e.address, prev,
        row_hash(e, seq, prev),
    )  # fmt: skip


COLUMNS = "org, seq, at, actor, action, object_kind, object_id, address, prev_hash, hash"
# the statements both backends run, with ``%s`` placeholders (SQLite: ``store.sql.lite``)
INSERT = f"INSERT INTO audit ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
CHAIN_PAGE = f"SELECT {COLUMNS} FROM audit WHERE org = %s AND seq > %s ORDER BY seq LIMIT %s"
ORGS = "SELECT org FROM audit_heads UNION SELECT DISTINCT org FROM audit ORDER BY 1"


def newest_first(where: str) -> str:
    """A page of rows matching ``where`` (from :func:`filtered`), newest first."""
    return f"SELECT {COLUMNS} FROM audit WHERE {where} ORDER BY seq DESC LIMIT %s"


def row_values(record: AuditRecord) -> tuple[Any, ...]:
    """``record`` in :data:`COLUMNS` order, for :data:`INSERT`."""
    return (
        record.org, record.seq, record.at, record.actor, record.action, record.object_kind,
        record.object_id, record.address, record.prev_hash, record.hash,
    )  # fmt: skip


def filtered(
    org: str,
    object_kind: str | None,
    object_id: str | None,
    since: float | None,
    before: float | None,
    before_seq: int | None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (``%s`` placeholders) and its values for a filtered read."""
    clauses: list[str] = ["org = %s"]
    values: list[Any] = [org]
    for clause, value in (
        ("object_kind = %s", object_kind), ("object_id = %s", object_id),
        ("at >= %s", since), ("at < %s", before), ("seq < %s", before_seq),
    ):  # fmt: skip
        if value is not None:
            clauses.append(clause)
            values.append(value)
    return " AND ".join(clauses), values


class ChainCheck:
    """Checks one organization's chain row by row (oldest first), so a long chain is
    verified page by page in constant memory."""

    def __init__(self, org: str) -> None:
        self.org = org
        self.last: tuple[int, str] = (0, GENESIS)

    def feed(self, row: AuditRecord) -> str | None:
        """Why ``row`` breaks the chain (naming it), or None."""
        seq, prev = self.last
        where = f"org {self.org!r}, row {row.seq}"
        if row.seq != seq + 1:
            return f"{where}: rows {seq + 1}..{row.seq - 1} before it were deleted"
        if row.prev_hash != prev:
            return f"{where}: its prev_hash is not row {seq}'s hash (row {seq} was edited)"
        if row_hash(row, row.seq, row.prev_hash) != row.hash:
            return f"{where}: was edited (its content does not match its hash)"
        self.last = (row.seq, row.hash)
        return None

    def finish(self, head: tuple[int, str] | None) -> str | None:
        """Why the chain's end disagrees with its recorded ``head``, or None."""
        seq = self.last[0]
        if head is None:
            return None if seq == 0 else f"org {self.org!r}: the chain's head record was deleted"
        if head[0] == seq and head[1] != self.last[1]:
            return f"org {self.org!r}, row {seq}: was rewritten (its hash is not the head's)"
        if head != self.last:
            return (
                f"org {self.org!r}, row {seq + 1}: the chain ends at row {seq} but its head "
                f"records row {head[0]}: rows {seq + 1}..{head[0]} were deleted"
            )
        return None


class AuditStore(Protocol):
    """The append-only audit trail (``Store.audit``). Each method is one transaction."""

    async def append(self, entry: AuditEntry) -> AuditRecord:
        """Add ``entry`` as the next row of its organization's chain."""

    async def rows(
        self,
        org: str,
        *,
        object_kind: str | None = None,
        object_id: str | None = None,
        since: float | None = None,
        before: float | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[AuditRecord]:
        """``org``'s rows newest first, filtered; ``before_seq`` continues a page."""

    async def chain(self, org: str, after_seq: int, limit: int) -> list[AuditRecord]:
        """``org``'s rows with seq > ``after_seq``, oldest first (for verification)."""

    async def head(self, org: str) -> tuple[int, str] | None:
        """The chain's last (seq, hash) as recorded at append, or None."""

    async def orgs(self) -> list[str]:
        """Every organization with an audit chain (or a head left by one)."""


VERIFY_PAGE = 1000
"""Rows read per query while verifying."""


async def verify(audit: AuditStore, org: str, page: int = VERIFY_PAGE) -> tuple[int, str | None]:
    """Recompute ``org``'s chain: (rows checked, the first break or None)."""
    check, after, checked = ChainCheck(org), 0, 0
    while rows := await audit.chain(org, after, page):
        for row in rows:
            problem = check.feed(row)
            if problem is not None:
                return checked, problem
            checked += 1
        after = rows[-1].seq
    return checked, check.finish(await audit.head(org))
