"""The browser path and the server path agree, for the faces a scan fails first.

A clean face, a darker-skinned face (Fitzpatrick VI: less light reflected, a weaker pulse)
and a face swaying inside the pulse band (a sharp spectral peak that is not the heart) are
filmed by the real page in headless Chromium, its fake camera playing the video; the same
video file is analysed by the server path (``analyze_video``). Each must end right: the
true heart rate within 2 bpm, or a refusal with a reason a person can act on, never a
confident wrong number; and the two paths must agree (both measure, within 1 bpm of each
other, or both refuse). The swaying face must be refused as motion by both: the page's
sampling box never follows a 6 px sway (its dead band), so the browser path relies on
the face motion the page records on every frame (trace version 2).

Under CPU load Chromium's fake camera plays the file slower than the page's clock says
(``tests/browser/camclock.py``), so the pulse the page was shown is slower than the file's:
the browser reading is held to ``TRUE_BPM x content rate`` (measured from a frame counter
stamped in the video), and compared with the server's reading scaled the same way. At low
load the rate is ~1.0 and nothing changes. Measured at load 5-21 (busy loops beside the
test, Chromium at nice 0-5): 0.991-0.998; one clean run read 70.7 bpm against the server's
72.0 at a rate of 0.991 (the unscaled 1 bpm agreement rule would have failed: 1.3 bpm;
scaled, 0.65).
A 67.6 bpm reading at load ~10 would need a rate of ~0.94, never reproduced here.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Playwright, expect

from tests.browser.camclock import PROBE_JS, CameraClock
from tests.browser.conftest import launch
from tests.browser.live_server import LiveServer

CAPTURE_S = 20
TRUE_BPM = 72.0
FPS = 30.0
SECONDS = 20.0  # 24 beats, 5 breaths, 18 sway cycles at 0.9 Hz: the looping camera has no seam
REFUSALS = {"weak_signal", "too_much_motion", "too_dark", "face_lost", "no_face"}


def _video(folder: Path, name: str, **scene: object) -> Path:
    from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video

    path = folder / f"{name}.y4m"
    pulse = PulseSpec(
        heart_rate_bpm=TRUE_BPM, respiratory_rate_bpm=15.0,
        rsa_ms=0.0, mayer_ms=0.0, jitter_ms=0.0, seed=11,
    )  # fmt: skip
    spec = SceneSpec(duration_s=SECONDS, fps=FPS, seed=11, **scene)  # type: ignore[arg-type]
    write_video(path, pulse, spec, stamp_frames=True)
    return path


def _browser_outcome(
    driver: Playwright, video: Path, server: LiveServer
) -> tuple[dict[str, object], CameraClock]:
    """Film ``video`` through the real page: the scan payload the parked run received, and
    how fast the fake camera really played the file over the capture."""
    run_id, path = server.provision()
    chromium = launch(driver, video)
    try:
        page = chromium.new_context(viewport={"width": 420, "height": 860}).new_page()
        page.add_init_script(PROBE_JS)
        page.goto(server.base_url + f"{path}?seconds={CAPTURE_S}")
        page.get_by_role("button", name="Start the scan").click()
        expect(page.locator("#scan")).to_have_attribute("data-state", "capturing", timeout=30_000)
        started = time.monotonic()
        run = server.call(server.app.wait_for_run(run_id, timeout="3 minutes"), timeout=240)
        assert time.monotonic() - started >= CAPTURE_S - 1
        records = page.evaluate("window.__pulseloopCameraClock")
    finally:
        chromium.close()
    scan: dict[str, object] = run.output["scan"]
    return scan, CameraClock.measure(records, round(SECONDS * FPS), CAPTURE_S)


def _server_outcome(video: Path) -> tuple[float | None, str | None]:
    from pulseloop.vitals import analyze_video

    result = analyze_video(video).to_json()
    vitals = result.get("vitals") or {}
    return vitals.get("heart_rate_bpm"), result.get("failure_reason")


def _check(
    browser_scan: dict[str, object],
    clock: CameraClock,
    server: tuple[float | None, str | None],
    refusal: str | None = None,
) -> None:
    vitals = browser_scan.get("vitals") or {}
    browser_bpm = vitals.get("heart_rate_bpm") if isinstance(vitals, dict) else None
    browser_reason = browser_scan.get("failure_reason")
    server_bpm, server_reason = server
    # The heart rate the page was shown: the file's, played at the camera's real rate.
    rate = clock.rate(FPS)
    print(
        f"browser: {browser_bpm} bpm / {browser_reason}; server: {server_bpm} / "
        f"{server_reason}; camera {clock}, content rate {rate:.3f}, "
        f"truth on the page's clock {TRUE_BPM * rate:.1f} bpm"
    )
    for bpm, reason, truth in (
        (browser_bpm, browser_reason, TRUE_BPM * rate),
        (server_bpm, server_reason, TRUE_BPM),
    ):
        if bpm is None:
            assert reason in REFUSALS, reason  # refused, with a reason a person can act on
        else:
            assert abs(float(bpm) - truth) <= 2.0, (bpm, truth)  # never confidently wrong
    assert (browser_bpm is None) == (server_bpm is None), "one path measured, one refused"
    if browser_bpm is not None and server_bpm is not None:
        assert abs(float(browser_bpm) - float(server_bpm) * rate) <= 1.0
    if refusal is not None:
        assert (browser_reason, server_reason) == (refusal, refusal)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, scene, refusal",
    [
        ("clean", {}, None),
        ("dark-tone-vi", {"skin_tone": 6}, None),
        # Before trace version 2 the browser path read this sway as the pulse in 2 of 3
        # runs (53.1, 53.9 bpm for a true 72) while the server path refused it.
        ("swaying", {"sway_px": 6.0, "sway_hz": 0.9}, "too_much_motion"),
        # 2 px (0.7 % of the face width RMS, under the 0.8 % bar): the video path read 71.9
        # while the browser path refused it, its regions sliding over the face under a box
        # that never moved; the page now reads them at the box moved by the face's shift.
        ("small-sway", {"sway_px": 2.0, "sway_hz": 0.9}, None),
    ],
)
def test_browser_and_server_paths_agree(
    name: str,
    scene: dict[str, object],
    refusal: str | None,
    playwright_driver: Playwright,
    live_server: LiveServer,
    tmp_path: Path,
) -> None:
    video = _video(tmp_path, name, **scene)
    browser, clock = _browser_outcome(playwright_driver, video, live_server)
    _check(browser, clock, _server_outcome(video), refusal)
