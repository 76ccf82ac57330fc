"""Run ids are unique per organization: two clinics may use the same id, and neither
learns of the other's run.

Before, organization B could take ``follow-up-42`` first and block A's idempotent
trigger (A got 409, learning the id existed elsewhere). Now both runs exist side by side
and everything that names a run by id — steps, waits, events, scans, operators, pages of
the list — reaches the right one. The second run's internal key differs from its id;
every path that mixed the two up would cross the runs' histories here.
"""

from __future__ import annotations

import json
from typing import Any

from pulseloop import App, Event, Loop, Step, StepCtx
from tests.conftest import AppFactory
from tests.engine.helpers import idle

RUN_ID = "follow-up-42"


class PerOrg(Loop):
    """A step, an event wait, a scan: each names the organization it ran for."""

    name = "per-org"

    async def run(self, event: Event, step: Step) -> Any:
        who = event.body["who"]
        first = await step.do("first", lambda: f"first-{who}")
        reply = await step.wait_for_event("reply", type="reply", timeout="1 hour")

        async def provision(ctx: StepCtx) -> Any:
            return await ctx.FACIAL_SCAN.create(expires_in=3600, metadata={"who": who})

        await step.do("provision", provision)
        scan = await step.wait_for_scan(timeout="1 hour")
        return {"first": first, "reply": reply, "scan": scan["metadata"]["who"],
                "heart_rate": scan["vitals"]["heart_rate_bpm"]}  # fmt: skip


async def _finish_scan(app: App, heart_rate: float) -> None:
    scan = await app.store.latest_scan(app.org, RUN_ID)
    assert scan is not None
    result = json.dumps({"vitals": {"heart_rate_bpm": heart_rate}, "quality": {}})
    await app.store.finish_scan(scan.id, "completed", result, None, app.clock.now())
    app.notify_work()


async def test_two_organizations_run_the_same_id_side_by_side(make_app: AppFactory) -> None:
    async with make_app([PerOrg], org="clinic-a") as a, make_app([PerOrg], org="clinic-b") as b:
        run_b = await b.trigger("per-org", {"who": "b"}, id=RUN_ID)  # B takes the id first
        run_a = await a.trigger("per-org", {"who": "a"}, id=RUN_ID)
        assert run_a.id == run_b.id == RUN_ID
        again = await a.trigger("per-org", {"who": "other"}, id=RUN_ID)  # idempotent, A's
        assert again.status in ("queued", "running", "waiting")
        record_a, record_b = (
            await a.store.get_run("clinic-a", RUN_ID),
            await b.store.get_run("clinic-b", RUN_ID),
        )
        assert record_a is not None and record_b is not None
        assert json.loads(record_a.input) == {"who": "a"}
        assert record_a.key != record_b.key  # the later one got a key of its own

        await idle(a)
        await idle(b)
        await a.send_event(RUN_ID, "reply", "to-a")
        await b.send_event(RUN_ID, "reply", "to-b")
        await idle(a)
        await idle(b)
        await _finish_scan(a, 61.0)
        await _finish_scan(b, 72.0)
        done_a = await a.wait_for_run(RUN_ID, timeout="1 minute")
        done_b = await b.wait_for_run(RUN_ID, timeout="1 minute")
        expected_a = {"first": "first-a", "reply": "to-a", "scan": "a", "heart_rate": 61.0}
        expected_b = {"first": "first-b", "reply": "to-b", "scan": "b", "heart_rate": 72.0}
        assert done_a.output == expected_a
        assert done_b.output == expected_b
        assert [s.name for s in done_a.steps] == [s.name for s in done_b.steps]

        # operators reach their own organization's run only
        restarted = await a.restart(RUN_ID, "first")
        assert restarted.status == "queued"
        untouched = await b.get_run(RUN_ID)
        assert untouched.status == "completed" and untouched.output == done_b.output
        assert [s.name for s in untouched.steps] == [s.name for s in done_b.steps]
        rerun = await a.wait_for_run(RUN_ID, timeout="1 minute")
        # replayed from "first": the event it had consumed was given back and consumed
        # again, the scan step found its own (finished) scan, not B's
        assert rerun.status == "completed" and rerun.output == expected_a
        assert (await b.get_run(RUN_ID)).output == expected_b
        assert [r.id for r in await a.list_runs()] == [RUN_ID]
        assert [r.id for r in await b.list_runs()] == [RUN_ID]
