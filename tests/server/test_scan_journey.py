"""The page's side of the scan: progress reports, giving up, clinic details, timing."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pulseloop.connectors.facial_scan import ScanService
from pulseloop.server.app import create_app
from pulseloop.server.scan_pages import PageTiming
from pulseloop.server.scan_service import Clinic, Clinics
from pulseloop.testing import FakeClock
from tests.conftest import AppFactory
from tests.connectors.scan_helpers import trace_upload
from tests.server.conftest import STEP, Served, ServerScan

HTML = {"accept": "text/html,application/xhtml+xml"}


async def progress(served: Served, path: str, status: str) -> httpx.Response:
    return await served.client.post(path + "/progress", json={"status": status})


async def scan_status(served: Served, path: str) -> str:
    status: str = (await served.client.get(path + "/status")).json()["status"]
    return status


# ---- where the patient is ----------------------------------------------------------------
async def test_progress_reports_move_the_scan_forward_only(served: Served) -> None:
    _, path = await served.provision(expires_in=600)
    opened = await progress(served, path, "opened")
    assert opened.status_code == 200 and opened.json() == {"status": "opened", "expires_in_s": 600}
    await served.clock.advance("100 seconds")
    aligning = await progress(served, path, "aligning")
    assert aligning.json() == {"status": "aligning", "expires_in_s": 500}
    # a late "opened" (a second tab) does not move the patient back
    assert (await progress(served, path, "opened")).json()["status"] == "aligning"
    assert (await progress(served, path, "capturing")).json()["status"] == "capturing"
    # the capture restarted (face lost): back to aligning, then filming again
    assert (await progress(served, path, "aligning")).json()["status"] == "aligning"
    assert (await progress(served, path, "capturing")).json()["status"] == "capturing"
    assert (await progress(served, path, "capturing")).json()["status"] == "capturing"  # heartbeat
    upload = await served.client.post(path + "/trace", content=trace_upload(72.0)[0])
    assert upload.status_code == 202
    # after the upload nothing the page reports changes the scan
    assert (await progress(served, path, "aligning")).json()["status"] == "processing"


async def test_a_bad_progress_report_is_422_and_changes_nothing(served: Served) -> None:
    _, path = await served.provision()
    for body in ({"status": "completed"}, {"status": "processing"}, {}, [1]):
        bad = await served.client.post(path + "/progress", json=body)
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_request", body
    garbled = await served.client.post(path + "/progress", content=b"{nope")
    assert garbled.status_code == 422
    assert await scan_status(served, path) == "pending"


async def test_a_scan_left_on_the_checks_still_expires_and_wakes_the_run(served: Served) -> None:
    run_id, path = await served.provision(expires_in=60)
    await progress(served, path, "aligning")
    await served.clock.advance("61 seconds")
    run = await served.app.wait_for_run(run_id, timeout="30 seconds")
    assert run.status == "completed" and run.output["status"] == "expired"
    assert (await progress(served, path, "capturing")).status_code == 410


# ---- giving up -----------------------------------------------------------------------------
async def test_giving_up_fails_the_scan_with_the_reason_and_wakes_the_run(served: Served) -> None:
    run_id, path = await served.provision()
    await progress(served, path, "aligning")
    body = {"reason": "face_too_small", "tried_s": 60.2,
            "failing_s": {"face_too_small": 51.0, "no_face": 9.2}}  # fmt: skip
    ended = await served.client.post(path + "/abandon", json=body)
    assert ended.status_code == 200
    assert ended.json()["status"] == "failed" and ended.json()["failure_reason"] == "face_too_small"
    assert "too far" in ended.json()["failure_message"]
    assert "closer" in ended.json()["failure_tip"]
    run = await served.app.wait_for_run(run_id, timeout="30 seconds")
    assert run.status == "completed"
    assert run.output["status"] == "failed" and run.output["failure_reason"] == "face_too_small"
    record = await served.app.store.get_scan(served.app.org, run.output["id"])
    assert record is not None and record.result is not None
    assert json.loads(record.result)["page"] == {
        "tried_s": 60.2, "failing_s": {"face_too_small": 51.0, "no_face": 9.2},
    }  # fmt: skip
    # the answer was lost and the page asks again: the same outcome, nothing new
    again = await served.client.post(path + "/abandon", json=body)
    assert again.status_code == 200 and again.json()["failure_reason"] == "face_too_small"
    # the link is used: no upload, and the page shows the outcome with no retry
    upload = await served.client.post(path + "/trace", content=trace_upload(72.0)[0])
    assert upload.status_code == 409
    page = html.unescape((await served.client.get(path, headers=HTML)).text)
    assert "Your face was too far from the camera." in page
    assert "This link has now been used" in page


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "weak_signal"},  # analysis reasons are the server's to give
        {"reason": ""},
        {"reason": "no_face", "tried_s": -1},
        {"reason": "no_face", "tried_s": "60"},
        {"reason": "no_face", "failing_s": {"whatever": 3}},
        {"reason": "no_face", "failing_s": {"no_face": 1e9}},
    ],
)
async def test_a_bad_give_up_is_422_and_the_link_still_works(
    served: Served, body: dict[str, object]
) -> None:
    _, path = await served.provision()
    bad = await served.client.post(path + "/abandon", json=body)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
    assert await scan_status(served, path) == "pending"


async def test_no_give_up_after_an_upload_or_on_a_dead_link(served: Served) -> None:
    _, path = await served.provision()
    assert (await served.client.post(path + "/trace", content=trace_upload(72.0)[0])).status_code
    late = await served.client.post(path + "/abandon", json={"reason": "no_face"})
    assert (late.status_code, late.json()["code"]) == (409, "scan_already_uploaded")
    _, expired = await served.provision(expires_in=60)
    await served.clock.advance("61 seconds")
    gone = await served.client.post(expired + "/abandon", json={"reason": "no_face"})
    assert gone.status_code == 410


# ---- the page --------------------------------------------------------------------------------
async def test_a_bare_scan_path_is_a_page_for_people(served: Served) -> None:
    for path in ("/s", "/s/"):
        page = await served.client.get(path, headers=HTML)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "This scan link doesn't work" in html.unescape(page.text)
    as_json = await served.client.get("/s/", headers={"accept": "application/json"})
    assert (as_json.status_code, as_json.json()["code"]) == (404, "scan_not_found")


async def test_the_privacy_notice_is_served(served: Served) -> None:
    page = await served.client.get("/scan-privacy", headers=HTML)
    assert page.status_code == 200 and "What stays on your phone" in html.unescape(page.text)
    _, path = await served.provision()
    capture = html.unescape((await served.client.get(path, headers=HTML)).text)
    assert 'href="/scan-privacy"' in capture and "your care team" in capture


async def test_the_page_carries_its_timing_and_the_links_time_left(served: Served) -> None:
    _, path = await served.provision(expires_in=300)
    await served.clock.advance("45 seconds")
    page = (await served.client.get(path, headers=HTML)).text
    for attribute in ('data-expires-in="255.0"', 'data-help-after="20.0"',
                      'data-give-up-after="60.0"', 'data-heartbeat="5.0"'):  # fmt: skip
        assert attribute in page


def test_timing_comes_from_the_environment_and_is_checked() -> None:
    timing = PageTiming.from_env(
        {"PULSELOOP_SCAN_HELP_AFTER_S": "2", "PULSELOOP_SCAN_GIVE_UP_AFTER_S": "5"}
    )
    assert (timing.help_after_s, timing.give_up_after_s, timing.heartbeat_s) == (2, 5, 5)
    assert PageTiming.from_env({}) == PageTiming()
    bad: list[dict[str, str]] = [
        {"PULSELOOP_SCAN_HELP_AFTER_S": "soon"},
        {"PULSELOOP_SCAN_GIVE_UP_AFTER_S": "0"},
        {"PULSELOOP_SCAN_HELP_AFTER_S": "30", "PULSELOOP_SCAN_GIVE_UP_AFTER_S": "20"},
    ]
    for env in bad:
        with pytest.raises(ValueError, match="PULSELOOP_SCAN_"):
            PageTiming.from_env(env)


# ---- clinic details ---------------------------------------------------------------------------
CLINICS = {
    "default": {
        "name": "Riverside Heart Clinic", "contact": "020 7946 0000",
        "contact_url": "tel:+442079460000", "privacy_url": "https://riverside.example/privacy",
    },
    "*": {"name": "Northside Health"},
}  # fmt: skip


@pytest.fixture
async def clinic_served(
    make_app: AppFactory, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Served]:
    """Like ``served``, with ``PULSELOOP_CLINICS`` naming a file of clinic details."""
    settings = tmp_path / "clinics.json"
    settings.write_text(json.dumps(CLINICS))
    monkeypatch.setenv("PULSELOOP_CLINICS", str(settings))
    async with make_app([ServerScan]) as app:
        service = ScanService(app)
        transport = httpx.ASGITransport(app=create_app(app, scan_service=service))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Served(app, service, client, clock)
        await service.drain()


async def test_every_scan_screen_names_the_clinic(clinic_served: Served) -> None:
    assert clinic_served.app.org == "default"
    _, path = await clinic_served.provision()
    page = html.unescape((await clinic_served.client.get(path, headers=HTML)).text)
    assert '<p id="clinic-name" class="clinic-name">Riverside Heart Clinic</p>' in page
    assert "Riverside Heart Clinic asked you to do this scan" in page
    assert 'href="https://riverside.example/privacy"' in page
    assert '<a href="tel:+442079460000">020 7946 0000</a>' in page
    assert "<title>Heart rate scan · Riverside Heart Clinic</title>" in page
    assert STEP  # the run parked on the scan, as in every served test


def test_clinics_fall_back_to_the_star_entry_then_to_none() -> None:
    clinics = Clinics.parse(CLINICS)
    assert clinics.for_org("default").contact == "020 7946 0000"
    assert clinics.for_org("elsewhere") == Clinic(name="Northside Health")
    assert Clinics().for_org("default").display_name == "your care team"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "expected an object"),
        ({"a": "Riverside"}, "expected an object with name"),
        ({"a": {"nmae": "x"}}, "unknown field"),
        ({"a": {"name": 3}}, "a.name: expected text"),
        ({"a": {"privacy_url": "javascript:alert(1)"}}, "must start with https://"),
        ({"a": {"contact_url": "http://x.example"}}, "must start with tel:"),
    ],
)
def test_bad_clinic_settings_stop_the_server_with_a_named_field(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Clinics.parse(raw)


def test_an_unreadable_clinics_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ValueError, match=r"PULSELOOP_CLINICS=.*nope\.json"):
        Clinics.from_env({"PULSELOOP_CLINICS": str(missing)})
    assert Clinics.from_env({}).for_org("x") == Clinic()
