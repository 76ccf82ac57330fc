"""The scans page, run outcomes and quality in words (over the ASGI app, no browser)."""

from __future__ import annotations

import html
import re
import subprocess
import sys

from pulseloop.server.dashboard import journey, quality_rows, run_outcome
from pulseloop.server.scan_service import ScanJourney
from pulseloop.store.base import ScanRecord
from tests.api.conftest import SCAN_STEP, Api
from tests.connectors.scan_helpers import trace_upload
from tests.dashboard.test_dashboard import signed_in

ROW = re.compile(r'<tr data-scan="(scan_[0-9a-f]+)" data-status="([a-z]+)">')


async def token_of(api: Api, run_id: str) -> str:
    url: str = (await api.app.get_run(run_id)).step(SCAN_STEP).output["url"]
    return url.rsplit("/s/", 1)[1]


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def test_scans_page_shows_where_each_patient_is(api: Api) -> None:
    journey_of = ScanJourney(api.app)
    untouched, _ = await api.parked_scan()
    opened, _ = await api.parked_scan()
    await journey_of.report(await token_of(api, opened), "opened")
    lining_up, _ = await api.parked_scan()
    await journey_of.report(await token_of(api, lining_up), "aligning")
    gave_up, gave_up_scan = await api.parked_scan()
    await journey_of.give_up(
        await token_of(api, gave_up), "face_too_small",
        {"tried_s": 60.0, "failing_s": {"face_too_small": 55.5, "no_face": 4.5}},
    )  # fmt: skip
    await signed_in(api.client, api.key_a)

    page = await api.client.get("/dashboard/scans")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    shown = dict((status, scan) for scan, status in ROW.findall(page.text))
    assert set(shown) == {"pending", "opened", "aligning", "failed"}
    words = text_of(page.text)
    for expected in (
        "Link not opened yet",
        "Opened the link; camera not started",
        "Camera on; lining up (checks not passed yet)",
        "Failed: face too far from the camera",
        "Ended on the patient's page after 60 s of failed checks "
        "(face too far from the camera 55.5 s, no face in view 4.5 s)",
    ):
        assert expected in words, expected
    assert 'href="/dashboard/scans"' in page.text  # in the navigation

    only_failed = await api.client.get("/dashboard/scans?status=failed")
    assert [status for _, status in ROW.findall(only_failed.text)] == ["failed"]
    assert (
        "No scans with status expired"
        in (await api.client.get("/dashboard/scans?status=expired")).text
    )
    scan_page = text_of((await api.client.get(f"/dashboard/scans/{gave_up_scan}")).text)
    assert "Refused: face too far from the camera" in scan_page
    # the run it woke: "completed" in the status column, the failed scan in the outcome
    await api.app.wait_for_run(gave_up, timeout="30 seconds")
    runs = text_of((await api.client.get("/dashboard/runs")).text)
    assert "Scan failed: face too far from the camera" in runs
    assert "Waiting on the patient: link not opened yet" in runs
    assert "Waiting on the patient: camera on; lining up (checks not passed yet)" in runs
    assert untouched  # listed above as pending


async def test_scans_of_another_org_are_not_listed(api: Api) -> None:
    _, scan_id = await api.parked_scan()
    await signed_in(api.client, api.key_b)
    page = await api.client.get("/dashboard/scans")
    assert page.status_code == 200 and scan_id not in page.text and "No scans" in page.text


async def test_a_measured_scan_reads_in_words_against_its_thresholds(api: Api) -> None:
    upload, _ = trace_upload(78.0)
    run_id, scan_id = await api.parked_scan()
    await api.service.accept_trace(await token_of(api, run_id), upload)
    await api.service.drain()
    await signed_in(api.client, api.key_a)
    page = (await api.client.get(f"/dashboard/scans/{scan_id}")).text
    words = text_of(page)
    for expected in ("Pulse signal strength", "needs at least 1 dB", "Face in view",
                     "% of the scan", "needs at least 80 %", "Head movement",
                     "Skin brightness", "needs 20 to 235", "Frame rate", "Heart rate"):  # fmt: skip
        assert expected in words, expected
    assert "snr_db</th>" not in page and "face_coverage</th>" not in page  # no raw names
    assert 'data-quality="snr_db" data-ok="true"' in page
    await api.app.wait_for_run(run_id, timeout="1 minute")  # the run has read its scan
    runs = text_of((await api.client.get("/dashboard/runs")).text)
    assert re.search(r"Scan measured: heart rate \d+ bpm", runs)


