"""The operators' dashboard under ``/dashboard``: server-rendered, self-hosted, CSRF-safe.

    GET  /dashboard                      -> the runs list (or the sign-in page)
    GET  /dashboard/sign-in              a form for an API key
    POST /dashboard/sign-in              key -> session cookie (303 to the runs list)
    POST /dashboard/sign-out             ends the session
    GET  /dashboard/runs                 runs of the org, filtered by loop and status
    GET  /dashboard/runs/{id}            a run's step timeline and the operator buttons
    POST /dashboard/runs/{id}/{action}   cancel | pause | resume | retry | restart
    GET  /dashboard/scans/{id}           a scan's vitals, quality, waveform and spectrum

Sign-in validates the key with the API's own lookup and opens a server-side session
(:class:`~pulseloop.server.auth.SessionStore`); the cookie is ``HttpOnly``,
``SameSite=Strict``, ``Path=/dashboard`` and ``Secure`` unless the request is plain http
to and from loopback. Every POST carries a CSRF token bound to the session (a random value
kept with it; the sign-in form uses a double-submit cookie) and is refused with 403,
changing nothing, when it is missing or wrong. Another organization's run or scan is 404,
like one that does not exist. Plots are inline SVG drawn here; the only script
(``static/dashboard.js``) refreshes the live parts of a page. See docs/dashboard.md.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pulseloop.app import App
from pulseloop.durations import format_duration
from pulseloop.errors import PulseloopError, RunNotFound
from pulseloop.keys import hash_api_key
from pulseloop.runs import Run
from pulseloop.server.auth import (
    SESSION_COOKIE,
    SESSION_PATH,
    Session,
    SessionStore,
    csrf_ok,
    current_session,
    valid_key,
)
from pulseloop.server.errors import status_for
from pulseloop.server.pages import render_page
from pulseloop.store.base import TERMINAL_STATUSES
from pulseloop.vitals.quality import FAILURE_MESSAGES

SIGN_IN_PATH = f"{SESSION_PATH}/sign-in"
SIGN_IN_COOKIE = "pulseloop_sign_in"
"""The sign-in form's double-submit CSRF cookie (there is no session yet to bind to)."""
STATUSES = ("queued", "running", "waiting", "paused", "completed", "failed", "cancelled")
ACTIONS = ("cancel", "pause", "resume", "retry", "restart")
Action = Literal["cancel", "pause", "resume", "retry", "restart"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_FORM_BYTES = 16 * 1024
RUNS_PER_PAGE = 100
MAX_PLOT_POINTS = 1200
_FAILURE_TEXT: dict[str, str] = {str(code): text for code, text in FAILURE_MESSAGES.items()}


def build_router(sessions: SessionStore) -> APIRouter:
    """The ``/dashboard`` routes, signing people in to ``sessions``."""
    router = APIRouter(prefix=SESSION_PATH, include_in_schema=False)

    @router.get("")
    async def home(request: Request) -> Response:
        return _redirect(f"{SESSION_PATH}/runs")

    @router.get("/sign-in")
    async def sign_in_page(request: Request) -> Response:
        return _sign_in(request, None, 200)

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        sent = form.get("csrf")
        cookie = request.cookies.get(SIGN_IN_COOKIE)
        if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
            return _sign_in(request, "The form expired; please sign in again.", 403)
        key = form.get("key", "").strip()
        record = await valid_key(_pulse(request), key)
        if record is None:
            return _sign_in(request, "That API key is not valid (unknown or revoked).", 401)
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:  # a fresh token on every sign-in; the old one ends (no fixation)
            sessions.drop(previous)
        token, _ = sessions.create(record, hash_api_key(key))
        response = _redirect(f"{SESSION_PATH}/runs")
        _set_cookie(request, response, SESSION_COOKIE, token, sessions.ttl_s)
        response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)
        return response

    @router.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, _ = found
        if not csrf_ok(session, (await _form(request)).get("csrf")):
            return _forbidden(request, session)
        sessions.drop(request.cookies.get(SESSION_COOKIE, ""))
        response = _to_sign_in()
        response.delete_cookie(SESSION_COOKIE, path=SESSION_PATH)
        return response

    @router.get("/runs")
    async def runs_page(
        request: Request, loop: str | None = None, status: str | None = None
    ) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, pulse = found
        loop = loop if loop and len(loop) <= 200 else None
        status = status if status in STATUSES else None
        runs = await pulse.list_runs(loop=loop, status=status, limit=RUNS_PER_PAGE)
        loops = sorted(set(pulse.loops) | {r.loop for r in runs} | ({loop} if loop else set()))
        return _page(request, "dashboard_runs.html", session, {
            "runs": runs, "loops": loops, "statuses": STATUSES, "loop": loop, "status": status,
            "limit": RUNS_PER_PAGE,
        })  # fmt: skip

    @router.get("/runs/{run_id}")
    async def run_page(request: Request, run_id: str) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, pulse = found
        return await _run_page(request, session, pulse, run_id, None, 200)

    @router.post("/runs/{run_id}/{action}")
    async def run_action(request: Request, run_id: str, action: str) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, pulse = found
        form = await _form(request)
        if not csrf_ok(session, form.get("csrf")):
            return _forbidden(request, session)
        if action not in ACTIONS:
            return _message(request, session, "Not found", "There is no such action.", 404)
        try:
            if action == "restart":
                step = form.get("from_step", "")
                if not step:
                    raise _NoStep("choose the step to restart from")
                await pulse.restart(run_id, step)
            else:
                await getattr(pulse, action)(run_id)
        except PulseloopError as exc:
            if isinstance(exc, RunNotFound):
                return _not_found(request, session, "run")
            return await _run_page(request, session, pulse, run_id, str(exc), status_for(exc))
        return _redirect(f"{SESSION_PATH}/runs/{_quote(run_id)}?{urlencode({'done': action})}")

    @router.get("/scans/{scan_id}")
    async def scan_page(request: Request, scan_id: str) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, pulse = found
        record = await pulse.store.get_scan(pulse.org, scan_id) if len(scan_id) <= 200 else None
        if record is None:
            return _not_found(request, session, "scan")
        result: dict[str, Any] = json.loads(record.result) if record.result else {}
        reason = record.failure_reason or result.get("failure_reason")
        vitals = dict(result.get("vitals") or {})
        unavailable = vitals.pop("unavailable", None)
        return _page(request, "dashboard_scan.html", session, {
            "scan": record.payload(),
            "times": {
                "Created": _at(record.created_at),
                "Expires": _at(record.expires_at),
                "Completed": _at(record.completed_at),
            },
            "run_id": record.run_id,
            "step": record.step,
            "metadata": json.dumps(json.loads(record.metadata), indent=2, ensure_ascii=False),
            "vitals": vitals,
            "unavailable": unavailable if isinstance(unavailable, dict) else {},
            "quality": result.get("quality") or {},
            "reason": reason,
            "reason_text": _FAILURE_TEXT.get(reason, "") if reason else "",
            "waveform": waveform_plot(result.get("waveform")),
            "spectrum": spectrum_plot(
                result.get("spectrum"), (result.get("vitals") or {}).get("heart_rate_bpm")
            ),
        })  # fmt: skip

    return router


