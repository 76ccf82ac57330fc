"""The operators' dashboard under ``/dashboard``: server-rendered, self-hosted, CSRF-safe.

    GET  /dashboard                      -> the runs list (or the sign-in page)
    GET  /dashboard/sign-in              a form for an API key
    POST /dashboard/sign-in              key -> session cookie (303 to the runs list)
    POST /dashboard/sign-out             ends the session
    GET  /dashboard/runs                 runs of the org, filtered by loop and status
    GET  /dashboard/runs/{id}            a run's step timeline and the operator buttons
    POST /dashboard/runs/{id}/{action}   cancel | pause | resume | retry | restart
    GET  /dashboard/scans?status=        the latest scan of each recent run: where the patient is
    GET  /dashboard/scans/{id}           a scan's vitals, quality, waveform and spectrum

Sign-in validates the key with the API's own lookup and opens a server-side session
(:class:`~pulseloop.server.sessions.Sessions`, in the database); the cookie is ``HttpOnly``,
``SameSite=Strict``, ``Path=/dashboard`` and ``Secure`` unless the request is plain http
to and from loopback. Every POST carries a CSRF token bound to the session (an HMAC of
its token; the sign-in form uses a double-submit cookie) and is refused with 403,
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
from pulseloop.client import OrgClient
from pulseloop.durations import format_duration
from pulseloop.errors import PulseloopError, RateLimited, RunNotFound
from pulseloop.runs import Run
from pulseloop.server.auth import (
    SESSION_COOKIE,
    SESSION_PATH,
    audited_client,
    current_session,
    record_sign_in,
    valid_key,
)
from pulseloop.server.errors import status_for
from pulseloop.server.family_tree import tree_of
from pulseloop.server.limits import MAX_FORM_BYTES
from pulseloop.server.pages import render_page
from pulseloop.server.scan_pages import failure_message
from pulseloop.server.sessions import Session, Sessions, SignInThrottle, csrf_ok
from pulseloop.store.base import (
    SCAN_OPEN_STATUSES,
    SCAN_STATUSES,
    TERMINAL_STATUSES,
    ScanRecord,
)

SIGN_IN_PATH = f"{SESSION_PATH}/sign-in"
SIGN_IN_COOKIE = "pulseloop_sign_in"
"""The sign-in form's double-submit CSRF cookie (there is no session yet to bind to)."""
STATUSES = ("queued", "running", "waiting", "paused", "completed", "failed", "cancelled")
ACTIONS = ("cancel", "pause", "resume", "retry", "restart")
Action = Literal["cancel", "pause", "resume", "retry", "restart"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
RUNS_PER_PAGE = 100
MAX_PLOT_POINTS = 1200


def build_router(sessions: Sessions) -> APIRouter:
    """The ``/dashboard`` routes, signing people in to ``sessions``."""
    router = APIRouter(prefix=SESSION_PATH, include_in_schema=False)

    @router.get("")
    @router.get("/")  # explicit: the app makes no slash redirects (they echo Host)
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
        throttle: SignInThrottle = request.app.state.sign_in_throttle
        attempt, wait_s = await throttle.begin(*_throttle_names(request, key))
        if wait_s > 0:
            return _throttled(request, throttle.refusal(wait_s))
        record = await valid_key(_pulse(request), key)
        if record is None:  # the attempt stays counted as a failure
            return _sign_in(request, "That API key is not valid (unknown or revoked).", 401)
        await throttle.succeeded(attempt)
        await record_sign_in(request, record)
        # a fresh token on every sign-in; the browser's old one ends (no fixation)
        token, _ = await sessions.create(record, replaces=request.cookies.get(SESSION_COOKIE))
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
        await sessions.drop(request.cookies.get(SESSION_COOKIE))
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
        now = pulse.clock.now()
        outcomes = {}
        for run in runs:  # only a waiting run's scan is read: that is where a patient may be
            waiting = run.status == "waiting"
            scan = await pulse.latest_scan(run.id) if waiting else None
            outcomes[run.id] = run_outcome(run, scan, now)
        return _page(request, "dashboard_runs.html", session, {
            "runs": runs, "loops": loops, "statuses": STATUSES, "loop": loop, "status": status,
            "limit": RUNS_PER_PAGE, "outcomes": outcomes,
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

    @router.get("/scans")
    async def scans_page(request: Request, status: str | None = None) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, pulse = found
        status = status if status in SCAN_STATUSES else None
        now = pulse.clock.now()
        rows = [
            ScanRow(scan, run, journey(scan, now))
            for scan, run in await latest_scans(pulse, status)
        ]
        return _page(request, "dashboard_scans.html", session, {
            "rows": rows, "statuses": SCAN_STATUSES, "status": status, "limit": RUNS_PER_PAGE,
            "journey_steps": JOURNEY_STEPS, "status_words": JOURNEY_WORDS,
        })  # fmt: skip

    @router.get("/scans/{scan_id}")
    async def scan_page(request: Request, scan_id: str) -> Response:
        found = await _signed_in(request)
        if found is None:
            return _to_sign_in()
        session, pulse = found
        record = await pulse.get_scan(scan_id) if len(scan_id) <= 200 else None
        if record is None:
            return _not_found(request, session, "scan")
        result: dict[str, Any] = json.loads(record.result) if record.result else {}
        reason = record.failure_reason or result.get("failure_reason")
        vitals = dict(result.get("vitals") or {})
        unavailable = vitals.pop("unavailable", None)
        return _page(request, "dashboard_scan.html", session, {
            "scan": record.payload(),
            "journey": journey(record, pulse.clock.now()),
            "vital_rows": vital_rows(vitals, unavailable if isinstance(unavailable, dict) else {}),
            "quality_rows": quality_rows(result.get("quality") or {}),
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
            "reason_text": reason_words(reason) if reason else "",
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
    request: Request,
    session: Session,
    pulse: OrgClient,
    run_id: str,
    error: str | None,
    status: int,
) -> Response:
    if len(run_id) > 200:
        return _not_found(request, session, "run")
    try:
        run = await pulse.get_run(run_id)
    except RunNotFound:
        return _not_found(request, session, "run")
    record = await pulse.run_record(run_id)
    scan = await pulse.latest_scan(run_id)
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
        "family": tree_of(run_id, await OrgClient.run_family(pulse, run_id)),  # in read_run
    }, status_code=status)  # fmt: skip


def available_actions(run: Run) -> list[str]:
    """The operator buttons that fit the run's status (none once retention purged it)."""
    if run.purged_at is not None:
        return []
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


def _throttle_names(request: Request, key: str) -> list[str]:
    """What failed sign-ins are counted against: the client address, and the key id the
    typed key names (``pl_<id>_...``), so guessing one key from many addresses stops too."""
    names = [f"addr:{request.client.host if request.client is not None else 'unknown'}"]
    parts = key.split("_")
    if len(parts) >= 3 and parts[0] == "pl" and 0 < len(parts[1]) <= 32:
        names.append(f"key:{parts[1]}")
    return names


def _throttled(request: Request, exc: RateLimited) -> Response:
    retry = str(max(1, round(exc.retry_after_s)))
    response = _sign_in(
        request, f"Too many failed sign-ins. Wait {retry} seconds, then try again.", 429
    )
    response.headers["Retry-After"] = retry
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


async def _signed_in(request: Request) -> tuple[Session, OrgClient] | None:
    """The session and the client of its org, or None (not signed in, key revoked)."""
    pulse = _pulse(request)
    session = await current_session(request, pulse)
    if session is None:
        return None
    return session, audited_client(request, session.org, session.key_id)


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


def fmt_figure(value: Any) -> str:
    """A figure already rounded for reading: no trailing zeros, em dash for null."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return fmt_number(value)


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
    "fmt_figure": fmt_figure,
    "run_url": run_url,
    "scan_url": scan_url,
    "terminal": TERMINAL_STATUSES,
    "at": _at,
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


# scans in words -------------------------------------------------------------------------
JOURNEY_STEPS = ("pending", "opened", "aligning", "capturing", "processing")
"""The patient's way through the page, in order; a finished scan has passed them all."""
JOURNEY_WORDS: dict[str, str] = {
    "pending": "Link not opened yet",
    "opened": "Opened the link; camera not started",
    "aligning": "Camera on; lining up (checks not passed yet)",
    "capturing": "Filming",
    "processing": "Filmed; analysing",
    "completed": "Measured",
    "failed": "Failed",
    "expired": "Link expired before a scan was sent",
}
STALE_AFTER_S = 120.0
"""A page on the checks gives up after a minute and a capture lasts at most one: an open
scan with no news for longer than this was most likely closed by the patient."""
REASON_WORDS: dict[str, str] = {
    "no_face": "no face in view",
    "too_dark": "too dark to see the face",
    "too_bright": "face over-exposed",
    "face_too_small": "face too far from the camera",
    "face_too_close": "face too close to the camera",
    "face_not_centred": "face not in the middle of the picture",
    "face_lost": "face left the picture while filming",
    "too_much_motion": "too much movement",
    "low_frame_rate": "camera delivered too few frames per second",
    "too_short": "recording too short",
    "weak_signal": "pulse signal too weak",
    "expired": "the link expired",
    "analysis_error": "the analysis failed on the server",
    "video_unreadable": "the uploaded video could not be read",
}


@dataclass(frozen=True, slots=True)
class Journey:
    """Where a scan's patient is, for a person: words, a detail line and a tone."""

    status: str
    words: str
    detail: str
    tone: str  # "ok" | "bad" | "wait"
    reached: int  # how many of JOURNEY_STEPS the patient has passed; -1 unknown


@dataclass(frozen=True, slots=True)
class ScanRow:
    """A line of the scans page."""

    scan: ScanRecord
    run: Run
    journey: Journey


@dataclass(frozen=True, slots=True)
class Outcome:
    """A run's result in one line, for the runs list."""

    text: str
    tone: str  # "ok" | "bad" | "wait" | ""


def reason_words(reason: str) -> str:
    """A failure code in words for operators (the code itself when unknown)."""
    return REASON_WORDS.get(reason) or failure_message(reason) or reason


def journey(scan: ScanRecord, now: float) -> Journey:
    """Where the scan's patient got to, and for how long they have been there."""
    status = scan.status
    words = JOURNEY_WORDS.get(status, status)
    reached = JOURNEY_STEPS.index(status) if status in JOURNEY_STEPS else len(JOURNEY_STEPS)
    detail = ""
    tone = "wait"
    if status in SCAN_OPEN_STATUSES or status == "processing":
        detail = f"since {fmt_time(_at(scan.updated_at))} ({_ago(now - scan.updated_at)} ago)"
        if status in ("aligning", "capturing") and now - scan.updated_at > STALE_AFTER_S:
            detail += "; no news since, so the page was probably closed"
    elif status == "completed":
        tone = "ok"
    else:
        tone = "bad"
        if status == "failed" and scan.failure_reason:
            words = f"Failed: {reason_words(scan.failure_reason)}"
        page = _page_outcome(scan)
        if page:  # the page ended it: the patient never got past the checks
            detail = page
            reached = JOURNEY_STEPS.index("aligning")
        elif status == "expired":
            reached = -1  # where they got to is not kept once the link expires
    return Journey(status, words, detail, tone, reached)


def _page_outcome(scan: ScanRecord) -> str:
    """How a scan the patient's page ended went: seconds tried, and on what."""
    try:
        page = json.loads(scan.result or "{}").get("page")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(page, dict) or not isinstance(page.get("tried_s"), int | float):
        return ""
    failing = page.get("failing_s")
    if not isinstance(failing, dict):
        failing = {}
    parts = ", ".join(
        f"{reason_words(str(k))} {v:g} s"
        for k, v in sorted(failing.items(), key=lambda kv: -float(kv[1]))
        if isinstance(v, int | float)
    )
    text = f"Ended on the patient's page after {page['tried_s']:g} s of failed checks"
    return f"{text} ({parts})" if parts else text


def _ago(seconds: float) -> str:
    """A rough age for people: "40 s", "12 min", "3 h 5 min"."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


async def latest_scans(pulse: OrgClient, status: str | None) -> list[tuple[ScanRecord, Run]]:
    """The latest scan of each of the newest runs, most recently active first.

    The store has no scan listing yet, so this reads ``latest_scan`` for each of the newest
    ``RUNS_PER_PAGE`` runs (one indexed lookup each); a run's earlier scans are not shown.
    A ``list_scans(org, status, limit)`` store method would replace it (docs/dashboard.md).
    """
    found = []
    for run in await pulse.list_runs(limit=RUNS_PER_PAGE):
        scan = await pulse.latest_scan(run.id)
        if scan is not None and (status is None or scan.status == status):
            found.append((scan, run))
    found.sort(key=lambda pair: pair[0].updated_at, reverse=True)
    return found


def run_outcome(run: Run, scan: ScanRecord | None, now: float) -> Outcome:
    """The run's result in a line: its scan's outcome when its output carries one (so a
    "completed" run whose scan failed says so), an ``error`` it returned, its failure, or
    where the patient is while it waits on a scan."""
    if run.status == "failed" and run.error:
        return Outcome(f"Error: {run.error.get('message', run.error)}"[:160], "bad")
    if run.status == "waiting" and scan is not None and scan.status not in ("completed",):
        where = journey(scan, now)
        return Outcome(f"Waiting on the patient: {where.words.lower()}", where.tone)
    payload = _scan_in(run.output)
    if payload is not None:
        status, reason = payload.get("status"), payload.get("failure_reason")
        if status == "completed":
            heart = (payload.get("vitals") or {}).get("heart_rate_bpm")
            measured = f": heart rate {heart:.0f} bpm" if isinstance(heart, int | float) else ""
            return Outcome(f"Scan measured{measured}", "ok")
        if status == "failed":
            return Outcome(f"Scan failed: {reason_words(str(reason))}", "bad")
        if status == "expired":
            return Outcome("Scan link expired unused", "bad")
    if isinstance(run.output, dict) and run.output.get("error"):
        error = run.output["error"]
        text = reason_words(error) if isinstance(error, str) else json.dumps(error)[:80]
        return Outcome(f"Finished with an error: {text}", "bad")
    return Outcome(_brief(run.output), "")


def _scan_in(output: Any) -> dict[str, Any] | None:
    """The scan payload (``{"id": "scan_…", "status", …}``) in a run's output, if any; a
    finished one wins over the ``create`` answer a loop may return beside it."""
    found: list[dict[str, Any]] = []

    def walk(value: Any, depth: int) -> None:
        if not isinstance(value, dict) or depth > 2:
            return
        if str(value.get("id", "")).startswith("scan_") and value.get("status") in SCAN_STATUSES:
            found.append(value)
            return
        for inner in value.values():
            walk(inner, depth + 1)

    walk(output, 0)
    finished = [p for p in found if p["status"] in ("completed", "failed", "expired")]
    if finished:
        return finished[0]
    return found[0] if found else None


def _brief(output: Any) -> str:
    """The first few plain fields of an output, in one short line."""
    if output is None:
        return ""
    if not isinstance(output, dict):
        return json.dumps(output, default=str)[:80]
    parts = [
        f"{key}: {value}"
        for key, value in output.items()
        if isinstance(value, str | int | float | bool) or value is None
    ][:3]
    text = " · ".join(parts)
    return text if len(text) <= 80 else text[:79] + "…"


# vitals and quality in words -----------------------------------------------------------
VITAL_LABELS: dict[str, tuple[str, str]] = {
    "heart_rate_bpm": ("Heart rate", "beats per minute"),
    "respiratory_rate_bpm": ("Breathing rate", "breaths per minute"),
    "hrv_sdnn_ms": ("Heart rate variability (SDNN)", "ms"),
    "hrv_rmssd_ms": ("Heart rate variability (RMSSD)", "ms"),
}


@dataclass(frozen=True, slots=True)
class FigureRow:
    """A vital or quality figure as a table row: label, value, verdict, the limit."""

    name: str
    label: str
    value: Any
    unit: str
    verdict: str = ""
    ok: bool | None = None
    limit: str = ""


def vital_rows(vitals: dict[str, Any], unavailable: dict[str, Any]) -> list[FigureRow]:
    """Vitals with their names in words; a missing one says why."""
    rows = []
    for name, value in vitals.items():
        label, unit = VITAL_LABELS.get(name, (name, ""))
        why = unavailable.get(name) if value is None else None
        rows.append(FigureRow(name, label, value, unit, verdict=str(why) if why else ""))
    return rows


def quality_rows(quality: dict[str, Any]) -> list[FigureRow]:
    """Quality figures in words, each against the threshold the analysis applied.

    The thresholds live in ``pulseloop.vitals.quality`` (numpy, scipy), imported here on
    use so the dashboard, and the CLI that imports it, work without the vitals extra;
    without it the figures are shown without verdicts.
    """
    q: Any
    try:
        from pulseloop.vitals import quality as q
    except ImportError:
        q = None
    rows = []
    for name, value in quality.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            label = _QUALITY_LABELS.get(name, name)
            rows.append(FigureRow(name, label, value, "", verdict="not measured"))
            continue
        rows.append(_quality_row(name, float(value), q))
    return rows


_QUALITY_LABELS = {
    "snr_db": "Pulse signal strength",
    "confidence": "Confidence",
    "face_coverage": "Face in view",
    "motion": "Head movement",
    "brightness": "Skin brightness",
    "frame_rate_hz": "Frame rate",
    "duration_s": "Length",
}


def _quality_row(name: str, v: float, q: Any) -> FigureRow:
    label = _QUALITY_LABELS.get(name, name)
    if name == "confidence":
        verdict = "high" if v >= 0.6 else "moderate" if v >= 0.3 else "low"
        return FigureRow(name, label, round(v * 100), "%", verdict)
    if q is None:
        return FigureRow(name, label, v, "", limit="thresholds need the vitals extra")
    if name == "snr_db":
        ok = v >= q.MIN_SNR_DB
        return FigureRow(name, label, round(v, 1), "dB", "strong enough" if ok else "too weak",
                         ok, f"at least {q.MIN_SNR_DB:g} dB")  # fmt: skip
    if name == "face_coverage":
        ok = v >= q.MIN_FACE_COVERAGE
        return FigureRow(name, label, round(v * 100), "% of the scan", "enough" if ok else
                         "too little", ok, f"at least {q.MIN_FACE_COVERAGE * 100:g} %")  # fmt: skip
    if name == "motion":
        verdict = ("still" if v <= q.BLAME_MOTION else "some movement" if v <= q.MAX_MOTION
                   else "too much movement")  # fmt: skip
        return FigureRow(name, label, round(v, 2), "face widths per second", verdict,
                         v <= q.MAX_MOTION, f"at most {q.MAX_MOTION:g}")  # fmt: skip
    if name == "brightness":
        # The vitals gate's own bars: under DARK_FLOOR a scan is always too dark; between it
        # and MIN_BRIGHTNESS (dark skin, dim rooms) only a weak pulse is blamed on the light.
        ok = q.DARK_FLOOR <= v <= q.MAX_BRIGHTNESS
        verdict = ("too dark" if v < q.DARK_FLOOR else "too bright" if v > q.MAX_BRIGHTNESS
                   else "dim" if v < q.MIN_BRIGHTNESS else "good")  # fmt: skip
        return FigureRow(name, label, round(v), "of 255", verdict, ok,
                         f"{q.DARK_FLOOR:g} to {q.MAX_BRIGHTNESS:g}")  # fmt: skip
    if name == "frame_rate_hz":
        ok = v >= q.MIN_FRAME_RATE_HZ
        return FigureRow(name, label, round(v, 1), "frames per second", "enough" if ok else
                         "too few", ok, f"at least {q.MIN_FRAME_RATE_HZ:g}")  # fmt: skip
    if name == "duration_s":
        ok = v >= q.MIN_DURATION_S
        return FigureRow(name, label, round(v, 1), "s", "long enough" if ok else "too short",
                         ok, f"at least {q.MIN_DURATION_S:g} s")  # fmt: skip
    return FigureRow(name, label, v, "")
