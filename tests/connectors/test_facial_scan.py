"""FACIAL_SCAN: provisioning, waiting, early completion, timeouts, expiry, results."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pulseloop import App, Event, Loop, Step
from pulseloop.connectors.facial_scan import ScanService
from pulseloop.errors import ScanAlreadyUploaded, ScanExpired, ScanNotFound, ScanTimeout
from pulseloop.testing import FakeClock
from pulseloop.vitals.errors import TraceInvalid
from tests.conftest import AppFactory
from tests.connectors.scan_helpers import trace_upload
from tests.engine.helpers import idle
from tests.helpers import until_status

METADATA = {"patientId": "p-17", "phoneNumber": "+15550100", "nested": {"a": [1, {"b": None}]}}


class HealthCheck(Loop):
    """The spec's "provision a scan, then wait for it", with metadata carried through."""

    async def run(self, event: Event, step: Step) -> Any:
        async def provision(ctx: Any) -> Any:
            return await ctx.FACIAL_SCAN.create(expires_in=3600, metadata=event.body)

        created = await step.do("Generate a health scan", provision)
        scan = await step.wait_for_scan(timeout="30 minutes")
        return {"created": created, "scan": scan}


def token_of(url: str) -> str:
    return url.rsplit("/s/", 1)[1]


async def _created(app: App, run_id: str) -> dict[str, Any]:
    await until_status(app, run_id, "waiting")
    out: dict[str, Any] = (await app.get_run(run_id)).step("Generate a health scan").output
    return out


async def test_scan_completes_and_run_resumes_with_vitals_and_metadata(
    make_app: AppFactory,
) -> None:
    upload, truth_bpm = trace_upload(84.0)
    async with make_app([HealthCheck], public_url="https://scan.example") as app:
        run = await app.trigger("health-check", METADATA)
        created = await _created(app, run.id)
        assert created["url"].startswith("https://scan.example/s/")
        assert created["status"] == "pending"
        service = ScanService(app)
        view = await service.accept_trace(token_of(created["url"]), upload)
        assert view.status == "processing"
        await service.drain()
        done = await app.wait_for_run(run.id, timeout="1 minute")
    scan = done.output["scan"]
    assert scan["id"] == created["id"]
    assert scan["status"] == "completed"
    assert scan["metadata"] == METADATA  # nested JSON echoed back unchanged
    assert abs(scan["vitals"]["heart_rate_bpm"] - truth_bpm) <= 3
    assert scan["failure_reason"] is None
    assert done.step("wait for scan #1").kind == "scan"