class _NoStep(PulseloopError):
    code = "invalid_request"


# pages -------------------------------------------------------------------------------
async def _run_page(
    request: Request, session: Session, pulse: App, run_id: str, error: str | None, status: int
) -> Response:
    if len(run_id) > 200:
        return _not_found(request, session, "run")
    try:
        run = await pulse.get_run(run_id)
    except RunNotFound:
        return _not_found(request, session, "run")
    record = await pulse.store.get_run(pulse.org, run_id)
    scan = await pulse.store.latest_scan(pulse.org, run_id)
    done = request.query_params.get("done")
    return _page(request, "dashboard_run.html", session, {
        "run": run,
        "generation": record.generation if record is not None else 0,
        "scan": scan,
        "error": error,
        "done": done if done in ACTIONS and error is None else None,
        "actions": available_actions(run),
        "restartable": [s.name for s in run.steps if s.kind == "do"],
        "body": _json(run.body),
        "output": _json(run.output),
    }, status_code=status)  # fmt: skip


def available_actions(run: Run) -> list[str]:
    """The operator buttons that fit the run's status."""
    if run.status in TERMINAL_STATUSES:
        found = ["retry"] if run.status == "failed" else []
        return [*found, "restart"] if run.steps else found
    found = ["resume"] if run.status == "paused" else ["pause"]
    return [*found, "cancel", "restart"] if run.steps else [*found, "cancel"]


