"""The patient's scan link: the capture page, its progress reports, the upload, the status.

    GET  /s/{token}            the capture page (or the scan's status, once uploaded)
    POST /s/{token}/progress   {"status": "opened"|"aligning"|"capturing"}
                               -> 200 {"status", "expires_in_s"}
    POST /s/{token}/capturing  the page started filming (older pages; = progress capturing)
    POST /s/{token}/abandon    {"reason", "tried_s", "failing_s"}: the checks never passed,
                               the scan fails with that reason -> 200 like /status
    POST /s/{token}/trace      the colour trace (docs/vitals.md) -> 202 {"status": "processing"}
    GET  /s/{token}/status     {"status", "failure_reason", "failure_message", "failure_tip",
                                "vitals"}
    GET  /s/, /scan-privacy    an incomplete link (404 page); the built-in privacy notice

The token is the only credential and appears only in the path; nothing here logs it.
Errors are raised as ``PulseloopError``s and rendered by :mod:`pulseloop.server.errors`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from pulseloop.connectors.facial_scan import ScanView
from pulseloop.errors import InvalidRequest, PulseloopError, ScanExpired, ScanNotFound
from pulseloop.server import json_guard
from pulseloop.server.pages import render_page
from pulseloop.server.scan_service import (
    UPLOADED_STATUSES,
    Clinics,
    ScanJourney,
    ScanPort,
    ScanState,
)
from pulseloop.server.upload import read_body_limited

DEFAULT_CAPTURE_S = 30
MIN_CAPTURE_S = 10  # the analysis refuses scans shorter than this (`too_short`)
MAX_CAPTURE_S = 60
MAX_REPORT_BYTES = 4 * 1024
# Tokens are URL-safe base64 (secrets.token_urlsafe); anything else cannot be a link we made,
# so it is refused without a database lookup.
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,200}")

_GENERIC_FAILURE = "The scan could not be measured."
FINISHED_STATUSES = frozenset({"completed", "failed"})
"""A scan with a result the page would show: shown only until the link expires."""
_TRACE_PARSE_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError, LookupError)
"""What a trace parser may raise on input it did not foresee: a 422, never a 500."""
_View = TypeVar("_View", bound=ScanState)
log = logging.getLogger(__name__)

PATIENT_FAILURES: dict[str, tuple[str, str]] = {
    "no_face": (
        "The camera couldn't find your face.",
        "Hold the phone upright about 30 cm (one foot) from your face, straight in front "
        "of it, with your whole face inside the oval.",
    ),
    "too_dark": (
        "It was too dark for the camera to see your face clearly.",
        "Face a window or a lamp so your face is evenly lit.",
    ),
    "too_bright": (
        "Your face was too brightly lit for the camera.",
        "Move out of direct sunlight or away from the lamp.",
    ),
    "face_too_small": (
        "Your face was too far from the camera.",
        "Hold the phone closer, about 30 cm (one foot) from your face, so your face fills "
        "the oval.",
    ),
    "face_too_close": (
        "The phone was too close to your face.",
        "Hold the phone a little further away so your whole face fits inside the oval.",
    ),
    "face_not_centred": (
        "Your face wasn't in the middle of the picture.",
        "Hold the phone straight in front of your face, with your face inside the oval.",
    ),
    "face_lost": (
        "Your face left the picture during the scan.",
        "Keep your whole face inside the oval until the progress bar is full.",
    ),
    "too_much_motion": (
        "You or the phone moved too much during the scan.",
        "Sit down, rest your arms on a table and stay still while scanning.",
    ),
    "low_frame_rate": (
        "The camera sent too few pictures per second.",
        "Close other apps and browser tabs before you start.",
    ),
    "too_short": (
        "The scan was too short.",
        "Keep still until the progress bar is full.",
    ),
    "weak_signal": (
        "The signal from your skin was too weak to measure.",
        "Use bright, even light on your face and stay still.",
    ),
}
"""Per failure code: what happened, and what to do next time, for the patient. Kept apart
from ``pulseloop.vitals.FAILURE_MESSAGES`` (which say "try again") because on this page the
link is used up: trying again needs a new link, and the page says so once."""


def failure_message(reason: str | None) -> str | None:
    """What happened, in plain words, for a failure code; None when there is none."""
    if reason is None:
        return None
    if reason in PATIENT_FAILURES:
        return PATIENT_FAILURES[reason][0]
    try:
        from pulseloop.vitals.quality import FAILURE_MESSAGES, FailureReason
    except ImportError:  # the server can run without the vitals extra (API clients only)
        return _GENERIC_FAILURE
    try:
        return FAILURE_MESSAGES[FailureReason(reason)]
    except ValueError:
        return _GENERIC_FAILURE


def failure_tip(reason: str | None) -> str | None:
    """What to do differently next time, when there is something to do."""
    return PATIENT_FAILURES[reason][1] if reason in PATIENT_FAILURES else None


def status_json(view: ScanState) -> dict[str, Any]:
    """What the page polls: status, failure reason and words, vitals once completed."""
    return {
        "status": view.status,
        "failure_reason": view.failure_reason,
        "failure_message": failure_message(view.failure_reason),
        "failure_tip": failure_tip(view.failure_reason),
        "vitals": view.vitals if view.status == "completed" else None,
    }


def capture_seconds(raw: str | None) -> int:
    """The capture length the page uses: ``?seconds=N`` clamped to 10-60, default 30.

    ASCII digits only: ``str.isdigit`` also accepts "²" and other digits ``int`` refuses.
    """
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        return DEFAULT_CAPTURE_S
    return max(MIN_CAPTURE_S, min(MAX_CAPTURE_S, int(raw)))


@dataclass(frozen=True, slots=True)
class PageTiming:
    """How long the page lets a patient try before it helps, and before it gives up.

    From ``PULSELOOP_SCAN_HELP_AFTER_S`` / ``_GIVE_UP_AFTER_S`` / ``_HEARTBEAT_S`` (tests
    shorten them; a clinic may lengthen them), read once when the routes are built.
    """

    help_after_s: float = 20.0
    """Seconds of failing checks before the page shows help for the failing check."""
    give_up_after_s: float = 60.0
    """Seconds of failing checks before the scan fails with that check's reason."""
    heartbeat_s: float = 5.0
    """While filming, the page asks the server this often whether the link still works."""
    upload_margin_s: float = 10.0
    """Time the link must have left after the capture, for the upload."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PageTiming:
        """Defaults overridden by ``PULSELOOP_SCAN_*`` variables (ValueError if bad)."""
        env = os.environ if environ is None else environ
        default = cls()
        values = {
            "help_after_s": _env_seconds(env, "PULSELOOP_SCAN_HELP_AFTER_S", default.help_after_s),
            "give_up_after_s": _env_seconds(
                env, "PULSELOOP_SCAN_GIVE_UP_AFTER_S", default.give_up_after_s
            ),
            "heartbeat_s": _env_seconds(env, "PULSELOOP_SCAN_HEARTBEAT_S", default.heartbeat_s),
        }
        if values["give_up_after_s"] <= values["help_after_s"]:
            raise ValueError(
                "PULSELOOP_SCAN_GIVE_UP_AFTER_S must be longer than PULSELOOP_SCAN_HELP_AFTER_S"
            )
        return cls(**values)


def _env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.5 <= value <= 600:
        raise ValueError(f"{name}={raw!r} must be seconds between 0.5 and 600")
    return value


def build_router(service: ScanPort, *, max_trace_bytes: int) -> APIRouter:
    """The ``/s/{token}`` routes, calling ``service``."""
    router = APIRouter()
    journey = ScanJourney(service.app)
    clinics = Clinics.from_env()
    timing = PageTiming.from_env()

    def checked(token: str) -> str:
        if not _TOKEN_PATTERN.fullmatch(token):
            raise ScanNotFound("this scan link does not exist; check the link you were sent")
        return token

    @router.get("/s", include_in_schema=False)
    @router.get("/s/", include_in_schema=False)
    async def incomplete_link() -> None:
        raise ScanNotFound("this scan link is incomplete; open the whole link you were sent")

    @router.get("/scan-privacy", response_class=HTMLResponse, include_in_schema=False)
    async def privacy_page(request: Request) -> HTMLResponse:
        return render_page(request, "scan_privacy.html", {})

    def unless_ended(view: _View) -> _View:
        """``view``, or ScanExpired once a finished scan's link has expired.

        A link shows its result only while it lives: after ``expires_at`` whoever holds
        the link (a forwarded SMS, a shared phone) sees that it has ended, not the vitals.
        """
        ended = view.expires_at.timestamp() <= journey.app.clock.now()
        if view.status in FINISHED_STATUSES and ended:
            raise ScanExpired("this scan link has ended; the result went to your care team")
        return view

    @router.get("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def capture_page(token: str, request: Request) -> HTMLResponse:
        record = await journey.open(checked(token))
        view = unless_ended(ScanView.of(record))
        context = {
            "scan": status_json(view),
            "uploaded": view.status in UPLOADED_STATUSES,
            "seconds": capture_seconds(request.query_params.get("seconds")),
            "base": f"/s/{token}",
            "clinic": clinics.for_org(record.org),
            "timing": timing,
            "expires_in_s": round(journey.expires_in_s(record), 1),
        }
        return render_page(request, "capture.html", context)  # the strict policy

    @router.post("/s/{token}/progress", include_in_schema=False)
    async def progress(token: str, request: Request) -> JSONResponse:
        checked(token)
        report = await _json_body(request)
        record = await journey.report(token, str(report.get("status", "")))
        return JSONResponse(
            {"status": record.status, "expires_in_s": round(journey.expires_in_s(record), 1)}
        )

    @router.post("/s/{token}/capturing", include_in_schema=False)
    async def capturing(token: str) -> JSONResponse:
        record = await journey.report(checked(token), "capturing")
        return JSONResponse({"status": record.status})

    @router.post("/s/{token}/abandon", include_in_schema=False)
    async def abandon(token: str, request: Request) -> JSONResponse:
        checked(token)
        report = await _json_body(request)
        record = await journey.give_up(token, str(report.get("reason", "")), report)
        return JSONResponse(status_json(unless_ended(ScanView.of(record))))

    @router.post("/s/{token}/trace", include_in_schema=False)
    async def upload_trace(token: str, request: Request) -> JSONResponse:
        # Look the link up first so a dead link never makes us read a body.
        await service.by_token(checked(token))
        body = await read_body_limited(request, max_trace_bytes)
        await asyncio.to_thread(_check_trace_json, body)
        try:
            view = await service.accept_trace(token, body)
        except PulseloopError:
            raise
        except _TRACE_PARSE_ERRORS as exc:  # the parser's bug or gap must not be a 500
            log.warning("trace refused by an unexpected %s", type(exc).__name__, exc_info=True)
            raise TraceRefused(
                "the trace could not be read; send the JSON the scan page sends (docs/vitals.md)",
                "$",
            ) from None
        return JSONResponse({"status": view.status}, status_code=202)

    @router.get("/s/{token}/status", include_in_schema=False)
    async def scan_status(token: str) -> JSONResponse:
        view = await service.by_token(checked(token))
        return JSONResponse(status_json(unless_ended(view)))

    return router


class TraceRefused(InvalidRequest):
    """A trace refused at the HTTP layer, in the parser's shape (``trace_invalid``, the
    document's field ``$``): the page and clients handle one code for a bad trace."""

    code = "trace_invalid"


def _check_trace_json(body: bytes) -> None:
    """Refuse JSON hazards (json_guard) in a trace before the parser meets them; text that
    is not JSON at all is the parser's to name."""
    try:
        json_guard.loads(body, "trace")
    except InvalidRequest as exc:
        raise TraceRefused(str(exc), "$") from None
    except ValueError:
        return


async def _json_body(request: Request) -> dict[str, Any]:
    """A small JSON object body (a page's report), or InvalidRequest."""
    body = await read_body_limited(request, MAX_REPORT_BYTES)
    try:
        parsed = json_guard.loads(body or b"{}")
    except InvalidRequest:
        raise
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidRequest("the body must be a JSON object", "body")
    return parsed
