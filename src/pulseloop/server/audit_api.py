"""``GET /v1/audit``: the caller's organization's audit trail, newest first.

    GET /v1/audit?object_kind=run&object_id=...&since=...&before=...&limit=...&cursor=...

Org-scoped like every ``/v1`` route (another organization's rows are never listed), and
paged like ``/v1/runs``: ``next_cursor`` continues with older rows. Reading the trail is
itself audited (``read_audit``, written after the page is read); its rows hold ids only.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from pulseloop.client import OrgClient
from pulseloop.errors import InvalidRequest
from pulseloop.server.api import ERRORS, _epoch
from pulseloop.server.auth import caller
from pulseloop.store.audit import AuditRecord

Caller = Annotated[OrgClient, Depends(caller)]
_ID: dict[str, Any] = {"min_length": 1, "max_length": 200}
_TIME: dict[str, Any] = {"max_length": 64, "json_schema_extra": {"format": "date-time"}}
_MAX_SEQ = 2**63 - 1


class AuditOut(BaseModel):
    """One audit row: who (``actor``, an API key id or ``cli``) did ``action`` to which
    object, when, from where; ``hash`` chains it to its predecessor."""

    seq: int
    at: datetime
    actor: str
    action: str
    object_kind: str
    object_id: str
    address: str
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, row: AuditRecord) -> AuditOut:
        """The API shape of a stored row."""
        return cls(
            seq=row.seq, at=datetime.fromtimestamp(row.at, UTC), actor=row.actor,
            action=row.action, object_kind=row.object_kind, object_id=row.object_id,
            address=row.address, prev_hash=row.prev_hash, hash=row.hash,
        )  # fmt: skip


class AuditPage(BaseModel):
    """Audit rows newest first; pass ``next_cursor`` as ``cursor`` for older ones."""

    rows: list[AuditOut]
    next_cursor: str | None


def encode_cursor(seq: int) -> str:
    """An opaque cursor: the last row of a page."""
    return base64.urlsafe_b64encode(str(seq).encode()).decode()


def decode_cursor(cursor: str) -> int:
    """Inverse of :func:`encode_cursor` (InvalidRequest for anything else)."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode("ascii")
        if not text.isdigit() or len(text) > 19 or not 0 < int(text) <= _MAX_SEQ:
            raise ValueError(text)
        return int(text)
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidRequest(
            "cursor is not one this API returned; pass next_cursor from the previous page",
            "cursor",
        ) from exc


def build_router() -> APIRouter:
    """The ``/v1/audit`` route."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["v1"])

    @router.get("/audit", response_model=AuditPage)
    async def audit(
        pulse: Caller,
        object_kind: Annotated[str | None, Query(**_ID)] = None,
        object_id: Annotated[str | None, Query(**_ID)] = None,
        since: Annotated[str | None, Query(description="inclusive", **_TIME)] = None,
        before: Annotated[str | None, Query(description="exclusive", **_TIME)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=100)] = None,
    ) -> AuditPage:
        """Who read or did what in this organization, newest first, filtered."""
        rows = await pulse.audit_rows(
            object_kind=object_kind,
            object_id=object_id,
            since=None if since is None else _epoch(since, "since"),
            before=None if before is None else _epoch(before, "before"),
            before_seq=None if cursor is None else decode_cursor(cursor),
            limit=limit + 1,
        )
        page = rows[:limit]
        more = len(rows) > limit
        return AuditPage(
            rows=[AuditOut.of(r) for r in page],
            next_cursor=encode_cursor(page[-1].seq) if more else None,
        )

    return router
