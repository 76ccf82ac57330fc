"""Request size limits, per-client rate limits on the public scan links, and streaming
uploads to disk.

Both middlewares are pure ASGI (bodies stream through untouched) and answer with the one
JSON error shape of :mod:`pulseloop.server.errors`.

* :class:`BodyLimit` caps EVERY request body by route (:meth:`BodyLimit.rule`), counting
  bytes as they arrive: a declared ``Content-Length`` over the limit is refused before a
  byte is read; a body that streams past it is refused (413) as soon as it does, so the
  server never holds more than the limit plus one chunk (a 1 GB body to the sign-in form
  costs 16 KiB). A body must also arrive within a deadline (408). ``/v1`` JSON is read whole
  (bounded) and checked by :mod:`pulseloop.server.json_guard` before any route code runs,
  so nothing is half-written; the video and trace stream on to :func:`stream_to_file` /
  ``read_body_limited``, which keep their own limits too.
* :class:`RateLimit` is a token bucket per client address on ``/s/...`` (the
  unauthenticated patient links): ``burst`` requests at once, refilled at ``rate_per_s``.
  Per process on purpose: with N server processes behind a load balancer a device gets up
  to N times the budget (docs/deploy.md has the measurement that chose this). The sign-in
  throttle, which guards secrets, is shared through the database instead
  (:class:`pulseloop.server.sessions.SignInThrottle`).
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulseloop.errors import InvalidRequest, LimitExceeded, PulseloopError, RateLimited
from pulseloop.server import json_guard
from pulseloop.server.errors import RequestTimeout, error_response

if TYPE_CHECKING:
    from pulseloop.store.sealed.files import SealedWriter

MAX_JSON_BYTES = 2 * 1024 * 1024
"""Largest ``/v1`` JSON request (an event body may be 1 MiB once encoded)."""
MAX_VIDEO_BYTES = 200 * 1024 * 1024
"""Largest video upload (60 s of 1080p phone video is about 100 MB)."""
MAX_FORM_BYTES = 16 * 1024
"""Largest body anywhere else: the dashboard's forms (an API key and a CSRF token)."""
MAX_REPORT_BYTES = 4 * 1024
"""Largest scan page report (``/progress``, ``/abandon``, ``/capturing``)."""
BODY_READ_TIMEOUT_S = 30.0
"""A JSON body, form or trace (4 MiB at most) must arrive within this."""
UPLOAD_READ_TIMEOUT_S = 600.0
"""A video upload (200 MB at most, server to server) must arrive within this."""
SCAN_RATE_PER_S = 2.0
SCAN_BURST = 60
_MAX_BUCKETS = 10_000
_CHUNK_LIMIT_HINT = "send a smaller body"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body streams past the limit (FastAPI re-raises an
    HTTPException from body parsing as it is; anything else would become a 400)."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(413, _too_large(limit_bytes).args[0])


class BodyTimeout(HTTPException):
    """Raised from ``receive`` when a body has not arrived within its deadline."""

    def __init__(self, deadline_s: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {deadline_s:g} s; send it at once "
            "(a slow network: send a smaller body)",
        )


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


@dataclass(frozen=True, slots=True)
class BodyRule:
    """How much body a route may receive, how long it may take, and whether it is JSON
    that :mod:`pulseloop.server.json_guard` checks before any route code sees it."""

    limit_bytes: int
    deadline_s: float
    json: bool = False


