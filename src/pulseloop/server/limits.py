"""Request size limits, per-client rate limits on the public scan links, and streaming
uploads to disk.

Both middlewares are pure ASGI (bodies stream through untouched) and answer with the one
JSON error shape of :mod:`pulseloop.server.errors`.

* :class:`BodyLimit` caps ``/v1`` request bodies (JSON) at ``max_bytes``: a declared
  ``Content-Length`` over it is refused before a byte is read; a body that streams past it
  fails the request (413) before any route code runs, so nothing is half-written. Routes
  that take files (the video upload) or have their own limit (``/s/<token>/trace``) are
  not capped here: they stream with :func:`stream_to_file` / ``read_body_limited``.
* :class:`RateLimit` is a token bucket per client address on ``/s/...`` (the
  unauthenticated patient links): ``burst`` requests at once, refilled at ``rate_per_s``.
  In-process: with several server processes each has its own buckets (document the sum).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulseloop.errors import InvalidRequest, LimitExceeded, PulseloopError, RateLimited
from pulseloop.server.errors import error_response

MAX_JSON_BYTES = 2 * 1024 * 1024
"""Largest ``/v1`` JSON request (an event body may be 1 MiB once encoded)."""
MAX_VIDEO_BYTES = 200 * 1024 * 1024
"""Largest video upload (60 s of 1080p phone video is about 100 MB)."""
SCAN_RATE_PER_S = 2.0
SCAN_BURST = 60
_MAX_BUCKETS = 10_000
_CHUNK_LIMIT_HINT = "send a smaller body"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body streams past the limit (FastAPI re-raises an
    HTTPException from body parsing as it is; anything else would become a 400)."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(413, _too_large(limit_bytes).args[0])


def _too_large(limit_bytes: int) -> LimitExceeded:
    return LimitExceeded(
        f"the request body is larger than {limit_bytes:,} bytes; {_CHUNK_LIMIT_HINT}"
    )


def _is_video_upload(path: str) -> bool:
    return path.startswith("/v1/scans/") and path.endswith("/video")


async def _send_error(send: Send, exc: PulseloopError, headers: dict[str, str]) -> None:
    response = error_response(exc)
    response.headers.update(headers)
    await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


class BodyLimit:
    """Refuses ``/v1`` request bodies over ``max_bytes`` with 413 ``limit_exceeded``."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_JSON_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or _is_video_upload(path):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _send_error(send, _too_large(self.max_bytes), {})
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


class RateLimit:
    """A token bucket per client address on paths under ``prefix`` (429 when empty)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str = "/s/",
        rate_per_s: float = SCAN_RATE_PER_S,
        burst: int = SCAN_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def take(self, address: str) -> float:
        """Spend a token for ``address``; 0 if allowed, else seconds until one is free."""
        now = self.clock()
        tokens, at = self._buckets.get(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate_per_s)
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            return (1 - tokens) / self.rate_per_s
        if len(self._buckets) >= _MAX_BUCKETS and address not in self._buckets:
            self._forget_full(now)
        self._buckets[address] = (tokens - 1, now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (they would start full anyway)."""
        for key, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate_per_s >= self.burst:
                del self._buckets[key]
        if len(self._buckets) >= _MAX_BUCKETS:  # all busy: forget the oldest
            oldest = min(self._buckets, key=lambda k: self._buckets[k][1])
            del self._buckets[oldest]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(self.prefix):
            client = scope.get("client")
            wait_s = self.take(client[0] if client else "unknown")
            if wait_s > 0:
                retry = max(1, math.ceil(wait_s))
                exc = RateLimited(
                    f"too many requests from this device; wait {retry} s and try again",
                    retry_after_s=retry,
                )
                await _send_error(send, exc, {"Retry-After": str(retry)})
                return
        await self.app(scope, receive, send)


async def stream_to_file(request: Request, limit_bytes: int, folder: Path | None = None) -> Path:
    """Write the request body to a new temporary file, never holding it whole in memory.

    Refuses (LimitExceeded, the file removed) a declared or streamed size over the limit.
    The caller owns the returned file and must delete it.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise _too_large(limit_bytes)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - handed to the caller
        prefix="pulseloop-upload-", suffix=".video", dir=folder, delete=False
    )
    path = Path(handle.name)
    try:
        with handle:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit_bytes:
                    raise _too_large(limit_bytes)
                handle.write(chunk)
        if size == 0:
            raise InvalidRequest("the request body is empty; send the video file", "body")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
