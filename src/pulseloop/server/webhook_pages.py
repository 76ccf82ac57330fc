"""The dashboard's webhooks page (``/dashboard/webhooks``): the signed-in organization's
endpoints and the delivery log with each delivery's attempts, read-only.

Its own module rather than more of ``dashboard.py``: it shares that module's sign-in and
page rendering, nothing else. Adding and removing endpoints is the API's and the CLI's
(``/v1/webhooks``, ``pulseloop webhooks``): a secret is shown once, where it was asked for.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pulseloop.server.dashboard import _page, _signed_in, _to_sign_in

DELIVERIES = 50
"""Newest deliveries shown."""


def build_router() -> APIRouter:
    """The ``/dashboard/webhooks`` route."""
    router = APIRouter(prefix="/dashboard", include_in_schema=False)

    @router.get("/webhooks")
    async def webhooks_page(request: Request) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, pulse = found
        endpoints = await pulse.webhooks.list()
        deliveries = await pulse.webhooks.deliveries(limit=DELIVERIES, attempts=True)
        urls = {e.id: e.url for e in endpoints}
        return _page(
            request,
            "dashboard_webhooks.html",
            session,
            {"endpoints": endpoints, "deliveries": deliveries, "urls": urls},
        )

    return router
