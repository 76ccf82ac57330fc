"""Synthetic face scans with known vitals, for tests, the demo and the benchmark.

One render pass gives a video file (``.y4m`` raw, ``.webm`` VP8/VP9, ``.mp4`` H.264) and/or the
colour trace a browser would have uploaded for the same frames, plus the ground truth::

    from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video, make_trace
    truth = write_video(Path("scan.y4m"), PulseSpec(heart_rate_bpm=84), SceneSpec(duration_s=30))
    trace, truth = make_trace(PulseSpec(heart_rate_bpm=84), SceneSpec(duration_s=30))

``write_video`` also writes ``<name>.truth.json`` beside the video. The trace's face boxes
are the true ones unless ``browser=True``: then it is the version-2 trace the scan page
would have sent: sampled with the page's boxes (:mod:`pulseloop.vitals.synthetic.browser`:
detected every ~120 ms with jitter, glided, lagging under motion), with the detector's raw
box on the frames it looked at (``detection``) and the face's shift measured on every frame
by the page's tracker (``shift``, :mod:`pulseloop.vitals.synthetic.shift`). The video's
faces must be found.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pulseloop.vitals.regions import pixel_bounds, region_means
from pulseloop.vitals.synthetic.browser import BrowserBoxes
from pulseloop.vitals.synthetic.pulse import BeatTrain, PulseSpec, beat_train
from pulseloop.vitals.synthetic.scene import Frame, SceneSpec, render
from pulseloop.vitals.synthetic.shift import ShiftTracker
from pulseloop.vitals.synthetic.skin import FITZPATRICK_TONES
from pulseloop.vitals.synthetic.stamp import stamp_index
from pulseloop.vitals.synthetic.writers import Codec, write_encoded, write_y4m
from pulseloop.vitals.trace import REGION_NAMES, CameraModes, Trace

__all__ = [
    "FITZPATRICK_TONES",
    "Codec",
    "GroundTruth",
    "PulseSpec",
    "SceneSpec",
    "ground_truth",
    "make_trace",
    "write_trace",
    "write_video",
]


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What the synthetic subject's vitals really were over the scan."""

    heart_rate_bpm: float
    respiratory_rate_bpm: float
    hrv_sdnn_ms: float
    hrv_rmssd_ms: float
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form, as written to ``.truth.json``."""
        return asdict(self)


def ground_truth(pulse: PulseSpec, scene: SceneSpec) -> GroundTruth:
    """The truth for a scan rendered from these specs."""
    return _truth(beat_train(pulse, scene.duration_s), pulse, scene)


def _truth(train: BeatTrain, pulse: PulseSpec, scene: SceneSpec) -> GroundTruth:
    end_s = scene.duration_s
    return GroundTruth(
        heart_rate_bpm=train.heart_rate_bpm(0.0, end_s),
        respiratory_rate_bpm=pulse.respiratory_rate_bpm,
        hrv_sdnn_ms=train.sdnn_ms(0.0, end_s),
        hrv_rmssd_ms=train.rmssd_ms(0.0, end_s),
        duration_s=end_s,
    )


_FULL_FACE = REGION_NAMES.index("full_face")


class _TraceCollector:
    """Computes the browser-side region means of each frame as frames stream past.

    With ``browser``, also what a version-2 page records of the face's own motion: the
    detector's raw box on the frames it looked at, and the shift of the full-face pixels
    the page sampled, measured by the page's tracker (its crop, its errors).
    """

    def __init__(self, scene: SceneSpec, browser: bool = False) -> None:
        self.scene = scene
        self.boxes = BrowserBoxes(scene.seed) if browser else None
        self.shifts = ShiftTracker() if browser else None
        self.t_ms: list[float] = []
        self.rgb: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        self.face: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        self.detection: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        self.shift: list[np.ndarray[Any, np.dtype[np.float64]]] = []

    def add(self, frame: Frame) -> None:
        self.t_ms.append(frame.t_s * 1000.0)
        if self.boxes is None or self.shifts is None:
            face = frame.face
        else:
            # As the page: the face's shift is measured on the pixels where the regions were
            # last frame, then the regions are read at the anchor box moved by it.
            moved = None
            ahead = self.boxes.ahead()
            if ahead is not None:
                moved = self._measure_shift(frame, ahead)
            face = self.boxes.next(
                frame.t_s, frame.face, None if moved is None else np.array(moved)
            )
            found = self.boxes.detection
            self.detection.append(np.full(4, np.nan) if found is None else found)
            if face is not None and moved is None:
                moved = self._measure_shift(frame, face)  # the capture's first frame
            self.shift.append(
                np.full(2, np.nan) if face is None or moved is None else np.array(moved)
            )
        if face is None:
            self.rgb.append(np.full((len(REGION_NAMES), 3), np.nan))
            self.face.append(np.full(4, np.nan))
            return
        self.rgb.append(region_means(frame.rgb, face))
        self.face.append(face)

    def _measure_shift(
        self, frame: Frame, box: np.ndarray[Any, np.dtype[np.float64]]
    ) -> tuple[float, float] | None:
        assert self.shifts is not None
        x0, y0, x1, y1 = (int(v) for v in pixel_bounds(box, *frame.rgb.shape[1::-1])[_FULL_FACE])
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        return self.shifts.measure(frame.rgb[y0:y1, x0:x1, 1], x0, y0)

    def trace(self) -> Trace:
        browser = self.boxes is not None
        return Trace(
            t_ms=np.array(self.t_ms),
            rgb=np.array(self.rgb),
            face=np.array(self.face),
            frame_width=self.scene.width,
            frame_height=self.scene.height,
            user_agent="pulseloop-synthetic/2" if browser else "pulseloop-synthetic/1",
            source="synthetic",
            detection=np.array(self.detection).reshape(-1, 4) if browser else None,
            shift=np.array(self.shift).reshape(-1, 2) if browser else None,
            camera=CameraModes() if browser else None,
        )


def make_trace(
    pulse: PulseSpec, scene: SceneSpec, *, browser: bool = False
) -> tuple[Trace, GroundTruth]:
    """Render the scan in memory and return its colour trace and ground truth."""
    train = beat_train(pulse, scene.duration_s)
    collector = _TraceCollector(scene, browser)
    for frame in render(scene, train):
        collector.add(frame)
    return collector.trace(), _truth(train, pulse, scene)


def write_trace(path: Path, pulse: PulseSpec, scene: SceneSpec) -> GroundTruth:
    """Write the scan's trace as schema JSON to ``path`` (truth beside it)."""
    trace, truth = make_trace(pulse, scene)
    path.write_text(json.dumps(trace.to_json()))
    _write_truth(path, truth)
    return truth


