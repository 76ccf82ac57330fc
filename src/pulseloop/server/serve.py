"""Running the app under uvicorn without ever writing a scan token to a log.

Uvicorn's access log prints each request's path, and ``/s/<token>`` paths carry the only
credential a patient has. :class:`RedactScanTokens` rewrites them to ``/s/<redacted>``;
:func:`uvicorn_log_config` installs it on the ``uvicorn.access`` logger, and
:func:`serve` uses that config, with the connection timers of
:mod:`pulseloop.server.protocol` (header timeout, linger after a refused body).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from pulseloop.errors import PulseloopError
from pulseloop.server.protocol import TimedH11Protocol

_TOKEN_IN_PATH = re.compile(r"/s/[^/?\s\"]+")
REDACTED_PATH = "/s/<redacted>"


def redact(text: str) -> str:
    """``text`` with every ``/s/<token>`` replaced by ``/s/<redacted>``."""
    return _TOKEN_IN_PATH.sub(REDACTED_PATH, text)


class RedactScanTokens(logging.Filter):
    """Removes scan tokens from a log record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """Uvicorn's default logging config with :class:`RedactScanTokens` on the access log."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": f"{__name__}.RedactScanTokens"}}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    for logger in ("uvicorn.access", "uvicorn.error"):
        config["loggers"][logger].setdefault("filters", []).append("redact_tokens")
    return config


KEEP_ALIVE_S = 5
"""An idle keep-alive connection is closed after this."""


def uvicorn_config(
    api: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    protocol: type[asyncio.Protocol] = TimedH11Protocol,
) -> uvicorn.Config:
    """A uvicorn config for ``api``: logs never contain a scan token, and connections
    that stall before, between or after requests are closed (docs/security.md).

    ``protocol`` is :class:`TimedH11Protocol` (header timeout and linger); tests pass one
    from :func:`~pulseloop.server.protocol.timed_protocol` with shorter timers.
    """
    return uvicorn.Config(
        api,
        host=host,
        port=port,
        log_level=log_level,
        log_config=uvicorn_log_config(),
        server_header=False,
        proxy_headers=False,
        http=protocol,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


async def serve(api: FastAPI, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``api`` until interrupted (on the running event loop)."""
    await uvicorn.Server(uvicorn_config(api, host=host, port=port)).serve()


class EmbeddedServer(uvicorn.Server):
    """Uvicorn inside a process that owns its signals (``pulseloop dev``, the demo).

    Plain ``Server.serve`` replaces SIGINT/SIGTERM handlers for its lifetime; here the
    embedding command handles them and stops the server itself.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signal handling to the embedding process."""
        yield


@contextlib.asynccontextmanager
async def serving(
    api: FastAPI, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> AsyncIterator[str]:
    """Serve ``api`` in the background for the duration of the block; yield its URL."""
    server = EmbeddedServer(uvicorn_config(api, host=host, port=port, log_level=log_level))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind
                task.result()
            raise PulseloopError(
                f"cannot serve HTTP on {host}:{port} (is the port in use?); choose another "
                "with --port"
            )
        await asyncio.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for demos and tests)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
