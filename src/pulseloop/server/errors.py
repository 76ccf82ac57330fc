"""Error codes to HTTP responses, in one place.

Every error the server can meet is a :class:`~pulseloop.errors.PulseloopError` with a
stable ``code``; :data:`STATUS_BY_CODE` is the only table that turns a code into an HTTP
status. A person (``Accept: text/html``) gets a friendly page; a client gets JSON
``{"code", "message"}`` (plus ``field`` for an invalid trace).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from pulseloop.errors import PulseloopError
from pulseloop.server.pages import render_page

STATUS_BY_CODE: dict[str, int] = {
    "scan_not_found": 404,
    "scan_expired": 410,
    "scan_already_uploaded": 409,
    "trace_invalid": 422,
    "limit_exceeded": 413,  # on these routes: an upload over MAX_TRACE_BYTES
}


@dataclass(frozen=True, slots=True)
class PageText:
    """What a person reads when a scan link cannot be used."""

    title: str
    heading: str
    body: str


PAGE_TEXT: dict[str, PageText] = {
    "scan_not_found": PageText(
        "Link not found",
        "This scan link doesn't work",
        "Check that you opened the whole link from your message. If it still doesn't "
        "work, ask your care team to send you a new one.",
    ),
    "scan_expired": PageText(
        "Link expired",
        "This scan link has expired",
        "Scan links only work for a limited time. Ask your care team to send you a new one.",
    ),
    "scan_already_uploaded": PageText(
        "Scan already done",
        "This scan has already been sent",
        "Each link can be used for one scan only.",
    ),
}
_FALLBACK_TEXT = PageText(
    "Something went wrong",
    "Something went wrong",
    "Please try again in a few minutes, or ask your care team for help.",
)


def status_for(exc: PulseloopError) -> int:
    """The HTTP status of an error code (500 for codes the server does not expect)."""
    return STATUS_BY_CODE.get(exc.code, 500)


def wants_html(request: Request) -> bool:
    """True when a browser navigates (``Accept`` names HTML), not when a script fetches."""
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def error_json(exc: PulseloopError) -> dict[str, str]:
    """The JSON body of an error: its code and message, and ``field`` when it names one."""
    body = {"code": exc.code, "message": str(exc)}
    field = getattr(exc, "field", None)
    if isinstance(field, str):
        body["field"] = field
    return body


async def pulseloop_error_handler(request: Request, exc: Exception) -> Response:
    """Render a :class:`PulseloopError` as a page for a person or JSON for a client."""
    assert isinstance(exc, PulseloopError)
    status = status_for(exc)
    if wants_html(request):
        text = PAGE_TEXT.get(exc.code, _FALLBACK_TEXT)
        return render_page(request, "message.html", {"text": text}, status_code=status)
    return JSONResponse(error_json(exc), status_code=status)
