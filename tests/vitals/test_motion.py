"""Motion honesty: a swaying head gives the right rate or a refusal, never a confident guess.

The issue this guards: a face rocking at 0.9 Hz (54/min) with a 77 bpm pulse was read as
54 bpm with confidence 0.54-0.59 from the browser's trace (its face box lags the face, so
the regions slide over it in time with the sway), while the video path said 77.5. Both
paths must now agree: the right rate within 1 bpm of each other, or both refuse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pulseloop.vitals import FailureReason, analyze_trace, analyze_video, parse_trace
from pulseloop.vitals.motion import coincides, regressors, remove_motion, rhythms
from pulseloop.vitals.resample import resample
from pulseloop.vitals.spectrum import bandpass
from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video
from pulseloop.vitals.trace import REGION_NAMES

TRUE_BPM = 77.0
SWAY_HZ = 0.9  # 54/min


def _both_paths(tmp_path: Path, **scene: object) -> tuple[float, object, object]:
    video, trace_path = tmp_path / "sway.y4m", tmp_path / "sway.json"
    truth = write_video(
        video,
        PulseSpec(heart_rate_bpm=TRUE_BPM, seed=77),
        SceneSpec(duration_s=30.0, width=320, height=240, noise_sigma=1.0, seed=77, **scene),  # type: ignore[arg-type]
        trace_path=trace_path,
        browser=True,
    )
    return (
        truth.heart_rate_bpm,
        analyze_video(video),
        analyze_trace(parse_trace(trace_path.read_bytes())),
    )


# II-small is a sway under the strong-rhythm bar (0.8 % of the face width, RMS) as the face
# really moves: 1.2 px at 320x240 is 0.78 % seen by the video path's tracker. It was 1.5 px
# while that tracker lagged the sway and saw none of it; the tracker now follows the face to
# 0.01 px and sees 1.5 px as 1.0 %, over the bar, where the page's dead-banded box sees 0.65 %.
@pytest.mark.parametrize(
    ("skin_tone", "sway_px"), [(2, 1.2), (2, 3.0), (6, 1.5)], ids=["II-small", "II-large", "VI"]
)
def test_a_swaying_face_is_measured_right_or_refused_and_both_paths_agree(
    tmp_path: Path, skin_tone: int, sway_px: float
) -> None:
    truth, by_video, by_trace = _both_paths(
        tmp_path, skin_tone=skin_tone, sway_px=sway_px, sway_hz=SWAY_HZ
    )
    rates = []
    for result in (by_video, by_trace):
        rate = result.vitals.heart_rate_bpm  # type: ignore[attr-defined]
        if rate is None:
            assert result.failure_reason is not None  # type: ignore[attr-defined]
        else:
            # Never the sway's rate, never a confident wrong answer.
            assert abs(rate - truth) <= 2.0, (rate, truth)
        rates.append(rate)
    video_rate, trace_rate = rates
    if video_rate is None or trace_rate is None:
        assert video_rate is None and trace_rate is None, rates
    else:
        assert abs(video_rate - trace_rate) <= 1.0, rates


def test_a_sway_in_time_with_the_heart_is_refused_by_both_paths(tmp_path: Path) -> None:
    # The head rocks at the heart rate itself: no colour method can tell the two apart.
    _truth, by_video, by_trace = _both_paths(
        tmp_path, skin_tone=3, sway_px=2.0, sway_hz=TRUE_BPM / 60.0
    )
    assert by_video.failure_reason == FailureReason.TOO_MUCH_MOTION  # type: ignore[attr-defined]
    assert by_trace.failure_reason == FailureReason.TOO_MUCH_MOTION  # type: ignore[attr-defined]


def _box_track(n: int, fs_hz: float, sway_hz: float, amplitude_px: float) -> np.ndarray:
    t = np.arange(n) / fs_hz
    box = np.tile([100.0, 80.0, 120.0, 120.0], (n, 1))
    box[:, 0] += amplitude_px * np.sin(2 * np.pi * sway_hz * t)
    box[:, 1] += 0.5 * amplitude_px * np.cos(2 * np.pi * sway_hz * t)
    return box


def test_rhythms_find_a_periodic_sway_and_ignore_a_still_box() -> None:
    fs = 30.0
    found = rhythms(_box_track(900, fs, SWAY_HZ, 2.0), fs)
    assert found and abs(found[0].freq_hz - SWAY_HZ) < 0.03
    assert coincides(SWAY_HZ, found, 0.1)
    assert coincides(2 * SWAY_HZ, found, 0.1)  # the artefact's harmonic too
    assert not coincides(TRUE_BPM / 60.0, found, 0.1)
    still = _box_track(900, fs, SWAY_HZ, 0.0)
    still[:, :2] += np.random.default_rng(0).normal(0.0, 0.05, (900, 2))  # detector noise
    assert rhythms(still, fs) == ()


def test_remove_motion_takes_out_colour_that_follows_the_box() -> None:
    fs, n = 30.0, 900
    t = np.arange(n) / fs
    face = _box_track(n, fs, SWAY_HZ, 2.0)
    pulse = 0.001 * np.sin(2 * np.pi * (TRUE_BPM / 60.0) * t)
    # Each region's colour moves with the box (a region sliding over an edge) and pulses.
    slide = 0.01 * (face[:, 0] - face[:, 0].mean()) + 0.004 * np.gradient(face[:, 1])
    rgb = np.empty((n, len(REGION_NAMES), 3))
    for k in range(len(REGION_NAMES)):
        for c, gain in enumerate((0.4, 1.0, 0.6)):
            rgb[:, k, c] = 150.0 * (1.0 + gain * pulse + (k + 1) * (c + 1) * slide)
    bounds = np.repeat(face[:, None, :], len(REGION_NAMES), axis=1)
    cleaned = remove_motion(rgb, face, bounds, fs)
    band = (0.65, 4.0)
    artefact = bandpass(rgb[:, 1, 1] / 150.0 - 1.0 - pulse, fs, band)
    left = bandpass(cleaned[:, 1, 1] / 150.0 - 1.0 - pulse, fs, band)
    assert np.std(artefact) > 3 * np.std(pulse)  # the pulse was buried
    assert np.std(left[30:-30]) < 0.2 * np.std(pulse)  # and is now clean
    assert regressors(face, fs).shape == (n, 4)  # x, y and their velocities; size is still


@pytest.mark.parametrize(("heart_bpm", "seed"), [(120.0, 620), (100.0, 700)])
def test_browser_trace_of_a_still_dark_face_keeps_its_pulse(
    tmp_path: Path, heart_bpm: float, seed: int
) -> None:
    # The page's box jumps by its dead band and glides; each jump moves every region edge
    # by a pixel. Without removing that, these traces (Fitzpatrick VI) were refused.
    trace_path = tmp_path / "still.json"
    truth = write_video(
        tmp_path / "still.y4m",
        PulseSpec(heart_rate_bpm=heart_bpm, seed=seed),
        SceneSpec(duration_s=20.0, width=320, height=240, noise_sigma=1.0, skin_tone=6, seed=seed),
        trace_path=trace_path,
        browser=True,
    )
    trace = parse_trace(trace_path.read_bytes())
    uniform = resample(trace)
    assert np.ptp(uniform.face[:, 0]) > 0.5  # the browser box did move
    result = analyze_trace(trace)
    assert result.failure_reason is None, result.quality
    assert result.vitals.heart_rate_bpm is not None
    assert abs(result.vitals.heart_rate_bpm - truth.heart_rate_bpm) <= 1.5


def test_a_sway_below_the_page_dead_band_is_not_read_as_the_pulse(tmp_path: Path) -> None:
    # 0.5 px at 54/min: the page's box never moves (3 % dead band), so its boxes show no
    # motion, yet its regions slide over the face. The trace read 54 bpm before the colour
    # signature check (blue led the "pulse" in every region); now it is right or refused.
    _truth, by_video, by_trace = _both_paths(tmp_path, skin_tone=6, sway_px=0.5, sway_hz=SWAY_HZ)
    for result in (by_video, by_trace):
        rate = result.vitals.heart_rate_bpm  # type: ignore[attr-defined]
        assert rate is None or abs(rate - TRUE_BPM) <= 2.0, rate
