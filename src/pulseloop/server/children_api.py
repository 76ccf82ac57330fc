"""``GET /v1/runs/{id}/children``: a run's parent and the runs it started
(``step.run_loop``), at any depth. Ids, loops, statuses and times only: no payloads.

Isolation as in ``api.py``: read through ``caller``, so another organization's run is
"not found" (404), and a child is always in its parent's organization.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from pulseloop.client import OrgClient
from pulseloop.server.api import ERRORS
from pulseloop.server.auth import caller
from pulseloop.server.family_tree import tree
from pulseloop.store.base import ChildRun, RunFamily

Caller = Annotated[OrgClient, Depends(caller)]
RunId = Annotated[str, Path(min_length=1, max_length=200, description="The run's id.")]


class ChildOut(BaseModel):
    """One run below the asked-for run."""

    id: str
    loop: str
    status: str
    parent_run_id: str
    step: str
    """The parent's ``run_loop`` step that started it."""
    depth: int
    """1 for a child, 2 for a grandchild, ..."""
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, child: ChildRun, depth: int) -> ChildOut:
        """The API shape of one descendant."""
        return cls(
            id=child.id, loop=child.loop, status=child.status, parent_run_id=child.parent_id,
            step=child.step, depth=depth, created_at=_time(child.created_at),
            finished_at=None if child.finished_at is None else _time(child.finished_at),
        )  # fmt: skip


class FamilyOut(BaseModel):
    """A run's place in its tree."""

    run_id: str
    parent_run_id: str | None
    parent_step: str | None
    children: list[ChildOut]
    """Depth first: each run is followed by the runs it started."""

    @classmethod
    def of(cls, run_id: str, family: RunFamily) -> FamilyOut:
        """The API shape of :class:`~pulseloop.store.base.RunFamily`."""
        rows = [ChildOut.of(child, depth) for child, depth in tree(run_id, family)]
        return cls(run_id=run_id, parent_run_id=family.parent_id,
                   parent_step=family.parent_step, children=rows)  # fmt: skip


def _time(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def build_router() -> APIRouter:
    """The ``/v1/runs/{id}/children`` route."""
    router = APIRouter(prefix="/v1", responses=ERRORS, tags=["v1"])

    @router.get("/runs/{run_id}/children", response_model=FamilyOut)
    async def children(pulse: Caller, run_id: RunId) -> FamilyOut:
        """The run's parent run (if a ``step.run_loop`` started it) and the runs it
        started, at any depth, depth first."""
        return FamilyOut.of(run_id, await pulse.run_family(run_id))

    return router
