"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request and
answers 500 to the first ``failures`` of them, 200 after. The first ``hold`` requests
are not answered until :meth:`Receiver.release` (a receiver stuck mid-delivery)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Requests land in :attr:`received` and wake :meth:`next`."""

    def __init__(self, server: ThreadingHTTPServer, failures: int, hold: int = 0) -> None:
        self.server = server
        self.failures = failures
        self.hold = hold
        self.released = threading.Event()
        self.received: list[Received] = []
        self._queue: asyncio.Queue[Received] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def _got(self, request: Received) -> int:
        self.received.append(request)
        self._loop.call_soon_threadsafe(self._queue.put_nowait, request)
        if len(self.received) <= self.hold:
            self.released.wait()
        return 500 if len(self.received) <= self.failures else 200

    def release(self) -> None:
        """Let held requests be answered (to a sender that may be gone by then)."""
        self.released.set()

    async def next(self) -> Received:
        """The next request (waits for it)."""
        return await self._queue.get()


@contextmanager
def receiver(failures: int = 0, hold: int = 0) -> Iterator[Receiver]:
    """Serve on 127.0.0.1 (an ephemeral port) until the block ends."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            status = holder[0]._got(got)
            with contextlib.suppress(OSError):  # a held sender may have been killed
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the default 5 drops bursts (then SYN retries take 1 s)

    server = Server(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server, failures, hold))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        holder[0].release()
        server.shutdown()
        server.server_close()
        thread.join()
