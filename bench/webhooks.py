"""Webhook delivery latency, and what idle run event streams cost.

Run it: ``.venv/bin/python bench/webhooks.py`` (``--backend postgres`` for PostgreSQL).
Real time, one process: an App with a worker, a receiver on 127.0.0.1 answering 200, and
the HTTP server on 127.0.0.1.

delivery  ``--runs`` one-step runs triggered at once, every one notifying one endpoint:
          latency = the receiver's arrival time minus the run's ``finished_at`` (the
          outbox row commits with it), p50/p99, and deliveries per second overall.
idle      ``--streams`` open ``GET /v1/runs/{id}/events`` streams on parked runs for
          ``--idle-s`` seconds: database queries the shared watcher made per second, and
          the process's CPU time per second of wall time while nothing happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from backends import Databases

from pulseloop import App, Event, Loop, Step
from pulseloop.keys import hash_api_key, new_api_key
from pulseloop.server.app import create_app
from pulseloop.server.serve import free_port, serving


class Quick(Loop):
    """One trivial step."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("one", lambda: 1)


class Parks(Loop):
    """Parks until told (for idle streams)."""

    async def run(self, event: Event, step: Step) -> Any:
        await step.do("ask", lambda: 1)
        return await step.wait_for_event("reply", type="reply", timeout="1 hour")


def receiver(arrivals: dict[str, float]) -> ThreadingHTTPServer:
    """A 127.0.0.1 server recording each run id's arrival time."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrivals[json.loads(body)["data"]["run_id"]] = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 256  # the default 5 drops bursts (then SYN retries take 1 s)

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def delivery(url: str, runs: int) -> None:
    arrivals: dict[str, float] = {}
    server = receiver(arrivals)
    host, port = server.server_address[:2]
    async with App([Quick], url, concurrency=100, poll_interval="50 milliseconds") as app:
        await app.webhooks.add(f"http://{host!s}:{port}/hook", events=["run.completed"])
        start = time.time()
        ids = [(await app.trigger("quick", {}, id=f"d-{i}")).id for i in range(runs)]
        while len(arrivals) < runs:
            await asyncio.sleep(0.05)
        elapsed = time.time() - start
        lags = []
        for run_id in ids:
            record = await app.run_record(run_id)
            assert record is not None and record.finished_at is not None
            lags.append((arrivals[run_id] - record.finished_at) * 1000)
        log = await app.webhooks.deliveries(limit=runs, attempts=True)
        posts = sorted(a.duration_ms for d in log for a in d.attempts)
        waits = sorted(
            (d.attempts[0].started_at - d.occurred_at).total_seconds() * 1000 for d in log
        )
        print(
            f"          POST p50 {statistics.median(posts):.0f} ms; finished -> claimed "
            f"p50 {statistics.median(waits):.0f} ms; runs took {elapsed:.1f} s"
        )
    server.shutdown()
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(
        f"delivery  {runs} runs: finished -> received p50 {statistics.median(lags):.0f} ms, "
        f"p99 {p99:.0f} ms; {runs / elapsed:.0f} deliveries/s end to end"
    )


async def idle(url: str, streams: int, idle_s: float) -> None:
    async with App([Parks], url, concurrency=streams, poll_interval="50 milliseconds") as app:
        await app.store.ensure_org(app.org, 0.0)
        key_id, key = new_api_key()
        await app.store.create_key(app.org, key_id, hash_api_key(key), 0.0)
        for i in range(streams):
            await app.trigger("parks", {}, id=f"p-{i}")
        for i in range(streams):
            while (await app.get_run(f"p-{i}")).status != "waiting":
                await asyncio.sleep(0.05)
        asgi = create_app(app)
        watcher = asgi.state.run_watcher
        headers = {"Authorization": f"Bearer {key}"}
        limits = httpx.Limits(max_connections=streams + 10)
        async with (
            serving(asgi, port=free_port(), log_level="warning") as base,
            httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=None) as http,
            contextlib.AsyncExitStack() as stack,
        ):
            for i in range(streams):
                response = await stack.enter_async_context(
                    http.stream("GET", f"/v1/runs/p-{i}/events")
                )
                lines = response.aiter_lines()
                while "waiting" not in await anext(lines):  # the stream is live
                    pass
            polls, cpu, wall = watcher.polls, _cpu(), time.time()
            await asyncio.sleep(idle_s)
            polls, cpu, wall = watcher.polls - polls, _cpu() - cpu, time.time() - wall
    print(
        f"idle      {streams} open streams for {wall:.1f} s: {polls / wall:.1f} queries/s "
        f"(all streams together), process CPU {100 * cpu / wall:.1f}% of one core"
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--idle-s", type=float, default=10.0)
    args = parser.parse_args()
    databases = Databases(args.backend)
    try:
        print(databases.describe())
        asyncio.run(delivery(databases.url("delivery"), args.runs))
        asyncio.run(idle(databases.url("idle"), args.streams, args.idle_s))
    finally:
        databases.close()


if __name__ == "__main__":
    main()