def test_quality_verdicts_follow_the_thresholds() -> None:
    rows = {r.name: r for r in quality_rows({
        "snr_db": 0.4, "confidence": 0.71, "face_coverage": 0.5, "motion": 0.3,
        "brightness": 30.0, "frame_rate_hz": 29.9, "duration_s": 30.0, "unknown": None,
    })}  # fmt: skip
    assert (rows["snr_db"].verdict, rows["snr_db"].ok) == ("too weak", False)
    assert (rows["confidence"].value, rows["confidence"].verdict) == (71, "high")
    assert (rows["face_coverage"].value, rows["face_coverage"].ok) == (50, False)
    assert (rows["motion"].verdict, rows["motion"].ok) == ("some movement", True)
    # A dim face (dark skin, a dim room) is measured when its pulse is clear: only under the
    # vitals gate's floor is it too dark whatever the signal.
    assert (rows["brightness"].verdict, rows["brightness"].ok) == ("dim", True)
    dark = quality_rows({"brightness": 15.0})[0]
    assert (dark.verdict, dark.ok, dark.limit) == ("too dark", False, "20 to 235")
    assert rows["frame_rate_hz"].ok and rows["duration_s"].ok
    assert rows["unknown"].verdict == "not measured"


def scan_record(status: str, **fields: object) -> ScanRecord:
    base: dict[str, object] = {
        "org": "o", "id": "scan_1", "run_id": "r", "step": "s", "status": status,
        "metadata": "{}", "result": None, "failure_reason": None, "created_at": 0.0,
        "updated_at": 1000.0, "expires_at": 5000.0, "completed_at": None,
    }  # fmt: skip
    base.update(fields)
    return ScanRecord(**base)  # type: ignore[arg-type]


def test_a_patient_silent_on_the_checks_is_marked_as_probably_gone() -> None:
    recent = journey(scan_record("aligning"), now=1030.0)
    assert recent.detail.endswith("(30 s ago)") and "probably closed" not in recent.detail
    assert "probably closed" in journey(scan_record("aligning"), now=1400.0).detail
    assert "probably closed" not in journey(scan_record("pending"), now=9000.0).detail
    assert journey(scan_record("expired"), now=0).words == "Link expired before a scan was sent"


def test_run_outcomes_read_the_output() -> None:
    from datetime import UTC, datetime

    from pulseloop.runs import Run

    def run(status: str, output: object, error: dict[str, object] | None = None) -> Run:
        at = datetime.now(UTC)
        return Run("r", "loop", status, {}, output, error, at, at, at, at, None)

    failed_scan = {"id": "scan_9", "status": "failed", "failure_reason": "no_face"}
    assert run_outcome(run("completed", {"scan": failed_scan}), None, 0).text == (
        "Scan failed: no face in view"
    )
    example = run("completed", {"patientId": "p-1", "error": "too_dark"})  # examples/health_check
    assert run_outcome(example, None, 0).text == "Finished with an error: too dark to see the face"
    assert run_outcome(run("completed", {"total": 5, "items": 2}), None, 0).text == (
        "total: 5 · items: 2"
    )
    boom = run("failed", None, {"message": "boom"})
    assert (run_outcome(boom, None, 0).text, run_outcome(boom, None, 0).tone) == (
        "Error: boom", "bad",
    )  # fmt: skip
    waiting = run_outcome(run("waiting", None), scan_record("opened"), 1000.0)
    assert waiting.text == "Waiting on the patient: opened the link; camera not started"


def test_the_dashboard_imports_without_the_vitals_extra() -> None:
    """`pulseloop --help` imports the server; numpy and scipy must not be needed for it."""
    code = (
        "import sys\n"
        "for name in ('numpy', 'scipy', 'cv2', 'av'): sys.modules[name] = None\n"
        "import pulseloop.server.dashboard as d\n"
        "import pulseloop.server.scan_pages\n"
        "rows = d.quality_rows({'snr_db': 3.0, 'confidence': 0.5})\n"
        "assert rows[0].limit == 'thresholds need the vitals extra', rows\n"
        "assert rows[1].verdict == 'moderate'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
