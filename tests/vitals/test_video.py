"""Video files: known rates come back, video and trace agree, broken files give clear errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from pulseloop.errors import PulseloopError
from pulseloop.vitals import FailureReason, VideoUnreadable, analyze_trace, analyze_video
from pulseloop.vitals.trace import parse_trace
from tests.vitals.conftest import MakeVideo


@pytest.mark.parametrize("heart_bpm", [48, 105, 170])
def test_raw_video_known_rate(synthetic_video: MakeVideo, heart_bpm: float) -> None:
    video, _, truth = synthetic_video(".y4m", heart_bpm, seed=heart_bpm, motion_px=2.0)
    calls: list[tuple[int, int | None]] = []
    result = analyze_video(video, progress=lambda done, total: calls.append((done, total)))
    assert result.failure_reason is None
    assert result.vitals.heart_rate_bpm is not None
    assert abs(result.vitals.heart_rate_bpm - truth.heart_rate_bpm) <= 2.0
    assert result.quality.face_coverage == 1.0
    assert calls and calls[-1] == (450, 450)
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(calls))


def test_raw_video_and_its_trace_agree(synthetic_video: MakeVideo) -> None:
    video, trace_path, _truth = synthetic_video(".y4m", 105, seed=105, motion_px=2.0)
    from_video = analyze_video(video)
    from_trace = analyze_trace(parse_trace(trace_path.read_bytes()))
    assert from_video.vitals.heart_rate_bpm is not None
    assert from_trace.vitals.heart_rate_bpm is not None
    assert abs(from_video.vitals.heart_rate_bpm - from_trace.vitals.heart_rate_bpm) <= 1.0
    assert from_video.quality.duration_s == pytest.approx(from_trace.quality.duration_s, abs=0.1)
    assert from_video.quality.brightness == pytest.approx(from_trace.quality.brightness, rel=0.1)


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "h264_lossless"), (".webm", "vp9")])
def test_encoded_containers_decode_by_pts(
    synthetic_video: MakeVideo, suffix: str, codec: str
) -> None:
    video, _, truth = synthetic_video(
        suffix,
        80,
        seed=80,
        codec=codec,
        bitrate_kbps=20_000,
        frame_drop_rate=0.1,
        width=320,
        height=240,
    )
    result = analyze_video(video)
    # Dropped frames leave gaps in pts; the frame rate shows them, the timing absorbs them.
    assert result.quality.frame_rate_hz is not None and 25 < result.quality.frame_rate_hz < 29
    assert result.quality.duration_s == pytest.approx(15.0, abs=0.2)
    if codec == "h264_lossless":
        assert result.vitals.heart_rate_bpm is not None
        assert abs(result.vitals.heart_rate_bpm - truth.heart_rate_bpm) <= 2.0


def test_video_without_a_face_is_refused(synthetic_video: MakeVideo) -> None:
    video, _, _ = synthetic_video(
        ".y4m", 72, face_visible=False, width=320, height=240, duration_s=11.0
    )
    assert analyze_video(video).failure_reason == FailureReason.NO_FACE


def _expect_unreadable(path: Path, fragment: str) -> None:
    with pytest.raises(VideoUnreadable) as caught:
        analyze_video(path)
    assert fragment in str(caught.value)
    assert caught.value.code == "video_unreadable"
    assert isinstance(caught.value, PulseloopError)


def test_missing_file(tmp_path: Path) -> None:
    _expect_unreadable(tmp_path / "nope.webm", "no such file")


def test_empty_and_garbage_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    _expect_unreadable(empty, "cannot read video")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 64)
    _expect_unreadable(garbage, "cannot read video")
    text = tmp_path / "notes.y4m"
    text.write_text(json.dumps({"hello": "world"}))
    _expect_unreadable(text, "cannot read video")


def test_truncated_files(synthetic_video: MakeVideo, tmp_path: Path) -> None:
    video, _, _ = synthetic_video(".y4m", 72, width=320, height=240, duration_s=11.0)
    short = tmp_path / "short.y4m"
    short.write_bytes(video.read_bytes()[: 20 * 115_206])  # header + ~20 frames
    _expect_unreadable(short, "decodable frames")
    webm, _, _ = synthetic_video(
        ".webm", 72, width=320, height=240, duration_s=11.0, codec="vp8", bitrate_kbps=4000
    )
    head = tmp_path / "head.webm"
    head.write_bytes(webm.read_bytes()[:300])
    _expect_unreadable(head, "cannot read video")


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    import av
    import numpy as np

    path = tmp_path / "sound.webm"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libopus", rate=48_000)
        samples = np.zeros((1, 960), dtype=np.float32)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48_000, i * 960
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    _expect_unreadable(path, "no video stream")


def test_raw_video_breathing_rate(synthetic_video: MakeVideo) -> None:
    video, _, truth = synthetic_video(".y4m", 75, seed=75, duration_s=30.0, drift=0.15)
    result = analyze_video(video)
    assert result.vitals.heart_rate_bpm is not None
    assert abs(result.vitals.heart_rate_bpm - truth.heart_rate_bpm) <= 2.0
    assert result.vitals.respiratory_rate_bpm is not None
    assert abs(result.vitals.respiratory_rate_bpm - truth.respiratory_rate_bpm) <= 2.0


def test_the_tracker_keeps_a_dim_darkest_face_in_every_frame(synthetic_video: MakeVideo) -> None:
    # Fitzpatrick VI in dim light: the window search around the last face missed 95 % of
    # its detections before the window was equalised, and the scan ended face_lost.
    video, _, _ = synthetic_video(
        ".y4m", 84, seed=684, skin_tone=6, brightness=0.7, width=320, height=240, noise_sigma=1.0
    )
    from pulseloop.vitals.video import trace_from_video

    trace = trace_from_video(video)
    assert bool(trace.face_found.all())
    assert analyze_video(video).quality.face_coverage == 1.0


def test_box_mean_weighs_the_pixels_an_edge_cuts() -> None:
    import numpy as np

    from pulseloop.vitals.colour import box_mean

    plane = np.random.default_rng(0).integers(0, 255, (50, 60)).astype(np.uint8)
    k = 20  # reference: each pixel split into k x k sub-pixels
    fine = np.kron(plane.astype(np.float64), np.ones((k, k)))
    for x0, y0, x1, y1 in [(3.3, 4.6, 20.75, 30.1), (0, 0, 60, 50), (10.5, 10.5, 10.9, 11.2)]:
        expected = fine[round(y0 * k) : round(y1 * k), round(x0 * k) : round(x1 * k)].mean()
        assert box_mean(plane, x0, y0, x1, y1) == pytest.approx(expected, rel=1e-9)
    # A box moved by a tenth of a pixel changes the mean a little, not by a whole column.
    a, b = box_mean(plane, 3.0, 4.0, 20.0, 30.0), box_mean(plane, 3.1, 4.0, 20.1, 30.0)
    assert abs(a - b) < 0.2 * abs(a - box_mean(plane, 4.0, 4.0, 21.0, 30.0)) + 1e-9