class EarlyBird(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        await step.do("provision", lambda ctx: ctx.FACIAL_SCAN.create(expires_in=3600))
        await step.sleep("busy with something else", "1 hour")
        return await step.wait_for_scan(timeout="1 minute")


async def test_scan_finished_before_the_wait_is_never_missed(
    make_app: AppFactory, clock: FakeClock
) -> None:
    upload, _ = trace_upload()
    async with make_app([EarlyBird]) as app:
        run = await app.trigger("early-bird")
        await until_status(app, run.id, "waiting")
        url = (await app.get_run(run.id)).step("provision").output["url"]
        service = ScanService(app)
        await service.accept_trace(token_of(url), upload)
        await service.drain()
        await idle(app)  # the worker has done all it can: the run sleeps on
        assert (await app.get_run(run.id)).status == "waiting"  # still asleep
        await clock.advance("1 hour")
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert done.output["status"] == "completed"


class SecondChance(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        first = await step.do("first scan", lambda ctx: ctx.FACIAL_SCAN.create(expires_in=3600))
        try:
            await step.wait_for_scan(timeout="10 minutes")
        except ScanTimeout:
            second = await step.do(
                "second scan", lambda ctx: ctx.FACIAL_SCAN.create(metadata={"try": 2})
            )
            scan = await step.wait_for_scan(timeout="10 minutes")
            return {"first": first["id"], "second": second["id"], "scan": scan}
        return None


async def test_caught_timeout_then_a_second_scan(make_app: AppFactory, clock: FakeClock) -> None:
    upload, _ = trace_upload()
    async with make_app([SecondChance]) as app:
        run = await app.trigger("second-chance")
        await until_status(app, run.id, "waiting")
        await clock.advance("10 minutes")
        await idle(app)  # the timeout fired and the run parked again, on the second scan
        info = await app.get_run(run.id)
        assert info.status == "waiting"
        assert info.step("wait for scan #1").status == "failed"
        url = info.step("second scan").output["url"]
        service = ScanService(app)
        await service.accept_trace(token_of(url), upload)
        await service.drain()
        done = await app.wait_for_run(run.id, timeout="1 minute")
    out = done.output
    assert out["first"] != out["second"]
    assert out["scan"]["id"] == out["second"]
    assert out["scan"]["metadata"] == {"try": 2}
    assert out["scan"]["status"] == "completed"


class Expiring(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        await step.do("provision", lambda ctx: ctx.FACIAL_SCAN.create(expires_in=60))
        return await step.wait_for_scan(timeout="1 hour")


async def test_expiry_wakes_the_waiting_run(make_app: AppFactory, clock: FakeClock) -> None:
    async with make_app([Expiring]) as app:
        run = await app.trigger("expiring")
        await until_status(app, run.id, "waiting")
        url = (await app.get_run(run.id)).step("provision").output["url"]
        await clock.advance("61 seconds")
        done = await app.wait_for_run(run.id, timeout="1 minute")
        with pytest.raises(ScanExpired):
            await ScanService(app).by_token(token_of(url))
    assert done.output["status"] == "expired"
    assert done.output["failure_reason"] == "expired"


class CheckScan(Loop):
    """The spec's "peek at scan state without waiting"."""

    async def run(self, event: Event, step: Step) -> Any:
        await step.do("provision", lambda ctx: ctx.FACIAL_SCAN.create(expires_in=3600))
        await step.sleep("give the patient time", "5 minutes")
        state = await step.do("Check scan", lambda ctx: ctx.FACIAL_SCAN.getResults())
        if state["status"] == "failed":
            return {"error": "scan failed before processing", "reason": state["failure_reason"]}
        return {"status": state["status"]}


async def test_get_results_on_a_failed_scan(make_app: AppFactory, clock: FakeClock) -> None:
    no_face, _ = trace_upload(face_visible=False)
    async with make_app([CheckScan]) as app:
        run = await app.trigger("check-scan")
        await until_status(app, run.id, "waiting")
        url = (await app.get_run(run.id)).step("provision").output["url"]
        service = ScanService(app)
        await service.accept_trace(token_of(url), no_face)
        await service.drain()
        await clock.advance("5 minutes")
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert done.output == {"error": "scan failed before processing", "reason": "no_face"}


class NoScan(Loop):
    async def run(self, event: Event, step: Step) -> Any:
        return await step.wait_for_scan(timeout="1 minute")


async def test_waiting_without_a_scan_fails_clearly(make_app: AppFactory) -> None:
    async with make_app([NoScan]) as app:
        run = await app.trigger("no-scan")
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert done.status == "failed"
    assert done.error is not None and done.error["type"] == "NoScanProvisioned"
    assert "FACIAL_SCAN.create" in done.error["message"]


async def test_link_is_single_use_and_bad_uploads_leave_it_usable(make_app: AppFactory) -> None:
    upload, _ = trace_upload()
    async with make_app([HealthCheck]) as app:
        run = await app.trigger("health-check", {})
        token = token_of((await _created(app, run.id))["url"])
        service = ScanService(app)
        with pytest.raises(ScanNotFound):
            await service.by_token("not-a-real-token")
        with_nan = json.loads(upload)
        with_nan["frames"][5]["t_ms"] = float("nan")
        for bad in (b"{not json", b'{"version": 99}', json.dumps(with_nan).encode()):
            with pytest.raises(TraceInvalid):
                await service.accept_trace(token, bad)
        assert (await service.by_token(token)).status == "pending"
        assert (await service.accept_trace(token, upload)).status == "processing"
        with pytest.raises(ScanAlreadyUploaded):
            await service.accept_trace(token, upload)
        await service.drain()
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert done.output["scan"]["status"] == "completed"


class CamelCase(Loop):
    """Code ported from the spec's TypeScript reads the same."""

    async def run(self, event: Event, step: Step) -> Any:
        async def provision(ctx: Any) -> Any:
            return await ctx.FACIAL_SCAN.create({"expiresIn": 60, "metadata": {"k": 1}})

        await step.do("Generate a health scan", provision)
        try:
            return await step.waitForScan({"timeout": "30 seconds"})
        except ScanTimeout as exc:
            return {"timeout": str(exc)}


async def test_spec_spelling_is_accepted(make_app: AppFactory, clock: FakeClock) -> None:
    async with make_app([CamelCase]) as app:
        run = await app.trigger("camel-case")
        await until_status(app, run.id, "waiting")
        await clock.advance("30 seconds")
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert "30 seconds" in done.output["timeout"]
