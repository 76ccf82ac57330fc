"""The JSON API under ``/v1``: runs and scans of the caller's organization.

    POST /v1/loops/{loop}/runs          trigger (idempotent with an ``id``)      -> 202 run
    GET  /v1/runs                       list: loop, status, time; cursor pages   -> 200 page
    GET  /v1/runs/{id}                  a run with its step timeline             -> 200 run
    POST /v1/runs/{id}/{cancel|pause|resume|retry}                               -> 200 run
    POST /v1/runs/{id}/restart          {"from_step": ...}                       -> 200 run
    GET  /v1/scans/{id}                 a scan's state and result                -> 200 scan
    POST /v1/scans/{id}/video           a face video as the scan's upload        -> 202 scan

Schedules (``/v1/schedules``) are in ``schedules_api.py``.

Isolation: every handler acts through ``caller`` (the
:class:`~pulseloop.client.OrgClient` of the key's organization), and every store read is
scoped by that organization, so another organization's run or scan is "not found" (404),
exactly like one that does not exist: never a 403 that confirms it.
"""

from __future__ import annotations

import base64
import binascii
import json
import pathlib
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request

from pulseloop.client import OrgClient
from pulseloop.connectors.facial_scan import ScanService
from pulseloop.errors import InvalidRequest, LoopNotFound, ScanNotFound
from pulseloop.runs import build_run
from pulseloop.server import json_guard
from pulseloop.server.api_models import (
    ErrorOut,
    RestartIn,
    RunOut,
    RunPage,
    RunStatus,
    ScanOut,
    TriggerIn,
)
from pulseloop.server.auth import caller
from pulseloop.server.limits import stream_to_file
from pulseloop.store.sealed.files import SealedWriter, file_key

Caller = Annotated[OrgClient, Depends(caller)]
RunId = Annotated[str, Path(min_length=1, max_length=200, description="The run's id.")]
ScanId = Annotated[str, Path(min_length=1, max_length=200, description="The scan's id.")]

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        401: "no valid API key",
        404: "no such object in the caller's organization",
        409: "the action does not fit the object's state",
        413: "the request body is over its limit",
        422: "the request cannot be read",
    }.items()
}


