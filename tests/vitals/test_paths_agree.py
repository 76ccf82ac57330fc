"""The video path and the browser's trace path give the same answer on the same frames.

Each scan is rendered once at the browser test's size (640x480, 20 s, 72 bpm) and analysed
by the video path (the server finds and tracks the face) and by the trace the scan page
would upload from the same frames (:mod:`pulseloop.vitals.synthetic`: the page's boxes,
detections and face shifts, version 2). Both must measure within 1 bpm of each other and
of the truth, or both refuse. The cases are the motion the two paths once split on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pulseloop.vitals import FailureReason, analyze_trace, analyze_video, parse_trace
from pulseloop.vitals.result import VitalsResult
from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video

TRUE_BPM = 72.0


def _both(tmp_path: Path, **scene: object) -> tuple[VitalsResult, VitalsResult]:
    video, trace = tmp_path / "scan.y4m", tmp_path / "scan.json"
    pulse = PulseSpec(
        heart_rate_bpm=TRUE_BPM, respiratory_rate_bpm=15.0,
        rsa_ms=0.0, mayer_ms=0.0, jitter_ms=0.0, seed=11,
    )  # fmt: skip
    spec = SceneSpec(duration_s=20.0, seed=11, **scene)  # type: ignore[arg-type]
    write_video(video, pulse, spec, trace_path=trace, browser=True)
    return analyze_video(video), analyze_trace(parse_trace(trace.read_bytes()))


@pytest.mark.parametrize("skin_tone", [None, 6], ids=["photo", "VI"])
def test_a_small_sway_is_measured_alike_by_both_paths(tmp_path: Path, skin_tone: int) -> None:
    # 2 px at 54/min: 0.7 % of the face width (RMS), under the 0.8 % bar. The page's box
    # once stayed still while its regions slid over the face; the trace path then refused
    # (its detector boxes sized the sway at 1.0 %, and the rate without the motion removed
    # was the sway's) while the video path read 71.9.
    by_video, by_trace = _both(tmp_path, sway_px=2.0, sway_hz=0.9, skin_tone=skin_tone)
    rates = [r.vitals.heart_rate_bpm for r in (by_video, by_trace)]
    assert None not in rates, (by_video.failure_reason, by_trace.failure_reason)
    video_bpm, trace_bpm = (float(r) for r in rates if r is not None)
    assert abs(video_bpm - TRUE_BPM) <= 1.0 and abs(trace_bpm - TRUE_BPM) <= 1.0
    assert abs(video_bpm - trace_bpm) <= 1.0


def test_a_sway_in_time_with_the_heart_is_refused_by_both_paths(tmp_path: Path) -> None:
    # 1 px at 72/min: too small to count as a rhythm (0.37 % of the face width), yet
    # regressing the colours on it removes the pulse. The trace path read the harmonic,
    # 144 bpm with confidence 0.64; the video path refused it as a weak signal.
    by_video, by_trace = _both(tmp_path, sway_px=1.0, sway_hz=TRUE_BPM / 60.0)
    for result in (by_video, by_trace):
        assert result.failure_reason == FailureReason.TOO_MUCH_MOTION
        assert result.vitals.heart_rate_bpm is None
