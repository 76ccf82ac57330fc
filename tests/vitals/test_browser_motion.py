"""Motion honesty for browser traces: the page's own record of the face's motion is used.

The scan page samples its regions with a smoothed face box that ignores moves under a dead
band, so a small sway never moves the box it uploads, yet the regions slide over the face
in time with it. These version-2 traces carry what the page saw of the face's own motion
(``shift`` on every frame, the detector's raw ``detection`` boxes on some), and a colour
artefact that follows the sway with a blood-like colour: the failure issue 11 measured
(54 bpm read for a true 77). Each test first checks that, with that motion record
removed (what a version-1 page sent), the analysis is fooled, so the test can fail.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from pulseloop.vitals import FailureReason, analyze_trace, parse_trace
from pulseloop.vitals.resample import resample
from pulseloop.vitals.result import VitalsResult
from pulseloop.vitals.trace import REGION_NAMES, Trace

FS_HZ = 30.0
SECONDS = 30.0
TRUE_BPM = 77.0
BOX = [220.0, 140.0, 190.0, 190.0]  # the page's box: the dead band kept it still
SKIN = np.array([180.0, 140.0, 110.0])
PULSE_COLOUR = np.array([0.43, 1.0, 0.69])  # green leads, as blood does
SLIDE_COLOUR = np.array([0.45, 1.0, 0.65])  # a region sliding over a reddened fold


def _trace(
    sway_px: float,
    sway_hz: float,
    *,
    shift: bool = True,
    detect_every: int = 0,
    beat_px: float = 0.0,
    seed: int = 1,
) -> Trace:
    """A 30 s version-2 trace of a 77 bpm pulse and a horizontal sway of ``sway_px``.

    ``beat_px``: the head's own movement with each beat (ballistocardiographic), which the
    page's track sees but the colours do not follow.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(SECONDS * FS_HZ)) / FS_HZ
    phase = 2 * np.pi * TRUE_BPM / 60.0 * t
    pulse = 0.003 * (np.sin(phase) + 0.3 * np.sin(2 * phase + 0.5))
    sway = sway_px * np.sin(2 * np.pi * sway_hz * t)
    frames: list[dict[str, Any]] = []
    for i in range(t.size):
        regions = {}
        for k, name in enumerate(REGION_NAMES):
            relative = (
                1.0
                + pulse[i] * PULSE_COLOUR
                + 0.002 * (k + 1) * sway[i] * SLIDE_COLOUR
                + rng.normal(0.0, 0.0015, 3)
            )
            regions[name] = [round(float(v), 4) for v in SKIN * relative]
        beat = beat_px * np.sin(phase[i] - 0.7)
        seen = [float(sway[i] + rng.normal(0.0, 0.02)), float(beat + rng.normal(0.0, 0.02))]
        detected = detect_every and i % detect_every == 0
        frames.append(
            {
                "t_ms": round(i * 1000.0 / FS_HZ, 3),
                "regions": regions,
                "face": BOX,
                "detection": [BOX[0] + seen[0], BOX[1] + seen[1], *BOX[2:]] if detected else None,
                "shift": [round(v, 3) for v in seen] if shift else None,
            }
        )
    return parse_trace(
        {
            "version": 2,
            "frame_width": 640,
            "frame_height": 480,
            "user_agent": "test",
            "camera": {"exposure_mode": None, "white_balance_mode": None},
            "frames": frames,
        }
    )


def _unseen(trace: Trace) -> Trace:
    """The same trace without the face's own motion: what a version-1 page uploaded."""
    return dataclasses.replace(trace, detection=None, shift=None)


def _bpm(result: VitalsResult) -> float:
    assert result.failure_reason is None, result.failure_reason
    assert result.vitals.heart_rate_bpm is not None
    return result.vitals.heart_rate_bpm


@pytest.mark.parametrize("sway_hz", [0.9, 1.1], ids=["54-per-min", "66-per-min"])
def test_a_sway_beside_the_pulse_rate_is_refused_as_motion(sway_hz: float) -> None:
    trace = _trace(6.0, sway_hz)
    fooled = _bpm(analyze_trace(_unseen(trace)))
    assert abs(fooled - 60.0 * sway_hz) < 1.0  # unseen, the sway is read as the pulse
    result = analyze_trace(trace)
    assert result.failure_reason == FailureReason.TOO_MUCH_MOTION
    assert result.vitals.heart_rate_bpm is None


def test_a_still_face_with_the_same_pulse_is_measured() -> None:
    # The head nods by 0.1 px with each beat: regressing the colours on that would remove
    # the pulse itself, so a track that small is left out.
    result = analyze_trace(_trace(0.0, 0.9, beat_px=0.1))
    assert abs(_bpm(result) - TRUE_BPM) <= 0.5
    assert result.quality.confidence > 0.9


def test_a_small_sway_the_page_saw_is_regressed_out() -> None:
    # 0.6 px: under the rhythm threshold, over the regression one. Removing the motion the
    # page saw leaves the same rate as not removing it, so the reading stands.
    trace = _trace(0.6, 0.9)
    result = analyze_trace(trace)
    assert abs(_bpm(result) - TRUE_BPM) <= 0.5
    unseen = analyze_trace(_unseen(trace))
    assert result.quality.snr_db is not None and unseen.quality.snr_db is not None
    assert result.quality.snr_db > unseen.quality.snr_db + 5.0  # the artefact is gone


def test_a_sway_that_decides_the_rate_is_refused() -> None:
    # 1 px at 54/min is too small to count as a rhythm, yet it decides the rate: read as
    # 54 without the motion removed, 77 with it. Neither reading is trusted.
    trace = _trace(1.0, 0.9)
    assert abs(_bpm(analyze_trace(_unseen(trace))) - 54.0) < 1.0
    assert analyze_trace(trace).failure_reason == FailureReason.TOO_MUCH_MOTION


def test_a_sway_in_time_with_the_heart_is_refused_not_read_at_its_harmonic() -> None:
    # Regressing on a head motion at the heart rate removes the pulse with it; what is left
    # peaks at the harmonic (154 bpm, confidence 0.92, before the check).
    trace = _trace(1.0, TRUE_BPM / 60.0)
    assert abs(_bpm(analyze_trace(_unseen(trace))) - TRUE_BPM) < 1.0
    assert analyze_trace(trace).failure_reason == FailureReason.TOO_MUCH_MOTION


def test_raw_detector_boxes_alone_show_the_sway_when_they_are_frequent_enough() -> None:
    # Every third frame (10 a second) the detector's raw box follows the sway.
    frequent = _trace(6.0, 0.9, shift=False, detect_every=3)
    assert resample(frequent).detection is not None
    assert analyze_trace(frequent).failure_reason == FailureReason.TOO_MUCH_MOTION
    # One every 20 frames (1.5 a second) cannot show a 0.9 Hz rhythm: it is not used.
    sparse = _trace(6.0, 0.9, shift=False, detect_every=20)
    assert resample(sparse).detection is None


def test_the_track_starts_at_the_first_box_and_moves_by_the_shift() -> None:
    uniform = resample(_trace(6.0, 0.9))
    assert uniform.track is not None
    assert uniform.track[0, 0] == pytest.approx(BOX[0], abs=0.1)
    assert np.ptp(uniform.track[:, 0]) == pytest.approx(12.0, abs=0.3)
    assert np.ptp(uniform.face[:, 0]) == 0.0  # the box the page uploaded never moved