def encode_cursor(created_at: float, run_id: str) -> str:
    """An opaque cursor: the last run of a page, in (created_at, id) order."""
    return base64.urlsafe_b64encode(json.dumps([created_at, run_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Inverse of :func:`encode_cursor` (InvalidRequest for anything else)."""
    try:
        created_at, run_id = json_guard.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(created_at, bool) or not isinstance(created_at, int | float):
            raise TypeError(created_at)
        if not isinstance(run_id, str) or not 0 < len(run_id) <= 200:
            raise TypeError(run_id)
        at = float(created_at)  # json_guard refused inf, NaN and absurd lengths
        if not 0 <= at < _MAX_EPOCH_S:
            raise ValueError(at)
        return at, run_id
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeError) as exc:
        raise InvalidRequest(
            "cursor is not one this API returned; pass next_cursor from the previous page",
            "cursor",
        ) from exc


_MAX_EPOCH_S = 253402300800.0  # 10000-01-01: no run was created later


def build_router(max_video_bytes: int, upload_dir: pathlib.Path | None = None) -> APIRouter:
    """The ``/v1`` routes; ``max_video_bytes`` caps the video upload, which is written to
    ``upload_dir`` (None: the system's temporary folder)."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["v1"])

    @router.post("/loops/{loop}/runs", status_code=202, response_model=RunOut)
    async def trigger(
        pulse: Caller,
        loop: Annotated[str, Path(min_length=1, max_length=200)],
        request: Annotated[TriggerIn, Body()],
    ) -> RunOut:
        """Start a run of ``loop`` with ``body``; an ``id`` that exists returns that run."""
        if loop not in pulse.loops:
            known = ", ".join(sorted(pulse.loops)) or "none"
            raise LoopNotFound(f"this server serves no loop named {loop!r}; it serves: {known}")
        run = await pulse.trigger(
            loop, request.body, id=request.id, priority=request.priority,
            debounce=request.debounce, debounce_key=request.debounce_key,
            dedupe=request.dedupe, dedupe_key=request.dedupe_key,
        )  # fmt: skip
        return RunOut.of(run)

    @router.get("/runs", response_model=RunPage)
    async def list_runs(
        pulse: Caller,
        loop: Annotated[str | None, Query(max_length=200)] = None,
        status: RunStatus | None = None,
        created_after: Annotated[str | None, Query(description="inclusive", **_TIME)] = None,
        created_before: Annotated[str | None, Query(description="exclusive", **_TIME)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> RunPage:
        """Runs newest first, filtered; follow ``next_cursor`` for older ones."""
        before: float | None = None
        before_id: str | None = None
        if cursor is not None:
            before, before_id = decode_cursor(cursor)
        if created_before is not None:
            bound = _epoch(created_before, "created_before")
            if before is None or bound <= before:
                before, before_id = bound, None
        since = None if created_after is None else _epoch(created_after, "created_after")
        records = await pulse.run_records(
            loop=loop, status=status, limit=limit + 1, before=before, before_id=before_id,
            since=since,
        )  # fmt: skip
        page = records[:limit]
        more = len(records) > limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
        return RunPage(runs=[RunOut.of(build_run(r)) for r in page], next_cursor=next_cursor)

    @router.get("/runs/{run_id}", response_model=RunOut)
    async def get_run(pulse: Caller, run_id: RunId) -> RunOut:
        """The run with its steps: attempts, timings, errors and pending waits."""
        return RunOut.of(await pulse.get_run(run_id), steps=True)

    @router.post("/runs/{run_id}/cancel", response_model=RunOut)
    async def cancel(pulse: Caller, run_id: RunId) -> RunOut:
        """Cancel an unfinished run; nothing more of it runs."""
        return RunOut.of(await pulse.cancel(run_id))

    @router.post("/runs/{run_id}/pause", response_model=RunOut)
    async def pause(pulse: Caller, run_id: RunId) -> RunOut:
        """Pause a run; a running one stops after its current step is recorded."""
        return RunOut.of(await pulse.pause(run_id))

    @router.post("/runs/{run_id}/resume", response_model=RunOut)
    async def resume(pulse: Caller, run_id: RunId) -> RunOut:
        """Resume a paused run."""
        return RunOut.of(await pulse.resume(run_id))

    @router.post("/runs/{run_id}/retry", response_model=RunOut)
    async def retry(pulse: Caller, run_id: RunId) -> RunOut:
        """Retry a failed run: finished steps replay, the failed step runs again."""
        return RunOut.of(await pulse.retry(run_id))

    @router.post("/runs/{run_id}/restart", response_model=RunOut)
    async def restart(pulse: Caller, run_id: RunId, request: RestartIn) -> RunOut:
        """Forget ``from_step`` and every later step; run on from there."""
        return RunOut.of(await pulse.restart(run_id, request.from_step))

    @router.get("/scans/{scan_id}", response_model=ScanOut)
    async def get_scan(pulse: Caller, scan_id: ScanId) -> ScanOut:
        """A scan's state, and its vitals and quality once analysed."""
        record = await pulse.get_scan(scan_id)
        if record is None:
            raise ScanNotFound(f"no scan {scan_id!r} in this organization; check the id")
        return ScanOut.of(record)

    @router.post(
        "/scans/{scan_id}/video",
        status_code=202,
        response_model=ScanOut,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                    "format": "binary"}}},
            }
        },
    )  # fmt: skip
    async def upload_video(pulse: Caller, scan_id: ScanId, request: Request) -> ScanOut:
        """Send a face video (WebM, MP4, Y4M) instead of the page's colour trace.

        The body is streamed to disk (never held in memory) up to the size limit; the scan
        moves to ``processing`` and the vitals engine analyses the video in the background.
        Poll ``GET /v1/scans/{id}`` for the outcome.
        """
        service: ScanService = request.app.state.scan_service
        record = await service.open_for_upload(pulse, scan_id)  # refuse before reading a byte
        key = await file_key(pulse.runtime.store, record.org)  # sealed as it streams in
        seal = None if key is None else partial(SealedWriter, key=key, org=record.org,
                                                scan_id=record.id)  # fmt: skip
        path = await stream_to_file(request, max_video_bytes, upload_dir, seal)
        return ScanOut.of(await service.accept_video(record, path))

    return router


_TIME: dict[str, Any] = {"max_length": 64, "json_schema_extra": {"format": "date-time"}}


def _epoch(text: str, field: str) -> float:
    """An RFC 3339 time with its zone, as epoch seconds (InvalidRequest otherwise)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{field} {text!r} is not a time; use RFC 3339, e.g. 2026-01-31T12:00:00Z", field
        ) from None
    if value.tzinfo is None:
        raise InvalidRequest(f"{field} needs a time zone, e.g. 2026-01-31T12:00:00Z", field)
    return value.timestamp()
