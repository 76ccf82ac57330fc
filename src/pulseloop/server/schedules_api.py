"""The ``/v1/schedules`` routes: recurring triggers of the caller's organization.

    POST   /v1/schedules                 create, or replace the one with that ``id`` -> 201
    GET    /v1/schedules                 list, by id; ``?loop=`` filters            -> 200
    GET    /v1/schedules/{id}            one, with its next fire times              -> 200
    POST   /v1/schedules/{id}/pause      stop firing until resumed                  -> 200
    POST   /v1/schedules/{id}/resume     fire again from the next tick              -> 200
    DELETE /v1/schedules/{id}            delete (runs it started stay)              -> 204

Isolation as in ``api.py``: every call acts through ``caller`` (the key's organization),
so another organization's schedule is "not found" (404), never a 403 that confirms it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from pulseloop.client import OrgClient
from pulseloop.errors import LoopNotFound
from pulseloop.server.api import ERRORS
from pulseloop.server.api_models import ScheduleIn, ScheduleOut, SchedulePage
from pulseloop.server.auth import caller

Caller = Annotated[OrgClient, Depends(caller)]
ScheduleId = Annotated[str, Path(min_length=1, max_length=200, description="The schedule's id.")]
UPCOMING = 5
"""Next fire times shown per schedule."""


def build_router() -> APIRouter:
    """The ``/v1/schedules`` routes."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["v1"])

    @router.post("/schedules", status_code=201, response_model=ScheduleOut)
    async def create(pulse: Caller, request: Annotated[ScheduleIn, Body()]) -> ScheduleOut:
        """Start a run of ``loop`` at every tick of ``cron`` in ``tz``; an existing ``id``
        is replaced in place (its pause state and last fire are kept)."""
        if request.loop not in pulse.loops:
            known = ", ".join(sorted(pulse.loops)) or "none"
            raise LoopNotFound(
                f"this server serves no loop named {request.loop!r}; it serves: {known}"
            )
        created = await pulse.schedules.create(
            request.loop, cron=request.cron, tz=request.tz, body=request.body, id=request.id,
            missed=request.missed, start=request.start, end=request.end, upcoming=UPCOMING,
        )  # fmt: skip
        return ScheduleOut.of(created)  # one call: one audit row per request

    @router.get("/schedules", response_model=SchedulePage)
    async def list_schedules(
        pulse: Caller, loop: Annotated[str | None, Query(max_length=200)] = None
    ) -> SchedulePage:
        """The organization's schedules, by id, each with its next fire times."""
        found = await pulse.schedules.list(loop=loop, upcoming=UPCOMING)
        return SchedulePage(schedules=[ScheduleOut.of(s) for s in found])

    @router.get("/schedules/{schedule_id}", response_model=ScheduleOut)
    async def get(pulse: Caller, schedule_id: ScheduleId) -> ScheduleOut:
        """One schedule with its next fire times."""
        return ScheduleOut.of(await pulse.schedules.get(schedule_id, upcoming=UPCOMING))

    @router.post("/schedules/{schedule_id}/pause", response_model=ScheduleOut)
    async def pause(pulse: Caller, schedule_id: ScheduleId) -> ScheduleOut:
        """Stop firing until resumed; ticks while paused are not caught up."""
        return ScheduleOut.of(await pulse.schedules.pause(schedule_id, upcoming=UPCOMING))

    @router.post("/schedules/{schedule_id}/resume", response_model=ScheduleOut)
    async def resume(pulse: Caller, schedule_id: ScheduleId) -> ScheduleOut:
        """Fire again from the first tick after now."""
        return ScheduleOut.of(await pulse.schedules.resume(schedule_id, upcoming=UPCOMING))

    @router.delete("/schedules/{schedule_id}", status_code=204, response_class=Response)
    async def delete(pulse: Caller, schedule_id: ScheduleId) -> Response:
        """Delete the schedule; the runs it started are left alone."""
        await pulse.schedules.delete(schedule_id)
        return Response(status_code=204)

    return router
