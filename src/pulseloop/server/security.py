"""Security headers on every response, and ``no-store`` on the token pages.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so request bodies stream through
untouched: the trace upload counts its bytes as they arrive.

The Content-Security-Policy allows nothing but this origin and no inline script or style.
``'wasm-unsafe-eval'`` lets MediaPipe compile its WebAssembly face detector. The capture
page alone also needs ``'unsafe-eval'``: the Emscripten/embind glue of MediaPipe's face
detection release (0.4.1657300184) builds its call wrappers with ``new Function`` and
throws an EvalError without it (measured in Chromium 156). Considered and deferred: a
sandboxed, token-less iframe that runs the detector under its own policy, so the page
holding the token keeps the strict one. Every other response (JSON, error pages, static
files) gets the strict policy; a route that needs another sets its own header, which the
middleware then leaves alone.
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
            "worker-src 'self' blob:",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = _policy("'self' 'wasm-unsafe-eval'")
CAPTURE_PAGE_POLICY = _policy("'self' 'wasm-unsafe-eval' 'unsafe-eval'")

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


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS`; ``Cache-Control: no-store`` under ``/s/``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = str(scope.get("path", "")).startswith(TOKEN_PATH_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)  # a route's own policy wins
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
