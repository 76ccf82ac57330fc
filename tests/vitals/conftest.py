"""Shared, session-cached synthetic scans (rendering is the slow part of these tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pulseloop.vitals.synthetic import (
    GroundTruth,
    PulseSpec,
    SceneSpec,
    make_trace,
    write_video,
)
from pulseloop.vitals.trace import Trace

# 320x240 renders four times faster than 640x480 and still has a 95-pixel face.
SMALL = {"width": 320, "height": 240}

MakeTrace = Callable[..., tuple[Trace, GroundTruth]]
MakeVideo = Callable[..., tuple[Path, Path, GroundTruth]]


@pytest.fixture(scope="session")
def synthetic_trace() -> MakeTrace:
    """``synthetic_trace(heart_rate_bpm=..., **scene)`` -> (trace, truth), cached."""
    cache: dict[tuple[object, ...], tuple[Trace, GroundTruth]] = {}

    def make(
        heart_rate_bpm: float = 72.0,
        respiratory_rate_bpm: float = 15.0,
        seed: int = 0,
        **scene: object,
    ) -> tuple[Trace, GroundTruth]:
        key = (heart_rate_bpm, respiratory_rate_bpm, seed, tuple(sorted(scene.items())))
        if key not in cache:
            params = {"duration_s": 30.0, **SMALL, "seed": seed, **scene}
            pulse = PulseSpec(
                heart_rate_bpm=heart_rate_bpm, respiratory_rate_bpm=respiratory_rate_bpm, seed=seed
            )
            cache[key] = make_trace(pulse, SceneSpec(**params))  # type: ignore[arg-type]
        return cache[key]

    return make


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory: pytest.TempPathFactory) -> MakeVideo:
    """``synthetic_video(suffix, heart_rate_bpm=..., **scene)`` -> (video, trace json, truth)."""
    root = tmp_path_factory.mktemp("scans")
    cache: dict[tuple[object, ...], tuple[Path, Path, GroundTruth]] = {}

    def make(
        suffix: str = ".y4m",
        heart_rate_bpm: float = 72.0,
        seed: int = 0,
        codec: str | None = None,
        bitrate_kbps: int = 2000,
        **scene: object,
    ) -> tuple[Path, Path, GroundTruth]:
        key = (suffix, heart_rate_bpm, seed, codec, bitrate_kbps, tuple(sorted(scene.items())))
        if key not in cache:
            name = f"scan{len(cache)}"
            video, trace = root / f"{name}{suffix}", root / f"{name}.json"
            params = {"duration_s": 15.0, "seed": seed, **scene}
            truth = write_video(
                video,
                PulseSpec(heart_rate_bpm=heart_rate_bpm, seed=seed),
                SceneSpec(**params),  # type: ignore[arg-type]
                codec=codec,  # type: ignore[arg-type]
                bitrate_kbps=bitrate_kbps,
                trace_path=trace,
            )
            cache[key] = (video, trace, truth)
        return cache[key]

    return make