class BodyLimit:
    """Caps every request body as it streams, by route (see the module docstring).

    Every path has a rule: ``/v1`` JSON ``max_json_bytes`` (read whole, at most that, and
    checked by :func:`json_guard.loads`), the video upload ``max_video_bytes``, the trace
    ``max_trace_bytes``, the scan page's reports :data:`MAX_REPORT_BYTES`, and anything else
    (the dashboard's forms included) :data:`MAX_FORM_BYTES`. A body must also arrive within
    its deadline (408), so a client that trickles bytes cannot hold a request open.
    The unread rest of a refused body is discarded by uvicorn, and the connection closed
    soon after by :class:`pulseloop.server.protocol.TimedH11Protocol`.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_JSON_BYTES,
        *,
        max_video_bytes: int = MAX_VIDEO_BYTES,
        max_trace_bytes: int = 4 * 1024 * 1024,
        read_timeout_s: float = BODY_READ_TIMEOUT_S,
        upload_timeout_s: float = UPLOAD_READ_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_video_bytes = max_video_bytes
        self.max_trace_bytes = max_trace_bytes
        self.read_timeout_s = read_timeout_s
        self.upload_timeout_s = upload_timeout_s

    def rule(self, path: str) -> BodyRule:
        """The body rule of ``path``."""
        if _is_video_upload(path):
            return BodyRule(self.max_video_bytes, self.upload_timeout_s)
        if path.startswith("/v1/"):
            return BodyRule(self.max_bytes, self.read_timeout_s, json=True)
        if path.startswith("/s/") and path.endswith("/trace"):
            return BodyRule(self.max_trace_bytes, self.read_timeout_s)
        if path.startswith("/s/"):
            return BodyRule(MAX_REPORT_BYTES, self.read_timeout_s)
        return BodyRule(MAX_FORM_BYTES, self.read_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.rule(scope.get("path", ""))
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or len(value) > 18):
                await _send_error(send, InvalidRequest(_BAD_LENGTH, "content-length"), {})
                return
            if name == b"content-length" and int(value) > rule.limit_bytes:
                await _send_error(send, _too_large(rule.limit_bytes), {})
                return
        reader = _CountedBody(receive, rule)
        if not rule.json:
            await self.app(scope, reader.receive, send)
            return
        try:  # read whole (bounded), check, then replay to the route
            body = await reader.read_all()
            if body.strip():
                _check_json(body)
        except (BodyTooLarge, BodyTimeout) as exc:
            await _send_error(send, _as_error(exc), {})
            return
        except InvalidRequest as exc:
            await _send_error(send, exc, {})
            return
        await self.app(scope, _replay(body, receive), send)


_BAD_LENGTH = "Content-Length must be a number of bytes; send the body's true length"


def _check_json(body: bytes) -> None:
    """Refuse hazards (json_guard); text that is not JSON is the route's to refuse."""
    try:
        json_guard.loads(body)
    except InvalidRequest:
        raise
    except ValueError:
        return


def _as_error(exc: HTTPException) -> PulseloopError:
    if isinstance(exc, BodyTimeout):
        return RequestTimeout(exc.detail)
    return LimitExceeded(exc.detail)


class _CountedBody:
    """``receive`` that counts body bytes and keeps the read deadline."""

    def __init__(self, receive: Receive, rule: BodyRule) -> None:
        self._receive = receive
        self._rule = rule
        self._seen = 0
        self._done = False
        self._deadline = asyncio.get_running_loop().time() + rule.deadline_s

    async def receive(self) -> Message:
        if self._done:  # the body is in: waiting for a disconnect has no deadline
            return await self._receive()
        remaining = self._deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self._receive(), max(remaining, 0.0))
        except TimeoutError:
            raise BodyTimeout(self._rule.deadline_s) from None
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._rule.limit_bytes:
                raise BodyTooLarge(self._rule.limit_bytes)
            self._done = not message.get("more_body", False)
        else:
            self._done = True
        return message

    async def read_all(self) -> bytes:
        chunks: list[bytes] = []
        while not self._done:
            message = await self.receive()
            chunks.append(message.get("body", b""))
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


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


async def stream_to_file(
    request: Request,
    limit_bytes: int,
    folder: Path | None = None,
    seal: Callable[[IO[bytes]], SealedWriter] | None = None,
) -> Path:
    """Write the request body to a new temporary file (0600), never holding it whole in
    memory; through ``seal`` (encrypted as it arrives) when given.

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
            sealer = None if seal is None else seal(handle)
            write = handle.write if sealer is None else sealer.write
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit_bytes:
                    raise _too_large(limit_bytes)
                write(chunk)
            if sealer is not None:
                sealer.finish()
        if size == 0:
            raise InvalidRequest("the request body is empty; send the video file", "body")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
