"""Fixtures for the browser tests: Debian Chromium with a fake camera, a live server.

Never skipped: a missing Chromium or missing MediaPipe files fail with the command that
installs them. Chromium's fake camera plays a synthetic face video (Y4M) of known heart
rate and loops it at the end, so the video is built to loop without a seam.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from pulseloop.server.pages import STATIC_DIR
from tests.browser.live_server import LiveServer

CHROMIUM = Path(os.environ.get("PULSELOOP_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = "run scripts/install-web-deps.sh (installs Debian chromium and MediaPipe)"
VENDOR_FILE = STATIC_DIR / "vendor" / "mediapipe" / "face_detection.js"
# 72 bpm x 20 s = 24 beats and 15 breaths/min x 20 s = 5 breaths, with beat-to-beat
# variability off: the last frame flows into the first, so the looping camera has no seam.
TRUE_HEART_RATE_BPM = 72.0
VIDEO_SECONDS = 20.0
BASE_ARGS = [
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-sandbox",
]


def _require_tools() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    if not VENDOR_FILE.exists():
        pytest.fail(f"MediaPipe is missing at {VENDOR_FILE}: {INSTALL_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20 s 640x480 30 fps raw face video at 72 bpm that loops seamlessly."""
    from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video

    path = tmp_path_factory.mktemp("camera") / "face.y4m"
    pulse = PulseSpec(
        heart_rate_bpm=TRUE_HEART_RATE_BPM, respiratory_rate_bpm=15.0,
        rsa_ms=0.0, mayer_ms=0.0, jitter_ms=0.0, seed=7,
    )  # fmt: skip
    truth = write_video(path, pulse, SceneSpec(duration_s=VIDEO_SECONDS, seed=7))
    assert abs(truth.heart_rate_bpm - TRUE_HEART_RATE_BPM) < 0.01
    return path


@pytest.fixture(scope="session")
def no_face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of the room behind the subject, with nobody in it (the camera loops it)."""
    from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video

    path = tmp_path_factory.mktemp("camera") / "no-face.y4m"
    write_video(path, PulseSpec(seed=3), SceneSpec(duration_s=3.0, face_visible=False, seed=3))
    return path


@pytest.fixture(scope="session")
def small_face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of the synthetic face at half size in the middle of the room: a phone held too
    far away (the face is about 15 % of the frame width; the page wants 20 %)."""
    from pulseloop.vitals.synthetic import PulseSpec, SceneSpec
    from pulseloop.vitals.synthetic.pulse import beat_train
    from pulseloop.vitals.synthetic.scene import render
    from pulseloop.vitals.synthetic.writers import write_y4m

    path = tmp_path_factory.mktemp("camera") / "small-face.y4m"
    pulse = PulseSpec(heart_rate_bpm=72.0, seed=5)
    scene = SceneSpec(duration_s=3.0, seed=5)
    train = beat_train(pulse, scene.duration_s)
    room = next(render(replace(scene, face_visible=False), train)).rgb
    h, w = scene.height, scene.width

    def frames() -> Iterator[npt.NDArray[np.uint8]]:
        for frame in render(scene, train):
            small = room.copy()
            small[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = frame.rgb[::2, ::2]
            yield small

    write_y4m(path, frames(), w, h, scene.fps)
    return path


# Module scope, not session: Playwright's sync API keeps an event loop on the main thread
# while it runs, which async tests collected after this module must not meet.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """One Playwright driver for the session (after checking the tools are installed)."""
    _require_tools()
    with sync_playwright() as driver:
        yield driver


def launch(driver: Playwright, video: Path, *, grant_camera: bool = True) -> Browser:
    """Headless Chromium whose camera plays ``video``; ``grant_camera`` auto-accepts it."""
    args = [*BASE_ARGS, f"--use-file-for-fake-video-capture={video}"]
    if grant_camera:
        args.append("--use-fake-ui-for-media-stream")
    return driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright, face_video: Path) -> Iterator[Browser]:
    """Chromium with the synthetic face as its (already permitted) camera."""
    chromium = launch(playwright_driver, face_video)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context and page, at a phone-like size."""
    context = browser.new_context(viewport={"width": 420, "height": 860})
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A pulseloop server on 127.0.0.1 with its own database and fake clock."""
    _require_tools()
    server = LiveServer(f"sqlite:///{tmp_path / 'pulseloop.db'}").start()
    yield server
    server.stop()


QUICK_TIMING = {
    "PULSELOOP_SCAN_HELP_AFTER_S": "2",
    "PULSELOOP_SCAN_GIVE_UP_AFTER_S": "5",
    "PULSELOOP_SCAN_HEARTBEAT_S": "1",
}
"""Help after 2 s of failing checks, give up after 5 s, ask about the link every second:
the page's real behaviour on a shorter clock, so no test waits a real minute."""


CLINIC = {"name": "Riverside Heart Clinic", "contact": "020 7946 0000",
          "contact_url": "tel:+442079460000"}  # fmt: skip


@pytest.fixture
def quick_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """Like ``live_server``, with the scan page's time limits shortened (QUICK_TIMING) and
    the organization's clinic details set (``PULSELOOP_CLINICS``)."""
    _require_tools()
    for name, value in QUICK_TIMING.items():
        monkeypatch.setenv(name, value)
    clinics = tmp_path / "clinics.json"
    clinics.write_text(json.dumps({"*": CLINIC}))
    monkeypatch.setenv("PULSELOOP_CLINICS", str(clinics))
    server = LiveServer(f"sqlite:///{tmp_path / 'pulseloop.db'}").start()
    yield server
    server.stop()
