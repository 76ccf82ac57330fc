"""Uvicorn's h11 protocol with the two timers it lacks: headers, and a refused body.

Uvicorn (0.54) arms a timer only between requests (``timeout_keep_alive``): a connection
that opens and sends nothing, or half a request line, or headers that never end, stays
open for ever (a probe held 500 such connections). :class:`TimedH11Protocol` closes a
connection whose request headers have not all arrived within ``header_timeout_s`` of its
first byte (or of its opening).

The second timer: when the app answers before reading the whole body (a 413, a 401 on an
upload), uvicorn keeps reading the rest and throws it away, for as long as the client sends
(a 1 GB refused body is 1 GB of reading). Closing at once would make the kernel reset the
connection, and the client might never read its 413; so the connection lingers
``linger_s`` for the client to read the answer and stop, then closes.

The body's own read deadline is kept per request by
:class:`pulseloop.server.limits.BodyLimit` (it knows each route's limit).

Design record: ``limit_concurrency`` alone was rejected (it answers 503 to everyone once
idle connections fill it); httptools' protocol is not used (the server pins ``h11``, pure
Python, so these hooks are the only place the timers need to live).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0
"""A request's line and headers must all arrive within this (a phone on 2G needs ~2 s)."""
LINGER_S = 5.0
"""After answering a request whose body was not read, close the connection after this."""


class TimedH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes connections stuck before or after a request."""

    header_timeout_s: float = HEADER_TIMEOUT_S
    linger_s: float = LINGER_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the header clock: a new connection must send a request in time."""
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop both timers."""
        for timer in (self._header_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Let h11 parse; keep the header clock running while headers are incomplete."""
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_header_timer()  # bytes of a request's head came, not all of it
        elif self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def on_response_complete(self) -> None:
        """Linger, then close, when the client is still sending a body nobody reads."""
        super().on_response_complete()
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self._linger_timer = self.loop.call_later(self.linger_s, self._close)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE:
            self._close()

    def _close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


def timed_protocol(header_timeout_s: float, linger_s: float = LINGER_S) -> type[H11Protocol]:
    """A :class:`TimedH11Protocol` with other timeouts (tests use short ones)."""
    return type(
        "TimedH11Protocol",
        (TimedH11Protocol,),
        {"header_timeout_s": header_timeout_s, "linger_s": linger_s},
    )
