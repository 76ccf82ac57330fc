"""The patient's scan link: the capture page, the trace upload and the status poll.

    GET  /s/{token}            the capture page (or the scan's status, once uploaded)
    POST /s/{token}/capturing  the page started filming          -> 200 {"status"}
    POST /s/{token}/trace      the colour trace (docs/vitals.md) -> 202 {"status": "processing"}
    GET  /s/{token}/status     {"status", "failure_reason", "failure_message", "vitals"}

The token is the only credential and appears only in the path; nothing here logs it.
Errors are raised as ``PulseloopError``s and rendered by :mod:`pulseloop.server.errors`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from pulseloop.errors import ScanNotFound
from pulseloop.server.pages import render_page
from pulseloop.server.scan_service import UPLOADED_STATUSES, ScanPort, ScanState
from pulseloop.server.security import CAPTURE_PAGE_POLICY
from pulseloop.server.upload import read_body_limited

DEFAULT_CAPTURE_S = 30
MIN_CAPTURE_S = 10  # the analysis refuses scans shorter than this (`too_short`)
MAX_CAPTURE_S = 60
# Tokens are URL-safe base64 (secrets.token_urlsafe); anything else cannot be a link we made,
# so it is refused without a database lookup.
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,200}")

_GENERIC_FAILURE = "The scan could not be measured."


def failure_message(reason: str | None) -> str | None:
    """The plain-words text for a failure code (``docs/vitals.md``), or None."""
    if reason is None:
        return None
    try:
        from pulseloop.vitals.quality import FAILURE_MESSAGES, FailureReason
    except ImportError:  # the server can run without the vitals extra (API clients only)
        return _GENERIC_FAILURE
    try:
        return FAILURE_MESSAGES[FailureReason(reason)]
    except ValueError:
        return _GENERIC_FAILURE


def status_json(view: ScanState) -> dict[str, Any]:
    """What the page polls: status, failure reason and message, vitals once completed."""
    return {
        "status": view.status,
        "failure_reason": view.failure_reason,
        "failure_message": failure_message(view.failure_reason),
        "vitals": view.vitals if view.status == "completed" else None,
    }


def capture_seconds(raw: str | None) -> int:
    """The capture length the page uses: ``?seconds=N`` clamped to 10-60, default 30."""
    if raw is None or not raw.isdigit():
        return DEFAULT_CAPTURE_S
    return max(MIN_CAPTURE_S, min(MAX_CAPTURE_S, int(raw)))


def build_router(service: ScanPort, *, max_trace_bytes: int) -> APIRouter:
    """The ``/s/{token}`` routes, calling ``service``."""
    router = APIRouter()

    def checked(token: str) -> str:
        if not _TOKEN_PATTERN.fullmatch(token):
            raise ScanNotFound("this scan link does not exist; check the link you were sent")
        return token

    @router.get("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def capture_page(token: str, request: Request) -> HTMLResponse:
        view = await service.by_token(checked(token))
        context = {
            "scan": status_json(view),
            "uploaded": view.status in UPLOADED_STATUSES,
            "seconds": capture_seconds(request.query_params.get("seconds")),
            "base": f"/s/{token}",
        }
        page = render_page(request, "capture.html", context)
        if not context["uploaded"]:  # only the filming page runs MediaPipe
            page.headers["Content-Security-Policy"] = CAPTURE_PAGE_POLICY
        return page

    @router.post("/s/{token}/capturing", include_in_schema=False)
    async def capturing(token: str) -> JSONResponse:
        view = await service.mark_capturing(checked(token))
        return JSONResponse({"status": view.status})

    @router.post("/s/{token}/trace", include_in_schema=False)
    async def upload_trace(token: str, request: Request) -> JSONResponse:
        # Look the link up first so a dead link never makes us read a body.
        await service.by_token(checked(token))
        body = await read_body_limited(request, max_trace_bytes)
        view = await service.accept_trace(token, body)
        return JSONResponse({"status": view.status}, status_code=202)

    @router.get("/s/{token}/status", include_in_schema=False)
    async def scan_status(token: str) -> JSONResponse:
        view = await service.by_token(checked(token))
        return JSONResponse(status_json(view))

    return router
