"""The scan page in real headless Chromium, its camera fed a synthetic face of known pulse."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, Playwright, expect

from tests.browser.conftest import TRUE_HEART_RATE_BPM, launch
from tests.browser.live_server import LiveServer

CAPTURE_S = 20  # >= 20 s so the breathing rate may be reported too


def test_scan_resumes_the_parked_run_with_the_right_heart_rate(
    page: Page, live_server: LiveServer
) -> None:
    run_id, path = live_server.provision()
    page.goto(live_server.base_url + f"{path}?seconds={CAPTURE_S}")
    expect(page.get_by_role("heading", name="Heart rate scan")).to_be_visible()
    page.get_by_role("button", name="Start the scan").click()
    expect(page.locator("#checks")).to_contain_text("Face found", timeout=20_000)
    expect(page.locator("#scan")).to_have_attribute("data-state", "capturing", timeout=20_000)
    started = time.monotonic()
    expect(page.get_by_role("heading", name="Your scan is done")).to_be_visible(
        timeout=(CAPTURE_S + 40) * 1000
    )
    assert time.monotonic() - started >= CAPTURE_S - 1  # the whole capture was filmed
    heart_text = page.locator('[data-vital="heart_rate_bpm"]').inner_text()
    shown_bpm = float(re.match(r"(\d+) beats per minute", heart_text).group(1))  # type: ignore[union-attr]
    assert abs(shown_bpm - TRUE_HEART_RATE_BPM) <= 3.5  # shown rounded

    run = live_server.call(live_server.app.wait_for_run(run_id, timeout="30 seconds"))
    assert run.status == "completed"
    scan = run.output["scan"]
    assert scan["status"] == "completed" and scan["metadata"] == {"patientId": "p-browser"}
    error_bpm = abs(scan["vitals"]["heart_rate_bpm"] - TRUE_HEART_RATE_BPM)
    print(f"browser scan: {scan['vitals']['heart_rate_bpm']} bpm, error {error_bpm:.2f} bpm, "
          f"quality {scan['quality']}")  # fmt: skip
    assert error_bpm <= 3.0

    # The link is single-use: a second upload is refused, and reopening shows the result.
    second = page.request.post(live_server.base_url + path + "/trace", data=b"{}")
    assert second.status == 409 and second.json()["code"] == "scan_already_uploaded"
    page.goto(live_server.base_url + path)
    expect(page.get_by_role("heading", name="Your scan is done")).to_be_visible()
    expect(page.get_by_role("button", name="Start the scan")).to_be_hidden()


def test_camera_denied_explains_what_to_do(
    playwright_driver: Playwright, face_video: Path, live_server: LiveServer
) -> None:
    _, path = live_server.provision()
    browser = launch(playwright_driver, face_video, grant_camera=False)
    try:
        context = browser.new_context()  # no camera permission granted: the prompt is denied
        tab = context.new_page()
        tab.goto(live_server.base_url + path)
        tab.get_by_role("button", name="Start the scan").click()
        expect(tab.get_by_role("heading", name="Something stopped the scan")).to_be_visible(
            timeout=15_000
        )
        expect(tab.locator("#problem-text")).to_contain_text("Camera access was blocked")
        expect(tab.get_by_role("button", name="Try again")).to_be_visible()
    finally:
        browser.close()


def test_expired_link_shows_the_410_page(page: Page, live_server: LiveServer) -> None:
    _, path = live_server.provision(expires_in=60)
    live_server.call(live_server.clock.advance("61 seconds"))
    response = page.goto(live_server.base_url + path)
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", name="This scan link has expired")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Ask your care team to send you a new one")


def test_unknown_link_shows_the_404_page(page: Page, live_server: LiveServer) -> None:
    response = page.goto(live_server.base_url + "/s/" + "Q" * 43)
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="This scan link doesn't work")).to_be_visible()
