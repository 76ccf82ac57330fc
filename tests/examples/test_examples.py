"""Every example in ``examples/`` runs and does what its docstring says."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from pulseloop import App
from pulseloop.connectors.facial_scan import ScanService
from pulseloop.testing import FakeClock
from tests.connectors.scan_helpers import trace_upload
from tests.helpers import until_status

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_compute_total(db_url: str) -> None:
    run = await _example("compute_total").main(db_url)
    assert run.output == {"total": 51.5, "items": 2}
    assert [s.name for s in run.steps] == ["Compute total"]


async def test_follow_up(db_url: str) -> None:
    run = await _example("follow_up").main(db_url)
    assert run.output == {
        "reminder": "How are you feeling today?",
        "reply": {"text": "Much better, thanks"},
    }
    assert len(run.step("send reminder").attempts) == 2  # the gateway failed once


async def _scan_link(app: App, run_id: str) -> str:
    await until_status(app, run_id, "waiting")
    url: str = (await app.get_run(run_id)).step("Generate a health scan").output["url"]
    return url.rsplit("/s/", 1)[1]


async def test_health_check_provisions_waits_and_echoes_metadata(db_url: str) -> None:
    module = _example("health_check")
    upload, truth_bpm = trace_upload(66.0)
    async with App([module.HealthCheck], db_url, poll_interval=0.05) as app:
        run = await app.trigger("health-check", module.EXAMPLE_BODY)
        service = ScanService(app)
        await service.accept_trace(await _scan_link(app, run.id), upload)
        await service.drain()
        done = await app.wait_for_run(run.id, timeout="1 minute")
    out: dict[str, Any] = done.output
    assert out["patientId"] == module.EXAMPLE_BODY["patientId"]
    assert abs(out["heartRate"] - truth_bpm) <= 3
    assert 0 < out["signalQuality"] <= 1


async def test_check_scan_short_circuits_on_a_failed_scan(db_url: str) -> None:
    module = _example("health_check")
    no_face, _ = trace_upload(face_visible=False)
    clock = FakeClock()
    async with App([module.CheckScan], db_url, clock=clock, poll_interval=0.05) as app:
        run = await app.trigger("check-scan", {"patientId": "p-2"})
        service = ScanService(app)
        await service.accept_trace(await _scan_link(app, run.id), no_face)
        await service.drain()
        await clock.advance("1 minute")
        done = await app.wait_for_run(run.id, timeout="1 minute")
    assert done.output == {"error": "scan failed before processing"}
    assert done.step("Check scan").output["status"] == "failed"
