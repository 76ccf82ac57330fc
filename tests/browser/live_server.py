"""A real pulseloop server on 127.0.0.1 for browser tests: uvicorn in a background thread.

The App, its worker and uvicorn share one event loop in that thread; tests (plain sync
functions driving Playwright) reach the App through :meth:`LiveServer.call`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import uvicorn

from pulseloop import App, Event, Loop, Step
from pulseloop.server.app import create_app
from pulseloop.server.serve import uvicorn_log_config
from pulseloop.testing import FakeClock
from tests.helpers import until_status

T = TypeVar("T")
STEP = "Generate a health scan"


class BrowserScan(Loop):
    """Provision a scan, park until the patient's page delivers it, return it."""

    name = "browser-scan"

    async def run(self, event: Event, step: Step) -> Any:
        async def provision(ctx: Any) -> Any:
            return await ctx.FACIAL_SCAN.create(
                expires_in=event.body["expires_in"], metadata={"patientId": "p-browser"}
            )

        created = await step.do(STEP, provision)
        scan = await step.wait_for_scan(timeout="10 minutes")
        return {"created": created, "scan": scan}


class LiveServer:
    """``create_app(App)`` under uvicorn on a free loopback port, until :meth:`stop`."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.clock = FakeClock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._app: App | None = None
        self._thread = threading.Thread(target=self._main, name="live-server", daemon=True)

    def start(self) -> LiveServer:
        """Start serving; return once uvicorn accepts connections."""
        self._thread.start()
        if not self._ready.wait(timeout=30) or self._failure is not None:
            raise RuntimeError(f"the live server did not start: {self._failure!r}")
        return self

    def stop(self) -> None:
        """Stop uvicorn (which drains scan analyses) and close the App."""
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    @property
    def app(self) -> App:
        """The App being served (use it only through :meth:`call`)."""
        assert self._app is not None
        return self._app

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the server's event loop and return its result."""
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=timeout)

    def provision(self, expires_in: float = 600) -> tuple[str, str]:
        """Trigger a run that provisions a scan and parks on it: ``(run id, scan path)``."""

        async def go() -> tuple[str, str]:
            run = await self.app.trigger("browser-scan", {"expires_in": expires_in})
            await until_status(self.app, run.id, "waiting")
            created = (await self.app.get_run(run.id)).step(STEP).output
            return run.id, "/s/" + created["url"].rsplit("/s/", 1)[1]

        return self.call(go())

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with App(
            [BrowserScan], self.db_url, clock=self.clock, public_url=self.base_url,
            poll_interval="50 milliseconds",
        ) as app:  # fmt: skip
            self._app = app
            config = uvicorn.Config(
                create_app(app), log_config=uvicorn_log_config(), log_level="warning",
                access_log=False, lifespan="on",
            )  # fmt: skip
            self._server = uvicorn.Server(config)
            serving = asyncio.create_task(self._server.serve(sockets=[self._socket]))
            while not self._server.started and not serving.done():
                await asyncio.sleep(0.02)
            self._ready.set()
            await serving
