"""The scan works for every patient: acceptance and error must not depend on skin tone.

One grid of synthetic scans (:mod:`pulseloop.vitals.synthetic.grid`): six skin tones
(Fitzpatrick I-VI: lower reflectance, melanin's green and blue absorption, a pulse 2.4x
weaker in green for VI) x three heart rates x four nuisances (still, dim light, head sway,
drifting and flickering light). Each scan is rendered once and analysed by both paths: the
video path (the server finds the face in a raw video) and the trace path (the colour trace
the scan page would upload from the same frames: version 2, its jittering face boxes moved by
the face shift it measures, with its detections and shifts).

The frames are 256x192 (a 76-pixel face; the tracker and every region still work) with the
sensor noise and motion scaled so that each region's mean is as noisy, and the head moves
as far in face widths, as at 640x480; scans are 30 s, the length of a real scan. The grid
runs in two worker processes (about a minute on two free cores; ``bench/vitals.py`` runs it
at 640x480 with the peer).

What the small grid cannot show: the video path's face box error in pixels. At 640x480 the
old tracker's 0.1 px of box error in the pulse band refused three of the twelve Fitzpatrick
VI scans (84 bpm swaying and under flickering light, 120 bpm swaying) while every one passed
at 256x192. So the darkest tone's sway and light scans also run at full size, video path
only (six scans, ~30 s on two free cores): without the keyframe tracker half are refused.
"""

from __future__ import annotations

import multiprocessing
import statistics
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import pytest

from pulseloop.vitals.synthetic import FITZPATRICK_TONES
from pulseloop.vitals.synthetic.grid import GridResult, PathResult, fairness_grid, run_case

MIN_ACCEPTANCE = 0.9
MAX_TONE_MAE_BPM = 1.5
MAX_ERROR_BPM = 5.0
PATHS = ("video", "trace")

GRID = fairness_grid(width=256, duration_s=30.0)
DARKEST_FULL_SIZE = fairness_grid(
    width=640, duration_s=30.0, tones=(FITZPATRICK_TONES[-1],), nuisances=("sway", "light")
)


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> list[GridResult]:
    directory = tmp_path_factory.mktemp("fairness")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        return list(pool.map(partial(run_case, directory=directory), GRID))


@pytest.fixture(scope="module")
def darkest_full_size(tmp_path_factory: pytest.TempPathFactory) -> list[GridResult]:
    directory = tmp_path_factory.mktemp("fairness-640")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        return list(pool.map(partial(run_case, directory=directory), DARKEST_FULL_SIZE))


def _path(result: GridResult, path: str) -> PathResult:
    return result.video if path == "video" else result.trace


def _table(grid: list[GridResult], path: str) -> str:
    rows = []
    for r in grid:
        p = _path(r, path)
        answer = f"{p.heart_rate_bpm:.1f}" if p.heart_rate_bpm is not None else p.failure_reason
        rows.append(f"{r.case.name}: truth {r.truth_bpm:.1f} -> {answer} (SNR {p.snr_db})")
    return "\n".join(rows)


def _per_tone(
    grid: list[GridResult], path: str, measure: Callable[[list[tuple[PathResult, float]]], float]
) -> dict[int, float]:
    out = {}
    for tone in FITZPATRICK_TONES:
        scans = [(_path(r, path), r.truth_bpm) for r in grid if r.case.tone == tone]
        out[tone] = measure(scans)
    return out


def _acceptance(scans: list[tuple[PathResult, float]]) -> float:
    return sum(p.heart_rate_bpm is not None for p, _ in scans) / len(scans)


def _mae(scans: list[tuple[PathResult, float]]) -> float:
    errors = [abs(p.heart_rate_bpm - t) for p, t in scans if p.heart_rate_bpm is not None]
    return statistics.mean(errors) if errors else float("inf")


@pytest.mark.parametrize("path", PATHS)
def test_every_tone_is_accepted(grid: list[GridResult], path: str) -> None:
    acceptance = _per_tone(grid, path, _acceptance)
    low = {tone: share for tone, share in acceptance.items() if share < MIN_ACCEPTANCE}
    assert not low, f"{path} acceptance by tone {acceptance}\n{_table(grid, path)}"


@pytest.mark.parametrize("path", PATHS)
def test_error_is_low_on_every_tone(grid: list[GridResult], path: str) -> None:
    mae = _per_tone(grid, path, _mae)
    high = {tone: e for tone, e in mae.items() if e > MAX_TONE_MAE_BPM}
    assert not high, f"{path} MAE by tone {mae}\n{_table(grid, path)}"


@pytest.mark.parametrize("path", PATHS)
def test_no_accepted_scan_is_far_off(grid: list[GridResult], path: str) -> None:
    far = [
        r.case.name
        for r in grid
        if _path(r, path).heart_rate_bpm is not None
        and abs(_path(r, path).heart_rate_bpm - r.truth_bpm) > MAX_ERROR_BPM  # type: ignore[operator]
    ]
    assert not far, f"{path}: more than {MAX_ERROR_BPM} bpm off: {far}\n{_table(grid, path)}"


def test_the_two_paths_agree_when_both_answer(grid: list[GridResult]) -> None:
    apart = [
        (r.case.name, r.video.heart_rate_bpm, r.trace.heart_rate_bpm)
        for r in grid
        if r.video.heart_rate_bpm is not None
        and r.trace.heart_rate_bpm is not None
        and abs(r.video.heart_rate_bpm - r.trace.heart_rate_bpm) > 1.0
    ]
    assert not apart, apart


def test_the_darkest_faces_at_full_size_are_measured_by_the_video_path(
    darkest_full_size: list[GridResult],
) -> None:
    scans = [(r.video, r.truth_bpm) for r in darkest_full_size]
    table = _table(darkest_full_size, "video")
    assert _acceptance(scans) >= MIN_ACCEPTANCE, table
    assert _mae(scans) <= MAX_TONE_MAE_BPM, table
    far = [
        e
        for p, t in scans
        if p.heart_rate_bpm is not None and (e := abs(p.heart_rate_bpm - t)) > MAX_ERROR_BPM
    ]
    assert not far, table
