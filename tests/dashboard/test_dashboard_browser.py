"""The dashboard in real headless Chromium against a live server on 127.0.0.1.

Screenshots of the run and scan pages go to ``$PULSELOOP_DASHBOARD_SHOTS`` when set (for a
person to look at), else to the test's temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect

from pulseloop.connectors.facial_scan import ScanService
from tests.api.conftest import make_key
from tests.browser.conftest import BASE_ARGS, CHROMIUM, live_server, playwright_driver  # noqa: F401
from tests.browser.live_server import STEP, LiveServer
from tests.connectors.scan_helpers import trace_upload
from tests.helpers import until_status


@pytest.fixture(scope="module")
def dash_browser(playwright_driver: Playwright) -> Iterator[Browser]:  # noqa: F811
    """Headless Chromium (no camera needed)."""
    chromium = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=BASE_ARGS
    )
    yield chromium
    chromium.close()


@pytest.fixture
def tab(dash_browser: Browser) -> Iterator[Page]:
    """A fresh context at a laptop size; fails the test on any console error (e.g. CSP)."""
    context = dash_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", note)
    yield page
    context.close()
    assert errors == [], errors


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PULSELOOP_DASHBOARD_SHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page: Page, server: LiveServer) -> None:
    key = server.call(make_key(server.app, server.app.org))
    page.goto(server.base_url + "/dashboard")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "pulseloop_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    assert page.evaluate("document.cookie") == ""  # invisible to scripts


def completed_scan(server: LiveServer) -> tuple[str, str]:
    """A run whose scan was analysed: ``(run id, scan id)``."""
    upload, _ = trace_upload(78.0)

    async def go() -> tuple[str, str]:
        app = server.app
        run = await app.trigger("browser-scan", {"expires_in": 600})
        await until_status(app, run.id, "waiting")
        created = (await app.get_run(run.id)).step(STEP).output
        service = ScanService(app)
        view = await service.accept_trace(created["url"].rsplit("/s/", 1)[1], upload)
        await service.drain()
        await until_status(app, run.id, "completed")
        return run.id, view.id

    return server.call(go())


def test_sign_in_see_the_steps_and_cancel_a_waiting_run(
    tab: Page,
    live_server: LiveServer,  # noqa: F811
    shots: Path,
) -> None:
    sign_in(tab, live_server)
    expect(tab.locator("#runs")).to_contain_text("No runs")
    run_id, _ = live_server.provision()  # appears without a reload: the list is live
    row = tab.locator(f'tr[data-run="{run_id}"]')
    expect(row).to_contain_text("waiting", timeout=15_000)

    row.get_by_role("link").click()
    expect(tab.locator("#run-status")).to_have_text("waiting")
    timeline = tab.locator("table.timeline")
    expect(timeline.locator(f'tr[data-step="{STEP}"]')).to_contain_text("completed")
    expect(timeline).to_contain_text(STEP)
    expect(timeline).to_contain_text("wait for scan #1")
    tab.screenshot(path=str(shots / "dashboard-run.png"), full_page=True)

    tab.get_by_role("button", name="Cancel").click()
    expect(tab.locator("#run-status")).to_have_text("cancelled")
    expect(tab.get_by_role("status")).to_contain_text("Done: cancel")
    run = live_server.call(live_server.app.get_run(run_id))
    assert run.status == "cancelled"


def test_a_completed_scan_is_plotted(
    tab: Page,
    live_server: LiveServer,  # noqa: F811
    shots: Path,
) -> None:
    run_id, scan_id = completed_scan(live_server)
    sign_in(tab, live_server)
    tab.goto(f"{live_server.base_url}/dashboard/runs/{run_id}")
    expect(tab.locator("#run-status")).to_have_text("completed")
    tab.get_by_role("link", name=scan_id).click()
    expect(tab.locator("#scan-status")).to_have_text("completed")
    for kind in ("waveform", "spectrum"):
        line = tab.locator(f"svg.{kind} polyline.line")
        expect(line).to_be_visible()
        points = (line.get_attribute("points") or "").split()
        assert len(points) > 100, kind
        box = line.bounding_box()
        assert box is not None and box["width"] > 500 and box["height"] > 50
    shown = tab.locator('[data-vital="heart_rate_bpm"] .figure').inner_text()
    assert abs(float(shown) - 78.0) <= 3
    expect(tab.locator('[data-vital="respiratory_rate_bpm"]')).to_contain_text("scan shorter")
    expect(tab.locator('[data-quality="snr_db"]')).to_be_visible()
    tab.screenshot(path=str(shots / "dashboard-scan.png"), full_page=True)


def scan_journeys(server: LiveServer) -> tuple[str, str]:
    """Runs whose scans stopped at different places: (a measured run, a given-up run)."""
    from pulseloop.server.scan_service import ScanJourney

    async def go() -> tuple[str, str]:
        app = server.app
        journey = ScanJourney(app)

        async def parked() -> tuple[str, str]:
            run = await app.trigger("browser-scan", {"expires_in": 600})
            await until_status(app, run.id, "waiting")
            url = (await app.get_run(run.id)).step(STEP).output["url"]
            return run.id, url.rsplit("/s/", 1)[1]

        await parked()  # never opened
        _, lining_up = await parked()
        await journey.report(lining_up, "aligning")
        gave_up, token = await parked()
        await journey.give_up(token, "no_face", {"tried_s": 60, "failing_s": {"no_face": 60}})
        await until_status(app, gave_up, "completed")
        return gave_up, gave_up

    measured, _ = completed_scan(server)
    gave_up, _ = server.call(go())
    return measured, gave_up


WIDER_THAN_THE_SCREEN = """() => {
  const limit = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll("body *")].filter(
    (el) => el.getBoundingClientRect().right > limit + 0.5);
  return wide.slice(0, 5).map((el) => el.tagName + "." + el.className + " " +
    Math.round(el.getBoundingClientRect().right));
}"""


def test_every_dashboard_page_fits_a_phone(
    dash_browser: Browser,
    live_server: LiveServer,  # noqa: F811
    shots: Path,
) -> None:
    measured, gave_up = scan_journeys(live_server)
    context = dash_browser.new_context(viewport={"width": 390, "height": 844})
    phone = context.new_page()
    try:
        sign_in(phone, live_server)
        expect(phone.locator(f'tr[data-run="{gave_up}"]')).to_contain_text(
            "Scan failed: no face in view"
        )
        pages = {
            "runs": "/dashboard/runs",
            "scans": "/dashboard/scans",
            "run": f"/dashboard/runs/{measured}",
            "scan": phone.locator(f'tr[data-run="{measured}"]').get_attribute("data-run") or "",
        }
        phone.goto(live_server.base_url + "/dashboard/scans")
        expect(phone.locator('tr[data-status="aligning"]')).to_contain_text("lining up")
        expect(phone.locator('tr[data-status="pending"]')).to_contain_text("Link not opened yet")
        scan_link = phone.locator('tr[data-status="completed"] a').first.get_attribute("href")
        pages["scan"] = scan_link or ""
        for name, path in pages.items():
            phone.goto(live_server.base_url + path)
            expect(phone.locator("h1")).to_be_visible()
            phone.screenshot(path=str(shots / f"phone-{name}.png"), full_page=True)
            wide = phone.evaluate(WIDER_THAN_THE_SCREEN)
            assert wide == [], (name, wide)
    finally:
        context.close()