def _sign_in(request: Request, error: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = render_page(
        request, "dashboard_sign_in.html", {"csrf": token, "error": error, **_HELPERS},
        status_code=status,
    )  # fmt: skip
    _no_store(response)
    _set_cookie(request, response, SIGN_IN_COOKIE, token, 3600, path=SIGN_IN_PATH)
    return response


def _page(
    request: Request, name: str, session: Session, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    response = render_page(
        request, name, {**context, **_HELPERS, "csrf": session.csrf, "org": session.org},
        status_code=status_code,
    )  # fmt: skip
    _no_store(response)
    return response


def _message(request: Request, session: Session, heading: str, body: str, status: int) -> Response:
    return _page(
        request, "dashboard_message.html", session, {"heading": heading, "body": body}, status
    )


def _not_found(request: Request, session: Session, what: str) -> Response:
    return _message(
        request, session, f"No such {what}",
        f"There is no {what} with that id in {session.org}. Check the link.", 404,
    )  # fmt: skip


def _forbidden(request: Request, session: Session) -> Response:
    return _message(
        request, session, "Action refused",
        "The form was missing its security token or it did not match your session, so "
        "nothing was changed. Reload the page and try again.", 403,
    )  # fmt: skip


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


def _redirect(url: str) -> Response:
    response = RedirectResponse(url, status_code=303)
    _no_store(response)
    return response


def _to_sign_in() -> Response:
    return _redirect(SIGN_IN_PATH)


# sessions and forms ------------------------------------------------------------------
def _pulse(request: Request) -> App:
    pulse: App = request.app.state.pulseloop
    return pulse


async def _signed_in(request: Request) -> tuple[Session, App] | None:
    """The session and the App view of its org, or None (not signed in, key revoked)."""
    pulse = _pulse(request)
    session = await current_session(request, pulse)
    if session is None:
        return None
    return session, pulse if session.org == pulse.org else pulse.for_org(session.org)


async def _form(request: Request) -> dict[str, str]:
    """A URL-encoded form's fields (first value of each; empty for anything else)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in fields.items()}


def cookie_secure(request: Request) -> bool:
    """``Secure`` unless the request is plain http to a loopback host from loopback.

    Both ends must be loopback so a TLS-terminating proxy on the same machine (which talks
    plain http to us from 127.0.0.1, but with the public ``Host``) still gets ``Secure``.
    """
    client = request.client.host if request.client is not None else ""
    return not (
        request.url.scheme == "http"
        and request.url.hostname in LOOPBACK_HOSTS
        and client in LOOPBACK_HOSTS
    )


def _set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: float,
    path: str = SESSION_PATH,
) -> None:  # fmt: skip
    response.set_cookie(
        name, value, max_age=int(max_age), path=path, secure=cookie_secure(request),
        httponly=True, samesite="strict",
    )  # fmt: skip


def _quote(run_id: str) -> str:
    return quote(run_id, safe="")


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False, default=str)


# formatting --------------------------------------------------------------------------
def _at(epoch_s: float | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


def fmt_time(value: datetime | None) -> str:
    """A UTC time to the second, or an em dash."""
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_number(value: Any, digits: int = 1) -> str:
    """A figure rounded for reading, or an em dash for null."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.{digits}f}"


def run_url(run_id: str) -> str:
    """The dashboard page of a run."""
    return f"{SESSION_PATH}/runs/{_quote(run_id)}"


def scan_url(scan_id: str) -> str:
    """The dashboard page of a scan."""
    return f"{SESSION_PATH}/scans/{_quote(scan_id)}"


_HELPERS: dict[str, Any] = {
    "fmt_time": fmt_time,
    "fmt_duration": format_duration,
    "fmt_number": fmt_number,
    "run_url": run_url,
    "scan_url": scan_url,
    "terminal": TERMINAL_STATUSES,
}


# plots -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Plot:
    """An SVG line plot, ready for the template (coordinates in its viewBox)."""

    width: int
    height: int
    points: str
    x_ticks: list[tuple[float, str]]
    y_label: str
    x_label: str
    marker: tuple[float, str] | None = None


PLOT_W, PLOT_H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 200, 16, 16, 12, 34


def _polyline(xs: Sequence[float], ys: Sequence[float], x_lo: float, x_hi: float) -> str:
    step = max(1, len(xs) // MAX_PLOT_POINTS)
    xs, ys = xs[::step], ys[::step]
    y_lo, y_hi = min(ys), max(ys)
    span_x = (x_hi - x_lo) or 1.0
    span_y = (y_hi - y_lo) or 1.0
    inner_w, inner_h = PLOT_W - PAD_L - PAD_R, PLOT_H - PAD_T - PAD_B
    return " ".join(
        f"{PAD_L + (x - x_lo) / span_x * inner_w:.1f},"
        f"{PAD_T + (1 - (y - y_lo) / span_y) * inner_h:.1f}"
        for x, y in zip(xs, ys, strict=True)
    )


def _x_at(x: float, x_lo: float, x_hi: float) -> float:
    return PAD_L + (x - x_lo) / ((x_hi - x_lo) or 1.0) * (PLOT_W - PAD_L - PAD_R)


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, list) or len(values) < 2:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return None
    return [float(v) for v in values]


def waveform_plot(waveform: Any) -> Plot | None:
    """The pulse waveform against time (None when the scan has none)."""
    if not isinstance(waveform, dict):
        return None
    values = _numbers(waveform.get("values"))
    fs = waveform.get("fs_hz")
    if values is None or not isinstance(fs, int | float) or fs <= 0:
        return None
    xs = [i / fs for i in range(len(values))]
    end = xs[-1]
    ticks = [(_x_at(t, 0.0, end), f"{t:g} s") for t in range(0, int(end) + 1, 5)]
    return Plot(PLOT_W, PLOT_H, _polyline(xs, values, 0.0, end), ticks, "pulse", "time")


def spectrum_plot(spectrum: Any, heart_rate_bpm: Any) -> Plot | None:
    """The pulse's power spectrum against beats per minute, the heart rate marked."""
    if not isinstance(spectrum, dict):
        return None
    freqs, power = _numbers(spectrum.get("freq_bpm")), _numbers(spectrum.get("power"))
    if freqs is None or power is None or len(freqs) != len(power):
        return None
    lo, hi = freqs[0], freqs[-1]
    first = int(lo // 30 + 1) * 30 if lo % 30 else int(lo)
    ticks = [(_x_at(f, lo, hi), f"{f}") for f in range(first, int(hi) + 1, 30)]
    marker = None
    if isinstance(heart_rate_bpm, int | float) and lo <= heart_rate_bpm <= hi:
        marker = (_x_at(float(heart_rate_bpm), lo, hi), f"{heart_rate_bpm:.0f} bpm")
    points = _polyline(freqs, power, lo, hi)
    return Plot(PLOT_W, PLOT_H, points, ticks, "power", "beats per minute", marker)
