"""The fairness grid: skin tone x heart rate x nuisance, scanned by both paths.

Shapes: ``fairness_grid(...) -> list[GridCase]``; ``run_case(case, directory) -> GridResult``.

Each case renders one synthetic scan once and analyses it two ways: the video path (a raw
Y4M file, the face found by the server) and the trace path (the colour trace the scan page
would have uploaded from the same frames: version 2, with its dead-banded, jittering face
boxes moved by the face shift it measures, its detections and shifts:
:mod:`pulseloop.vitals.synthetic.browser`). The tests run a small grid (320x240, 20 s) and
``bench/vitals.py`` a full one (640x480, 30 s). Pixel-sized nuisances are given at 640x480
and scaled with the frame, so a small grid has the same motion in face widths; sensor noise
is scaled so that region means have the same noise (a 320x240 frame averages 4x fewer
pixels per region, so its per-pixel noise is halved).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulseloop.vitals.synthetic import PulseSpec, SceneSpec, write_video
from pulseloop.vitals.synthetic.skin import FITZPATRICK_TONES

REFERENCE_WIDTH_PX = 640
# Nuisances as SceneSpec knobs at 640x480 (``*_px`` and ``noise_sigma`` are rescaled).
NUISANCES: dict[str, dict[str, float]] = {
    "still": {},
    "dim": {"brightness": 0.7},
    "sway": {"motion_px": 3.0},
    "light": {"drift": 0.1, "flicker": 0.01},
}
HEART_RATES_BPM = (58.0, 84.0, 120.0)


@dataclass(frozen=True, slots=True)
class GridCase:
    """One scan of the grid."""

    tone: int
    heart_rate_bpm: float
    nuisance: str
    width: int = 320
    duration_s: float = 20.0

    @property
    def name(self) -> str:
        """A file-safe name."""
        return f"tone{self.tone}-{self.heart_rate_bpm:g}-{self.nuisance}-{self.width}"

    @property
    def seed(self) -> int:
        """Different noise and HRV per case, reproducible."""
        return (
            1000 * self.tone + int(self.heart_rate_bpm) + 7 * list(NUISANCES).index(self.nuisance)
        )

    def scene(self) -> SceneSpec:
        """The scene, with pixel-sized knobs scaled to this frame size."""
        scale = self.width / REFERENCE_WIDTH_PX
        knobs: dict[str, Any] = {"noise_sigma": 2.0 * scale}
        for key, value in NUISANCES[self.nuisance].items():
            knobs[key] = value * scale if key.endswith("_px") else value
        return SceneSpec(
            duration_s=self.duration_s,
            width=self.width,
            height=self.width * 3 // 4,
            skin_tone=self.tone,
            seed=self.seed,
            **knobs,
        )


@dataclass(frozen=True, slots=True)
class PathResult:
    """One path's answer: the rate (None when refused) and why it refused."""

    heart_rate_bpm: float | None
    failure_reason: str | None
    snr_db: float | None
    confidence: float
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class GridResult:
    """Both paths on one case, with the truth."""

    case: GridCase
    truth_bpm: float
    video: PathResult
    trace: PathResult
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form (for the benchmark's results file)."""
        return {
            "case": {
                "tone": self.case.tone,
                "heart_rate_bpm": self.case.heart_rate_bpm,
                "nuisance": self.case.nuisance,
                "width": self.case.width,
                "duration_s": self.case.duration_s,
            },
            "truth_bpm": self.truth_bpm,
            "video": _path_json(self.video),
            "trace": _path_json(self.trace),
            "files": self.files,
        }


def _path_json(result: PathResult) -> dict[str, Any]:
    return {
        "heart_rate_bpm": result.heart_rate_bpm,
        "failure_reason": result.failure_reason,
        "snr_db": result.snr_db,
        "confidence": result.confidence,
        "seconds": result.seconds,
    }


def fairness_grid(
    width: int = 320,
    duration_s: float = 20.0,
    tones: tuple[int, ...] = FITZPATRICK_TONES,
    rates_bpm: tuple[float, ...] = HEART_RATES_BPM,
    nuisances: tuple[str, ...] = tuple(NUISANCES),
) -> list[GridCase]:
    """Every tone x rate x nuisance case."""
    return [
        GridCase(tone, rate, nuisance, width, duration_s)
        for tone in tones
        for rate in rates_bpm
        for nuisance in nuisances
    ]


def render_case(case: GridCase, directory: Path) -> tuple[Path, Path, float]:
    """Write the case's Y4M video and browser trace (cached); (video, trace, true bpm)."""
    video = directory / f"{case.name}.y4m"
    trace = directory / f"{case.name}.trace.json"
    truth_file = directory / f"{case.name}.y4m.truth.json"
    if not (truth_file.exists() and trace.exists()):
        pulse = PulseSpec(heart_rate_bpm=case.heart_rate_bpm, seed=case.seed)
        write_video(video, pulse, case.scene(), trace_path=trace, browser=True)
    truth = json.loads(truth_file.read_text())
    return video, trace, float(truth["heart_rate_bpm"])


def run_case(case: GridCase, directory: Path) -> GridResult:
    """Render (or reuse) the case and analyse it by both paths."""
    import time

    from pulseloop.vitals.analyze import analyze_trace, analyze_video
    from pulseloop.vitals.trace import parse_trace

    video, trace_path, truth = render_case(case, directory)
    start = time.perf_counter()
    by_video = analyze_video(video)
    video_s = time.perf_counter() - start
    start = time.perf_counter()
    by_trace = analyze_trace(parse_trace(trace_path.read_bytes()))
    trace_s = time.perf_counter() - start
    results = []
    for result, seconds in ((by_video, video_s), (by_trace, trace_s)):
        results.append(
            PathResult(
                result.vitals.heart_rate_bpm,
                None if result.failure_reason is None else str(result.failure_reason),
                result.quality.snr_db,
                result.quality.confidence,
                seconds,
            )
        )
    files = {"video": str(video), "trace": str(trace_path)}
    return GridResult(case, truth, results[0], results[1], files)
