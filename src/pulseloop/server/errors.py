"""Error codes to HTTP responses, in one place.

Every error the server can meet is a :class:`~pulseloop.errors.PulseloopError` with a
stable ``code``; :data:`STATUS_BY_CODE` is the only table that turns a code into an HTTP
status. A person (``Accept: text/html``) gets a friendly page; a client gets JSON
``{"code", "message"}`` (plus ``field`` for an invalid trace or request).

Starlette's own errors (unknown route, wrong method, a body over a limit) and FastAPI's
request validation are turned into the same shape here: :data:`CODE_BY_STATUS` names them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from pulseloop.errors import InvalidRequest, PulseloopError, RateLimited, Unauthorized
from pulseloop.server.pages import render_page

STATUS_BY_CODE: dict[str, int] = {
    "scan_not_found": 404,
    "scan_expired": 410,
    "scan_already_uploaded": 409,
    "trace_invalid": 422,
    "limit_exceeded": 413,  # a request body, upload or event body over its limit
    "unauthorized": 401,
    "rate_limited": 429,
    "invalid_request": 422,
    "invalid_run_id": 422,
    "not_serializable": 422,
    "video_unreadable": 422,
    "run_not_found": 404,
    "schedule_not_found": 404,
    "invalid_schedule": 422,
    "invalid_webhook": 422,
    "webhook_not_found": 404,
    "invalid_flow_control": 422,
    "loop_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "invalid_run_state": 409,
    "request_timeout": 408,  # a request body that did not arrive within its deadline
}

CODE_BY_STATUS: dict[int, str] = {
    404: "not_found",
    405: "method_not_allowed",
    413: "limit_exceeded",
    401: "unauthorized",
    408: "request_timeout",
}
"""Codes for errors Starlette raises as bare HTTP statuses."""


class RequestTimeout(PulseloopError):
    """A request body did not arrive within its read deadline (408)."""

    code = "request_timeout"


class HttpError(PulseloopError):
    """A Starlette HTTP error carried as a pulseloop error (its code from the status)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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


def error_response(exc: PulseloopError) -> JSONResponse:
    """The JSON response of an error, with the headers its kind calls for."""
    response = JSONResponse(error_json(exc), status_code=status_for(exc))
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="pulseloop"'
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    return response


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405/413... in the one JSON shape (scan pages keep their HTML)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # FastAPI could not decode the body: malformed, so 422
        return error_response(
            InvalidRequest("the request body is not valid JSON (UTF-8); fix it and retry", "body")
        )
    code = CODE_BY_STATUS.get(exc.status_code, "http_error")
    messages = {
        "not_found": f"there is nothing at {request.url.path}; see /docs for the API",
        "method_not_allowed": f"{request.method} is not allowed on {request.url.path}",
    }
    message = messages.get(code) or str(exc.detail)
    response = JSONResponse({"code": code, "message": message}, status_code=exc.status_code)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request)) or response.headers.get(
            "Allow", ""
        )
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents at this path. Starlette's 405 names only the first
    route whose path matched, and ``/v1/schedules`` has a GET route and a POST route.
    (Read from the cached OpenAPI document: FastAPI's router internals are private.)"""
    allowed: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern, _, _ = compile_path(template)
        if pattern.match(request.url.path):
            allowed |= {method.upper() for method in operations}
    return sorted(allowed)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's request validation as ``invalid_request`` naming the first bad field."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    problem = str(first.get("msg", "is not valid")).rstrip(".")
    return error_response(InvalidRequest(f"{field}: {problem}; see /docs for the shape", field))


async def pulseloop_error_handler(request: Request, exc: Exception) -> Response:
    """Render a :class:`PulseloopError` as a page for a person or JSON for a client."""
    assert isinstance(exc, PulseloopError)
    status = status_for(exc)
    if wants_html(request):
        text = PAGE_TEXT.get(exc.code, _FALLBACK_TEXT)
        return render_page(request, "message.html", {"text": text}, status_code=status)
    return error_response(exc)
