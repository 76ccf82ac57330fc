"""OrgClient: one organization's runs and scans through the App's shared runtime."""

from __future__ import annotations

from typing import Any

import pytest

from pulseloop import App, Event, Loop, PulseloopError, Step
from pulseloop.connectors.analysis import AnalysisServices
from pulseloop.connectors.facial_scan import ScanServices
from pulseloop.errors import RunNotFound, ScheduleNotFound
from pulseloop.runtime import Runtime
from tests.conftest import AppFactory


class Echo(Loop):
    """Returns its input."""

    async def run(self, event: Event, step: Step) -> Any:
        return await step.do("echo", lambda: event.body)


async def test_a_client_acts_for_its_organization_only(make_app: AppFactory) -> None:
    async with make_app([Echo], org="clinic-a") as app:
        assert app.client("clinic-a") is app
        other = app.client("clinic-b")
        assert other.org == "clinic-b" and other.runtime is app.runtime
        run = await other.trigger("echo", {"n": 1}, id="same-id")
        with pytest.raises(RunNotFound):
            await app.get_run("same-id")
        assert [r.id for r in await other.list_runs()] == ["same-id"]
        assert (await other.get_run(run.id)).status == "queued"  # no worker serves clinic-b
        assert (await other.cancel(run.id)).status == "cancelled"
        assert (await other.wait_for_run(run.id)).status == "cancelled"
        mine = await app.trigger("echo", {"n": 2}, id="same-id")  # ids are per organization
        assert (await app.wait_for_run(mine.id)).output == {"n": 2}
        assert await other.latest_scan(run.id) is None
    with pytest.raises(PulseloopError, match="not open"):
        await other.get_run(run.id)  # the App closed the store the client shared


async def test_a_clients_schedules_and_run_deadlines_are_its_organizations(
    make_app: AppFactory,
) -> None:
    async with make_app([Echo], org="clinic-a") as app:
        other = app.client("clinic-b")
        await other.schedules.create("echo", cron="0 8 * * *", id="b-daily", body={"n": 3})
        assert [s.id for s in await other.schedules.list()] == ["b-daily"]
        assert await app.schedules.list() == []
        with pytest.raises(ScheduleNotFound):
            await app.schedules.get("b-daily")
        run = await other.trigger("echo", id="timed", run_timeout="1 hour")
        record = await other.run_record(run.id)
        assert record is not None and record.deadline_at == app.clock.now() + 3600


async def test_for_org_is_a_deprecated_alias_of_client(make_app: AppFactory) -> None:
    async with make_app([Echo]) as app:
        with pytest.warns(DeprecationWarning, match="App.client"):
            view = app.for_org("clinic-b")
        assert view.org == "clinic-b"


def _connector_services(runtime: Runtime, app: App) -> list[ScanServices]:
    """Checked by mypy, not run: connectors ask for these protocols, not for App, and both
    the runtime (what steps get) and an App (what tests and tools pass) provide them."""
    services: list[ScanServices] = [runtime, app]
    analysis: list[AnalysisServices] = list(services)
    return services if analysis else []
