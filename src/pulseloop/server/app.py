"""The ASGI app factory: ``create_app(app)`` for an open :class:`pulseloop.App`.

    from pulseloop.server.app import create_app
    from pulseloop.server.serve import serve
    async with App(loops=[...]) as pulse:
        await serve(create_app(pulse), host="127.0.0.1", port=8000)   # token-safe logs

Routes live in their own modules (``scan_pages`` now; the ``/v1`` API and the dashboard
later); this module only wires them, the static files, the security headers and the one
error handler.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from pulseloop.app import App
from pulseloop.connectors.facial_scan import MAX_TRACE_BYTES, ScanService
from pulseloop.errors import PulseloopError
from pulseloop.server.errors import pulseloop_error_handler
from pulseloop.server.pages import STATIC_DIR
from pulseloop.server.scan_pages import build_router
from pulseloop.server.scan_service import ScanPort
from pulseloop.server.security import SecurityHeaders

# Python < 3.12 may not know .wasm; browsers compile it fastest when served as such.
mimetypes.add_type("application/wasm", ".wasm")


def create_app(
    app: App,
    *,
    scan_service: ScanPort | None = None,
    max_trace_bytes: int | None = None,
) -> FastAPI:
    """The HTTP app for ``app`` (already open); ``scan_service`` and the limit are for tests."""
    service = scan_service if scan_service is not None else ScanService(app)
    limit = MAX_TRACE_BYTES if max_trace_bytes is None else max_trace_bytes

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await service.drain()  # finish analyses in flight before the App closes

    api = FastAPI(
        title="pulseloop",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    api.state.pulseloop = app
    api.state.scan_service = service
    api.add_middleware(SecurityHeaders)
    api.add_exception_handler(PulseloopError, pulseloop_error_handler)
    api.include_router(build_router(service, max_trace_bytes=limit))
    api.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return api
