"""Security headers on every response, and ``no-store`` on everything but static files.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so request bodies stream through
untouched: the trace upload counts its bytes as they arrive.

The Content-Security-Policy allows nothing but this origin and no inline script or style,
and no eval of any kind: every page, the capture page included, gets
:data:`CONTENT_SECURITY_POLICY`. MediaPipe's face detection (0.4.1657300184) needs
``'wasm-unsafe-eval'`` to compile its detector and ``'unsafe-eval'`` because its
Emscripten/embind glue builds call wrappers with ``new Function`` (an EvalError without
it, measured in Chromium 156). So the detector runs in a Web Worker, ``static/
face-worker.js``, whose own response carries :data:`DETECTOR_WORKER_POLICY` with both
(a dedicated worker is governed by its script's policy, not its page's). The worker never
sees the link token: its URL is under ``/static/`` and the page posts it only frames.
Design record: a sandboxed iframe (opaque origin) was considered; it cannot load our
scripts and models without CORS and a looser ``Cross-Origin-Resource-Policy``, and a
same-origin iframe could read its parent's URL (the token). The worker has neither
problem. A route that needs another policy sets its own header, which the middleware then
leaves alone.

``Cache-Control: no-store`` goes on every response outside ``/static/``: ``/v1`` answers
carry patient data, ``/s/`` pages carry a token, and a 429 or 413 must not be replayed
by a cache.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _policy(script_src: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script_src}",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:",
            "connect-src 'self'",
            "worker-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = _policy("'self'")
DETECTOR_WORKER_PATH = "/static/face-worker.js"
DETECTOR_WORKER_POLICY = _policy("'self' 'wasm-unsafe-eval' 'unsafe-eval'")
"""The face detector's worker only (see the module docstring)."""

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=()",
}

TOKEN_PATH_PREFIX = "/s/"
CACHEABLE_PREFIX = "/static/"


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS`; ``Cache-Control: no-store`` outside ``/static/``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        no_store = not path.startswith(CACHEABLE_PREFIX)
        worker = path == DETECTOR_WORKER_PATH

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if worker:
                    headers["Content-Security-Policy"] = DETECTOR_WORKER_POLICY
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)  # a route's own policy wins
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
