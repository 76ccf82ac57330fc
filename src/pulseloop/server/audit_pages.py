"""The dashboard's audit page (``/dashboard/audit``): the signed-in organization's audit
trail, newest first, filtered by object and time.

Its own module rather than more of ``dashboard.py``: it shares that module's sign-in and
page rendering, nothing else. ``GET /v1/audit`` pages further back; ``pulseloop audit
verify`` checks the chain.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pulseloop.errors import InvalidRequest
from pulseloop.server.api import _epoch
from pulseloop.server.dashboard import _page, _signed_in, _to_sign_in

ROWS_PER_PAGE = 200
KINDS = ("run", "scan", "schedule", "key", "org")


def build_router() -> APIRouter:
    """The ``/dashboard/audit`` route."""
    router = APIRouter(prefix="/dashboard", include_in_schema=False)

    @router.get("/audit")
    async def audit_page(
        request: Request,
        object_kind: str | None = None,
        object_id: str | None = None,
        since: str | None = None,
        before: str | None = None,
    ) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, pulse = found
        kind = object_kind if object_kind in KINDS else None
        object_id = object_id.strip() if object_id and len(object_id) <= 200 else None
        error, bounds = None, []
        for name, text in (("since", since), ("before", before)):
            try:
                bounds.append(_epoch(text, name) if text else None)
            except InvalidRequest as exc:
                error = str(exc)
                bounds.append(None)
        rows = await pulse.audit_rows(
            object_kind=kind, object_id=object_id or None, since=bounds[0],
            before=bounds[1], limit=ROWS_PER_PAGE,
        )  # fmt: skip
        return _page(request, "dashboard_audit.html", session, {
            "rows": [(r, datetime.fromtimestamp(r.at, UTC)) for r in rows], "kinds": KINDS,
            "kind": kind, "object_id": object_id or "", "since": since or "",
            "before": before or "", "error": error, "limit": ROWS_PER_PAGE,
        })  # fmt: skip

    return router
