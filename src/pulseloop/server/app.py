"""The ASGI app factory: ``create_app(app)`` for an open :class:`pulseloop.App`.

    from pulseloop.server.app import create_app
    from pulseloop.server.serve import serve
    async with App(loops=[...]) as pulse:
        await serve(create_app(pulse), host="127.0.0.1", port=8000)   # token-safe logs

Routes live in their own modules (``scan_pages``, ``api`` for ``/v1``, ``metrics``,
``dashboard`` for ``/dashboard``); this module only wires them, the static files, the
middlewares (security headers, body limits, rate limits) and the error handlers.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from pulseloop.app import App
from pulseloop.connectors.facial_scan import MAX_TRACE_BYTES, ScanService
from pulseloop.errors import PulseloopError
from pulseloop.server import api as api_routes
from pulseloop.server import (
    audit_api,
    audit_pages,
    children_api,
    dashboard,
    metrics,
    run_events,
    schedule_pages,
    schedules_api,
    webhook_pages,
    webhooks_api,
)
from pulseloop.server.errors import (
    http_error_handler,
    pulseloop_error_handler,
    validation_error_handler,
)
from pulseloop.server.limits import (
    BODY_READ_TIMEOUT_S,
    MAX_JSON_BYTES,
    MAX_VIDEO_BYTES,
    SCAN_BURST,
    SCAN_RATE_PER_S,
    BodyLimit,
    RateLimit,
)
from pulseloop.server.pages import STATIC_DIR, render_page
from pulseloop.server.scan_pages import build_router
from pulseloop.server.scan_service import ScanPort
from pulseloop.server.security import SecurityHeaders
from pulseloop.server.sessions import Sessions, SignInThrottle
from pulseloop.store.sealed.keyring import PayloadSql

# Python < 3.12 may not know .wasm; browsers compile it fastest when served as such.
mimetypes.add_type("application/wasm", ".wasm")


def create_app(
    app: App,
    *,
    scan_service: ScanPort | None = None,
    max_trace_bytes: int | None = None,
    max_json_bytes: int = MAX_JSON_BYTES,
    max_video_bytes: int = MAX_VIDEO_BYTES,
    scan_rate_per_s: float = SCAN_RATE_PER_S,
    scan_burst: int = SCAN_BURST,
    body_read_timeout_s: float = BODY_READ_TIMEOUT_S,
    sign_in_throttle: SignInThrottle | None = None,
) -> FastAPI:
    """The HTTP app for ``app`` (already open); the keyword arguments are for tests.

    ``app`` serves its own organization's worker; the ``/v1`` API serves every
    organization with a key, each through ``app.client(org)``.
    """
    service = scan_service if scan_service is not None else ScanService(app)
    limit = MAX_TRACE_BYTES if max_trace_bytes is None else max_trace_bytes

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if isinstance(service, ScanService):
            await service.start()  # uploads a crashed process accepted are analysed now
        yield
        await service.drain()  # finish analyses in flight before the App closes
        if isinstance(service, ScanService):
            await service.stop()
        await watcher.stop()

    api = FastAPI(
        title="pulseloop",
        version="1",
        description="Durable health follow-ups with facial vitals scans. See docs/api.md.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        # No "/x/" -> "/x" redirects: Starlette builds them from the Host header, so a
        # forged Host would come back in Location (docs/security.md).
        redirect_slashes=False,
    )
    api.state.pulseloop = app
    # one poller for every /v1/runs/{id}/events stream of this process
    watcher = api.state.run_watcher = run_events.RunWatcher(cast(PayloadSql, app.store))
    api.state.scan_service = service
    # dashboard sign-ins and failed attempts: in the database, shared by every process
    api.state.sessions = Sessions(app.store.sessions)
    api.state.sign_in_throttle = sign_in_throttle or SignInThrottle(app.store.sessions)
    # added last = outermost: security headers wrap every answer (429 and 413 included),
    # then rate limits answer before any body is read, then bodies are capped as they stream
    api.add_middleware(
        BodyLimit, max_bytes=max_json_bytes, max_video_bytes=max_video_bytes,
        max_trace_bytes=limit, read_timeout_s=body_read_timeout_s,
    )  # fmt: skip
    api.add_middleware(RateLimit, rate_per_s=scan_rate_per_s, burst=scan_burst)
    api.add_middleware(SecurityHeaders)
    api.add_exception_handler(PulseloopError, pulseloop_error_handler)
    api.add_exception_handler(HTTPException, http_error_handler)
    api.add_exception_handler(RequestValidationError, validation_error_handler)
    api.include_router(build_router(service, max_trace_bytes=limit))
    if isinstance(service, ScanService):
        api.include_router(api_routes.build_router(max_video_bytes, upload_folder(app)))
        api.include_router(schedules_api.build_router())
        api.include_router(children_api.build_router())
        api.include_router(audit_api.build_router())
        api.include_router(webhooks_api.build_router())
        api.include_router(run_events.build_router())
    api.include_router(metrics.build_router(app))
    api.include_router(dashboard.build_router(api.state.sessions))
    api.include_router(schedule_pages.build_router())
    api.include_router(audit_pages.build_router())
    api.include_router(webhook_pages.build_router())

    @api.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs_page(request: Request) -> HTMLResponse:
        return render_page(request, "api_docs.html", {"operations": _operations(api)})

    api.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return api


def upload_folder(app: App) -> Path | None:
    """The folder video uploads go to (``PULSELOOP_UPLOAD_DIR``), checked at start-up so a
    typo stops the server instead of failing each upload."""
    folder = app.settings.upload_dir
    if folder is None:
        return None
    if not Path(folder).is_dir():
        raise PulseloopError(
            f"PULSELOOP_UPLOAD_DIR={folder!r} is not a directory; create it (on storage every "
            "analysing server mounts at that same path) or unset it to use the system's "
            "temporary folder"
        )
    return Path(folder)


def _operations(api: FastAPI) -> list[dict[str, Any]]:
    """The documented operations, for the server-rendered docs page (no external JS, so
    it works offline and under the strict Content-Security-Policy)."""
    found = []
    for path, item in api.openapi()["paths"].items():
        for method, op in item.items():
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                }
            )
    return found
