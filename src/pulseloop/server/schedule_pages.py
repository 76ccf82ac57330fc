"""The dashboard's schedules page (``/dashboard/schedules``): each recurring trigger of
the signed-in organization with its next fire times, read-only.

Its own module rather than more of ``dashboard.py``: it shares that module's sign-in and
page rendering, nothing else. Pausing and deleting are the API's and the CLI's
(``/v1/schedules``, ``pulseloop schedules``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pulseloop.server.dashboard import _page, _signed_in, _to_sign_in

UPCOMING = 3
"""Next fire times shown per schedule."""


def build_router() -> APIRouter:
    """The ``/dashboard/schedules`` route."""
    router = APIRouter(prefix="/dashboard", include_in_schema=False)

    @router.get("/schedules")
    async def schedules_page(request: Request) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, pulse = found
        schedules = await pulse.schedules.list(upcoming=UPCOMING)
        return _page(request, "dashboard_schedules.html", session, {"schedules": schedules})

    return router