def write_video(
    path: Path,
    pulse: PulseSpec,
    scene: SceneSpec,
    *,
    codec: Codec | None = None,
    bitrate_kbps: int = 2_000,
    trace_path: Path | None = None,
    browser: bool = False,
    stamp_frames: bool = False,
) -> GroundTruth:
    """Render the scan to a video file (format from the suffix) and its truth file.

    ``codec`` defaults to raw for ``.y4m``, VP8 for ``.webm`` and H.264 for ``.mp4``;
    ``trace_path`` also writes the browser-side trace of the same frames in the same pass
    (with the page's lagging boxes when ``browser``). ``stamp_frames`` draws each frame's
    index into its top-left corner (:mod:`pulseloop.vitals.synthetic.stamp`), after the
    trace has read the frame, so a test can see which frame a camera delivered when.
    """
    train = beat_train(pulse, scene.duration_s)
    collector = _TraceCollector(scene, browser) if trace_path is not None else None

    def frames() -> Iterator[Frame]:
        for index, frame in enumerate(render(scene, train)):
            if collector is not None:
                collector.add(frame)
            if stamp_frames:
                stamp_index(frame.rgb, index)
            yield frame

    suffix = path.suffix.lower()
    if suffix == ".y4m":
        if scene.frame_drop_rate > 0:
            raise ValueError("Y4M is constant-rate and cannot carry frame drops; use .webm")
        write_y4m(path, (f.rgb for f in frames()), scene.width, scene.height, scene.fps)
    else:
        default: Codec = "h264" if suffix == ".mp4" else "vp8"
        write_encoded(
            path,
            ((f.t_s, f.rgb) for f in frames()),
            scene.width,
            scene.height,
            codec or default,
            bitrate_kbps,
        )
    truth = _truth(train, pulse, scene)
    _write_truth(path, truth)
    if collector is not None and trace_path is not None:
        trace_path.write_text(json.dumps(collector.trace().to_json()))
    return truth


def _write_truth(path: Path, truth: GroundTruth) -> None:
    path.with_name(path.name + ".truth.json").write_text(json.dumps(truth.to_json(), indent=1))
