"""``GET /v1/runs/{id}/events``: a run's events as server-sent events, to its end.

    event: status   data: {"status": "running", ...}          id: <step cursor>
    event: step     data: {"name": ..., "seq": 3, ...}         id: 3
    event: end      data: {"status": "completed", ...}         (then the stream closes)

Ids are the step cursor: the highest step ``seq`` sent so far. A client that reconnects
with ``Last-Event-ID`` gets the run's current status, then only the steps after that
cursor. Steps are sent in ``seq`` order; a step of a concurrent branch recorded after a
later-numbered one has already been sent falls before the cursor and is not re-sent on
a resume (read ``GET /v1/runs/{id}`` for the full timeline). Events carry names,
statuses and times, never step outputs: those stay behind the audited run read.

Design record. Considered: a database connection per stream blocked on LISTEN (100
streams hold 100 connections of the pool), and each stream polling the run (100 idle
streams cost 100 queries per interval). Chosen: one :class:`RunWatcher` per server
process polls every watched run in a single query per interval (status, update time,
step and wait counts), only while someone watches, and wakes the streams whose run
changed; only those read the run's detail. An idle stream is a task waiting on an
``asyncio.Event`` plus a keep-alive comment every :data:`KEEPALIVE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import StreamingResponse

from pulseloop.client import OrgClient
from pulseloop.server.api import ERRORS
from pulseloop.server.auth import caller
from pulseloop.store.base import TERMINAL_STATUSES, RunDetail
from pulseloop.store.sealed.keyring import PayloadSql

log = logging.getLogger(__name__)

Caller = Annotated[OrgClient, Depends(caller)]
RunId = Annotated[str, Path(min_length=1, max_length=200, description="The run's id.")]
POLL_S = 0.25
"""How often the shared watcher reads the watched runs (one query for all of them)."""
KEEPALIVE_S = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""
_CHUNK = 200
"""Runs per watcher query (two parameters each)."""

Key = tuple[str, str]
"""(org, run id)."""


class RunWatcher:
    """Polls the runs someone watches, all in one query per interval, and wakes the
    streams of runs that changed."""

    def __init__(self, store: PayloadSql, poll_s: float = POLL_S) -> None:
        self.store = store
        self.poll_s = poll_s
        self.polls = 0
        """Queries made so far: one per pass for up to 200 watched runs."""
        self.passes = 0
        """Passes completed so far (one per interval while anyone watches)."""
        self._watchers: dict[Key, set[asyncio.Event]] = {}
        self._seen: dict[Key, tuple[Any, ...]] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watch(self, org: str, run_id: str) -> Any:
        """An event set whenever the run may have changed, while the block runs."""
        key = (org, run_id)
        event = asyncio.Event()
        self._watchers.setdefault(key, set()).add(event)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="pulseloop-run-watcher")
        try:
            yield event
        finally:
            found = self._watchers.get(key)
            if found is not None:
                found.discard(event)
                if not found:
                    del self._watchers[key]
                    self._seen.pop(key, None)

    async def stop(self) -> None:
        """Stop polling (server shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while self._watchers:
            try:
                await self._poll()
            except Exception:  # keep streams open; the next interval reads again
                log.exception("reading watched runs failed; retrying")
            await asyncio.sleep(self.poll_s)

    async def _poll(self) -> None:
        keys = list(self._watchers)
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            match = " OR ".join("(r.org = ? AND r.id = ?)" for _ in chunk)
            params = tuple(v for key in chunk for v in key)
            (rows,) = await self.store.payload_sql(
                [
                    (
                        "SELECT r.org, r.id, r.status, r.updated_at, r.finished_at, "
                        "(SELECT count(*) FROM steps s WHERE s.run_id = r.run_key), "
                        "(SELECT count(*) FROM waits w WHERE w.run_id = r.run_key) "
                        f"FROM runs r WHERE {match}",
                        params,
                    )
                ]
            )
            self.polls += 1
            for row in rows:
                key, state = (row[0], row[1]), tuple(row[2:])
                if self._seen.get(key) != state:
                    self._seen[key] = state
                    for event in self._watchers.get(key, ()):
                        event.set()
        self.passes += 1  # counted once done, like polls: a reader never sees half a pass


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


def _frame(event: str, data: dict[str, Any], event_id: int | None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _cursor(last_event_id: str | None) -> int:
    """The step cursor a reconnecting client names (-1: from the start)."""
    if last_event_id is None or not last_event_id.strip().lstrip("-").isdigit():
        return -1
    return int(last_event_id.strip())


async def stream(
    watcher: RunWatcher, pulse: OrgClient, run_id: str, cursor: int
) -> AsyncIterator[str]:
    """The run's events from ``cursor`` on, until it reaches a terminal status."""
    store = pulse.runtime.store
    sent_status: str | None = None
    with watcher.watch(pulse.org, run_id) as changed:
        while True:
            changed.clear()
            detail: RunDetail | None = await store.get_run_detail(pulse.org, run_id)
            if detail is None:  # purged or gone: end the stream
                yield _frame("end", {"run_id": run_id, "status": None}, None)
                return
            run = detail.run
            for step in sorted(detail.steps, key=lambda s: s.seq):
                if step.seq > cursor:
                    cursor = step.seq
                    yield _frame(
                        "step",
                        {
                            "run_id": run.id, "name": step.name, "kind": step.kind,
                            "seq": step.seq, "status": step.status, "attempts": step.attempts,
                            "started_at": _iso(step.started_at),
                            "finished_at": _iso(step.finished_at),
                        },
                        cursor,
                    )  # fmt: skip
            if run.status != sent_status:
                sent_status = run.status
                data = {
                    "run_id": run.id, "status": run.status,
                    "updated_at": _iso(run.updated_at), "finished_at": _iso(run.finished_at),
                }  # fmt: skip
                if run.status in TERMINAL_STATUSES:
                    yield _frame("end", data, cursor)
                    return
                yield _frame("status", data, cursor)
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    await changed.wait()
            except TimeoutError:
                yield ": keep-alive\n\n"


def build_router() -> APIRouter:
    """The ``/v1/runs/{id}/events`` route."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["v1"])

    @router.get(
        "/runs/{run_id}/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def run_events(
        request: Request,
        pulse: Caller,
        run_id: RunId,
        last_event_id: Annotated[str | None, Header(max_length=40)] = None,
    ) -> StreamingResponse:
        """Follow a run live: its status, each step recorded, and its end, as
        server-sent events; reconnect with ``Last-Event-ID`` to resume."""
        await pulse.get_run(run_id)  # 404 for another organization's; audited as a read
        watcher: RunWatcher = request.app.state.run_watcher
        return StreamingResponse(
            stream(watcher, pulse, run_id, _cursor(last_event_id)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router
